"""``python -m ai_service.synth`` writes the dataset as JSON and the documents as DTE XML."""

from __future__ import annotations

from pathlib import Path

from ai_service.context import ReceivedInvoice
from ai_service.synth import SyntheticDataset
from ai_service.synth.__main__ import main


def test_writes_json_and_xml(tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    code = main(
        [
            "--seed",
            "5",
            "--kind",
            "it_services",
            "--invoices",
            "40",
            "--out",
            str(out),
            "--xml-dir",
            str(tmp_path / "xml"),
        ]
    )
    assert code == 0
    dataset = SyntheticDataset.model_validate_json(out.read_text(encoding="utf-8"))
    [company] = dataset.companies
    files = sorted((tmp_path / "xml" / "it_services").glob("DTE--*.xml"))
    assert len(files) == len({d.invoice.key for d in company.documents})
    inv = ReceivedInvoice.from_xml(files[0].read_bytes())
    assert files[0].name == f"DTE--{inv.emisor_rut}--{inv.tipo_dte}--{inv.folio}.xml"
