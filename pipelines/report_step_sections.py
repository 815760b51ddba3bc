"""The report's sections for what optional steps stage: tokens and balance, synthetic data."""

from __future__ import annotations

from typing import Any

from pipelines.report_format import esc, html_table, number, percent


def render_tokens(report: dict[str, Any]) -> str:
    """Published tokens per language and source; the balance step's before/after when it ran."""
    parts = ['<section id="tokens"><h2>Tokens and balance</h2>']
    if report["run"].get("job") == "images":
        return parts[0] + "<p>Token counts and balancing apply to the text job only.</p></section>"
    tokens = report.get("tokens")
    if tokens:
        parts.append(f"<p>{number(tokens['tokens'])} tokens ({esc(tokens.get('encoding', ''))}) in "
                     f"{number(tokens['documents'])} published documents.</p>")
        for kind in ("language", "source"):
            rows = [[esc(key), number(v["documents"]), number(v["tokens"])] for key, v in tokens.get(kind, {}).items()]
            parts.append(f"<h3>per {kind}</h3>" + html_table([kind, "documents", "tokens"], rows, numeric={1, 2}))
    else:
        parts.append("<p>Token counting was off for this run.</p>")
    balance = report.get("balance")
    if balance:
        for kind in ("language", "domain"):
            rows = [[esc(key), number(v["before"]), number(v["after"])] for key, v in balance.get(kind, {}).items()]
            parts.append(f"<h3>balance: documents per {kind}</h3>"
                         + html_table([kind, "before", "after"], rows, numeric={1, 2}))
    parts.append("</section>")
    return "".join(parts)


def render_synthetic(report: dict[str, Any]) -> str:
    """LLM-generated records: their share of the output and, per template, what became of them."""
    parts = ['<section id="synthetic"><h2>Synthetic data</h2>']
    synthetic = report.get("synthetic")
    if not synthetic:
        return parts[0] + "<p>Synthetic generation was off for this run.</p></section>"
    parts.append(f"<p>{number(synthetic['synthetic_records'])} of {number(synthetic['final_records'])} published records "
                 f"({percent(synthetic['share'])}) are synthetic. They met the same gates and dedup as crawled "
                 f"records; a duplicate of its parent is dropped as such.</p>")
    rows, reasons = [], []
    for name, t in synthetic["templates"].items():
        rows.append([f"<code>{esc(name)}</code>", number(t["attempted"]), number(t["generated"]), number(t["cached"]),
                     number(t["accepted"]), percent(t["acceptance_rate"]), number(t["tokens"]), number(t["generation_seconds"]),
                     number(t["tokens_per_second"])])
        reasons += [[f"<code>{esc(name)}</code>", f"<code>{esc(r)}</code>", number(n)] for r, n in t["rejected"].items()]
    parts.append(html_table(["template", "attempted", "generated", "from cache", "accepted", "acceptance",
                         "tokens", "generation s", "tokens/s"], rows, numeric=set(range(1, 9))))
    if reasons:
        parts.append("<h3>why synthetic records were dropped</h3>"
                     + html_table(["template", "reason", "records"], reasons, numeric={2}))
    selection = synthetic.get("selection")
    if selection:
        rows = [[esc(k), number(v)] for k, v in selection.items() if isinstance(v, (int, float))]
        parts.append("<h3>seed selection</h3>" + html_table(["", "count"], rows, numeric={1}))
    parts.append("</section>")
    return "".join(parts)
