"""The report's "Consent and licences" section: opt-outs by signal and source, the licence mix
of what was published per source, takedowns and retractions.

Read from the committed files (only the ``source``, ``license`` and ``reject_reason`` column
chunks, one file at a time), so a report re-rendered after ``dataprep retract`` shows the
amended run.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

from pipelines.report_columns import column_rows

# The stages whose rejections are a publisher's or a rights holder's decision, not ours.
CONSENT_STAGES = ("takedown", "consent", "license")


def _column_counts(run_dir: str, paths: list[str], columns: tuple[str, str]) -> Counter:
    """Counts of the value pairs of two columns over the files (``pipelines.report_columns``)."""
    counts: Counter = Counter()
    for rows in column_rows(run_dir, paths, columns):
        counts.update(rows)
    return counts


def consent_section(run_dir: str, manifest: dict[str, Any]) -> dict[str, Any]:
    files = [f["path"] for f in manifest.get("files", []) if f["path"].endswith(".parquet")]
    opt_out_files = [p for p in files if any(p.startswith(f"rejected/stage={s}/") for s in CONSENT_STAGES)]
    opt_outs = _column_counts(run_dir, opt_out_files, ("reject_reason", "source"))
    licences = _column_counts(run_dir, [p for p in files if p.startswith("data/")], ("license", "source"))
    return {
        "opt_outs": [{"reason": r, "source": s, "records": n} for (r, s), n in sorted(opt_outs.items())],
        "licenses": [{"license": lic or "none stated", "source": s, "records": n}
                     for (lic, s), n in sorted(licences.items(), key=lambda kv: (-kv[1], str(kv[0])))],
        "retractions": [{k: r[k] for k in ("version", "at", "blocklist", "by_kind", "by_origin")} | {"removed": len(r["removed"])}
                        for r in manifest.get("retractions", [])],
    }


def _rows(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_consent(section: dict[str, Any] | None) -> str:
    parts = ['<section id="consent"><h2>Consent and licences</h2>']
    if not section:
        return parts[0] + "<p>No consent data in this report.</p></section>"
    opt_outs = section["opt_outs"]
    parts.append("<h3>opt-outs and takedowns</h3>" + (
        _rows(["reason", "source", "records"], [[r["reason"], r["source"], r["records"]] for r in opt_outs])
        if opt_outs else "<p>No record was reserved by its publisher or listed for takedown.</p>"))
    parts.append("<h3>licences of published records</h3>" + _rows(
        ["licence", "source", "records"], [[r["license"], r["source"], r["records"]] for r in section["licenses"]]))
    retractions = section["retractions"]
    parts.append("<h3>retractions</h3>" + (
        _rows(["version", "at", "blocklist", "removed", "by kind", "from"],
              [[r["version"], r["at"], r["blocklist"], r["removed"], r["by_kind"], r["by_origin"]] for r in retractions])
        if retractions else "<p>None.</p>"))
    return "".join(parts) + "</section>"
