"""Great Expectations suites of the image-caption job: one per stage, beside ``schemas/images.py``.

Built exactly as the text job's (``schemas/text_suites.py``: GE's JSON form, ``meta`` with
``severity``, ``scope`` and ``key``, no GE import), from the images job's stages
(``pipelines/images.py``) and the run's config. Every stage gets the common
checks (columns present, ids not null and unique run-wide, its own closed set of reasons,
conservation); the stage rules below add what each stage guarantees about its kept records:

- the caption (a pair without one teaches nothing): not null and not empty after ``read``,
  at least ``caption_length.min_chars`` long once that filter ran;
- signals: image sides and byte counts > 0, ``sha256`` 64 hex digits, ``phash`` 64 bits as 16
  hex digits, ``nsfw_score`` in [0, 1] (and below the threshold), language scores in [0, 1],
  ``aspect_ratio`` >= 1, ``dup_of`` empty on kept records and set on rejected ones;
- the config's thresholds: a stage keeps nothing its own config says it must drop.

What each suite checks, and why, is listed in ``docs/validation.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from schemas.expectations import (
    BETWEEN,
    IN_SET,
    LENGTHS,
    NOT_NULL,
    REGEX,
    TYPES,
    Expectation,
    Suite,
    critical,
    warning,
)
from schemas.images import BASE_FIELDS, SCHEMA_VERSION
from schemas.suite_builder import (
    apply_severity_overrides,
    language_checks,
    read_rules,
    rules_of,
    stage_suite,
    synthetic_suite,
)
from transforms.images.alignment import AlignmentFilter
from transforms.images.caption_language import CaptionLanguageFilter
from transforms.images.caption_rewrite import CAPTION_GATES, SAME_AS_PARENT
from transforms.images.download import Download
from transforms.readers.base import READ_STAGE
from transforms.stage import REJECTED
from transforms.synthetic import STAGE as SYNTHETIC_STAGE

JOB = "images"
# Download signals are absent on records that came with their bytes (WebDataset samples), so
# they are neither part of the column contract nor required.
_DOWNLOAD_SIGNALS = Download.signal_rules.nullable
_HEX64 = "^[0-9a-f]{64}$"
_HEX16 = "^[0-9a-f]{16}$"



def _dup_of_on_rejected(config: Any) -> list[Expectation]:
    return [
        critical(
            NOT_NULL, "rejected_dup_of.not_null", REJECTED, "a duplicate names its keeper", column="dup_of"
        )
    ]


def _caption_length_checks(config: Any) -> list[Expectation]:
    section = config.caption_length
    checks = [
        critical(
            BETWEEN,
            "caption_words.min_words",
            notes="caption_length.min_words",
            column="caption_words",
            min_value=section.min_words,
        ),
        critical(
            BETWEEN,
            "caption_chars.min_chars",
            notes="caption_length.min_chars",
            column="caption_chars",
            min_value=section.min_chars,
        ),
    ]
    if section.max_chars:  # 0: no upper bound
        checks.append(
            critical(
                BETWEEN,
                "caption_chars.max_chars",
                notes="caption_length.max_chars",
                column="caption_chars",
                max_value=section.max_chars,
            )
        )
    return checks


def _download_checks(config: Any) -> list[Expectation]:
    return [
        critical(
            BETWEEN,
            "http_status.success",
            notes="only fetched URLs are kept (after redirects)",
            column="http_status",
            min_value=200,
            max_value=299,
        ),
    ]


def _decode_checks(config: Any) -> list[Expectation]:
    section = config.decode
    checks = [
        critical(
            IN_SET,
            "format.output_format",
            notes="decode.output_format",
            column="format",
            value_set=[section.output_format],
        ),
        critical(
            IN_SET,
            "original_format.allowed",
            notes="decode.allowed_formats",
            column="original_format",
            value_set=sorted(section.allowed_formats),
        ),
        critical(
            BETWEEN,
            "original_bytes.max_bytes",
            notes="decode.max_bytes",
            column="original_bytes",
            max_value=section.max_bytes,
        ),
    ]
    if section.resize_mode in ("border", "center_crop"):  # both give at most image_size a side
        checks += [
            critical(
                BETWEEN,
                f"{side}.image_size",
                notes=f"decode.image_size ({section.resize_mode})",
                column=side,
                max_value=section.image_size,
            )
            for side in ("width", "height")
        ]
    return checks


def _placeholder_checks(config: Any) -> list[Expectation]:
    return [
        critical(
            BETWEEN,
            "sha256_url_count.min_urls",
            notes="placeholder.min_urls: kept bytes are served by fewer",
            column="sha256_url_count",
            max_value=config.placeholder.min_urls - 1,
        ),
    ]


def _image_filter_checks(config: Any) -> list[Expectation]:
    section = config.image_filter
    return [
        *(
            critical(
                BETWEEN,
                f"{side}.min_side",
                notes="image_filter.min_side",
                column=side,
                min_value=section.min_side,
            )
            for side in ("original_width", "original_height")
        ),
        critical(
            BETWEEN,
            "aspect_ratio.max",
            notes="image_filter.max_aspect_ratio",
            column="aspect_ratio",
            max_value=section.max_aspect_ratio,
        ),
        critical(
            BETWEEN,
            "original_bytes.min_bytes",
            notes="image_filter.min_bytes",
            column="original_bytes",
            min_value=section.min_bytes,
        ),
    ]


def _nsfw_checks(config: Any) -> list[Expectation]:
    return [
        critical(
            BETWEEN,
            "nsfw_score.threshold",
            notes="nsfw.threshold: a score at or above it is rejected",
            column="nsfw_score",
            max_value=config.nsfw.threshold,
            strict_max=True,
        ),
    ]


def _alignment_checks(config: Any) -> list[Expectation]:
    """The alignment stage (CLIP image-text score) keeps what scores at least ``threshold``."""
    section = config.alignment
    floor = next(
        (getattr(section, name) for name in ("min_score", "threshold") if hasattr(section, name)), None
    )
    if not isinstance(floor, int | float) or isinstance(floor, bool):
        return []
    return [
        critical(
            BETWEEN,
            f"{field.name}.min_score",
            notes="alignment threshold",
            column=field.name,
            min_value=floor,
        )
        for field in _alignment_scores()
    ]


def _alignment_scores() -> list[pa.Field]:
    return [f for f in AlignmentFilter.signal_fields if pa.types.is_floating(f.type)]


# Config-derived expectations of the stages that have them; the rest of a stage's rules is
# declared on its class (``transforms.stage.StageContract``).
_CONFIG_CHECKS = {
    "caption_length": _caption_length_checks,
    "caption_language": language_checks(CaptionLanguageFilter),
    "url_dedup": _dup_of_on_rejected,
    "download": _download_checks,
    "decode": _decode_checks,
    "placeholder": _placeholder_checks,
    "image_filter": _image_filter_checks,
    "nsfw": _nsfw_checks,
    "dedup_exact": _dup_of_on_rejected,
    "dedup_near": _dup_of_on_rejected,
    "alignment": _alignment_checks,
}
# Checked on every stage's kept records whatever its rules: identifiers minted by decode.
_FORMATS = {"sha256": _HEX64, "phash": _HEX16}


def _caption_checks(stage: str, config: Any, length_filtered: bool) -> list[Expectation]:
    """The caption is the other half of every pair. Readers pass rows as they are (a table cell
    may be empty), so at ``read`` an empty caption is a warning; every later stage's kept records
    must have one, and once ``caption_length`` ran, one at least ``min_chars`` long (its count
    is of the stripped caption, so the caption itself is at least as long)."""
    if stage == READ_STAGE:
        why = "readers pass rows as they are; the caption filters drop empty ones"
        return [
            critical(TYPES, "caption.type", column="caption", type_list=["str"]),
            warning(NOT_NULL, "caption.not_null", notes=why, column="caption"),
            warning(LENGTHS, "caption.min_length", notes=why, column="caption", min_value=1),
        ]
    min_length = max(1, config.caption_length.min_chars) if length_filtered else 1
    return [
        critical(
            NOT_NULL, "caption.not_null", notes="an image without a caption is not a pair", column="caption"
        ),
        critical(
            LENGTHS,
            "caption.min_length",
            notes="caption_length.min_chars once that filter ran; never empty after read",
            column="caption",
            min_value=min_length,
        ),
    ]


def _format_checks(signals: tuple[pa.Field, ...]) -> list[Expectation]:
    return [
        critical(
            REGEX, f"{f.name}.format", notes="lowercase hex digest", column=f.name, regex=_FORMATS[f.name]
        )
        for f in signals
        if f.name in _FORMATS
    ]


def images_suites(job: Any, config: Any, severity_overrides: Mapping[str, str] | None = None) -> dict[str, Suite]:
    """The suite of every stage of ``job`` (``pipelines/images.py``: its reader, stages and
    branch) that ``config`` runs, in pipeline order, ``read`` first.

    ``severity_overrides`` as in ``schemas.text_suites.text_suites``:
    ``{"<stage>:<key>" or "*:<key>": "critical" | "warning"}``; one that matches nothing raises.
    """
    columns = [f.name for f in BASE_FIELDS]
    suites = {
        READ_STAGE: stage_suite(
            READ_STAGE,
            (),
            list(columns),
            read_rules(job.reader),
            config,
            _caption_checks(READ_STAGE, config, False),
            JOB,
            SCHEMA_VERSION,
        )
    }
    length_filtered = False
    plan = job.plan(config)
    for position, stage_class in enumerate([*plan.stages, None]):
        if position == plan.join_at:
            gates = [name for name in suites if name in CAPTION_GATES] + [SAME_AS_PARENT.split(".")[0]]
            suites[SYNTHETIC_STAGE] = synthetic_suite(
                config, list(columns), gates, _caption_checks(SYNTHETIC_STAGE, config, length_filtered),
                JOB, SCHEMA_VERSION,
            )
        if stage_class is None:
            break
        name = stage_class.name
        length_filtered = length_filtered or name == "caption_length"
        rules = rules_of(stage_class, _CONFIG_CHECKS.get(name))
        signals = tuple(stage_class.signal_fields)
        if rules.declared:
            columns += [f.name for f in signals if f.name not in columns and f.name not in _DOWNLOAD_SIGNALS]
        checks = _caption_checks(name, config, length_filtered) + _format_checks(signals)
        suites[name] = stage_suite(name, signals, list(columns), rules, config, checks, JOB, SCHEMA_VERSION)
    return apply_severity_overrides(suites, severity_overrides or {})
