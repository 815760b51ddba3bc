"""The report's plots as inline SVG: no script, no library, no network.

Every plot has the class ``plot`` and a ``data-plot`` name, so tests can check that each one rendered.
"""

from __future__ import annotations

from typing import Any

from pipelines.report_format import esc, shorten

BEFORE, AFTER, REJECT, ALARM = "#9aa5b1", "#2b6cb0", "#dd6b20", "#c53030"


def no_data_chart(name: str, message: str = "no data") -> str:
    return (f'<svg class="plot" data-plot="{esc(name)}" viewBox="0 0 380 60" width="380" role="img" '
            f'aria-label="{esc(message)}">'
            f'<text x="190" y="34" text-anchor="middle" fill="#718096" font-size="13">{esc(message)}</text></svg>')


def bar_chart(name: str, labels: list[str], series: list[tuple[str, list[float], str]],
              shares: bool = True) -> str:
    """Grouped vertical bars; ``shares`` plots each series as % of its own total."""
    totals = [sum(counts) for _, counts, _ in series]
    if not any(totals):
        return no_data_chart(name)
    used = [i for i in range(len(labels)) if any(counts[i] for _, counts, _ in series)]
    lo, hi = used[0], used[-1]
    # Show a few empty bins around a narrow distribution, but not the under/overflow slots.
    while hi - lo < 5 and (lo > 1 or hi < len(labels) - 2):
        lo, hi = (lo - 1 if lo > 1 else lo), (hi + 1 if hi < len(labels) - 2 else hi)
    idx = list(range(lo, hi + 1))
    values = [[(c[i] / t if shares and t else c[i]) for i in idx] for (_, c, _), t in zip(series, totals)]
    top = max(max(v) for v in values) or 1
    width, left, right, top_pad = 380, 40, 8, 8
    bottom = 30
    height = 120 + bottom
    plot_h = height - bottom - top_pad
    step = (width - left - right) / len(idx)
    bar = max(step * 0.8 / len(series), 1)
    parts = [f'<svg class="plot" data-plot="{esc(name)}" viewBox="0 0 {width} {height}" width="{width}" role="img" '
             f'aria-label="{esc(name)}" font-size="10">']
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        tick = f"{top * frac:.0%}" if shares else f"{top * frac:,.0f}"
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#718096">{tick}</text>')
    for j, i in enumerate(idx):
        x0 = left + j * step + step * 0.1
        for k, ((series_name, counts, color), vals) in enumerate(zip(series, values)):
            h = plot_h * vals[j] / top
            tip = f"{labels[i]} · {series_name}: {counts[i]:,}" + (f" ({vals[j]:.1%})" if shares else "")
            parts.append(f'<rect x="{x0 + k * bar:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{max(h, 0):.1f}" fill="{color}"><title>{esc(tip)}</title></rect>')
    every = -(-len(idx) // 6)
    for j, i in enumerate(idx):
        if j % every:
            continue
        x = left + j * step + step / 2
        y = top_pad + plot_h + 12
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="#4a5568">{esc(labels[i])}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top_pad + plot_h}" y2="{top_pad + plot_h}" '
                 f'stroke="#a0aec0"/></svg>')
    return "".join(parts)


def hbar_chart(name: str, labels: list[str], series: list[tuple[str, list[float], str]]) -> str:
    """Horizontal grouped bars for categorical values (labels stay readable), as shares."""
    totals = [sum(counts) for _, counts, _ in series]
    if not any(totals):
        return no_data_chart(name)
    idx = [i for i in range(len(labels)) if any(counts[i] for _, counts, _ in series)]
    width, left, right = 380, 130, 44
    group = 5 * len(series) + 6
    height = group * len(idx) + 6
    span = width - left - right
    parts = [f'<svg class="plot" data-plot="{esc(name)}" viewBox="0 0 {width} {height}" width="{width}" role="img" '
             f'aria-label="{esc(name)}" font-size="10">']
    for j, i in enumerate(idx):
        y = 4 + j * group
        label = shorten(labels[i], 22)
        parts.append(f'<text x="{left - 4}" y="{y + group / 2 + 1:.1f}" text-anchor="end" fill="#2d3748">'
                     f'{esc(label)}<title>{esc(labels[i])}</title></text>')
        for k, ((series_name, counts, color), total) in enumerate(zip(series, totals)):
            share = counts[i] / total if total else 0
            w = span * share
            tip = f"{labels[i]} · {series_name}: {counts[i]:,} ({share:.1%})"
            parts.append(f'<rect x="{left}" y="{y + k * 5:.1f}" width="{max(w, 0.5):.1f}" height="4.5" '
                         f'fill="{color}"><title>{esc(tip)}</title></rect>')
        last = series[-1][1][i] / totals[-1] if totals[-1] else 0
        parts.append(f'<text x="{left + span + 4}" y="{y + group / 2 + 1:.1f}" fill="#4a5568">{last:.0%}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="0" y2="{height}" stroke="#a0aec0"/></svg>')
    return "".join(parts)


def funnel_chart(funnel: list[dict[str, Any]]) -> str:
    if not funnel or not funnel[0]["in"]:
        return no_data_chart("funnel", "no input records")
    total = max(row["in"] + row.get("created", 0) for row in funnel)
    row_h, left, width, label_w = 26, 150, 900, 190
    height = row_h * len(funnel) + 30
    span = width - left - label_w
    parts = [f'<svg class="plot" data-plot="funnel" viewBox="0 0 {width} {height}" width="{width}" role="img" '
             f'aria-label="funnel" font-size="12">']
    for i, row in enumerate(funnel):
        y = 8 + i * row_h
        kept_w = span * row["kept"] / total
        rej_w = span * row["rejected"] / total
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="#2d3748">{esc(row["stage"])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{kept_w:.1f}" height="{row_h - 6}" fill="{AFTER}">'
                     f'<title>{esc(row["stage"])}: kept {row["kept"]:,}</title></rect>')
        parts.append(f'<rect x="{left + kept_w:.1f}" y="{y}" width="{rej_w:.1f}" height="{row_h - 6}" fill="{REJECT}">'
                     f'<title>{esc(row["stage"])}: rejected {row["rejected"]:,}</title></rect>')
        note = f'{row["kept"]:,} kept · {row["rejected"]:,} rejected'
        parts.append(f'<text x="{left + kept_w + rej_w + 6:.1f}" y="{y + 15}" fill="#4a5568">{note}</text>')
    y = 8 + len(funnel) * row_h + 12
    parts.append(f'<rect x="{left}" y="{y - 9}" width="10" height="10" fill="{AFTER}"/>'
                 f'<text x="{left + 14}" y="{y}" fill="#4a5568">kept</text>'
                 f'<rect x="{left + 60}" y="{y - 9}" width="10" height="10" fill="{REJECT}"/>'
                 f'<text x="{left + 74}" y="{y}" fill="#4a5568">rejected (bar length: share of {total:,} '
                 f'input records)</text>')
    parts.append("</svg>")
    return "".join(parts)


def distance_chart(rows: list[dict[str, Any]], threshold: float, noise_factor: float) -> str:
    rows = [r for r in rows if r["distance"] is not None]
    if not rows:
        return no_data_chart("drift", "no distribution to compare")
    row_h, left, width = 18, 240, 900
    height = row_h * len(rows) + 30
    span = width - left - 80
    parts = [f'<svg class="plot" data-plot="drift" viewBox="0 0 {width} {height}" width="{width}" role="img" '
             f'aria-label="drift" font-size="11">']
    for i, row in enumerate(rows):
        y = 6 + i * row_h
        color = ALARM if row["alarm"] else (BEFORE if row["status"] == "within noise" else AFTER)
        w = span * row["distance"]
        parts.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end" fill="#2d3748">{esc(row["name"])}</text>'
                     f'<rect x="{left}" y="{y}" width="{max(w, 1):.1f}" height="{row_h - 5}" fill="{color}">'
                     f'<title>{esc(row["name"])}: {row["distance"]:.3f} (noise {row["noise"]:.3f})</title></rect>'
                     f'<text x="{left + max(w, 1) + 4:.1f}" y="{y + 11}" fill="#4a5568">{row["distance"]:.3f}</text>')
    for i, row in enumerate(rows):
        tick = left + span * min(noise_factor * row["noise"], 1)
        parts.append(f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{6 + i * row_h - 1}" y2="{6 + i * row_h + row_h - 4}" '
                     f'stroke="#1a202c" stroke-width="1.5"><title>{noise_factor:g}× sampling noise: '
                     f'{noise_factor * row["noise"]:.3f}</title></line>')
    x = left + span * threshold
    parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 22}" stroke="{ALARM}" stroke-dasharray="4 3"/>'
                 f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" fill="{ALARM}">'
                 f'threshold {threshold:g}</text>')
    parts.append("</svg>")
    return "".join(parts)
