"""Where did a record go? ``dataprep trace <run_dir> <id-or-url>``.

Looks the record up by ``id`` or exact ``url`` in the files the run's manifest lists (``data/``
and ``rejected/``; never in leftovers of other attempts), with pyarrow dataset filters, so only
the matching row groups are read, locally or on ``s3://`` (the standard AWS variables, plus
``AWS_ENDPOINT_URL_S3`` for a non-AWS endpoint). For each match it prints the stages the record
passed, where it was kept or rejected and why, its signals grouped by the stage that declares
them (the run's job, from its manifest: text or images), and for a duplicate the record it duplicates (its keeper), where that one went and, for a
near-duplicate, their estimated Jaccard similarity and cluster (the evidence of the removal).

Exit status: 0 when found, 1 when no record matches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any
from urllib.parse import urlsplit

import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipelines.job import load_job
from run_folder.layout import DATA, MANIFEST, REJECTED_DIR
from schemas.columns import BASE_FIELDS, REJECT_FIELDS
from transforms.stage import KEPT, REJECTED
from transforms.stats import snippet
from transforms.synthetic import GenerateSynthetic

TEXT_CHARS = 400
WIDTH = 100
# Base columns shown in the record header rather than among the signals.
_HEADER_COLUMNS = frozenset(field.name for field in BASE_FIELDS + REJECT_FIELDS) | {"caption", "image"}
# The content a record is shown with: a text, or an image's caption (never the image bytes).
_CONTENT = ("text", "caption")


def arrow_filesystem(run_dir: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for ``run_dir`` and the path to use on it."""
    if "://" not in run_dir:
        return pafs.LocalFileSystem(), os.path.abspath(run_dir)
    parts = urlsplit(run_dir)
    if parts.scheme == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options: dict[str, Any] = {}
        if endpoint:
            target = urlsplit(endpoint)
            options.update(endpoint_override=target.netloc, scheme=target.scheme or "https")
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        if region:
            options["region"] = region
        return pafs.S3FileSystem(**options), f"{parts.netloc}{parts.path}".rstrip("/")
    return pafs.FileSystem.from_uri(run_dir)


def _read_json(fs: pafs.FileSystem, path: str) -> dict[str, Any]:
    with fs.open_input_file(path) as handle:
        return json.loads(handle.read())


def _find(fs: pafs.FileSystem, root: str, files: list[dict], expression: ds.Expression) -> list[dict[str, Any]]:
    rows = []
    for info in files:
        dataset = ds.dataset(f"{root}/{info['path']}", filesystem=fs, format="parquet")
        for row in dataset.to_table(filter=expression).to_pylist():
            row["_file"] = info["path"]
            rows.append(row)
    return rows


def _signals(row: dict[str, Any], stages: list[str], declared: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    grouped, seen = {}, set()
    for stage in stages:
        names = [n for n in declared.get(stage, ()) if n not in seen]
        values = {name: row[name] for name in names if row.get(name) is not None}
        seen.update(names)
        if values:
            grouped[stage] = values
    rest = {k: v for k, v in row.items()
            if k not in seen and k not in _HEADER_COLUMNS and not k.startswith("_") and v is not None}
    if rest:
        grouped["other"] = rest
    return grouped


def _describe(row: dict[str, Any], stages: list[str], declared: dict[str, list[str]]) -> dict[str, Any]:
    stage = row.get("reject_stage")
    passed = stages if stage is None else stages[: stages.index(stage)] if stage in stages else []
    return {
        "id": row["id"],
        "url": row.get("url"),
        "source": row.get("source"),
        "source_key": row.get("source_key"),
        "fetched_at": row.get("fetched_at"),
        "outcome": KEPT if stage is None else REJECTED,
        "stage": stage,
        "reason": row.get("reject_reason"),
        "detail": row.get("reject_detail"),
        "file": row["_file"],
        "passed": passed,
        "signals": _signals(row, stages if stage is None else [*passed, stage], declared),
        "text": snippet(next((row[c] for c in _CONTENT if row.get(c) is not None), None), TEXT_CHARS),
    }


def trace(run_dir: str, query: str) -> dict[str, Any]:
    """Every record of the run whose id or url is ``query``, with where it went and why."""
    fs, root = arrow_filesystem(run_dir.rstrip("/"))
    manifest = _read_json(fs, f"{root}/{MANIFEST}")
    stages = [row["stage"] for row in manifest["funnel"]]
    job = load_job(manifest.get("job", "text"))
    declared = {cls.name: [f.name for f in cls.signal_fields] for cls in (*job.stages, GenerateSynthetic)}
    data = [f for f in manifest["files"] if f["path"].startswith(f"{DATA}/")]
    rejected = [f for f in manifest["files"] if f["path"].startswith(f"{REJECTED_DIR}/")]
    match = (ds.field("id") == query) | (ds.field("url") == query)
    rows = _find(fs, root, data, match) + _find(fs, root, rejected, match)
    matches = [_describe(row, stages, declared) for row in rows]
    keepers = {row["dup_of"] for row in rows if row.get("dup_of") and row.get("reject_stage")}
    if keepers:
        by_id = ds.field("id").isin(sorted(keepers))
        found = {r["id"]: r for r in _find(fs, root, data, by_id) + _find(fs, root, rejected, by_id)}
        for row, match_info in zip(rows, matches):
            keeper = found.get(row.get("dup_of"))
            if row.get("dup_of") and row.get("reject_stage"):
                match_info["keeper"] = (
                    {"id": row["dup_of"], "url": keeper.get("url"), "file": keeper["_file"],
                     "outcome": REJECTED if keeper.get("reject_stage") else KEPT,
                     "reason": keeper.get("reject_reason")}
                    if keeper else {"id": row["dup_of"], "note": "not in this run (an earlier run's record)"})
                if row.get("minhash_jaccard") is not None:
                    match_info["keeper"]["estimated_jaccard"] = row["minhash_jaccard"]
                    match_info["keeper"]["cluster"] = (row.get("minhash_cluster_id"), row.get("minhash_cluster_size"))
    return {"run_dir": run_dir, "query": query, "run_id": manifest.get("run_id"), "stages": stages,
            "matches": matches}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_trace(result: dict[str, Any]) -> str:
    lines = [f"run {result['run_id']} ({result['run_dir']}): {len(result['matches'])} record(s) match "
             f"{result['query']!r}"]
    for m in result["matches"]:
        lines.append("")
        lines.append(f"record {m['id']}  {m['url'] or ''}")
        lines.append(f"  from     {m['source']}  [{m['source_key']}]")
        path = [f"{s} ✓" for s in m["passed"]]
        if m["outcome"] == REJECTED:
            path.append(f"{m['stage']} ✗")
        lines.append(f"  path     {' → '.join(path)}")
        if m["outcome"] == KEPT:
            lines.append(f"  outcome  KEPT (published) in {m['file']}")
        else:
            lines.append(f"  outcome  REJECTED at {m['stage']}: {m['reason']}")
            if m["detail"]:
                lines.append(f"  detail   {m['detail']}")
            lines.append(f"  file     {m['file']}")
        keeper = m.get("keeper")
        if keeper:
            where = keeper.get("note") or (f"{keeper['outcome']} in {keeper['file']}"
                                           + (f" ({keeper['reason']})" if keeper.get("reason") else ""))
            lines.append(f"  keeper   {keeper['id']}  {keeper.get('url') or ''}  [{where}]")
            if "estimated_jaccard" in keeper:
                cluster_id, size = keeper["cluster"]
                lines.append(f"  evidence estimated Jaccard {keeper['estimated_jaccard']:.2f} with the keeper; "
                             f"cluster {cluster_id} of {size} documents")
        if m["signals"]:
            lines.append("  signals")
            width = max(len(stage) for stage in m["signals"])
            for stage, values in m["signals"].items():
                shown = textwrap.wrap("  ".join(f"{k}={_value(v)}" for k, v in values.items()), WIDTH,
                                      break_long_words=False, break_on_hyphens=False)
                lines.append(f"    {stage:<{width}}  {shown[0]}")
                lines += [f"    {'':<{width}}  {more}" for more in shown[1:]]
        if m["text"]:
            lines.append(f"  text     {m['text']}")
    return "\n".join(lines)


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (local or s3://): <output>/<run_id>")
    parser.add_argument("record", help="a record id, or its exact url")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def trace_command(args: argparse.Namespace) -> int:
    try:
        result = trace(args.run, args.record)
    except (OSError, ValueError) as exc:
        print(f"dataprep: cannot read run {args.run}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1, default=str) if args.json else format_trace(result))
    return 0 if result["matches"] else 1
