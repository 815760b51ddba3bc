"""Great Expectations suites of the text job: one per stage (built by ``schemas/suite_builder.py``
from what the stages and the reader declare), and the text job's config-derived checks.

What each suite checks, and why, is listed in ``docs/validation.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from run_folder.validation_doc import SOURCE_REMOVAL_SHARE
from schemas.expectations import (
    BETWEEN,
    COLUMN_MAX,
    DATASET,
    LENGTHS,
    NOT_NULL,
    Expectation,
    Suite,
    critical,
    warning,
)
from schemas.suite_builder import (
    apply_severity_overrides,
    language_checks,
    read_rules,
    rules_of,
    stage_suite,
    synthetic_suite,
)
from schemas.text import BASE_FIELDS, SCHEMA_VERSION
from transforms.filters.language import LanguageFilter
from transforms.readers.base import READ_STAGE
from transforms.stage import REJECTED, Stage
from transforms.synthetic import STAGE as SYNTHETIC_STAGE
from transforms.synthetic.branch import NOT_GATES


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


# Config-derived expectations of the stages that have them; the rest of a stage's rules is
# declared on its class (``transforms.stage.StageContract``).
_CONFIG_CHECKS: dict[str, Callable[[Any], list[Expectation]]] = {
    "extract": _extract_checks,
    "language": language_checks(LanguageFilter),
    "harm": _harm_checks,
    "dedup_minhash": _near_duplicate_checks,
}


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


def text_suites(job: Any, config: Any, severity_overrides: Mapping[str, str] | None = None) -> dict[str, Suite]:
    """The suite of every stage of ``job`` (``pipelines/text.py``: its reader, stages and branch)
    that ``config`` runs, in pipeline order, ``read`` first.

    ``severity_overrides`` maps ``"<stage>:<key>"`` (or ``"*:<key>"``: every stage) to a
    severity, e.g. ``{"language:lang.allowed": "warning"}``; one that matches nothing raises.
    """
    job_order = [s.name for s in job.stages]
    extract_at = job_order.index("extract")
    max_text_chars = max(config.read.max_record_bytes, config.extract.max_body_bytes)
    columns = [f.name for f in BASE_FIELDS]
    suites = {READ_STAGE: stage_suite(READ_STAGE, (), list(columns), read_rules(job.reader), config, [], job.name,
                                      SCHEMA_VERSION)}
    gates: list[str] = []  # per-record stages so far: the synthetic branch runs them too
    plan = job.plan(config)
    for position, stage_class in enumerate([*plan.stages, None]):
        if position == plan.join_at:
            suites[SYNTHETIC_STAGE] = synthetic_suite(config, list(columns), gates, _text_checks(True, max_text_chars),
                                                      job.name, SCHEMA_VERSION)
        if stage_class is None:
            break
        name = stage_class.name
        if issubclass(stage_class, Stage) and name not in NOT_GATES:
            gates.append(name)
        at = job_order.index(name)
        rules = rules_of(stage_class, _CONFIG_CHECKS.get(name))
        if rules.declared:
            columns += [f.name for f in stage_class.signal_fields if f.name not in columns]
        text = _text_checks(at > extract_at, max_text_chars) if at >= extract_at else []
        suites[name] = stage_suite(name, tuple(stage_class.signal_fields), list(columns), rules, config, text,
                                   job.name, SCHEMA_VERSION)
    return apply_severity_overrides(suites, severity_overrides or {})
