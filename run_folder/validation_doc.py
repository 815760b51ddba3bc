"""The validation document: what ``ValidateStages`` (``transforms/validate.py``) stages as
``_staging/validation.json`` and the gate (``run_folder/gate.py``) evaluates, and the words both
sides and the suites (``schemas/expectations.py``) share: severities, the scope the gate
evaluates itself, the aggregate columns it computes, an expectation's empty result.
"""

from __future__ import annotations

from typing import Any

from run_folder.staged import load_staged, write_staged

VALIDATION_NAME = "validation"
CRITICAL, WARNING = "critical", "warning"
# Evaluated by the gate on a stage's merged aggregates (the other scopes: kept, rejected).
DATASET = "dataset"
# The aggregate columns that dataset-scope expectations name.
RECORDS_IN, RECORDS_OUT = "records_in", "records_out"
# The aggregate column of the per-source near-duplicate cap.
SOURCE_REMOVAL_SHARE = "source_removal_share"


def empty_result() -> dict[str, Any]:
    """One expectation's result before any batch (or where no batch held its columns)."""
    return {
        "evaluated": 0,
        "missing": 0,
        "unexpected": 0,
        "batches": 0,
        "skipped_batches": 0,
        "errors": 0,
        "error": None,
        "examples": [],
        "observed": {},
    }


def write_validation(document: dict[str, Any], run_dir: str) -> str:
    return write_staged(document, run_dir, VALIDATION_NAME)


def load_validation(run_dir: str) -> dict[str, Any]:
    return load_staged(run_dir, VALIDATION_NAME)
