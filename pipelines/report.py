"""The data-quality report of a run: ``report/report.json`` and a self-contained ``report/index.html``.

Read from the run folder only: ``manifest.json`` (header, funnel, files), the stats of
``transforms.stats`` (``report/stats.json``, kept there from ``_staging/stats.json`` so a finished
run can be re-rendered), and ``validation/<stage>.json`` when the validation suites wrote them.
Drift is measured against the previous run of the same dataset (``pipelines.drift``): unless
given explicitly, the run folder beside this one (same output prefix) with the largest run id
below this run's, with ``_SUCCESS``, of the same job and with stats. Default run ids are UTC
timestamps, so that is the run before.

    dataprep report <run_dir> [--previous RUN_DIR | --no-drift] [--drift-threshold 0.2]

Exit status: 0, or 3 (``DRIFT_EXIT``) when a distribution drifted past the threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from pipelines import drift
from pipelines.consent_report import consent_section
from pipelines.harm_report import harm_section
from pipelines.report_html import render_html
from pipelines.report_inputs import (
    REPORT_DIR,
    find_previous_run,
    keep_stats,
    load_manifest,
    load_run_stats,
    load_validation,
)
from run_folder.layout import DATA, MANIFEST, REJECTED_DIR, SUCCESS
from run_folder.storage import exists, join, read_bytes, write_atomic
from transforms.stats import merge_profiles

REPORT_JSON = f"{REPORT_DIR}/report.json"
REPORT_HTML = f"{REPORT_DIR}/index.html"
REPORT_FORMAT = "genai-dataprep/report/1"
DRIFT_EXIT = 3
# Categorical plots show this many values, the rest as "(other)".
TOP_VALUES = 12


# ---- the report as data ---------------------------------------------------------------------


def _funnel(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    seconds = manifest.get("stage_seconds") or {}
    rows = []
    for row in manifest["funnel"]:
        reasons = sorted(row["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append({
            **{k: row[k] for k in ("stage", "in", "kept", "rejected")},
            "created": row.get("created", 0),  # records the stage added (synthetic)
            "keep_rate": round(row["kept"] / (row["in"] + row.get("created", 0)), 4) if row["in"] else None,
            "reasons": [{"reason": r, "count": n, "share": round(n / row["in"], 4) if row["in"] else None}
                        for r, n in reasons],
            "seconds": seconds.get(row["stage"]),
        })
    return rows


def _stage_input(stats: dict[str, Any], stage: str) -> dict[str, Any]:
    profiles = stats["profiles"][stage]
    capacities = {n: f.get("capacity", 0) for n, f in stats["fields"].items() if f["kind"] == "counts"}
    return merge_profiles([profiles["kept"], profiles["rejected"]], capacities)


def _has_data(profile: dict[str, Any], name: str, kind: str) -> bool:
    if kind == "histogram":
        hist = profile["hist"].get(name)
        return bool(hist) and sum(hist["counts"]) > 0
    top = profile["counts"].get(name)
    return bool(top) and any(k != "(none)" for k in top["counts"])


def _hist_entry(name: str, labels: list[str], before: dict | None, after: dict | None) -> dict[str, Any]:
    def part(hist):
        if hist is None:
            return {"counts": [0] * len(labels), "n": 0, "missing": 0, "mean": None, "min": None, "max": None}
        n = sum(hist["counts"])
        return {"counts": hist["counts"], "n": n, "missing": hist["missing"],
                "mean": round(hist["sum"] / n, 4) if n else None, "min": hist["min"], "max": hist["max"]}
    return {"field": name, "kind": "histogram", "labels": labels, "before": part(before), "after": part(after)}


def _counts_entry(name: str, before: dict | None, after: dict | None) -> dict[str, Any]:
    before = before or {"counts": {}, "total": 0}
    after = after or {"counts": {}, "total": 0}
    b_total, a_total = before["total"] or 1, after["total"] or 1
    order = sorted({*before["counts"], *after["counts"]},
                   key=lambda k: (-(before["counts"].get(k, 0) / b_total + after["counts"].get(k, 0) / a_total), k))
    shown = order[:TOP_VALUES]
    labels = [*shown, drift.OTHER]

    def part(top):
        counts = [top["counts"].get(k, 0) for k in shown]
        return {"counts": [*counts, top["total"] - sum(counts)], "n": top["total"], "distinct": len(top["counts"])}
    return {"field": name, "kind": "counts", "labels": labels, "before": part(before), "after": part(after)}


def _distributions(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Per profiled field: "before" is the input of the first stage where the field has values
    (the stage that computes a signal), "after" is the published data."""
    inputs = {stage: _stage_input(stats, stage) for stage in stats["stages"]}
    final = stats["final"]
    entries = []
    for name, info in stats["fields"].items():
        kind = info["kind"]
        where = next((s for s in stats["stages"] if _has_data(inputs[s], name, kind)), info["stage"])
        before = inputs[where]
        if kind == "histogram":
            entry = _hist_entry(name, info["bins"]["labels"], before["hist"].get(name), final["hist"].get(name))
        else:
            entry = _counts_entry(name, before["counts"].get(name), final["counts"].get(name))
        entries.append({**entry, "stage": info["stage"], "before_stage": where})
    return entries


def _stats_check(funnel: list[dict[str, Any]], stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The stats combiners and the run-facts combiner count independently: they must agree."""
    rows = []
    for row in funnel:
        profiles = stats["profiles"].get(row["stage"])
        if profiles is None:
            continue
        rows.append({"stage": row["stage"], "kept": row["kept"], "stats_kept": profiles["kept"]["n"],
                     "rejected": row["rejected"], "stats_rejected": profiles["rejected"]["n"],
                     "ok": row["kept"] == profiles["kept"]["n"] and row["rejected"] == profiles["rejected"]["n"]})
    return rows


def _clusters(stats: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per dedup stage: clusters by size, the largest ones, and the stage's own figures when it
    put them in the manifest under its name (MinHash: threshold, clusters, convergence)."""
    out = []
    for stage, info in stats.get("clusters", {}).items():
        size_field = info.get("size_field")
        keepers = stats["profiles"][stage]["kept"]["hist"].get(size_field) if size_field else None
        labels = stats["fields"][size_field]["bins"]["labels"] if size_field in stats["fields"] else []
        if "sizes" in info:  # counted from the removed members: clusters of two or more
            keepers, labels = info["sizes"], info["labels"]
        dropped = stats["profiles"][stage]["rejected"]["n"]
        own = manifest.get(stage)
        own = own if isinstance(own, dict) else {}
        facts = {k: v for k, v in own.items() if isinstance(v, (str, int, float, bool))}
        out.append({"stage": stage, "size_field": size_field, "labels": labels,
                    "clusters_by_size": keepers["counts"] if keepers else [],
                    "duplicates_removed": dropped, "top": info.get("top", []), "facts": facts})
    return out


def _inventory(manifest: dict[str, Any]) -> dict[str, Any]:
    by_partition: dict[str, dict[str, int]] = {}
    for info in manifest["files"]:
        kind = info["path"].split("/", 1)[0]
        key = DATA if kind == DATA else f"{kind}/{info['partition']}" if info.get("partition") else kind
        slot = by_partition.setdefault(key, {"files": 0, "rows": 0, "bytes": 0})
        slot["files"] += 1
        slot["rows"] += info["rows"]
        slot["bytes"] += info["bytes"]
    funnel = manifest["funnel"]
    checks = [{"what": "data/ rows = records kept by the last stage",
               "expected": funnel[-1]["kept"] if funnel else 0,
               "actual": by_partition.get(DATA, {}).get("rows", 0)}]
    for row in funnel:
        partition = f"{REJECTED_DIR}/stage={row['stage']}"
        if row["rejected"] or partition in by_partition:
            checks.append({"what": f"{partition}/ rows = rejected by {row['stage']}", "expected": row["rejected"],
                           "actual": by_partition.get(partition, {}).get("rows", 0)})
    c = manifest["conservation"]
    checks.append({"what": "input = kept + rejected", "expected": c["input"], "actual": c["kept"] + c["rejected"]})
    for check in checks:
        check["ok"] = check["expected"] == check["actual"]
    return {"files": manifest["files"], "by_partition": by_partition, "checks": checks}


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): config}


def _drift(run_dir: str, stats: dict | None, manifest: dict, previous_run_dir: str | None,
           threshold: float) -> dict[str, Any]:
    section: dict[str, Any] = {"measure": drift.MEASURE, "threshold": threshold,
                               "noise_factor": drift.NOISE_FACTOR, "previous": None, "rows": [], "alarms": []}
    if previous_run_dir is None:
        section["note"] = "no earlier finished run with stats under the same output prefix"
        return section
    previous_stats = load_run_stats(previous_run_dir)
    previous_manifest = load_manifest(previous_run_dir)
    old_config, new_config = _flatten(previous_manifest.get("config", {})), _flatten(manifest.get("config", {}))
    changed = sorted(k for k in {*old_config, *new_config} if old_config.get(k) != new_config.get(k))
    section["previous"] = {"run_id": previous_manifest.get("run_id"), "path": previous_run_dir,
                           "config_hash": previous_manifest.get("config_hash"),
                           "same_config": previous_manifest.get("config_hash") == manifest.get("config_hash"),
                           "config_changes": [{"key": k, "previous": old_config.get(k), "current": new_config.get(k)}
                                              for k in changed[:50]],
                           "code_version": previous_manifest.get("code_version")}
    if stats is None or previous_stats is None:
        section["note"] = "statistics missing in one of the two runs"
        return section
    rows = drift.compare(drift.distributions(stats, manifest),
                         drift.distributions(previous_stats, previous_manifest), threshold)
    section["rows"] = rows
    section["alarms"] = [drift.describe_alarm(r) for r in rows if r["alarm"]]
    return section


def build_report(run_dir: str, manifest: dict[str, Any], stats: dict[str, Any] | None,
                 validation: dict[str, Any], previous_run_dir: str | None,
                 drift_threshold: float = drift.DEFAULT_THRESHOLD, sealed: bool | None = None) -> dict[str, Any]:
    funnel = _funnel(manifest)
    run = {k: manifest.get(k) for k in ("run_id", "job", "schema_version", "inputs", "config", "config_hash",
                                        "code_version", "runner", "seconds", "stage_seconds")}
    failed = [r for v in validation.values() for r in v["results"] if r["success"] is False]
    critical = sum(1 for r in failed if r["severity"] != "warning")
    return {
        "format": REPORT_FORMAT,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_dir": run_dir,
        "run": run,
        "sealed": exists(join(run_dir, SUCCESS)) if sealed is None else sealed,
        "conservation": manifest["conservation"],
        "funnel": funnel,
        "skipped": manifest.get("skipped", {}),
        "stats_available": stats is not None,
        "stats_check": _stats_check(funnel, stats) if stats else [],
        "distributions": _distributions(stats) if stats else [],
        "clusters": _clusters(stats, manifest) if stats else [],
        "samples": {"k": stats["samples"]["k"], "snippet_of": stats["samples"].get("snippet_of", "text"),
                    "by_reason": stats["samples"]["by_reason"]} if stats else None,
        "validation": {"stages": validation, "failures": critical, "warnings": len(failed) - critical},
        "drift": _drift(run_dir, stats, manifest, previous_run_dir, drift_threshold),
        "tokens": manifest.get("tokens"),
        "balance": manifest.get("balance"),
        "synthetic": manifest.get("synthetic"),
        "consent": consent_section(run_dir, manifest),
        "harm": harm_section(run_dir, manifest),
        "inventory": _inventory(manifest),
    }


def write_report(run_dir: str, previous_run_dir: str | None = None,
                 drift_threshold: float = drift.DEFAULT_THRESHOLD, manifest: dict[str, Any] | None = None,
                 find_previous: bool = True, sealed: bool | None = None) -> dict[str, Any]:
    """Write ``report/report.json`` and ``report/index.html`` into ``run_dir``; return the report.

    ``manifest`` defaults to the run's ``manifest.json``. ``previous_run_dir`` defaults to
    ``find_previous_run(run_dir)`` unless ``find_previous`` is False (no drift section then).
    ``sealed``: whether the run is (about to be) published; default: whether ``_SUCCESS`` exists.
    A job renders its report just before it seals, so the report is inside what ``_SUCCESS`` seals.
    """
    keep_stats(run_dir)
    manifest = manifest if manifest is not None else load_manifest(run_dir)
    stats = load_run_stats(run_dir)
    if previous_run_dir is None and find_previous:
        previous_run_dir = find_previous_run(run_dir, manifest.get("job"))
    report = build_report(run_dir, manifest, stats, load_validation(run_dir), previous_run_dir,
                          drift_threshold, sealed)
    write_atomic(join(run_dir, REPORT_JSON), json.dumps(report, indent=1, default=str).encode())
    write_atomic(join(run_dir, REPORT_HTML), render_html(report).encode())
    return report


def load_report(run_dir: str) -> dict[str, Any]:
    """The ``report/report.json`` that ``write_report`` wrote."""
    return json.loads(read_bytes(join(run_dir, REPORT_JSON)))


def drift_alarms(report: dict[str, Any]) -> list[str]:
    """One line per drifted distribution; empty when nothing drifted (or no previous run)."""
    return list(report["drift"]["alarms"])


# ---- command line -----------------------------------------------------------------------------


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a Jensen-Shannon distance in (0, 1], got {text}")
    return value


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
    """``--previous``, ``--no-drift``, ``--drift-threshold``: for ``dataprep run`` and ``report``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--previous", metavar="RUN_DIR",
                       help="run folder to measure drift against (default: the latest earlier finished "
                            "run under the same output prefix)")
    group.add_argument("--no-drift", action="store_true", help="do not compare with a previous run")
    parser.add_argument("--drift-threshold", type=_threshold, default=drift.DEFAULT_THRESHOLD, metavar="D",
                        help="Jensen-Shannon distance (0..1) at which a distribution raises a drift alarm "
                             f"(default {drift.DEFAULT_THRESHOLD}); exit status 3 when one does")


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (local or s3://): <output>/<run_id>")
    add_drift_arguments(parser)


def print_drift(report: dict[str, Any], stream=None) -> None:
    stream = stream or sys.stderr
    for line in drift_alarms(report):
        print(f"dataprep: drift alarm: {line}", file=stream)


def report_command(args: argparse.Namespace) -> int:
    """Re-render the report of a finished run; exit 3 on drift alarms, 1 on an unusable folder."""
    run_dir = args.run.rstrip("/")
    if not exists(join(run_dir, MANIFEST)):
        print(f"dataprep: {run_dir} has no {MANIFEST}: not a finished run", file=sys.stderr)
        return 1
    report = write_report(run_dir, previous_run_dir=args.previous, drift_threshold=args.drift_threshold,
                          find_previous=not args.no_drift)
    print(join(run_dir, REPORT_HTML))
    if not report["sealed"]:
        print(f"dataprep: warning: {run_dir} has no {SUCCESS}: the run did not complete", file=sys.stderr)
    print_drift(report)
    return DRIFT_EXIT if drift_alarms(report) else 0
