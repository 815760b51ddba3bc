"""The parts every job's Great Expectations suites are built from: severities, scopes, the GE
expectation types we use, a stage's rules, and one expectation in GE's JSON form with our
``meta`` (``severity``, ``scope``, ``key``; see ``schemas/text_suites.py`` for what they mean)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from run_folder.validation_doc import CRITICAL, DATASET, WARNING
from transforms.stage import KEPT, REJECTED

__all__ = ["CRITICAL", "DATASET", "WARNING"]  # one definition, in the validation document

SEVERITIES = (CRITICAL, WARNING)
SCOPES = (KEPT, REJECTED, DATASET)

Suite = dict[str, Any]
Expectation = dict[str, Any]

# The GE expectation types the suites use.
COLUMNS = "expect_table_columns_to_match_set"
NOT_NULL = "expect_column_values_to_not_be_null"
IS_NULL = "expect_column_values_to_be_null"
TYPES = "expect_column_values_to_be_in_type_list"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
LENGTHS = "expect_column_value_lengths_to_be_between"
UNIQUE = "expect_column_values_to_be_unique"
PAIR_EQUAL = "expect_column_pair_values_to_be_equal"
ROW_COUNT = "expect_table_row_count_to_be_between"
COLUMN_MAX = "expect_column_max_to_be_between"


@dataclass(frozen=True)
class StageRules:
    """What a stage guarantees about its records, beyond its columns and their types."""

    # The closed set of reasons (without the ``<stage>.`` prefix); ``None``: not declared, any
    # snake_case reason with the stage's prefix is accepted.
    reasons: tuple[str, ...] | None = None
    # Regular expressions for reasons that carry a value (``http_status_404``).
    reason_patterns: tuple[str, ...] = ()
    # Whether ``<stage>.error`` is possible: true of every ``Stage`` subclass.
    may_error: bool = True
    # Signals that kept records may leave empty; every other signal must be set.
    nullable: tuple[str, ...] = ()
    # Declared: the stage's signals join the column contract and a missing one is critical.
    # Otherwise (``SignalRules.required=False``) its signals are type-checked, but not
    # required to be present, and a missing value is only a warning.
    declared: bool = True
    # Signals that must be empty on kept records (set only on the records the stage rejects).
    must_be_null: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    value_sets: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    # Config-derived expectations: ``(config) -> [expectation, ...]``.
    extra: Callable[[Any], list[Expectation]] | None = None
    # Other stages whose reasons this stage's rejections may carry (the synthetic branch runs
    # the job's own per-record stages on its records): any snake_case reason of these prefixes.
    reason_prefixes: tuple[str, ...] = ()


def expectation(type_: str, key: str, severity: str, scope: str = KEPT, notes: str = "", **kwargs: Any) -> Expectation:
    """One expectation in GE's JSON form, with our ``meta`` (``severity``, ``scope``, ``key``)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    out: Expectation = {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"severity": severity, "scope": scope, "key": key},
        "severity": severity,
    }
    if notes:
        out["notes"] = notes
    return out


def critical(type_: str, key: str, scope: str = KEPT, notes: str = "", **kwargs: Any) -> Expectation:
    return expectation(type_, key, CRITICAL, scope, notes, **kwargs)


def warning(type_: str, key: str, scope: str = KEPT, notes: str = "", **kwargs: Any) -> Expectation:
    return expectation(type_, key, WARNING, scope, notes, **kwargs)
