"""Report data a step stages for the driver: one JSON document per name, ``_staging/<name>.json``.

A global step (MinHash, tokens, balance, decontamination, synthetic data), the stats and the run
facts write their document from the pipeline with ``write_staged``; the driver reads it back with
``load_staged`` after the pipeline, before ``seal_run`` removes ``_staging/``.
"""

from __future__ import annotations

import json
from typing import Any

from run_folder.layout import STAGING_DIR
from run_folder.storage import delete_folder, join, read_bytes, write_atomic


def staged_path(run_dir: str, name: str) -> str:
    return join(run_dir, STAGING_DIR, f"{name}.json")


def write_staged(document: Any, run_dir: str, name: str) -> str:
    """Stage ``document`` (atomically) and return its path; the argument order suits ``beam.Map``."""
    path = staged_path(run_dir, name)
    write_atomic(path, json.dumps(document, indent=1).encode())
    return path


def load_staged(run_dir: str, name: str) -> Any:
    return json.loads(read_bytes(staged_path(run_dir, name)))


def clear_staging(run_dir: str) -> None:
    delete_folder(join(run_dir, STAGING_DIR))
