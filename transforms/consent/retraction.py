"""Retract records from a published run: the takedown blocklist applied after the fact.

A published run (``manifest.json`` sealed by ``_SUCCESS``) is amended in two phases:

1. **Stage** (the long part; the run is untouched and stays published): every ``data/`` and
   ``rejected/`` shard the manifest lists is read, one at a time; a shard holding a listed
   record is rewritten without it under ``_retract/v<N>/``; the amended manifest (version N,
   the removed ids and why, conservation ``input = kept + rejected + retracted``) is staged
   beside it, then ``_retract/pending.json``, the commit record, naming every file to replace.
2. **Commit** (short, and redone from ``pending.json`` by the next ``retract`` if interrupted):
   the removed ids' rows leave the near-dedup band tables (``retract_index``), the current manifest is kept as ``manifests/v<N-1>.json``, ``_SUCCESS`` removed (so a half
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
from apache_beam.io.filesystem import BeamIOError

from run_folder.layout import DATA, MANIFEST, REJECTED_DIR, SUCCESS, WEBDATASET_DIR
from run_folder.seal import write_seal
from run_folder.storage import delete, delete_folder, join, list_files, read_bytes, write_atomic
from transforms.consent.blocklist import Blocklist
from transforms.consent.retract_index import drop_retracted_bands

RETRACT_DIR = "_retract"
PENDING = "pending.json"
MANIFESTS_DIR = "manifests"
_MATCH_COLUMNS = ("id", "url", "page_url", "sha256", "phash")


class RetractError(RuntimeError):
    """The run cannot be amended as it is (not sealed, or its seal does not match)."""


@dataclass
class RetractResult:
    version: int
    manifest: dict[str, Any]  # the run's manifest now
    removed: list[dict[str, Any]] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    rolled_forward: bool = False
    band_rows_dropped: dict[str, int] = field(default_factory=dict)


def _read_or_none(path: str) -> bytes | None:
    """The file's bytes, or ``None`` when it is not there (one request, not an exists + a read:
    each costs a round trip, and on S3 that dominates a retract)."""
    try:
        return read_bytes(path)
    except (OSError, BeamIOError):
        return None


def _sealed_manifest(run_dir: str) -> dict[str, Any]:
    seal_bytes = _read_or_none(join(run_dir, SUCCESS))
    if seal_bytes is None:
        raise RetractError(f"{run_dir} has no {SUCCESS}: only a published run can be amended")
    manifest_bytes = read_bytes(join(run_dir, MANIFEST))
    if json.loads(seal_bytes or b"{}").get("manifest_sha256") != hashlib.sha256(manifest_bytes).hexdigest():
        raise RetractError(f"{run_dir}: {SUCCESS} does not seal the manifest in storage")
    return json.loads(manifest_bytes)


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
    if any(info["path"].startswith(WEBDATASET_DIR + "/") for info in manifest["files"]):
        # The tars hold the same pairs as data/: amending one and not the other would keep the
        # content. Until tars are rewritten too, such a run is rerun with takedown.blocklist_path.
        raise RetractError(f"{run_dir} has {WEBDATASET_DIR}/ shards, which retract cannot rewrite yet: "
                           "rerun the job with takedown.blocklist_path set")
    version = manifest.get("version", 1) + 1
    staging = join(run_dir, RETRACT_DIR, f"v{version}")
    removed, plan, files = [], {}, []
    for info in manifest["files"]:
        path = info["path"]
        if not path.endswith(".parquet") or path.split("/", 1)[0] not in (DATA, REJECTED_DIR):
            files.append(info)
            continue
        data = read_bytes(join(run_dir, path))
        present = set(_columns(data))
        table = pq.read_table(io.BytesIO(data), columns=[c for c in _MATCH_COLUMNS if c in present])
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
               "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(), "run_id": manifest["run_id"],
               "removed_ids": sorted({r["id"] for r in removed})}
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


def _commit(run_dir: str, pending: dict[str, Any]) -> dict[str, Any]:
    """Phase 2, idempotent: every step may be redone after a crash. Returns the new manifest."""
    new_manifest = read_bytes(join(run_dir, pending["manifest"]))
    if hashlib.sha256(new_manifest).hexdigest() != pending["manifest_sha256"]:
        raise RetractError(f"{run_dir}: the staged manifest does not match the commit record")
    current = read_bytes(join(run_dir, MANIFEST))
    if current != new_manifest:  # not yet replaced: keep the version this one amends
        write_atomic(join(run_dir, MANIFESTS_DIR, f"v{pending['version'] - 1}.json"), current)
    _delete_if_there(join(run_dir, SUCCESS))
    for path, staged in sorted(pending["plan"].items()):
        if staged is None:
            _delete_if_there(join(run_dir, path))
        else:
            write_atomic(join(run_dir, path), read_bytes(join(run_dir, staged)))
    write_atomic(join(run_dir, MANIFEST), new_manifest)
    write_seal(run_dir, new_manifest)
    delete_folder(join(run_dir, RETRACT_DIR))
    return json.loads(new_manifest)


def _delete_if_there(path: str) -> None:
    try:
        delete([path])
    except (OSError, BeamIOError):
        pass  # already gone: an earlier, interrupted commit got this far


def _finish(run_dir: str, pending: dict[str, Any], index_uri: str | None) -> tuple[dict[str, Any], dict[str, int]]:
    """From the commit point on: the band tables first (their rows are dropped by id, so redoing
    it is harmless), then the run's files."""
    bands = drop_retracted_bands(run_dir, pending["run_id"], set(pending["removed_ids"]), index_uri)
    return _commit(run_dir, pending), bands


def retract(run_dir: str, blocklist: Blocklist, source: str = "", index_uri: str | None = None) -> RetractResult:
    """Remove the records ``blocklist`` names from the published run at ``run_dir``, and their
    rows from its near-dedup band tables (the run's own and, with ``index_uri``, the index's)."""
    run_dir = run_dir.rstrip("/")
    leftovers = list_files(join(run_dir, RETRACT_DIR))
    pending_path = join(run_dir, RETRACT_DIR, PENDING)
    rolled_forward = pending_path in leftovers
    if rolled_forward:  # an earlier retract stopped after its commit point: finish it
        _finish(run_dir, json.loads(read_bytes(pending_path)), index_uri)
    elif leftovers:  # shards staged by a retract that stopped before its commit point
        delete(leftovers)
    manifest = _sealed_manifest(run_dir)
    pending = _stage(run_dir, manifest, blocklist, source)
    if pending is None:
        return RetractResult(manifest.get("version", 1), manifest, rolled_forward=rolled_forward)
    amended, bands = _finish(run_dir, pending, index_uri)
    return RetractResult(pending["version"], amended, amended["retractions"][-1]["removed"],
                         sorted(pending["plan"]), rolled_forward, bands)
