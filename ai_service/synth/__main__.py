"""``python -m ai_service.synth --seed 7 --out data.json [--xml-dir dir]``: write a synthetic
dataset as JSON (and, optionally, each document as DTE XML named by its natural key)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ai_service.synth.dte_xml import to_dte_xml
from ai_service.synth.generator import KINDS, generate_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ai_service.synth", description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--kind", action="append", choices=sorted(KINDS), help="repeatable")
    parser.add_argument("--invoices", type=int, default=600, help="documents per company")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--xml-dir", type=Path, help="also write DTE--<rut>--<tipo>--<folio>.xml")
    args = parser.parse_args(argv)
    kinds = tuple(args.kind or KINDS)
    dataset = generate_dataset(args.seed, kinds, n_invoices=args.invoices)
    args.out.write_text(dataset.model_dump_json(indent=1), encoding="utf-8")
    if args.xml_dir:
        for company in dataset.companies:
            folder = args.xml_dir / company.kind
            folder.mkdir(parents=True, exist_ok=True)
            for doc in company.documents:
                inv = doc.invoice
                name = f"DTE--{inv.emisor_rut}--{inv.tipo_dte}--{inv.folio}.xml"
                (folder / name).write_bytes(to_dte_xml(inv, company.context.company_name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
