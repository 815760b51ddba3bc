"""Building a job's Great Expectations suites from what its stages declare: shared by the text
job (``schemas/text_suites.py``) and the images job (``schemas/images_suites.py``).

A suite is kept in GE's own JSON form (``{"name", "expectations": [{"type", "kwargs", "meta",
"severity", "notes"}], "meta"}``), built from plain data, so that building one costs nothing and
does not import GE (3.5-4 s); ``transforms.validate`` turns it into a ``gx.ExpectationSuite``
once per worker. Every expectation's ``meta`` says:

- ``severity``: ``critical`` (a failure fails the run) or ``warning`` (reported only); GE's own
  ``severity`` field carries the same value;
- ``scope``: what it is evaluated on: ``kept`` (the stage's kept records, in batches, inside
  the pipeline), ``rejected`` (the stage's rejected records, likewise) or ``dataset`` (merged
  aggregates of the stage: rows in/kept/rejected, ids seen more than once);
- ``key``: a name that is stable and unique within the stage (``lang_score.range``), used in
  reports and to override a severity (``severity_overrides={"language:lang_score.range": ...}``).

Each stage's columns and their types, value ranges and closed set of reasons are declared on its
class (``signal_fields``, ``signal_rules``, ``reasons``), the reader's reasons on the job's
reader (``reasons``, ``reason_patterns``); each job adds its config-derived checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from run_folder.validation_doc import RECORDS_IN, RECORDS_OUT
from schemas.expectations import (
    BETWEEN,
    COLUMNS,
    DATASET,
    IN_SET,
    IS_NULL,
    NOT_NULL,
    PAIR_EQUAL,
    REGEX,
    ROW_COUNT,
    SEVERITIES,
    TYPES,
    UNIQUE,
    Expectation,
    StageRules,
    Suite,
    critical,
    warning,
)
from transforms.readers.base import READ_STAGE
from transforms.stage import COUNT, ERROR_REASON, REJECTED
from transforms.synthetic import STAGE as SYNTHETIC_STAGE
from transforms.synthetic import GenerateSynthetic

# Where a record came from: set by every reader.
_READ_REQUIRED = ("source", "source_key")


def rules_of(stage_class: Any, extra: Callable[[Any], list[Expectation]] | None = None) -> StageRules:
    """A stage's suite rules, from what its class declares (reasons, signal rules, role)."""
    signals = stage_class.signal_rules
    return StageRules(
        reasons=tuple(stage_class.reasons),
        reason_patterns=tuple(stage_class.reason_patterns),
        may_error=stage_class.may_error,
        nullable=signals.nullable,
        declared=signals.required,
        must_be_null=signals.must_be_null,
        ranges=signals.ranges,
        value_sets=signals.value_sets,
        extra=extra,
    )


def read_rules(reader: Any) -> StageRules:
    """The ``read`` stage's rules: the reasons the job's reader declares; a reader does not err
    (what it cannot read is a quarantine record with a reason)."""
    return StageRules(reasons=tuple(reader.reasons), reason_patterns=tuple(reader.reason_patterns), may_error=False)


def language_checks(stage_class: Any) -> Callable[[Any], list[Expectation]]:
    """The config-derived checks of a language filter (``transforms.filters.language``) on the
    fields it writes: the score at least the lowest threshold, the label an allowed one."""
    stage, lang_field, score_field = stage_class.name, stage_class.lang_field, stage_class.score_field

    def checks(config: Any) -> list[Expectation]:
        section = getattr(config, stage)
        floor = min([section.min_score, *section.per_language_min_score.values()])
        found = [
            critical(BETWEEN, f"{score_field}.min_score", notes=f"{stage}.min_score (or the lowest per-language "
                     "threshold)", column=score_field, min_value=floor),
        ]
        if section.allowed_languages:  # empty: every language is allowed
            found.append(critical(IN_SET, f"{lang_field}.allowed", notes=f"{stage}.allowed_languages",
                                  column=lang_field, value_set=sorted(section.allowed_languages)))
        return found

    return checks


def type_list(arrow_type: pa.DataType) -> list[str] | None:
    """GE type names (``expect_column_values_to_be_in_type_list``) that a value of a column of
    ``arrow_type`` may have in a record; ``None`` where no check applies (timestamps)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return ["str"]
    if pa.types.is_boolean(arrow_type):
        return ["bool"]
    if pa.types.is_integer(arrow_type):
        return ["int", "int32", "int64"]
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return ["list"]
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return ["bytes"]
    if pa.types.is_floating(arrow_type):
        # An int is a valid value of a float column (Arrow converts it). GE's "int" also admits
        # bool (a subclass of int in Python).
        return ["float", "float32", "int"]
    return None


def _signal_checks(stage: str, signals: tuple[pa.Field, ...], rules: StageRules) -> list[Expectation]:
    checks = []
    for signal in signals:
        name = signal.name
        types = type_list(signal.type)
        if types:
            checks.append(
                critical(
                    TYPES, f"{name}.type", notes=f"{signal.type} in {stage}.signal_fields", column=name, type_list=types
                )
            )
        if name in rules.must_be_null:
            checks.append(critical(IS_NULL, f"{name}.null", notes="set on rejected records only", column=name))
        elif name not in rules.nullable:
            not_null = critical if rules.declared else warning
            checks.append(not_null(NOT_NULL, f"{name}.not_null", notes="every kept record is scored", column=name))
        if name in rules.ranges:
            low, high = rules.ranges[name]
            bounds = {k: v for k, v in (("min_value", low), ("max_value", high)) if v is not None}
            checks.append(critical(BETWEEN, f"{name}.range", column=name, **bounds))
        if name in rules.value_sets:
            checks.append(critical(IN_SET, f"{name}.in_set", column=name, value_set=list(rules.value_sets[name])))
    return checks


def _reason_check(stage: str, rules: StageRules) -> Expectation:
    prefix = f"{stage}."
    key, notes = "reject_reason.allowed", "reasons are part of the output schema: a new one is a schema change"
    if rules.reason_prefixes:
        stages = "|".join(re.escape(name) for name in (stage, *rules.reason_prefixes))
        return critical(
            REGEX, key, REJECTED, "the stage's own reasons or those of the stages it runs",
            column="reject_reason", regex=f"^(?:{stages})\\.[a-z0-9_]+$",
        )
    if rules.reasons is None:
        return critical(
            REGEX,
            key,
            REJECTED,
            "no closed set declared: any snake_case reason with the prefix",
            column="reject_reason",
            regex=f"^{re.escape(prefix)}[a-z0-9_]+$",
        )
    reasons = sorted(rules.reasons + ((ERROR_REASON,) if rules.may_error else ()))
    if rules.reason_patterns:
        alternatives = "|".join([re.escape(r) for r in reasons] + list(rules.reason_patterns))
        return critical(
            REGEX, key, REJECTED, notes, column="reject_reason", regex=f"^{re.escape(prefix)}(?:{alternatives})$"
        )
    return critical(IN_SET, key, REJECTED, notes, column="reject_reason", value_set=[prefix + r for r in reasons])


def stage_suite(
    stage: str,
    signals: tuple[pa.Field, ...],
    columns: list[str],
    rules: StageRules,
    config: Any,
    text_checks: list[Expectation],
    job: str,
    schema_version: str,
) -> Suite:
    """The suite of one stage; ``columns`` are the columns its kept records must have.
    ``text_checks``: the job's checks of its main content column (``text``, ``caption``)."""
    checks = [
        critical(
            COLUMNS,
            "columns.present",
            notes="the base columns and the signals of this and every earlier enabled stage",
            column_set=columns,
            exact_match=False,
        ),
        critical(NOT_NULL, "id.not_null", column="id"),
    ]
    if stage == READ_STAGE:
        checks.append(critical(TYPES, "id.type", notes="minted by the readers", column="id", type_list=["str"]))
        checks += [critical(NOT_NULL, f"{name}.not_null", column=name) for name in _READ_REQUIRED]
    checks += text_checks
    checks += _signal_checks(stage, signals, rules)
    if rules.extra is not None:
        checks += rules.extra(config)
    checks += [
        critical(NOT_NULL, "rejected_id.not_null", REJECTED, column="id"),
        critical(IN_SET, "reject_stage.this_stage", REJECTED, column="reject_stage", value_set=[stage]),
        _reason_check(stage, rules),
        critical(
            UNIQUE,
            "id.unique",
            DATASET,
            "over the stage's kept and rejected records, run-wide (one shuffle)",
            column="id",
        ),
        critical(
            PAIR_EQUAL,
            "rows.conservation",
            DATASET,
            "records in (the previous stage's kept) = kept + rejected",
            column_A=RECORDS_IN,
            column_B=RECORDS_OUT,
        ),
        warning(ROW_COUNT, "rows.kept", DATASET, "a stage that keeps nothing is usually misconfigured", min_value=1),
    ]
    keys = [c["meta"]["key"] for c in checks]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"suite of {stage}: expectation keys used twice: {duplicated}")
    return {
        "name": f"{job}.{stage}",
        "expectations": checks,
        "meta": {"stage": stage, "schema_version": schema_version},
    }


def synthetic_suite(config: Any, columns: list[str], reason_prefixes: list[str], content_checks: list[Expectation],
                    job: str, schema_version: str) -> Suite:
    """The synthetic step's suite (both jobs). Its kept records are the crawled ones passing
    through plus the synthetic ones that met every gate, so its signals may be empty (crawled
    records have none) and its template column holds only null or an active template; its
    rejected records are all synthetic, with generation's reasons or those of
    ``reason_prefixes`` (the gates it ran)."""
    rules = StageRules(
        reasons=None,
        reason_prefixes=tuple(reason_prefixes),
        nullable=tuple(f.name for f in GenerateSynthetic.signal_fields),
        ranges={"synthetic_tokens": COUNT, "synthetic_prompt_tokens": COUNT, "synthetic_seconds": COUNT},
        extra=_synthetic_checks,
    )
    return stage_suite(SYNTHETIC_STAGE, tuple(GenerateSynthetic.signal_fields), columns, rules, config,
                       content_checks, job, schema_version)


def _synthetic_checks(config: Any) -> list[Expectation]:
    templates = sorted(t.ref for t in config.synthetic.active_templates())
    return [
        critical(NOT_NULL, "synthetic.not_null", notes="readers set False, generation True", column="synthetic"),
        critical(IN_SET, "template.active", notes="synthetic.tasks: null on crawled records",
                 column="template", value_set=templates),
        critical(REGEX, "parent_id.format", notes="the seed's id: null on crawled records",
                 column="parent_id", regex="^[0-9a-f]{32}$"),
        critical(IN_SET, "rejected.synthetic_only", REJECTED, "the branch rejects only its own records",
                 column="synthetic", value_set=[True]),
    ]


def apply_severity_overrides(suites: dict[str, Suite], overrides: Mapping[str, str]) -> dict[str, Suite]:
    """Set severities in place (``"*:<key>"`` first, then ``"<stage>:<key>"``, which wins)."""
    unused = dict(overrides)
    for stage, suite in suites.items():
        for check in suite["expectations"]:
            key = check["meta"]["key"]
            for name in (f"*:{key}", f"{stage}:{key}"):
                if name in overrides:
                    severity = overrides[name]
                    if severity not in SEVERITIES:
                        raise ValueError(f"severity of {name} must be one of {SEVERITIES}, got {severity!r}")
                    check["meta"]["severity"] = check["severity"] = severity
                    unused.pop(name, None)
    if unused:
        raise ValueError(f"severity overrides match no expectation: {sorted(unused)}")
    return suites
