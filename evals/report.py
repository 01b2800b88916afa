"""A static HTML report of one run: headline figures against the baseline, the per-class table,
the confusion matrix and the reliability diagram (inline SVG), the cases that went wrong.
No scripts, no external assets: it opens from a CI artifact as is."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.bad{color:#b00020;font-weight:600}.good{color:#1b5e20}
"""


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


def headline(metrics: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    base = (baseline or {}).get("metrics", {})
    gates = (baseline or {}).get("gates", {})
    rows = []
    for name, value in metrics.items():
        want = base.get(name)
        diff = ""
        css = ""
        if isinstance(value, int | float) and isinstance(want, int | float):
            delta = value - want
            diff = f"{delta:+.4f}"
            worse = delta > 0 if gates.get(name) == "max" else delta < 0
            if name in gates and abs(delta) > 1e-12:
                css = "bad" if worse else "good"
        rows.append(
            f"<tr><td class=l>{escape(name)}</td><td>{_num(value)}</td>"
            f"<td>{_num(want) if want is not None else ''}</td><td class={css}>{diff}</td></tr>"
        )
    return (
        "<table><tr><th class=l>metric</th><th>this run</th><th>baseline</th><th>diff</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def per_class_table(table: dict[str, dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td class=l>{escape(c)}</td><td>{_num(r['precision'])}</td><td>{_num(r['recall'])}"
        f"</td><td>{_num(r['f1'])}</td><td>{r['support']}</td></tr>"
        for c, r in table.items()
    )
    return (
        "<table><tr><th class=l>class</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>support</th></tr>{rows}</table>"
    )


def confusion_table(matrix: dict[str, dict[str, int]]) -> str:
    columns = sorted({p for row in matrix.values() for p in row})
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = []
    for expected, row in matrix.items():
        cells = "".join(
            f"<td{' class=good' if c == expected and row.get(c) else ''}>{row.get(c, '')}</td>"
            for c in columns
        )
        rows.append(f"<tr><th class=l>{escape(expected)}</th>{cells}</tr>")
    return f"<table><tr><th class=l>expected \\ predicted</th>{head}</tr>{''.join(rows)}</table>"


def reliability_svg(bins: list[dict[str, float]], size: int = 260) -> str:
    """Accuracy against confidence per bin (bars) and the diagonal of perfect calibration."""
    pad = 30
    inner = size - 2 * pad

    def x(v: float) -> float:
        return pad + v * inner

    def y(v: float) -> float:
        return size - pad - v * inner

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img" aria-label="reliability diagram">',
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#bbb" '
        'stroke-dasharray="4 3"/>',
    ]
    for b in bins:
        width = (b["high"] - b["low"]) * inner - 2
        parts.append(
            f'<rect x="{x(b["low"]) + 1:.1f}" y="{y(b["accuracy"]):.1f}" width="{width:.1f}" '
            f'height="{b["accuracy"] * inner:.1f}" fill="#4f7cac" fill-opacity="0.75">'
            f"<title>{b['low']:.1f}-{b['high']:.1f}: accuracy {b['accuracy']:.3f}, "
            f"confidence {b['confidence']:.3f}, n={int(b['count'])}</title></rect>"
        )
        parts.append(
            f'<circle cx="{x(b["confidence"]):.1f}" cy="{y(b["accuracy"]):.1f}" r="2.5" '
            'fill="#b00020"/>'
        )
    parts.append(
        f'<text x="{size / 2}" y="{size - 6}" font-size="10" text-anchor="middle">confidence'
        f'</text><text x="10" y="{size / 2}" font-size="10" transform="rotate(-90 10 '
        f'{size / 2})" text-anchor="middle">accuracy</text></svg>'
    )
    return "".join(parts)


def render(document: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    agg = document["aggregate"]
    title = f"eval {document['task']} · {document['provider']}"
    sections = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{document['n_cases']} cases · dataset {document['dataset_sha256'][:12]} · "
        f"{escape(document['scorer_version'])} · {document['seconds']} s"
        + (" · <b>SYNTHETIC recording (test fixture)</b>" if document.get("synthetic") else "")
        + "</p>",
        "<h2>Figures and diff against the baseline</h2>",
        headline(agg["metrics"], baseline),
    ]
    regressions = document.get("baseline_regressions") or []
    if regressions:
        items = "".join(f"<li class=bad>{escape(r)}</li>" for r in regressions)
        sections.append(f"<h2>Regressions</h2><ul>{items}</ul>")
    if agg.get("per_class"):
        sections += ["<h2>Per class</h2>", per_class_table(agg["per_class"])]
    if agg.get("per_field"):
        rows = "".join(
            f"<tr><td class=l>{escape(k)}</td><td>{_num(v)}</td></tr>"
            for k, v in agg["per_field"].items()
        )
        sections.append(f"<h2>Field-level exact match</h2><table>{rows}</table>")
    if agg.get("confusion"):
        sections += ["<h2>Confusion matrix</h2>", confusion_table(agg["confusion"])]
    if agg.get("reliability"):
        sections += ["<h2>Reliability diagram</h2>", reliability_svg(agg["reliability"])]
    acc = agg.get("accounting", {})
    sections.append(
        "<h2>Tokens, cost, latency</h2><table>"
        + "".join(
            f"<tr><td class=l>{escape(k)}</td><td>{escape(str(v))}</td></tr>"
            for k, v in acc.items()
        )
        + "</table>"
    )
    wrong = [c for c in document["cases"] if c.get("scored_label") != c.get("expected_label")][:50]
    if wrong:
        rows = "".join(
            f"<tr><td class=l>{escape(c['id'])}</td><td class=l>{escape(str(c['expected_label']))}"
            f"</td><td class=l>{escape(str(c['scored_label']))}</td></tr>"
            for c in wrong
        )
        sections.append(f"<h2>Wrong answers (first 50)</h2><table>{rows}</table>")
    body = "\n".join(sections)
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style><body>{body}</body></html>\n"
    )


def write_report(document: dict[str, Any], baseline: dict[str, Any] | None, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(document, baseline), encoding="utf-8")
    return path


def write_index(reports: list[Path], path: Path) -> Path:
    items = "".join(f'<li><a href="{escape(p.name)}">{escape(p.stem)}</a></li>' for p in reports)
    path.write_text(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>evals</title>"
        f"<style>{_STYLE}</style><body><h1>Eval reports</h1><ul>{items}</ul></body></html>\n",
        encoding="utf-8",
    )
    return path
