"""The report's "Harm scores" section: the harm stage's ``toxicity_score`` per source (input
file), over every record the stage scored.

Read from the committed files (only the ``source`` and ``toxicity_score`` column chunks, one file
at a time, ``pipelines.report_columns``): a record the stage kept is in ``data/`` or rejected by a
later stage, one it dropped is in ``rejected/stage=harm/``, and records rejected before it carry
no score. Fixed bins of 0.05 (the stats' fraction bins) so sources compare at a glance; the
sources with the most scored records are listed one by one, the rest summed as "(other)".
"""

from __future__ import annotations

import posixpath
from collections import Counter
from typing import Any

from pipelines.drift import OTHER
from pipelines.report_charts import AFTER, bar_chart
from pipelines.report_columns import column_rows
from pipelines.report_format import esc, html_table, number, percent
from transforms.summaries import Summary, add_value, fraction_bins, histogram, merge_histograms

HARM_STAGE = "harm"  # transforms.filters.harm.HarmFilter.name
SCORE = "toxicity_score"
MAX_SOURCES = 20
BINS = fraction_bins()


def harm_section(run_dir: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Per source: records scored, mean and highest score, how many scored above the stage's
    ``max_toxicity`` (each a ``harm.toxic`` rejection) and the histogram; None without the stage."""
    if HARM_STAGE not in [row["stage"] for row in manifest.get("funnel", [])]:
        return None
    threshold = (manifest.get("config") or {}).get(HARM_STAGE, {}).get("max_toxicity")
    files = [f["path"] for f in manifest.get("files", []) if f["path"].endswith(".parquet")]
    by_source: dict[str, Summary] = {}
    above: Counter = Counter()
    for rows in column_rows(run_dir, files, ("source", SCORE)):
        for source, score in rows:
            if score is None:
                continue
            add_value(by_source.setdefault(source, histogram(BINS)), BINS, score)
            if threshold is not None and score > threshold:
                above[source] += 1
    ranked = sorted(by_source, key=lambda s: (-sum(by_source[s]["counts"]), s))
    shown, rest = ranked[:MAX_SOURCES], ranked[MAX_SOURCES:]
    sources = [_source_row(s, by_source[s], above[s]) for s in shown]
    if rest:
        merged = merge_histograms([by_source[s] for s in rest])
        sources.append(_source_row(OTHER, merged, sum(above[s] for s in rest)))
    return {"stage": HARM_STAGE, "field": SCORE, "threshold": threshold, "labels": BINS.labels(),
            "sources": sources}


def _source_row(source: str, hist: Summary, above: int) -> dict[str, Any]:
    scored = sum(hist["counts"])
    return {"source": source, "scored": scored, "mean": round(hist["sum"] / scored, 4) if scored else None,
            "max": hist["max"], "above_threshold": above, "counts": hist["counts"]}


def render_harm(section: dict[str, Any] | None) -> str:
    parts = ['<section id="harm"><h2>Harm scores per source</h2>']
    if not section:
        return parts[0] + '<p class="muted">The harm stage did not run.</p></section>'
    threshold = section["threshold"]
    parts.append(f'<p class="muted"><code>{esc(section["field"])}</code> of every record the '
                 f'<code>{esc(section["stage"])}</code> stage scored, by input file; records above '
                 f'{number(threshold)} were dropped as <code>harm.toxic</code>. Bins of 0.05; hover a bar '
                 f'for its count.</p>')
    rows, cards = [], []
    for source in section["sources"]:
        share = source["above_threshold"] / source["scored"] if source["scored"] else None
        rows.append([f"<span class='mono'>{esc(source['source'])}</span>", number(source["scored"]),
                     number(source["mean"]), number(source["max"]),
                     f"{number(source['above_threshold'])} ({percent(share)})"])
        name = posixpath.basename(source["source"])
        chart = bar_chart(f"harm.{name}", section["labels"], [(section["field"], source["counts"], AFTER)])
        cards.append(f'<div class="plotcard"><h4><code>{esc(name)}</code></h4>'
                     f'<p>{number(source["scored"])} scored</p>{chart}</div>')
    parts.append(html_table(["source", "scored", "mean", "highest", "above threshold"], rows,
                            numeric={1, 2, 3, 4}))
    parts.append(f"<div class='grid'>{''.join(cards)}</div></section>")
    return "".join(parts)
