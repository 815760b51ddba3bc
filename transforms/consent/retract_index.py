"""Drop retracted ids from the near-dedup band tables: the run's staged one (``_dedup_bands/``,
which a later ``publish_band_table`` would copy) and the cross-run index's files of the run.

Each band file holding a removed id is rewritten atomically, then the listing that names it
(the staged ``_manifest.json``, the index's ``_runs/<run>.json`` marker) with the new rows,
bytes and sha256. Files without such an id are not touched. ``retract`` calls this once per
retraction, between its commit point and the run's new manifest, so a retract that removes
nothing reads no band file.
"""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow.compute as pc
import pyarrow.parquet as pq

from run_folder.storage import exists, join, read_bytes, write_atomic
from transforms.dedup_minhash.index import RUNS_DIR, STAGED_DIR, STAGED_MANIFEST


def _drop_from_listing(base: str, listing_path: str, ids: set[str]) -> int:
    """Rewrite the files ``listing_path`` lists under ``base`` without ``ids``; rows dropped."""
    if not ids or not exists(listing_path):
        return 0
    listing = json.loads(read_bytes(listing_path))
    dropped = 0
    for info in listing["files"]:
        path = join(base, info["path"])
        table = pq.read_table(io.BytesIO(read_bytes(path)))
        keep = pc.invert(pc.is_in(table.column("id"), value_set=_array(ids)))
        kept = table.filter(keep)
        if kept.num_rows == table.num_rows:
            continue
        out = io.BytesIO()
        pq.write_table(kept, out, compression="zstd")
        data = out.getvalue()
        write_atomic(path, data)
        dropped += table.num_rows - kept.num_rows
        info.update(rows=kept.num_rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    if dropped:
        if "rows" in listing:
            listing["rows"] = sum(info["rows"] for info in listing["files"])
        write_atomic(listing_path, json.dumps(listing, indent=1).encode())
    return dropped


def _array(ids: set[str]):
    import pyarrow as pa

    return pa.array(sorted(ids), pa.string())


def drop_retracted_bands(run_dir: str, run_id: str, ids: set[str], index_uri: str | None) -> dict[str, int]:
    """Band rows dropped from the run's staged table and, with ``index_uri``, from the index."""
    staged = join(run_dir, STAGED_DIR)
    dropped = {"staged": _drop_from_listing(staged, join(staged, STAGED_MANIFEST), ids)}
    if index_uri:
        dropped["index"] = _drop_from_listing(index_uri, join(index_uri, RUNS_DIR, f"{run_id}.json"), ids)
    return dropped
