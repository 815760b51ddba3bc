"""A suite's record-level expectations evaluated on one batch, with GE's pandas semantics and
without GE's per-expectation cost.

Great Expectations 1.24 costs about 10 ms per expectation per batch whatever its size (metric
graph, result objects) and 3.5-4 s to import in each worker: ~1.4 ms per record over an images
run. The suites stay GE's JSON (``schemas/*_suites.py``); here each expectation type they use is
the condition GE's pandas engine applies to an ``object`` column (``great_expectations/
expectations/metrics/column_map_metrics/``), run once per batch on numpy / pandas arrays:

- nulls are ``pandas.isna`` (``None``, NaN); every check but ``not_null`` / ``null`` skips them
  and counts them as ``missing``, as GE's ``filter_column_isnull``;
- ``in_type_list``: ``isinstance`` against the numpy and Python types GE maps each name to;
- ``between``: GE's ``is_between`` (a ``str`` against a number raises its ``TypeError``),
  vectorised with numpy when every value is a number;
- ``in_set``: ``Series.isin``; ``match_regex``: ``astype(str).str.contains``;
  ``value_lengths_between``: ``astype(str).str.len()``;
- ``table_columns_to_match_set`` (``exact_match`` false): the listed columns that no record has.

Each result has the shape of GE's ``COMPLETE`` result dict, so ``transforms.validate.summarise``
and the gate read it as they read GE's. ``tests/test_validation_checks.py`` compares both on
batches with wrong types, NaN, nulls and missing columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

COLUMNS = "expect_table_columns_to_match_set"
NOT_NULL = "expect_column_values_to_not_be_null"
IS_NULL = "expect_column_values_to_be_null"
TYPES = "expect_column_values_to_be_in_type_list"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
LENGTHS = "expect_column_value_lengths_to_be_between"
SUPPORTED = frozenset({COLUMNS, NOT_NULL, IS_NULL, TYPES, BETWEEN, IN_SET, REGEX, LENGTHS})

# GE's ``native_type_type_map`` (great_expectations/expectations/type_comparison.py).
_NATIVE = {"none": (type(None),), "bool": (bool,), "int": (int,), "long": (int,), "float": (float,),
           "bytes": (bytes,), "complex": (complex,), "str": (str,), "string_types": (str,),
           "list": (list,), "dict": (dict,)}
_NUMBERS = (int, float, np.integer, np.floating)
_SAME_TYPE = "Column values, min_value, and max_value must either be None or of the same type."


def accepted_types(type_list: list[str]) -> tuple[type, ...]:
    """The classes GE's pandas ``in_type_list`` accepts for these names (numpy's, then Python's)."""
    out: list[type] = []
    for name in type_list:
        try:
            out.append(np.dtype(name).type)
        except TypeError:
            pass
        out.extend(_NATIVE.get(name.lower(), ()))
    if not out:
        raise ValueError(f"No recognized numpy/python type in list: {type_list}")
    return tuple(out)


class Batch:
    """The columns of one batch of records that a suite names, as object arrays, with ids."""

    def __init__(self, records: list[Mapping[str, Any]], columns: list[str]):
        import pandas as pd

        self.rows = len(records)
        self.present = set().union(*(r.keys() for r in records)) | {"id"}
        self._pd = pd
        self._arrays: dict[str, np.ndarray] = {}
        self._nulls: dict[str, np.ndarray] = {}
        for name in columns:
            if name in self.present:
                values = [r.get(name) for r in records]
                self._arrays[name] = np.fromiter(values, dtype=object, count=self.rows)
        self.ids = self._arrays["id"]

    def values(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def null(self, name: str) -> np.ndarray:
        if name not in self._nulls:
            self._nulls[name] = np.asarray(self._pd.isna(self._arrays[name]), dtype=bool)
        return self._nulls[name]


def evaluate(expectation: Mapping[str, Any], batch: Batch) -> dict[str, Any]:
    """GE's result dict (``success``, ``result``, ``exception_info``) of one expectation."""
    type_, kwargs = expectation["type"], expectation["kwargs"]
    if type_ == COLUMNS:
        missing = [c for c in kwargs["column_set"] if c not in batch.present]
        return {"success": not missing, "result": {"details": {"mismatched": {"missing": missing}}}}
    column = kwargs["column"]
    values, null = batch.values(column), batch.null(column)
    try:
        if type_ == NOT_NULL:
            return _map_result(batch, column, null, None)
        if type_ == IS_NULL:
            return _map_result(batch, column, ~null, None)
        unexpected = np.zeros(batch.rows, dtype=bool)
        unexpected[~null] = ~_condition(type_, kwargs, values[~null], batch)
        return _map_result(batch, column, unexpected, int(null.sum()))
    except Exception as exc:  # noqa: BLE001 - reported per expectation, as GE does
        return {"success": False, "result": {}, "exception_info": {
            "raised_exception": True, "exception_message": str(exc)}}


def _condition(type_: str, kwargs: Mapping[str, Any], values: np.ndarray, batch: Batch) -> np.ndarray:
    """Whether each non-null value meets the expectation."""
    pd = batch._pd
    if type_ == TYPES:
        accepted = accepted_types(kwargs["type_list"])
        ok = {t: issubclass(t, accepted) for t in set(map(type, values))}
        if all(ok.values()):
            return np.ones(len(values), dtype=bool)
        return np.fromiter((ok[type(v)] for v in values), dtype=bool, count=len(values))
    if type_ == IN_SET:
        return pd.Series(values, dtype=object).isin(kwargs["value_set"]).to_numpy(dtype=bool)
    if type_ == REGEX:
        series = pd.Series(values, dtype=object).astype(str)
        return series.str.contains(kwargs["regex"]).to_numpy(dtype=bool)
    if type_ == LENGTHS:
        lengths = pd.Series(values, dtype=object).astype(str).str.len().to_numpy(dtype=np.float64)
        return _between(lengths, kwargs, numbers=True)
    if type_ == BETWEEN:
        return _between(values, kwargs, numbers=all(issubclass(t, _NUMBERS) for t in set(map(type, values))))
    raise ValueError(f"expectation type {type_} is not evaluated in batches")


def _between(values: np.ndarray, kwargs: Mapping[str, Any], numbers: bool) -> np.ndarray:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_min, strict_max = kwargs.get("strict_min"), kwargs.get("strict_max")
    if low is None and high is None:
        raise ValueError("min_value and max_value cannot both be None")
    if low is not None and high is not None and low > high:
        raise ValueError("min_value cannot be greater than max_value")
    if numbers and not isinstance(low, str) and not isinstance(high, str):
        x = values.astype(np.float64) if values.dtype == object else values
        ok = np.ones(len(x), dtype=bool)
        if low is not None:
            ok &= (x > low) if strict_min else (x >= low)
        if high is not None:
            ok &= (x < high) if strict_max else (x <= high)
        return ok

    # GE's expectation model holds numeric bounds as floats (its messages say 'float').
    low, high = (float(b) if isinstance(b, int) and not isinstance(b, bool) else b for b in (low, high))

    def is_between(val: Any) -> bool:  # GE's, for values that are not all numbers
        for bound in (low, high):
            if bound is not None and isinstance(val, str) != isinstance(bound, str):
                raise TypeError(_SAME_TYPE)
        ok = True
        if low is not None:
            ok = ok and ((val > low) if strict_min else (val >= low))
        if high is not None:
            ok = ok and ((val < high) if strict_max else (val <= high))
        return bool(ok)

    return np.fromiter((is_between(v) for v in values), dtype=bool, count=len(values))


def _map_result(batch: Batch, column: str, unexpected: np.ndarray, missing: int | None) -> dict[str, Any]:
    rows = np.flatnonzero(unexpected)
    values, null = batch.values(column), batch.null(column)
    result: dict[str, Any] = {
        "element_count": batch.rows,
        "unexpected_count": len(rows),
        # NaN shown as null, as in GE's JSON results (which also turn bytes into their repr:
        # here they stay bytes, so an unexpected type reads "bytes", not "str").
        "unexpected_index_list": [{"id": batch.ids[i], column: None if null[i] else values[i]} for i in rows],
    }
    if missing is not None:
        result["missing_count"] = missing
    return {"success": not len(rows), "result": result}

