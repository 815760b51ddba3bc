"""What the report reads from a run folder: its manifest, stats and validation results, and the
run before it (the latest earlier finished run of the same job under the same output prefix)."""

from __future__ import annotations

import json
import posixpath
from typing import Any

from apache_beam.io.filesystems import FileSystems

from run_folder.layout import MANIFEST, STATS_NAME, SUCCESS, VALIDATION_DIR
from run_folder.staged import staged_path
from run_folder.storage import exists, join, list_files, read_bytes, write_atomic
from transforms.stats import STATS_FILE, load_stats

REPORT_DIR = "report"
KEPT_STATS = f"{REPORT_DIR}/stats.json"


def keep_stats(run_dir: str) -> str | None:
    """Copy ``_staging/stats.json`` to ``report/stats.json``; call before ``seal_run`` clears
    ``_staging/``. Returns the kept path, or None when the run has no stats."""
    staged, kept = staged_path(run_dir, STATS_NAME), join(run_dir, KEPT_STATS)
    if exists(staged):
        write_atomic(kept, read_bytes(staged))
        return kept
    return kept if exists(kept) else None


def load_run_stats(run_dir: str) -> dict[str, Any] | None:
    for relative in (KEPT_STATS, STATS_FILE):
        path = join(run_dir, relative)
        if exists(path):
            return load_stats(path)
    return None


def load_manifest(run_dir: str) -> dict[str, Any]:
    return json.loads(read_bytes(join(run_dir, MANIFEST)))


def _expectation_result(entry: dict[str, Any]) -> dict[str, Any]:
    """One expectation's outcome as {expectation, severity, success, observed, example_ids}, from
    either that flat form or GE's ``ExpectationValidationResult`` shape (``expectation_config``,
    ``result``) with our ``meta.severity`` and ``summary``."""
    config = entry.get("expectation_config") or {}
    result = entry.get("result") or {}
    expectation = entry.get("expectation")
    if expectation is None and config:
        kwargs = ", ".join(f"{k}={v!r}" for k, v in (config.get("kwargs") or {}).items())
        expectation = f"{config.get('type')}({kwargs})"
    observed = entry.get("observed", entry.get("summary", result.get("observed_value")))
    examples = entry.get("example_ids")
    if examples is None:
        examples = [e.get("id") for e in result.get("partial_unexpected_index_list") or [] if isinstance(e, dict)]
    severity = entry.get("severity") or (config.get("meta") or {}).get("severity") or config.get("severity")
    return {"expectation": expectation, "severity": severity,
            "success": entry.get("success"), "observed": observed, "example_ids": examples}


def load_validation(run_dir: str) -> dict[str, Any]:
    """``{stage: {"success": bool | None, "results": [...]}}`` from ``validation/<stage>.json``."""
    out = {}
    for path in list_files(join(run_dir, VALIDATION_DIR)):
        name = posixpath.basename(path)
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            doc = json.loads(read_bytes(path))
        except ValueError as exc:
            out[name[:-5]] = {"success": False, "results": [], "error": f"unreadable: {exc}"}
            continue
        results = doc if isinstance(doc, list) else doc.get("results", [])
        results = [_expectation_result(r) for r in results if isinstance(r, dict)]
        success = doc.get("success") if isinstance(doc, dict) else None
        if success is None and results:
            success = all(r.get("success", True) for r in results)
        out[name[:-5]] = {"success": success, "results": results}
    return out


def _parent_and_id(run_dir: str) -> tuple[str, str]:
    trimmed = run_dir.rstrip("/")
    cut = trimmed.rfind("/")
    return trimmed[:cut], trimmed[cut + 1:]


def find_previous_run(run_dir: str, job: str | None = None) -> str | None:
    """The latest earlier run of the same dataset (see module doc), or None. ``job`` defaults to
    the job in ``run_dir``'s manifest; without either, runs of any job qualify."""
    parent, run_id = _parent_and_id(run_dir)
    try:
        (matched,) = FileSystems.match([join(parent, "*", SUCCESS)])
    except Exception:  # noqa: BLE001 - Beam raises when nothing matches
        return None
    candidates = sorted({_parent_and_id(_parent_and_id(m.path)[0])[1] for m in matched.metadata_list})
    job = job or _job_of(run_dir)
    for other in reversed([c for c in candidates if c < run_id]):
        folder = join(parent, other)
        if exists(join(folder, KEPT_STATS)) and job in (None, _job_of(folder)):
            return folder
    return None


def _job_of(run_dir: str) -> str | None:
    try:
        return load_manifest(run_dir).get("job")
    except Exception:  # noqa: BLE001 - no manifest yet (this run, before commit)
        return None
