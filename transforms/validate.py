"""Per-stage validation inside the pipeline: each stage's suite on record batches, merged.

``ValidateStages`` takes every stage's kept and rejected outputs and its suite
(``schemas/text_suites.py``, ``schemas/images_suites.py``: Great Expectations' JSON form):

- ``kept`` / ``rejected`` expectations run on batches of records (``BatchFn``: the columns the
  suite names as object arrays, each expectation evaluated with GE's pandas conditions by
  ``transforms.validate_checks``, in parallel on any runner). Each batch leaves a small,
  mergeable result per expectation: values evaluated, missing and unexpected, the ``examples``
  smallest ids among the unexpected rows (deterministic whatever the batching), and observed
  values (min/max of the column; the types or values that were unexpected).
- (stage, id) of every record goes through spill files counted one key range at a time
  (``SpilledRepeats``): ids seen more than once feed the ``id.unique`` expectation.
- ``ResultsFn`` merges all of it, with the row counts of each stage, into one dict written to
  ``<run_dir>/_staging/validation.json``; ``run_folder.gate`` evaluates it after the
  pipeline and decides.

The arrays hold the records' values as they are (``object``, no inference, so an int is not
turned into a float nor a None into NaN). GE itself is imported only by ``to_gx_suite`` (the
check that every suite loads in GE) and the tests that compare our results with GE's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from run_folder.storage import join
from run_folder.validation_doc import empty_result, write_validation
from transforms.spill import MemoryConfig
from transforms.spilled_shuffle import SpilledRepeats
from transforms.stage import KEPT, REJECTED, Record
from transforms.validate_checks import SUPPORTED, Batch, evaluate

EXAMPLES = 5
# Records per validated batch: a batch costs a fixed ~0.1 ms per expectation plus C-speed work
# per value; the records are referenced, not copied, by the arrays.
BATCH_SIZE = 2000
MAX_VALUE_CHARS = 80
_TABLE_TYPES = ("expect_table_columns_to_match_set",)
_RANGE_TYPES = ("expect_column_values_to_be_between",)
_LENGTH_TYPES = ("expect_column_value_lengths_to_be_between",)
_TYPE_TYPES = ("expect_column_values_to_be_in_type_list",)
_NULL_TYPES = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null")

Partial = dict[str, Any]


def expectations_of(suite: Mapping[str, Any], scope: str) -> list[dict[str, Any]]:
    return [e for e in suite["expectations"] if e["meta"]["scope"] == scope]


def to_gx_suite(name: str, expectations: list[dict[str, Any]]) -> Any:
    """A ``gx.ExpectationSuite`` of ``expectations`` (GE's JSON form); raises on an invalid one
    (GE's own constructor logs and drops it)."""
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built = [ExpectationConfiguration(**e).to_domain_obj() for e in expectations]
    suite = ExpectationSuite(name=name, expectations=built)
    if len(suite.expectations) != len(built):
        raise ValueError(f"suite {name}: GE refused {len(built) - len(suite.expectations)} expectations")
    return suite


# ---------------------------------------------------------------------------------------------
# Mergeable results


def json_value(value: Any) -> Any:
    """A short JSON-ready form of a value seen in a record."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else f"{value[:MAX_VALUE_CHARS]}… ({len(value)} chars)"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item())
    return json_value(repr(value))


def _id_key(example: list[Any]) -> tuple[bool, str]:
    return (example[0] is None, str(example[0]))


def _smallest(examples: Iterable[list[Any]], k: int) -> list[list[Any]]:
    unique = {json.dumps(e, sort_keys=True): e for e in examples}
    return sorted(unique.values(), key=lambda e: (_id_key(e), json.dumps(e[1:], sort_keys=True)))[:k]


def _merge_counts(a: dict[str, int], b: dict[str, int], k: int) -> dict[str, int]:
    """Counts of the ``k`` smallest keys: exact after any merge order (a key among the k
    smallest overall is among the k smallest of every part that holds it)."""
    merged = dict(a)
    for key, n in b.items():
        merged[key] = merged.get(key, 0) + n
    return {key: merged[key] for key in sorted(merged)[:k]}


def merge_result(a: dict[str, Any], b: dict[str, Any], k: int = EXAMPLES) -> dict[str, Any]:
    out = {
        key: a[key] + b[key] for key in ("evaluated", "missing", "unexpected", "batches", "skipped_batches", "errors")
    }
    errors = [e for e in (a["error"], b["error"]) if e]
    out["error"] = min(errors) if errors else None
    out["examples"] = _smallest(a["examples"] + b["examples"], k)
    observed: dict[str, Any] = {}
    for key in sorted(set(a["observed"]) | set(b["observed"])):
        x, y = a["observed"].get(key), b["observed"].get(key)
        if x is None or y is None:
            observed[key] = x if y is None else y
        elif key.startswith("min"):
            observed[key] = min(x, y)
        elif key.startswith("max"):
            observed[key] = max(x, y)
        else:  # counts of values, types or missing columns
            observed[key] = _merge_counts(x, y, k * 2)
    out["observed"] = observed
    return out


def empty_partial() -> Partial:
    return {
        "rows": {KEPT: 0, REJECTED: 0},
        "results": {},
        "duplicates": {"ids": 0, "rows": 0, "examples": []},
    }


def merge_partial(a: Partial, b: Partial, k: int = EXAMPLES) -> Partial:
    results = dict(a["results"])
    for key, result in b["results"].items():
        results[key] = merge_result(results[key], result, k) if key in results else result
    da, db = a["duplicates"], b["duplicates"]
    return {
        "rows": {scope: a["rows"][scope] + b["rows"][scope] for scope in (KEPT, REJECTED)},
        "results": results,
        "duplicates": {
            "ids": da["ids"] + db["ids"],
            "rows": da["rows"] + db["rows"],
            "examples": _smallest(da["examples"] + db["examples"], k),
        },
    }


# ---------------------------------------------------------------------------------------------
# One batch


def _numbers(values: Iterable[Any]) -> list[float]:
    return [
        v
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))
    ]


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "raised an exception")
    messages = [_exception_message(v) for v in info.values() if isinstance(v, dict)]
    messages = [m for m in messages if m]
    return min(messages) if messages else None


def summarise(
    expectation: dict[str, Any], gx_result: dict[str, Any], column: list[Any] | None, k: int
) -> dict[str, Any]:
    """The mergeable result of one expectation on one batch, from its GE-shaped result dict."""
    out = empty_result()
    out["batches"] = 1
    type_ = expectation["type"]
    result = gx_result.get("result") or {}
    message = _exception_message(gx_result.get("exception_info"))
    if message:
        out["errors"], out["error"] = 1, message[:500]
        return out
    if type_ in _TABLE_TYPES:
        missing = (result.get("details") or {}).get("mismatched", {}).get("missing", [])
        out["evaluated"], out["unexpected"] = 1, int(not gx_result["success"])
        if missing:
            out["observed"]["missing_columns"] = dict.fromkeys(missing, 1)
        return out
    out["evaluated"] = int(result.get("element_count", 0))
    out["missing"] = int(result.get("missing_count", 0) or 0)
    out["unexpected"] = int(result.get("unexpected_count", 0) or 0)
    name = expectation["kwargs"].get("column")
    rows = result.get("unexpected_index_list") or []
    out["examples"] = _smallest(([row.get("id"), json_value(row.get(name))] for row in rows), k)
    unexpected = [row.get(name) for row in rows]
    if type_ in _RANGE_TYPES and column is not None:
        numbers = _numbers(column)
        if numbers:
            out["observed"] = {"min": min(numbers), "max": max(numbers)}
    elif type_ in _LENGTH_TYPES and column is not None:
        lengths = [len(v) for v in column if isinstance(v, str)]
        if lengths:
            out["observed"] = {"min_length": min(lengths), "max_length": max(lengths)}
    elif type_ in _TYPE_TYPES:
        if unexpected:
            out["observed"] = {
                "unexpected_types": _merge_counts({}, _count(type(v).__name__ for v in unexpected), k * 2)
            }
    elif type_ not in _NULL_TYPES and unexpected:
        out["observed"] = {
            "unexpected_values": _merge_counts({}, _count(json.dumps(json_value(v)) for v in unexpected), k * 2)
        }
    return out


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


class BatchFn(beam.DoFn):
    """Validate one stage's kept (or rejected) records against part of its suite in batches of
    ``batch_size`` formed within each bundle (``check``: GE's conditions, vectorised per batch
    by ``transforms.validate_checks``). Batching here, not in a ``BatchElements`` before it,
    saves a step per stream and scope: each costs the runner per run, whatever the data."""

    def __init__(self, stage: str, scope: str, expectations: list[dict[str, Any]], examples: int = EXAMPLES,
                 batch_size: int = BATCH_SIZE):
        unsupported = sorted({e["type"] for e in expectations} - SUPPORTED)
        if unsupported:
            raise ValueError(f"{stage}.{scope}: expectation types not evaluated in batches: {unsupported}")
        self._stage = stage
        self._scope = scope
        self._expectations = expectations
        self._examples = examples
        self._batch_size = batch_size
        self._columns = sorted({"id"}.union(*(_columns_of(e) for e in expectations)))

    def start_bundle(self) -> None:
        self._buffer: list[Record] = []

    def process(self, record: Record) -> Iterator[tuple[str, Partial]]:
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            batch, self._buffer = self._buffer, []
            yield self.check(batch)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            yield GlobalWindows.windowed_value(self.check(batch))

    def check(self, records: list[Record]) -> tuple[str, Partial]:
        values = Batch(records, self._columns)
        partial = empty_partial()
        partial["rows"][self._scope] = len(records)
        for expectation in self._expectations:
            key = expectation["meta"]["key"]
            if expectation["type"] in _TABLE_TYPES or set(_columns_of(expectation)) <= values.present:
                column = expectation["kwargs"].get("column")
                partial["results"][key] = summarise(
                    expectation,
                    evaluate(expectation, values),
                    values.values(column) if column else None,
                    self._examples,
                )
            else:  # a column no record of the batch has: ``columns.present`` reports it
                skipped = empty_result()
                skipped["skipped_batches"] = 1
                partial["results"][key] = skipped
        return self._stage, partial


def _columns_of(expectation: dict[str, Any]) -> list[str]:
    kwargs = expectation["kwargs"]
    return [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]


# ---------------------------------------------------------------------------------------------
# Merge and write


class ResultsFn(beam.CombineFn):
    """(stage, partial) pairs into one document for ``run_folder.gate``."""

    def __init__(self, suites: Mapping[str, Mapping[str, Any]], examples: int = EXAMPLES):
        self._suites = {stage: dict(suite) for stage, suite in suites.items()}
        self._examples = examples

    def create_accumulator(self) -> dict[str, Partial]:
        return {}

    def add_input(self, acc: dict[str, Partial], element: tuple[str, Partial]) -> dict[str, Partial]:
        stage, partial = element
        acc[stage] = merge_partial(acc[stage], partial, self._examples) if stage in acc else partial
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, Partial]]) -> dict[str, Partial]:
        merged: dict[str, Partial] = {}
        for acc in accs:
            for element in acc.items():
                self.add_input(merged, element)
        return merged

    def extract_output(self, acc: dict[str, Partial]) -> dict[str, Any]:
        return {
            "order": list(self._suites),
            "stages": {
                stage: {"suite": suite, **acc.get(stage, empty_partial())} for stage, suite in self._suites.items()
            },
        }


def _duplicate_partial(element: tuple[tuple[str, Any], int]) -> tuple[str, Partial]:
    (stage, record_id), seen = element
    partial = empty_partial()
    partial["duplicates"] = {"ids": 1, "rows": seen - 1, "examples": [[record_id, seen]]}
    return stage, partial


def _stage_outputs(outputs: Any) -> dict[str, tuple[beam.PCollection, beam.PCollection | None]]:
    if hasattr(outputs, "kept") and hasattr(outputs, "rejected"):
        return {stage: (kept, outputs.rejected.get(stage)) for stage, kept in outputs.kept.items()}
    return {stage: tuple(pair) for stage, pair in outputs.items()}


class ValidateStages(beam.PTransform):
    """Validate every stage's outputs against its suite; write ``_staging/validation.json``.

    ``outputs``: a ``StageOutputs`` (``kept`` and ``rejected`` dicts of PCollections, in
    pipeline order) or a mapping ``stage -> (kept, rejected)``. ``suites``: ``stage -> suite``
    (``Job.validation_suites(config)``); every stage of ``outputs`` needs one.
    Apply it to the pipeline: ``pipeline | "Validate" >> ValidateStages(outputs, suites, run_dir)``.
    """

    def __init__(
        self,
        outputs: Any,
        suites: Mapping[str, Mapping[str, Any]],
        run_dir: str,
        batch_size: int = BATCH_SIZE,
        examples: int = EXAMPLES,
        memory: MemoryConfig = MemoryConfig(),
    ):
        super().__init__()
        self._outputs = _stage_outputs(outputs)
        if not self._outputs:
            raise ValueError("outputs name no stage")
        missing = [stage for stage in self._outputs if stage not in suites]
        if missing:
            raise ValueError(f"no validation suite for stages {missing}; suites exist for {list(suites)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if examples < 1:
            raise ValueError(f"examples must be >= 1, got {examples}")
        for suite in suites.values():
            for e in suite["expectations"]:
                if "severity" in e and e["severity"] != e["meta"]["severity"]:
                    raise ValueError(f"suite {suite['name']}: meta.severity and severity differ for {e['meta']['key']}")
        self._suites = {stage: suites[stage] for stage in self._outputs}
        self._run_dir = run_dir
        self._batch_size = batch_size
        self._examples = examples
        self._spill_dir = join(run_dir, "_staging", "spill")
        self._memory = memory

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        partials, ids = [], []
        for stage, (kept, rejected) in self._outputs.items():
            for scope, records in ((KEPT, kept), (REJECTED, rejected)):
                if records is None:
                    continue
                checks = expectations_of(self._suites[stage], scope)
                partials.append(records | f"Check {stage} {scope}" >> beam.ParDo(
                    BatchFn(stage, scope, checks, self._examples, self._batch_size)
                ))
                ids.append((records, lambda r, s=stage: (s, r.get("id"))))
        # One (stage, id) per record and stage: through spill files, not the runner's shuffle,
        # whose in-process form would hold them all (records x stages).
        partials.append(
            pbegin
            | "RepeatedIds" >> SpilledRepeats(self._spill_dir, ids, self._memory)
            | "DuplicatePartials" >> beam.Map(_duplicate_partial)
        )
        return (
            partials
            | "AllPartials" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(ResultsFn(self._suites, self._examples))
            | "Write" >> beam.Map(write_validation, self._run_dir)
        )
