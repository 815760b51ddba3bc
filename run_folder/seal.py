"""The seal of a run folder: ``begin_run`` removes an earlier attempt's markers first, so a folder
is never seen as complete while it is being rewritten; ``seal_run`` writes ``_SUCCESS``, last."""

from __future__ import annotations

import hashlib
import json

from run_folder.layout import MANIFEST, SUCCESS
from run_folder.staged import clear_staging
from run_folder.storage import delete, exists, join, read_bytes, write_atomic


def begin_run(run_dir: str) -> None:
    delete([p for p in (join(run_dir, SUCCESS), join(run_dir, MANIFEST)) if exists(p)])


def seal_run(run_dir: str) -> None:
    """Drop the staging area and write ``_SUCCESS``, last: the run is published."""
    clear_staging(run_dir)
    write_seal(run_dir, read_bytes(join(run_dir, MANIFEST)))


def write_seal(run_dir: str, manifest_bytes: bytes) -> None:
    """``_SUCCESS`` for the manifest whose bytes are ``manifest_bytes`` (already in storage)."""
    # Not empty: it names the manifest it seals (and Beam's S3 writer cannot upload 0 bytes).
    seal = {"run_id": json.loads(manifest_bytes).get("run_id"),
            "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}
    write_atomic(join(run_dir, SUCCESS), json.dumps(seal).encode())
