"""Retract records from a published run: the takedown blocklist applied after the fact.

A published run (``manifest.json`` sealed by ``_SUCCESS``) is amended in two phases:

1. **Stage** (the long part; the run is untouched and stays published): every ``data/`` and
   ``rejected/`` shard the manifest lists is read, one at a time; a shard holding a listed
   record is rewritten without it under ``_retract/v<N>/``; the amended manifest (version N,
   the removed ids and why, conservation ``input = kept + rejected + retracted``) is staged
   beside it, then ``_retract/pending.json``, the commit record, naming every file to replace.
2. **Commit** (short, and redone from ``pending.json`` by the next ``retract`` if interrupted):
   the current manifest is kept as ``manifests/v<N-1>.json``, ``_SUCCESS`` removed (so a half
   amended run never reads as published), each shard replaced atomically (emptied ones
   deleted), the new manifest written, ``_SUCCESS`` resealed, ``_retract/`` dropped.

A retracted record leaves ``rejected/`` too: a takedown means its content is not kept anywhere.
Nothing matching: nothing written (a second identical retract is a no-op).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.consent.blocklist import Blocklist
from transforms.run_commit import DATA, MANIFEST, REJECTED_DIR, SUCCESS, seal_run
from transforms.storage import delete, delete_folder, exists, join, read_bytes, write_atomic

RETRACT_DIR = "_retract"
PENDING = "pending.json"
MANIFESTS_DIR = "manifests"
_MATCH_COLUMNS = ("id", "url", "page_url", "sha256", "phash")


class RetractError(RuntimeError):
    """The run cannot be amended as it is (not sealed, or its seal does not match)."""


@dataclass
class RetractResult:
    version: int
    removed: list[dict[str, Any]] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    rolled_forward: bool = False


def _sealed_manifest(run_dir: str) -> tuple[dict[str, Any], bytes]:
    if not exists(join(run_dir, SUCCESS)):
        raise RetractError(f"{run_dir} has no {SUCCESS}: only a published run can be amended")
    manifest_bytes = read_bytes(join(run_dir, MANIFEST))
    seal = json.loads(read_bytes(join(run_dir, SUCCESS)) or b"{}")
    if seal.get("manifest_sha256") != hashlib.sha256(manifest_bytes).hexdigest():
        raise RetractError(f"{run_dir}: {SUCCESS} does not seal the manifest in storage")
    return json.loads(manifest_bytes), manifest_bytes


def _shard_matches(table: pa.Table, blocklist: Blocklist) -> list[tuple[int, str, str]]:
    """``(row, kind, detail)`` of every row of ``table`` that the blocklist names."""
    columns = {name: table.column(name).to_pylist() for name in _MATCH_COLUMNS if name in table.column_names}
    matches = []
    for row in range(table.num_rows):
        found = blocklist.match({name: values[row] for name, values in columns.items()})
        if found is not None:
            matches.append((row, *found))
    return matches


def _file_info(path: str, data: bytes, rows: int, info: dict[str, Any]) -> dict[str, Any]:
    return {**info, "path": path, "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _rewrite(data: bytes, keep_rows: list[int]) -> bytes:
    """The shard without its removed rows: same schema and metadata, zstd as the sink writes."""
    parquet = pq.ParquetFile(io.BytesIO(data))
    table = parquet.read().take(pa.array(keep_rows, pa.int64()))
    out = io.BytesIO()
    row_group = parquet.metadata.row_group(0).num_rows if parquet.metadata.num_row_groups else 10_000
    pq.write_table(table, out, compression="zstd", row_group_size=max(row_group, 1))
    return out.getvalue()


def _stage(run_dir: str, manifest: dict[str, Any], blocklist: Blocklist, source: str) -> dict[str, Any] | None:
    """Phase 1: staged shards, staged manifest and the commit record; ``None`` if nothing matches."""
    version = manifest.get("version", 1) + 1
    staging = join(run_dir, RETRACT_DIR, f"v{version}")
    removed, plan, files = [], {}, []
    for info in manifest["files"]:
        path = info["path"]
        if not path.endswith(".parquet") or path.split("/", 1)[0] not in (DATA, REJECTED_DIR):
            files.append(info)
            continue
        data = read_bytes(join(run_dir, path))
        table = pq.read_table(io.BytesIO(data), columns=[c for c in _MATCH_COLUMNS if c in _columns(data)])
        matches = _shard_matches(table, blocklist)
        if not matches:
            files.append(info)
            continue
        origin = path.rsplit("/", 1)[0]
        removed += [{"id": table.column("id")[row].as_py(), "from": origin, "kind": kind, "why": detail}
                    for row, kind, detail in matches]
        gone = {row for row, _, _ in matches}
        keep = [row for row in range(table.num_rows) if row not in gone]
        if not keep:
            plan[path] = None
            continue
        new = _rewrite(data, keep)
        write_atomic(join(staging, path), new)
        plan[path] = f"{RETRACT_DIR}/v{version}/{path}"
        files.append(_file_info(path, new, len(keep), info))
    if not removed:
        return None
    amended = _amended_manifest(manifest, version, removed, files, source)
    manifest_bytes = json.dumps(amended, indent=2).encode()
    write_atomic(join(staging, MANIFEST), manifest_bytes)
    pending = {"version": version, "plan": plan, "manifest": f"{RETRACT_DIR}/v{version}/{MANIFEST}",
               "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(), "removed": len(removed)}
    write_atomic(join(run_dir, RETRACT_DIR, PENDING), json.dumps(pending, indent=1).encode())
    return pending


def _columns(data: bytes) -> list[str]:
    return pq.ParquetFile(io.BytesIO(data)).schema_arrow.names


def _amended_manifest(manifest: dict[str, Any], version: int, removed: list[dict[str, Any]],
                      files: list[dict[str, Any]], source: str) -> dict[str, Any]:
    c = dict(manifest["conservation"])
    from_data = sum(r["from"] == DATA for r in removed)
    c["kept"] -= from_data
    c["rejected"] -= len(removed) - from_data
    c["retracted"] = c.get("retracted", 0) + len(removed)
    c["data_rows"] = sum(f["rows"] for f in files if f["path"].startswith(DATA + "/"))
    c["rejected_rows"] = sum(f["rows"] for f in files if f["path"].startswith(REJECTED_DIR + "/"))
    retraction = {
        "version": version,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "blocklist": source,
        "removed": sorted(removed, key=lambda r: r["id"]),
        "by_kind": dict(sorted(Counter(r["kind"] for r in removed).items())),
        "by_origin": dict(sorted(Counter(r["from"] for r in removed).items())),
    }
    previous = {"version": version - 1, "path": f"{MANIFESTS_DIR}/v{version - 1}.json"}
    return {
        **manifest,
        "version": version,
        "conservation": c,
        "files": files,
        "retractions": [*manifest.get("retractions", []), retraction],
        "previous_manifests": [*manifest.get("previous_manifests", []), previous],
    }


def _commit(run_dir: str, pending: dict[str, Any]) -> None:
    """Phase 2, idempotent: every step may be redone after a crash."""
    new_manifest = read_bytes(join(run_dir, pending["manifest"]))
    if hashlib.sha256(new_manifest).hexdigest() != pending["manifest_sha256"]:
        raise RetractError(f"{run_dir}: the staged manifest does not match the commit record")
    current = read_bytes(join(run_dir, MANIFEST))
    previous_copy = join(run_dir, MANIFESTS_DIR, f"v{pending['version'] - 1}.json")
    if current != new_manifest and not exists(previous_copy):
        write_atomic(previous_copy, current)
    delete([p for p in [join(run_dir, SUCCESS)] if exists(p)])
    for path, staged in sorted(pending["plan"].items()):
        target = join(run_dir, path)
        if staged is None:
            delete([target] if exists(target) else [])
        elif exists(join(run_dir, staged)):
            write_atomic(target, read_bytes(join(run_dir, staged)))
    write_atomic(join(run_dir, MANIFEST), new_manifest)
    seal_run(run_dir)
    delete_folder(join(run_dir, RETRACT_DIR))


def retract(run_dir: str, blocklist: Blocklist, source: str = "") -> RetractResult:
    """Remove the records ``blocklist`` names from the published run at ``run_dir``."""
    run_dir = run_dir.rstrip("/")
    pending_path = join(run_dir, RETRACT_DIR, PENDING)
    rolled_forward = False
    if exists(pending_path):  # an earlier retract stopped after its commit point: finish it
        _commit(run_dir, json.loads(read_bytes(pending_path)))
        rolled_forward = True
    manifest, _ = _sealed_manifest(run_dir)
    delete_folder(join(run_dir, RETRACT_DIR))  # shards staged by a retract that never committed
    pending = _stage(run_dir, manifest, blocklist, source)
    if pending is None:
        return RetractResult(manifest.get("version", 1), rolled_forward=rolled_forward)
    _commit(run_dir, pending)
    amended = json.loads(read_bytes(join(run_dir, MANIFEST)))
    return RetractResult(
        pending["version"], amended["retractions"][-1]["removed"],
        sorted(p for p, s in pending["plan"].items()), rolled_forward,
    )


def retracted_ids(manifest: dict[str, Any]) -> set[str]:
    """Every id any retraction of the run removed."""
    return {row["id"] for retraction in manifest.get("retractions", []) for row in retraction["removed"]}
