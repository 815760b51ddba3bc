"""Commit a run folder: conservation checked, stale files out, ``manifest.json`` in.

``write_manifest`` checks conservation (read = kept + rejected, and the files hold exactly those
rows), deletes files that this attempt did not write (shards of an earlier attempt with other
shard counts, temporary files of a crashed one) and writes the manifest; the job then adds what it derives from it (the
report) and ``seal_run`` (``run_folder.seal``) writes ``_SUCCESS``, last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from run_folder.facts import load_run_facts
from run_folder.layout import DATA, MANIFEST, OUTPUT_DIRS, REJECTED_DIR
from run_folder.storage import delete, join, list_files, write_atomic


class ConservationError(RuntimeError):
    """Records were lost or duplicated between reading and writing: the run must not publish."""


def funnel(stage_order: list[str], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage: records in, kept, rejected and the count of each reason, in pipeline order;
    ``created`` too for a stage that adds records (kept = in + created - rejected)."""
    by_stage: dict[str, dict[str, int]] = {}
    for row in facts["rejected"]:
        by_stage.setdefault(row["stage"], {})[row["reason"]] = row["count"]
    unknown = set(by_stage) - set(stage_order)
    if unknown:
        raise ConservationError(f"rejections from stages outside the pipeline: {sorted(unknown)}")
    created = facts.get("created", {})
    unknown = set(created) - set(stage_order)
    if unknown:
        raise ConservationError(f"records created by stages outside the pipeline: {sorted(unknown)}")
    rows, remaining = [], facts["read"]
    for stage in stage_order:
        reasons = by_stage.get(stage, {})
        dropped = sum(reasons.values())
        row = {"stage": stage, "in": remaining}
        if stage in created:
            row["created"] = created[stage]
        remaining += created.get(stage, 0) - dropped
        rows.append({**row, "kept": remaining, "rejected": dropped, "reasons": dict(sorted(reasons.items()))})
    return rows


def check_conservation(facts: dict[str, Any]) -> dict[str, Any]:
    """input (documents read + records created in the run) = kept + rejected, and the files hold
    them. Skipped records (read, but no document: WARC requests...) are reported beside, outside."""
    rejected = sum(row["count"] for row in facts["rejected"])
    created = sum(facts.get("created", {}).values())
    data_rows = sum(f["rows"] for f in facts["files"] if f["path_kind"] == DATA)
    rejected_rows = sum(f["rows"] for f in facts["files"] if f["path_kind"] == REJECTED_DIR)
    total = facts["read"] + created
    summary = {"input": total, "read": facts["read"], "created": created, "kept": facts["kept"],
               "rejected": rejected, "data_rows": data_rows, "rejected_rows": rejected_rows,
               "skipped": sum(facts.get("skipped", {}).values())}
    if total != facts["kept"] + rejected:
        raise ConservationError(f"input {total} (read {facts['read']} + created {created}) != "
                                f"kept {facts['kept']} + rejected {rejected}")
    if data_rows != facts["kept"] or rejected_rows != rejected:
        raise ConservationError(f"files hold {data_rows} kept / {rejected_rows} rejected rows, "
                                f"the pipeline counted {facts['kept']} / {rejected}")
    return summary


def write_manifest(run_dir: str, stage_order: list[str], header: dict[str, Any]) -> dict[str, Any]:
    """Check conservation, delete files this attempt did not write, write ``manifest.json``."""
    facts = load_run_facts(run_dir)
    prefix = run_dir.rstrip("/") + "/"
    for info in facts["files"]:
        info["path"] = info["path"][len(prefix):] if info["path"].startswith(prefix) else info["path"]
        info["path_kind"] = info["path"].split("/", 1)[0]
    conservation = check_conservation(facts)
    delete_unwritten(run_dir, OUTPUT_DIRS, {join(run_dir, info["path"]) for info in facts["files"]})
    manifest = {
        **header,
        "conservation": conservation,
        "funnel": funnel(stage_order, facts),
        "skipped": facts.get("skipped", {}),
        "files": [{k: v for k, v in info.items() if k != "path_kind"} for info in facts["files"]],
    }
    store_manifest(run_dir, manifest)
    return manifest


def delete_unwritten(run_dir: str, folders: Iterable[str], written: set[str]) -> None:
    """Delete the files under ``folders`` that this attempt did not write (``written``: full
    paths): shards of an earlier attempt with other shard counts, temporary files of a crashed one."""
    delete([p for folder in folders for p in list_files(join(run_dir, folder)) if p not in written])


def store_manifest(run_dir: str, manifest: dict[str, Any]) -> None:
    write_atomic(join(run_dir, MANIFEST), json.dumps(manifest, indent=2).encode())
