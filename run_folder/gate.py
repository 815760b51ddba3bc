"""The run gate: decide from the merged validation results whether a run may publish.

``gate`` reads what ``ValidateStages`` wrote (``_staging/validation.json``), evaluates each
expectation on the merged results (batch scopes: the counts summed over all batches;
``dataset`` scope: the stage's aggregates), writes ``validation/<stage>.json`` for every stage
(atomically, in the shape of GE's validation results) and raises ``ValidationFailed`` when a
critical expectation failed. It is called after the pipeline and before ``write_manifest``, so a
failed run never gets ``_SUCCESS``; warnings are logged and returned, never fatal.

Dataset-scope expectations are evaluated here in Python, on the stage's aggregate row, with
GE's meaning: ``expect_table_row_count_to_be_between`` on the kept rows,
``expect_column_values_to_be_unique`` on the ids seen more than once (the shuffle in
``ValidateStages``), ``expect_column_pair_values_to_be_equal`` on ``records_in`` (the previous
stage's kept rows, plus the records the stage created; for ``read``, the run facts' count) and ``records_out`` (kept + rejected),
``expect_column_max_to_be_between`` on ``source_removal_share``: per source (input file) with at
least ``min_records`` records entering the stage, the share the stage rejected with ``reason``,
from ``_staging/stats.json`` (``transforms.stats``: the ``source`` counts of the stage's kept and
rejected profiles, and its ``removed_by_source``; exact up to 1,000 sources, Misra-Gries beyond).
This needs no GE import in the driver.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from run_folder.layout import STAGING_DIR, STATS_NAME, VALIDATION_DIR
from run_folder.staged import load_staged, staged_path
from run_folder.storage import delete, exists, join, list_files, write_atomic
from run_folder.validation_doc import (
    CRITICAL,
    DATASET,
    RECORDS_IN,
    RECORDS_OUT,
    SOURCE_REMOVAL_SHARE,
    WARNING,
    empty_result,
    load_validation,
)

log = logging.getLogger(__name__)

MAX_LISTED = 10  # failures named in the exception message
STATS_FILE = f"{STAGING_DIR}/{STATS_NAME}.json"


class ValidationFailed(RuntimeError):
    """A critical expectation failed: the run must not publish. ``result`` has the details."""

    def __init__(self, message: str, result: GateResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Failure:
    stage: str
    key: str
    severity: str
    expectation: str  # ``type(kwargs)``
    summary: str  # observed value and example ids

    def line(self) -> str:
        return f"stage {self.stage}: {self.expectation} [{self.key}, {self.severity}]: {self.summary}"


@dataclass
class GateResult:
    success: bool
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    critical: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A small JSON-ready form for the manifest."""
        return {
            "success": self.success,
            "critical_failures": [f"{f.stage}:{f.key}" for f in self.critical],
            "warnings": [f"{f.stage}:{f.key}" for f in self.warnings],
            "files": [f"{VALIDATION_DIR}/{stage}.json" for stage in self.stages],
        }


def _call(expectation: dict[str, Any]) -> str:
    args = ", ".join(
        f"{k}={v!r}" for k, v in expectation["kwargs"].items() if k not in ("column_set", "value_set") or len(v) <= 8
    )
    return f"{expectation['type']}({args})"


def _ids(examples: list[list[Any]]) -> str:
    if not examples:
        return ""
    shown = ", ".join(f"{e[0]} ({json.dumps(e[1])})" if len(e) > 1 else str(e[0]) for e in examples)
    return f"; example ids: {shown}"


def _batch_outcome(expectation: dict[str, Any], result: dict[str, Any]) -> tuple[bool, str]:
    observed = result["observed"]
    if result["errors"]:
        return False, f"raised in {result['errors']} of {result['batches']} batches: {result['error']}"
    if expectation["type"] == "expect_table_columns_to_match_set":
        missing = sorted(observed.get("missing_columns", {}))
        return result["unexpected"] == 0, (
            f"{result['unexpected']} of {result['evaluated']} batches lack columns; observed missing: {missing}"
        )
    counted = result["evaluated"] - result["missing"]
    if expectation["type"] in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null"):
        counted = result["evaluated"]
    if not counted and result["skipped_batches"]:
        return True, f"not evaluated: the column was absent in {result['skipped_batches']} batches"
    mostly = expectation["kwargs"].get("mostly", 1.0)
    ok = counted == 0 or result["unexpected"] <= (1.0 - mostly) * counted + 1e-9
    text = f"{result['unexpected']} of {counted} values unexpected"
    if observed:
        text += "; observed " + ", ".join(f"{k}={json.dumps(v)}" for k, v in observed.items())
    return ok, text + _ids(result["examples"])


def _aggregates(stage_doc: dict[str, Any], records_in: int) -> dict[str, Any]:
    kept, rejected = stage_doc["rows"]["kept"], stage_doc["rows"]["rejected"]
    return {
        RECORDS_IN: records_in,
        "kept": kept,
        "rejected": rejected,
        RECORDS_OUT: kept + rejected,
        "duplicate_ids": stage_doc["duplicates"]["ids"],
    }


def source_removal_shares(stats: dict[str, Any], stage: str, reason: str, min_records: int) -> list[dict[str, Any]]:
    """Per source with at least ``min_records`` records entering ``stage``: records in, removed
    with ``reason``, and their share, largest share first. ``approximate``: more sources than
    the stats count exactly, so counts may be low by up to their Misra-Gries error."""
    profiles = stats["profiles"][stage]
    kept, rejected = (profiles[side]["counts"].get("source", {}) for side in ("kept", "rejected"))
    by_reason = stats.get("removed_by_source", {}).get(stage, {})
    approximate = bool(kept.get("error") or rejected.get("error") or by_reason.get("error"))
    kept_counts, rejected_counts = kept.get("counts", {}), rejected.get("counts", {})
    prefix = f"{reason}\t"
    removed_counts = {key[len(prefix):]: n for key, n in by_reason.get("counts", {}).items() if key.startswith(prefix)}
    rows = []
    for source in set(kept_counts) | set(rejected_counts):
        removed = removed_counts.get(source, 0)
        records_in = rejected_counts.get(source, 0) + kept_counts.get(source, 0)
        if records_in >= min_records:
            rows.append({"source": source, "records_in": records_in, "removed": removed,
                         "share": removed / records_in, "approximate": approximate})
    return sorted(rows, key=lambda r: (-r["share"], r["source"]))


def _source_cap_outcome(
    expectation: dict[str, Any], stage: str, stats: dict[str, Any] | None
) -> tuple[bool, str, dict[str, Any]]:
    kwargs = expectation["kwargs"]
    cap, min_records = kwargs["max_value"], kwargs.get("min_records", 1)
    if stats is None or stage not in stats.get("profiles", {}):
        # As for a column absent from every batch: nothing to evaluate (the text job always
        # collects stats; a pipeline built without CollectStats has no per-source counts).
        return True, f"not evaluated: no per-source counts for {stage} in {STATS_FILE}", {}
    shares = source_removal_shares(stats, stage, kwargs["reason"], min_records)
    over = [r for r in shares if r["share"] > cap]
    result = {"observed_value": shares[0]["share"] if shares else None, "sources_checked": len(shares),
              "partial_unexpected_list": over[:MAX_LISTED]}
    if not over:
        top = f"; largest: {shares[0]['source']} {shares[0]['share']:.1%}" if shares else ""
        return True, f"{len(shares)} sources with >= {min_records} records, none above the cap {cap:.0%}{top}", result
    named = "; ".join(f"source {r['source']} lost {r['removed']} of {r['records_in']} records ({r['share']:.1%}) "
                      f"as {kwargs['reason']}, above the cap {cap:.0%}" for r in over[:MAX_LISTED])
    more = f"; and {len(over) - MAX_LISTED} more sources" if len(over) > MAX_LISTED else ""
    note = " (approximate counts: more sources than the stats keep exactly)" if over[0]["approximate"] else ""
    return False, named + more + note, result


def _dataset_outcome(
    expectation: dict[str, Any], stage_doc: dict[str, Any], row: dict[str, Any]
) -> tuple[bool, str, dict[str, Any]]:
    type_, kwargs = expectation["type"], expectation["kwargs"]
    if type_ == "expect_table_row_count_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        n = row["kept"]
        ok = (low is None or n >= low) and (high is None or n <= high)
        return ok, f"observed {n} kept rows", {"observed_value": n}
    if type_ == "expect_column_values_to_be_unique" and kwargs.get("column") == "id":
        dups = stage_doc["duplicates"]
        text = (
            f"{dups['ids']} ids seen more than once ({dups['rows']} extra rows) among "
            f"{row['records_out']} kept and rejected records"
        )
        examples = [[e[0], f"seen {e[1]} times"] for e in dups["examples"]]
        result = {
            "element_count": row[RECORDS_OUT],
            "unexpected_count": dups["rows"],
            "observed_value": dups["ids"],
            "partial_unexpected_index_list": [{"id": e[0], "times_seen": e[1]} for e in dups["examples"]],
        }
        return dups["ids"] == 0, text + _ids(examples), result
    if type_ == "expect_column_pair_values_to_be_equal":
        a, b = kwargs["column_A"], kwargs["column_B"]
        if a not in row or b not in row:
            return False, f"no aggregate named {a!r} or {b!r}; known: {sorted(row)}", {}
        observed = {a: row[a], b: row[b], "kept": row["kept"], "rejected": row["rejected"]}
        return row[a] == row[b], f"observed {json.dumps(observed)}", {"observed_value": observed}
    return False, "not evaluable on a stage's aggregates", {}


def _ge_result(expectation: dict[str, Any], success: bool, result: dict[str, Any]) -> dict[str, Any]:
    """One entry of ``validation/<stage>.json``, in GE's ``ExpectationValidationResult`` shape."""
    counted = result["evaluated"] - result["missing"]
    return {
        "success": success,
        "expectation_config": expectation,
        "result": {
            "element_count": result["evaluated"],
            "missing_count": result["missing"],
            "unexpected_count": result["unexpected"],
            "unexpected_percent_nonmissing": (100.0 * result["unexpected"] / counted) if counted else 0.0,
            "observed_value": result["observed"],
            "partial_unexpected_index_list": [
                {"id": e[0], expectation["kwargs"].get("column", "value"): e[1]} for e in result["examples"]
            ],
            "batches": result["batches"],
            "skipped_batches": result["skipped_batches"],
        },
        "exception_info": {"raised_exception": bool(result["errors"]), "exception_message": result["error"]},
    }


def _records_read(facts_or_manifest: dict[str, Any] | None) -> int | None:
    if not facts_or_manifest:
        return None
    if "conservation" in facts_or_manifest:  # a manifest
        conservation = facts_or_manifest["conservation"]
        return conservation.get("read", conservation["input"])
    return facts_or_manifest.get("read")


def _records_created(facts_or_manifest: dict[str, Any] | None) -> dict[str, int]:
    """Records born in the run, by the stage that created them (synthetic data)."""
    if not facts_or_manifest:
        return {}
    if "funnel" in facts_or_manifest:  # a manifest
        return {row["stage"]: row["created"] for row in facts_or_manifest["funnel"] if "created" in row}
    return dict(facts_or_manifest.get("created", {}))


def evaluate(validation: dict[str, Any], facts_or_manifest: dict[str, Any] | None = None,
             stats: dict[str, Any] | None = None) -> GateResult:
    """Decide every expectation of every stage; pure (no I/O). ``stats``: the run's stats
    document (``transforms.stats``), for the per-source checks."""
    outcome = GateResult(success=True)
    previous_kept = _records_read(facts_or_manifest)
    created = _records_created(facts_or_manifest)
    for position, stage in enumerate(validation["order"]):
        doc = validation["stages"][stage]
        suite = doc["suite"]
        if position == 0:
            records_in = previous_kept if previous_kept is not None else sum(doc["rows"].values())
        else:
            # A stage that creates records (synthetic) must account for them as well.
            records_in = previous_kept + created.get(stage, 0)
        row = _aggregates(doc, records_in)
        previous_kept = row["kept"]
        entries = []
        for expectation in suite["expectations"]:
            meta = expectation["meta"]
            if meta["scope"] == DATASET:
                if expectation["kwargs"].get("column") == SOURCE_REMOVAL_SHARE:
                    ok, text, ge_fields = _source_cap_outcome(expectation, stage, stats)
                else:
                    ok, text, ge_fields = _dataset_outcome(expectation, doc, row)
                entry = {
                    "success": ok,
                    "expectation_config": expectation,
                    "result": ge_fields,
                    "exception_info": {"raised_exception": False},
                }
            else:
                result = doc["results"].get(meta["key"], empty_result())
                ok, text = _batch_outcome(expectation, result)
                entry = _ge_result(expectation, ok, result)
            entry["summary"] = text
            entries.append(entry)
            if not ok:
                failure = Failure(stage, meta["key"], meta["severity"], _call(expectation), text)
                (outcome.critical if meta["severity"] == CRITICAL else outcome.warnings).append(failure)
        failed = [e for e in entries if not e["success"]]
        outcome.stages[stage] = {
            "stage": stage,
            "suite_name": suite["name"],
            "success": not any(e["expectation_config"]["meta"]["severity"] == CRITICAL for e in failed),
            "statistics": {
                "evaluated_expectations": len(entries),
                "successful_expectations": len(entries) - len(failed),
                "unsuccessful_expectations": len(failed),
                "critical_failures": sum(e["expectation_config"]["meta"]["severity"] == CRITICAL for e in failed),
                "warnings": sum(e["expectation_config"]["meta"]["severity"] == WARNING for e in failed),
            },
            "counts": row,
            "meta": suite.get("meta", {}),
            "results": entries,
        }
    outcome.success = not outcome.critical
    return outcome


def failure_message(result: GateResult, run_dir: str) -> str:
    details = f"{join(run_dir, VALIDATION_DIR)}/<stage>.json"
    lines = [f"validation failed: {len(result.critical)} critical expectation(s) failed (details in {details})"]
    lines += [f"- {f.line()}" for f in result.critical[:MAX_LISTED]]
    if len(result.critical) > MAX_LISTED:
        lines.append(f"- ... and {len(result.critical) - MAX_LISTED} more")
    return "\n".join(lines)


def gate(run_dir: str, facts_or_manifest: dict[str, Any] | None = None) -> GateResult:
    """Write ``validation/<stage>.json``; raise ``ValidationFailed`` on a critical failure.

    ``facts_or_manifest``: the run facts (``run_folder.facts.load_run_facts``) or a
    manifest; its count of records read is what the ``read`` stage must account for.
    """
    try:
        validation = load_validation(run_dir)
    except Exception as exc:  # a run without results must not publish either
        raise ValidationFailed(
            f"validation failed: no validation results in {run_dir} ({type(exc).__name__}: {exc}); "
            "was ValidateStages added to the pipeline?"
        ) from exc
    stats = load_staged(run_dir, STATS_NAME) if exists(staged_path(run_dir, STATS_NAME)) else None
    result = evaluate(validation, facts_or_manifest, stats)
    directory = join(run_dir, VALIDATION_DIR)
    written = set()
    for stage, document in result.stages.items():
        path = join(directory, f"{stage}.json")
        write_atomic(path, json.dumps(document, indent=1).encode())
        written.add(path)
    delete([p for p in list_files(directory) if p not in written])
    for warning in result.warnings:
        log.warning("validation warning: %s", warning.line())
    if not result.success:
        raise ValidationFailed(failure_message(result, run_dir), result)
    return result
