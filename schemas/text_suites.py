"""Great Expectations suites of the text job: one per stage, beside the stage schemas.

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

What each suite checks, and why, is listed in ``docs/validation.md``. Each stage's columns and
their types, value ranges and closed set of reasons are declared on its class
(``signal_fields``, ``signal_rules``, ``reasons``); the config-derived checks are below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from schemas.expectations import (
    BETWEEN,
    COLUMN_MAX,
    COLUMNS,
    DATASET,
    IN_SET,
    IS_NULL,
    LENGTHS,
    NOT_NULL,
    PAIR_EQUAL,
    RECORDS_IN,
    RECORDS_OUT,
    REGEX,
    ROW_COUNT,
    SEVERITIES,
    SOURCE_REMOVAL_SHARE,
    TYPES,
    UNIQUE,
    Expectation,
    StageRules,
    Suite,
    critical,
    warning,
)
from schemas.text import BASE_FIELDS, SCHEMA_VERSION
from transforms.readers.base import READ_STAGE
from transforms.registry import TEXT_STAGES
from transforms.stage import COUNT, ERROR_REASON, REJECTED, Stage
from transforms.stage_plan import plan_stages
from transforms.synthetic import STAGE as SYNTHETIC_STAGE
from transforms.synthetic import GenerateSynthetic
from transforms.synthetic.branch import NOT_GATES, SyntheticJoin


def _language_checks(config: Any) -> list[Expectation]:
    lang = config.language
    floor = min([lang.min_score, *lang.per_language_min_score.values()])
    checks = [
        critical(
            BETWEEN,
            "lang_score.min_score",
            notes="language.min_score (or the lowest per-language threshold)",
            column="lang_score",
            min_value=floor,
        ),
    ]
    if lang.allowed_languages:  # empty: every language is allowed
        checks.append(
            critical(
                IN_SET,
                "lang.allowed",
                notes="language.allowed_languages",
                column="lang",
                value_set=sorted(lang.allowed_languages),
            )
        )
    return checks


def _extract_checks(config: Any) -> list[Expectation]:
    return [
        warning(
            BETWEEN,
            "replacement_char_ratio.max",
            notes="extract.max_replacement_ratio applies to HTML only: texts from WET, JSONL, Parquet pass unchecked",
            column="replacement_char_ratio",
            max_value=config.extract.max_replacement_ratio,
        ),
    ]


def _near_duplicate_checks(config: Any) -> list[Expectation]:
    dedup = config.dedup_minhash
    checks = [
        critical(BETWEEN, "minhash_jaccard.range", REJECTED, "the evidence of a removal: an estimated Jaccard",
                 column="minhash_jaccard", min_value=0.0, max_value=1.0),
    ]
    if dedup.max_source_removal_share is not None:
        checks.append(critical(
            COLUMN_MAX, "source.removal_share", DATASET,
            "dedup_minhash.max_source_removal_share: per source (input file) with at least cap_min_records "
            "records in, the share removed as near-duplicates within the run (counted by CollectStats; "
            "a re-crawl's near-duplicates of earlier runs are expected and not capped)",
            column=SOURCE_REMOVAL_SHARE, max_value=dedup.max_source_removal_share,
            min_records=dedup.cap_min_records, reason="dedup_minhash.near_duplicate",
        ))
    return checks


def _harm_checks(config: Any) -> list[Expectation]:
    return [
        critical(
            BETWEEN,
            "toxicity_score.max",
            notes="harm.max_toxicity",
            column="toxicity_score",
            max_value=config.harm.max_toxicity,
        ),
        critical(
            BETWEEN,
            "bad_words_ratio.max",
            notes="harm.max_bad_word_ratio",
            column="bad_words_ratio",
            max_value=config.harm.max_bad_word_ratio,
        ),
    ]


_READ_REASONS = (
    # WARC record types that may carry a page's bytes but no page (transforms/readers/warc.py);
    # request, warcinfo, metadata and revisit records are skipped, never rejected
    "warc_continuation_record",
    "warc_unknown_record",
    # records
    "http_status_invalid",
    "record_too_large",
    "invalid_utf8",
    "http_decoding_error",
    "missing_id",
    "missing_text",
    "line_too_large",
    "invalid_json",
    # whole files (quarantine)
    "truncated_file",
    "corrupt_file",
    "unsupported_format",
    "wrong_schema",
)

_READ_RULES = StageRules(reasons=_READ_REASONS, reason_patterns=(r"http_status_[0-9]{3}",), may_error=False)
# Config-derived expectations of the stages that have them; the rest of a stage's rules is
# declared on its class (``transforms.stage.StageContract``).
_CONFIG_CHECKS: dict[str, Callable[[Any], list[Expectation]]] = {
    "extract": _extract_checks,
    "language": _language_checks,
    "harm": _harm_checks,
    "dedup_minhash": _near_duplicate_checks,
}


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
# Where a record came from: set by every reader.
_READ_REQUIRED = ("source", "source_key")


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


def _text_checks(text_required: bool, max_text_chars: int) -> list[Expectation]:
    empty = critical if text_required else warning
    # Texts from WET, JSONL and Parquet pass extract as they are (min_text_chars applies to HTML
    # only); the filters after it drop empty ones, so extract's own output may hold some.
    why_empty = "no empty document after extract" if text_required else "text inputs skip min_text_chars"
    return [
        critical(NOT_NULL, "text.not_null", column="text"),
        empty(LENGTHS, "text.min_length", notes=why_empty, column="text", min_value=1),
        critical(
            LENGTHS,
            "text.max_length",
            notes="no more characters than the input had bytes (read.max_record_bytes, extract.max_body_bytes)",
            column="text",
            max_value=max_text_chars,
        ),
    ]


def stage_suite(
    stage: str,
    signals: tuple[pa.Field, ...],
    columns: list[str],
    rules: StageRules,
    config: Any,
    text_checks: list[Expectation],
    job: str = "text",
    schema_version: str = SCHEMA_VERSION,
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


def text_suites(config: Any, severity_overrides: Mapping[str, str] | None = None) -> dict[str, Suite]:
    """The suite of every stage that ``config`` runs, in pipeline order, ``read`` first.

    ``severity_overrides`` maps ``"<stage>:<key>"`` (or ``"*:<key>"``: every stage) to a
    severity, e.g. ``{"language:lang.allowed": "warning"}``; one that matches nothing raises.
    """
    registry_order = [s.name for s in TEXT_STAGES]
    extract_at = registry_order.index("extract")
    max_text_chars = max(config.read.max_record_bytes, config.extract.max_body_bytes)
    columns = [f.name for f in BASE_FIELDS]
    suites = {READ_STAGE: stage_suite(READ_STAGE, (), list(columns), _READ_RULES, config, [])}
    gates: list[str] = []  # per-record stages so far: the synthetic branch runs them too
    plan = plan_stages(TEXT_STAGES, config, SyntheticJoin if config.synthetic.enabled else None)
    for position, stage_class in enumerate([*plan.stages, None]):
        if position == plan.join_at:
            suites[SYNTHETIC_STAGE] = synthetic_suite(config, list(columns), gates, _text_checks(True, max_text_chars))
        if stage_class is None:
            break
        name = stage_class.name
        if issubclass(stage_class, Stage) and name not in NOT_GATES:
            gates.append(name)
        at = registry_order.index(name)
        rules = rules_of(stage_class, _CONFIG_CHECKS.get(name))
        if rules.declared:
            columns += [f.name for f in stage_class.signal_fields if f.name not in columns]
        text = _text_checks(at > extract_at, max_text_chars) if at >= extract_at else []
        suites[name] = stage_suite(name, tuple(stage_class.signal_fields), list(columns), rules, config, text)
    return apply_severity_overrides(suites, severity_overrides or {})


def synthetic_suite(config: Any, columns: list[str], reason_prefixes: list[str], content_checks: list[Expectation],
                    job: str = "text", schema_version: str = SCHEMA_VERSION) -> Suite:
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
