"""``report/index.html``: the report as one static page that needs nothing but a browser.

Plots are inline SVG (``pipelines.report_charts``: no script, no library, no network; a
Content-Security-Policy forbids every fetch, so a page that tried one would show a console error
in the browser test). Every section has an ``id`` and every plot the class ``plot`` and a
``data-plot`` name, so tests can check that each one rendered.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.consent_report import render_consent
from pipelines.harm_report import render_harm
from pipelines.report_charts import (
    AFTER,
    ALARM,
    BEFORE,
    bar_chart,
    distance_chart,
    funnel_chart,
    hbar_chart,
    no_data_chart,
)
from pipelines.report_format import byte_size, esc, html_table, number, percent, plural
from pipelines.report_step_sections import render_synthetic, render_tokens

SECTIONS = (
    ("summary", "Summary"),
    ("funnel", "Funnel"),
    ("distributions", "Distributions"),
    ("harm", "Harm scores"),
    ("dedup", "Dedup clusters"),
    ("samples", "Rejected samples"),
    ("validation", "Validation"),
    ("drift", "Drift"),
    ("tokens", "Tokens and balance"),
    ("synthetic", "Synthetic data"),
    ("consent", "Consent and licences"),
    ("inventory", "Output inventory"),
)

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;margin:0;background:#f7f8fa}
main{max-width:1280px;margin:0 auto;padding:0 24px 48px}
nav{position:sticky;top:0;background:#1a202c;padding:8px 24px;z-index:2}
nav a{color:#e2e8f0;margin-right:18px;text-decoration:none;font-weight:500}
nav a:hover{text-decoration:underline}h1{font-size:22px;margin:20px 0 4px}
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid #cbd5e0}
h3{font-size:15px;margin:20px 0 6px}section{scroll-margin-top:48px}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fff5f5}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}.muted{color:#718096}
.ok{color:#2f855a;font-weight:600}.bad{color:#c53030;font-weight:600}.warn{color:#b7791f;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 12px;flex:1 1 auto;min-width:120px}
.card b{display:block;font-size:20px}.card.alarm{border-color:#c53030;background:#fff5f5}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.plotcard{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 10px}
.plotcard h4{margin:0;font-size:13px}.plotcard p{margin:0 0 4px;font-size:12px;color:#4a5568}
svg.plot{display:block;max-width:100%;height:auto}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
.snippet{min-width:300px;max-width:560px;color:#2d3748;font-size:12px}details{margin:6px 0}
summary{cursor:pointer;font-weight:500}
pre{background:#fff;border:1px solid #e2e8f0;padding:8px;overflow:auto;max-height:420px;font-size:12px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;margin-right:6px}
.badge.ok{background:#c6f6d5}.badge.bad{background:#fed7d7}.badge.warn{background:#fefcbf}
.url{word-break:break-all;font-size:12px;max-width:280px}
code.wrap{overflow-wrap:anywhere}
"""


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    sealed = ('<span class="badge ok">_SUCCESS</span>' if report["sealed"]
              else '<span class="badge bad">not sealed</span>')
    alarms = len(report["drift"]["alarms"])
    drift_badge = (f'<span class="badge bad">{alarms} drift alarm{"s" * (alarms != 1)}</span>' if alarms
                   else '<span class="badge ok">no drift alarm</span>')
    failures = report["validation"]["failures"]
    warnings = report["validation"]["warnings"]
    validation_badge = (f'<span class="badge bad">{plural(failures, "failed expectation")}</span>' if failures else "")
    validation_badge += f'<span class="badge warn">{plural(warnings, "warning")}</span>' if warnings else ""
    inputs = "".join(f"<div class='mono'>{esc(i)}</div>" for i in run.get("inputs") or [])
    facts = [
        ("run folder", f"<span class='mono'>{esc(report['run_dir'])}</span>"),
        ("inputs", inputs),
        ("config hash", f"<span class='mono'>{esc(run.get('config_hash'))}</span>"),
        ("code version", f"<span class='mono'>{esc(run.get('code_version'))}</span>"),
        ("runner", esc(run.get("runner"))),
        ("schema", esc(run.get("schema_version"))),
        ("wall time", f"{number(run.get('seconds'))} s"),
        ("report generated", esc(report["generated_at"])),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    config = json.dumps(run.get("config"), indent=2, default=str)
    return (f'<header id="header"><h1>Run <span class="mono">{esc(run.get("run_id"))}</span> · '
            f'{esc(run.get("job"))} job</h1><div>{sealed}{drift_badge}{validation_badge}</div>'
            f'<table>{rows}</table><details><summary>config (hash {esc((run.get("config_hash") or "")[:12])})'
            f'</summary><pre>{esc(config)}</pre></details></header>')


def _summary(report: dict[str, Any]) -> str:
    c = report["conservation"]
    data = report["inventory"]["by_partition"].get("data", {"files": 0, "rows": 0, "bytes": 0})
    keep = c["kept"] / c["input"] if c["input"] else None
    alarms = len(report["drift"]["alarms"])
    failures = report["validation"]["failures"]
    checks_ok = all(ch["ok"] for ch in report["inventory"]["checks"]) and all(
        row["ok"] for row in report["stats_check"])
    cards = [
        ("input documents", number(c["input"]), False),
        ("kept", f"{number(c['kept'])} <small>({percent(keep)})</small>", False),
        ("rejected", number(c["rejected"]), False),
        ("published", f"{plural(data['rows'], 'row')} · {plural(data['files'], 'file')} · {byte_size(data['bytes'])}",
         False),
        ("counts reconciled", "yes" if checks_ok else "NO", not checks_ok),
        ("validation failures",
         f"{number(failures)} <small>+ {plural(report['validation']['warnings'], 'warning')}</small>", failures > 0),
        ("drift alarms", number(alarms), alarms > 0),
    ]
    html = "".join(f'<div class="card{" alarm" if bad else ""}"><span class="muted">{k}</span><b>{v}</b></div>'
                   for k, v, bad in cards)
    return f'<section id="summary"><h2>Summary</h2><div class="cards">{html}</div></section>'


def _funnel(report: dict[str, Any]) -> str:
    rows = []
    for row in report["funnel"]:
        reasons = "<br>".join(f"<code>{esc(r['reason'])}</code> {r['count']:,} ({percent(r['share'])})"
                              for r in row["reasons"]) or '<span class="muted">–</span>'
        created = f' <small>+ {number(row["created"])} created</small>' if row.get("created") else ""
        rows.append([esc(row["stage"]), number(row["in"]) + created, number(row["kept"]), number(row["rejected"]),
                     percent(row["keep_rate"]), number(row["seconds"]), reasons])
    table = html_table(["stage", "in", "kept", "rejected", "kept %", "busy s", "reject reasons (share of stage input)"],
                   rows, numeric={1, 2, 3, 4, 5})
    mismatch = [r for r in report["stats_check"] if not r["ok"]]
    note = ""
    if mismatch:
        note = ('<p class="bad">The stats combiners disagree with the run facts for: '
                + ", ".join(esc(r["stage"]) for r in mismatch) + "</p>")
    skipped = ", ".join(f"<code>{esc(kind)}</code> {n:,}" for kind, n in report.get("skipped", {}).items())
    if skipped:
        skipped = f'<p id="skipped">Skipped, not documents (outside the funnel): {skipped}</p>'
    return (f'<section id="funnel"><h2>Funnel</h2><p class="muted">Every input document is kept by each stage or '
            f'rejected with a reason. "busy s": seconds the runner spent in the stage\'s transforms, summed over '
            f'workers (when the runner reports it).</p>{funnel_chart(report["funnel"])}{table}{skipped}{note}'
            f'</section>')


def _plot_card(entry: dict[str, Any]) -> str:
    before, after = entry["before"], entry["after"]
    histogram = entry["kind"] == "histogram"
    name = entry["field"]
    series = [(f"before ({entry['before_stage']} input)", before["counts"], BEFORE),
              ("after (published)", after["counts"], AFTER)]
    chart = (bar_chart(f"dist.{name}", entry["labels"], series) if histogram
             else hbar_chart(f"dist.{name}", entry["labels"], series))
    if histogram:
        stats = (f"before n={before['n']:,} mean {number(before['mean'])} · after n={after['n']:,} "
                 f"mean {number(after['mean'])}")
    else:
        stats = f"before n={before['n']:,} ({before['distinct']} values) · after n={after['n']:,}"
    return (f'<div class="plotcard"><h4><code>{esc(name)}</code></h4><p>{stats}</p>{chart}</div>')


def _distributions(report: dict[str, Any]) -> str:
    if not report["stats_available"]:
        return ('<section id="distributions"><h2>Distributions</h2><p class="muted">No statistics in this run.</p>'
                '</section>')
    groups: dict[str, list[dict]] = {}
    for entry in report["distributions"]:
        groups.setdefault(entry["stage"], []).append(entry)
    legend = (f'<p class="legend muted">Shares of the records that have a value.<span style="background:{BEFORE}">'
              f'</span>before: the input of the stage that computes the column<span style="background:{AFTER}">'
              f'</span>after: the published records. Fixed bins (fractions in 0.05 steps, counts on a 1-2-5 '
              f'scale); hover a bar for its count.</p>')
    blocks = []
    for stage, entries in groups.items():
        title = "core columns" if stage == report["funnel"][0]["stage"] else f"signals of <code>{esc(stage)}</code>"
        blocks.append(f"<h3>{title}</h3><div class='grid'>{''.join(_plot_card(e) for e in entries)}</div>")
    return (f'<section id="distributions"><h2>Distributions before and after filtering</h2>{legend}'
            f'{"".join(blocks)}</section>')


def _sample_cells(sample: dict[str, Any]) -> list[str]:
    signals = ", ".join(f"{esc(k)}={esc(v)}" for k, v in sample.get("signals", {}).items())
    return [f"<span class='mono'>{esc(sample['id'][:16])}</span>",
            f"<div class='url'>{esc(sample.get('url'))}</div>",
            f"<div class='snippet'>{esc(sample.get('snippet'))}</div>",
            f"<span class='mono'>{signals}</span>"]


def _dedup(report: dict[str, Any]) -> str:
    if not report["clusters"]:
        return ('<section id="dedup"><h2>Dedup clusters</h2><p class="muted">No dedup stage with cluster '
                'statistics in this run.</p></section>')
    blocks = []
    for info in report["clusters"]:
        chart = bar_chart(f"clusters.{info['stage']}", info["labels"],
                          [("clusters", info["clusters_by_size"], AFTER)], shares=False)
        rows = []
        for cluster in info["top"]:
            keeper = cluster["keeper"]
            members = "<br>".join(f"<span class='url'>{esc(m.get('url'))}</span> <span class='mono muted'>"
                                  f"{esc(m['id'][:12])}</span>" for m in cluster["members"])
            rows.append([number(cluster["size"]), f"<span class='mono'>{esc(keeper['id'][:16])}</span>",
                         f"<div class='url'>{esc(keeper.get('url'))}</div><div class='snippet'>"
                         f"{esc(keeper.get('snippet'))}</div>", members or "–"])
        table = (html_table(["size", "keeper id", "keeper", "removed members (smallest ids)"], rows, numeric={0})
                 if rows else '<p class="muted">No cluster with more than one record.</p>')
        facts = info.get("facts") or {}
        facts_table = (html_table(["figure", "value"], [[f"<code>{esc(k)}</code>", number(v)] for k, v in facts.items()],
                              numeric={1}) if facts else "")
        blocks.append(
            f"<h3><code>{esc(info['stage'])}</code>: {plural(info['duplicates_removed'], 'duplicate')} removed</h3>"
            f"{facts_table}"
            f"<div class='grid'><div class='plotcard'><h4>clusters by size ({_cluster_sizes_of(info)})</h4>"
            f"{chart}</div></div>"
            f"<p class='muted'>The largest clusters; the keeper is the record published, members carry "
            f"<code>dup_of</code> = keeper id in rejected/.</p>{table}")
    return f'<section id="dedup"><h2>Dedup clusters</h2>{"".join(blocks)}</section>'


def _cluster_sizes_of(info: dict[str, Any]) -> str:
    if info["size_field"] is None:  # counted from the removed members
        return "the keeper and the records naming it in <code>dup_of</code>; two or more"
    return f"<code>{esc(info['size_field'])}</code> of the kept representatives"


def _samples(report: dict[str, Any]) -> str:
    samples = report["samples"]
    if not samples or not samples["by_reason"]:
        note = "No rejected records." if samples else "No statistics in this run."
        return f'<section id="samples"><h2>Rejected samples</h2><p class="muted">{note}</p></section>'
    counts = {r["reason"]: r["count"] for row in report["funnel"] for r in row["reasons"]}
    snippet = "caption" if samples.get("snippet_of") == "caption" else "text snippet"
    order = [r["reason"] for row in report["funnel"] for r in row["reasons"]]
    order += sorted(set(samples["by_reason"]) - set(order))
    blocks = []
    for reason in order:
        items = samples["by_reason"].get(reason)
        if not items:
            continue
        rows = [[*_sample_cells(s)[:2], f"<span class='mono'>{esc(s.get('detail'))}</span>", *_sample_cells(s)[2:]]
                for s in items]
        count = plural(counts.get(reason, len(items)), "record")
        blocks.append(f"<details open><summary><code>{esc(reason)}</code> · {count}</summary>"
                      f"{html_table(['id', 'url', 'detail', snippet, 'signals'], rows)}</details>")
    return (f'<section id="samples"><h2>Rejected samples per reason</h2><p class="muted">The {samples["k"]} '
            f'records with the smallest ids of each reason: the same records on every rerun and runner. '
            f'<code>dataprep trace RUN ID</code> shows one record in full.</p>{"".join(blocks)}</section>')


def _validation(report: dict[str, Any]) -> str:
    stages = report["validation"]["stages"]
    if not stages:
        return ('<section id="validation"><h2>Validation</h2><p class="muted">No validation results '
                '(<code>validation/&lt;stage&gt;.json</code>) in this run.</p></section>')
    blocks = []
    for stage, result in stages.items():
        status = {True: '<span class="ok">passed</span>', False: '<span class="bad">failed</span>'}.get(
            result["success"], '<span class="muted">–</span>')
        rows, bad = [], set()
        for i, r in enumerate(result["results"]):
            ok, warning = r.get("success"), r.get("severity") == "warning"
            if ok is False and not warning:
                bad.add(i)
            observed = r.get("observed")
            observed = observed if isinstance(observed, str) else json.dumps(observed, default=str)
            examples = ", ".join(esc(x) for x in (r.get("example_ids") or [])[:5])
            rows.append([f"<code class='wrap'>{esc(r.get('expectation'))}</code>", esc(r.get("severity")),
                         '<span class="ok">✓</span>' if ok else "–" if ok is None
                         else '<span class="warn">⚠ warning</span>' if warning else '<span class="bad">✗</span>',
                         f"<span class='mono'>{esc(observed[:300])}</span>", f"<span class='mono'>{examples}</span>"])
        error = f'<p class="bad">{esc(result["error"])}</p>' if result.get("error") else ""
        blocks.append(f"<h3><code>{esc(stage)}</code> {status}</h3>{error}"
                      + html_table(["expectation", "severity", "success", "observed", "example ids"], rows, bad_rows=bad))
    return f'<section id="validation"><h2>Validation</h2>{"".join(blocks)}</section>'


def _drift(report: dict[str, Any]) -> str:
    section = report["drift"]
    previous = section["previous"]
    intro = (f'<p class="muted">Jensen-Shannon distance (base 2, 0 = same shares, 1 = nothing in common) '
             f'between this run and the previous one, per distribution. Alarm: distance ≥ {section["threshold"]:g} '
             f'and more than {section["noise_factor"]:g}× the distance sampling alone would give (noise).</p>')
    legend = (f'<p class="legend muted"><span style="background:{ALARM}"></span>alarm'
              f'<span style="background:{BEFORE}"></span>above the threshold but within sampling noise'
              f'<span style="background:{AFTER}"></span>below the threshold'
              f'<span style="background:#1a202c;width:2px"></span>{section["noise_factor"]:g}× noise'
              f'<span style="background:{ALARM};width:2px"></span>threshold</p>')
    if previous is None:
        return (f'<section id="drift"><h2>Drift</h2>{intro}<p class="muted">{esc(section.get("note"))}</p>'
                f'{no_data_chart("drift", "no previous run")}</section>')
    config = ('<span class="ok">same config</span>' if previous["same_config"] else
              '<span class="warn">config changed</span>: ' + ", ".join(
                  f"<code>{esc(c['key'])}</code> {esc(c['previous'])} → {esc(c['current'])}"
                  for c in previous["config_changes"][:10]))
    head = (f"<p>Previous run <span class='mono'>{esc(previous['run_id'])}</span> "
            f"(<span class='mono'>{esc(previous['path'])}</span>) · {config}</p>")
    alarms = "".join(f'<li class="bad">{esc(a)}</li>' for a in section["alarms"])
    rows, bad = [], set()
    for i, row in enumerate(section["rows"]):
        if row["alarm"]:
            bad.add(i)
        changes = ", ".join(f"{esc(c['value'])} {c['previous']:.1%}→{c['current']:.1%}"
                            for c in row.get("top_changes", []))
        status_class = {"alarm": "bad", "within noise": "warn"}.get(row["status"], "ok")
        rows.append([f"<code>{esc(row['name'])}</code>", number(row["distance"]), number(row["noise"]),
                     f"{number(row['n_current'])} / {number(row['n_previous'])}",
                     f'<span class="{status_class}">{esc(row["status"])}</span>', changes])
    note = f'<p class="muted">{esc(section["note"])}</p>' if section.get("note") else ""
    table = html_table(["distribution", "distance", "noise", "n now / before", "status", "largest share changes"],
                   rows, numeric={1, 2}, bad_rows=bad)
    return (f'<section id="drift"><h2>Drift against the previous run</h2>{intro}{head}'
            f'{"<ul>" + alarms + "</ul>" if alarms else ""}{note}{legend}'
            f'{distance_chart(section["rows"], section["threshold"], section["noise_factor"])}{table}</section>')


def _inventory(report: dict[str, Any]) -> str:
    inventory = report["inventory"]
    checks = [[esc(c["what"]), number(c["expected"]), number(c["actual"]),
               '<span class="ok">✓</span>' if c["ok"] else '<span class="bad">✗</span>'] for c in inventory["checks"]]
    bad = {i for i, c in enumerate(inventory["checks"]) if not c["ok"]}
    parts = [[f"<code>{esc(k)}</code>", number(v["files"]), number(v["rows"]), byte_size(v["bytes"])]
             for k, v in inventory["by_partition"].items()]
    files = [[f"<span class='mono'>{esc(f['path'])}</span>", number(f["rows"]), byte_size(f["bytes"]),
              f"<span class='mono'>{esc(f.get('sha256', '')[:16])}</span>"] for f in inventory["files"]]
    return (f'<section id="inventory"><h2>Output inventory, reconciled with the funnel</h2>'
            f'{html_table(["check", "funnel", "files", ""], checks, numeric={1, 2}, bad_rows=bad)}'
            f'{html_table(["partition", "files", "rows", "bytes"], parts, numeric={1, 2, 3})}'
            f'<details><summary>{len(files)} files (from manifest.json)</summary>'
            f'{html_table(["path", "rows", "bytes", "sha256"], files, numeric={1, 2})}</details></section>')


def render_html(report: dict[str, Any]) -> str:
    nav = "".join(f'<a href="#{sid}">{title}</a>' for sid, title in SECTIONS)
    body = "".join([
        _header(report), _summary(report), _funnel(report), _distributions(report),
        render_harm(report.get("harm")), _dedup(report),
        _samples(report), _validation(report), _drift(report), render_tokens(report), render_synthetic(report),
        render_consent(report.get("consent")), _inventory(report),
    ])
    title = f"dataprep report · {report['run'].get('run_id')}"
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><nav>{nav}</nav><main>{body}</main>"
            "</body></html>\n")
