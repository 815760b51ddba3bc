"""Model-based quality: a supervised fastText classifier scores each document, then a threshold
or a top fraction decides (DCLM's ``fasttext_oh_eli5`` filter is this design: Li et al., 2024).

Any binary fastText model whose labels are ``__label__<positive_label>`` and one other label
works; ``dataprep train-quality`` (``pipelines/train_quality.py``) trains one. The model is
loaded once per worker from a local path or any Beam filesystem URI (``s3://``).

``quality_score`` is the model's probability of the positive label on ``model_input(text)``,
the same normalisation training used (see ``model_input``). With ``model_path`` unset the stage
passes every record through untouched with ``quality_score`` null, and logs that once.

Deciding:
- ``threshold``: drop documents scoring below it (``quality_model.below_threshold``), per
  record, inside ``QualityModelFilter``.
- ``top_fraction``: keep the best-scoring fraction of the run. That needs the run's score
  distribution, so ``QualityModel`` (the global step the registry runs) scores first, computes
  the cut with Beam's ``ApproximateQuantiles`` combiner and drops documents below it
  (``quality_model.below_top_fraction``). The cut is approximate within the combiner's error
  (about 1/``quantile_resolution`` of the rank); ties at the cut are kept.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.filters.language import load_fasttext
from transforms.stage import (
    KEPT,
    REJECTED,
    ApplyStage,
    Drop,
    Filter,
    GlobalStep,
    Record,
    RunContext,
    SignalRules,
    StageResult,
    rejected,
)
from transforms.text_stats import tokenize

log = logging.getLogger(__name__)

STAGE = "quality_model"
LABEL_PREFIX = "__label__"
POSITIVE = "hq"
NEGATIVE = "lq"


@dataclass(frozen=True)
class QualityModelConfig:
    # Off until a model is given (train one with ``dataprep train-quality``).
    enabled: bool = False
    # None: pass-through (quality_score stays null, nothing is dropped).
    model_path: str | None = None
    positive_label: str = POSITIVE
    # Exactly one of these decides when a model is given; neither: score only, keep all.
    # DCLM keeps the top 10% by its fastText score (DCLM-Baseline); a threshold suits a model
    # whose held-out precision/recall were read off ``train-quality``'s report.
    threshold: float | None = None
    top_fraction: float | None = None
    # Characters scored: fastText averages n-gram embeddings, stable long before 10k characters
    # (see transforms/filters/language.py for the same measurement on lid.176).
    max_chars: int = 10_000
    # ApproximateQuantiles buckets for the top-fraction cut.
    quantile_resolution: int = 1000

    def __post_init__(self) -> None:
        if self.threshold is not None and self.top_fraction is not None:
            raise ValueError("give threshold or top_fraction, not both")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.top_fraction is not None and not 0.0 < self.top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {self.max_chars}")
        if self.quantile_resolution < 10:
            raise ValueError(f"quantile_resolution must be >= 10, got {self.quantile_resolution}")
        if not self.positive_label or any(c.isspace() for c in self.positive_label):
            raise ValueError(f"positive_label must be one word, got {self.positive_label!r}")


def model_input(text: str | None, max_chars: int = 10_000) -> str:
    """What the classifier sees, in training and in scoring alike: the first ``max_chars``
    characters, Unicode NFKC, lower case, punctuation split off words (``text_stats.tokenize``),
    all on one line with single spaces (fastText reads one example per line)."""
    prefix = unicodedata.normalize("NFKC", (text or "")[:max_chars]).lower()
    return " ".join(tokenize(prefix))


class QualityModelFilter(Filter):
    """Scores ``quality_score``; drops below ``threshold`` when one is set."""

    name = STAGE
    config_class = QualityModelConfig
    reasons = ("below_threshold",)
    signal_rules = SignalRules(required=False)
    signal_fields = (pa.field("quality_score", pa.float32()),)

    def __init__(self, config: QualityModelConfig = QualityModelConfig()):
        self.config = config
        self._model = None
        self._positive = LABEL_PREFIX + config.positive_label

    def setup(self) -> None:
        if self.config.model_path is None:
            raise ValueError("QualityModelFilter needs model_path (QualityModel passes through without)")
        self._model = load_fasttext(self.config.model_path)
        labels = self._model.get_labels()
        if self._positive not in labels:
            raise ValueError(f"model {self.config.model_path} has no label {self._positive}: {labels}")
        self._k = len(labels)

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        if not records:
            return []
        lines = [model_input(record.get("text"), self.config.max_chars) for record in records]
        labels, probs = self._model.predict(lines, k=self._k)
        out = []
        for line, label, prob in zip(lines, labels, probs, strict=True):
            if not line:
                out.append({"quality_score": 0.0})
                continue
            scores = dict(zip(label, prob, strict=True))
            # fastText's softmax can round a hair above 1.
            out.append({"quality_score": min(float(scores.get(self._positive, 0.0)), 1.0)})
        return out

    def decide(self, record: Record) -> Drop | None:
        threshold = self.config.threshold
        if threshold is not None and record["quality_score"] < threshold:
            return Drop("below_threshold", f"{record['quality_score']:.4f} < {threshold}")
        return None


def _pass_through(record: Record) -> Record:
    return {**record, "quality_score": None}


def _cut_of(quantiles: list[float], top_fraction: float) -> float:
    """The score at rank (1 - top_fraction) from ``ApproximateQuantiles`` boundaries."""
    if not quantiles:
        return 0.0
    index = round((1.0 - top_fraction) * (len(quantiles) - 1))
    return quantiles[index]


def _split_top(record: Record, cut: float) -> Iterator[Any]:
    if record["quality_score"] >= cut:
        yield record
    else:
        yield pvalue.TaggedOutput(
            REJECTED,
            rejected(record, STAGE, "below_top_fraction", f"{record['quality_score']:.4f} < {cut:.4f}"),
        )


class QualityModel(GlobalStep):
    """The registry's step: ``kept`` and ``rejected`` outputs like every stage."""

    name = STAGE
    config_class = QualityModelConfig
    reasons = ("below_threshold", "below_top_fraction")
    may_error = True  # its scoring runs through ApplyStage
    signal_rules = SignalRules(required=False)
    signal_fields = QualityModelFilter.signal_fields

    def __init__(self, config: QualityModelConfig = QualityModelConfig(), batch_size: int = 256):
        super().__init__(config)
        self._batch_size = batch_size

    @classmethod
    def for_run(cls, config: QualityModelConfig, run: RunContext) -> QualityModel:
        return cls(config)

    def expand(self, records: beam.PCollection) -> StageResult:
        if self.config.model_path is None:
            log.warning("quality_model: no model_path, every record passes with quality_score null")
            kept = records | "PassThrough" >> beam.Map(_pass_through)
            return StageResult(kept, records.pipeline | "NoneRejected" >> beam.Create([]))
        scored = records | "Score" >> ApplyStage(QualityModelFilter(self.config), self._batch_size)
        if self.config.top_fraction is None:
            return scored
        quantiles = (
            scored.kept
            | "Scores" >> beam.Map(lambda r: r["quality_score"])
            | "Quantiles" >> beam.ApproximateQuantiles.Globally(self.config.quantile_resolution + 1)
        )
        top = scored.kept | "KeepTop" >> beam.FlatMap(
            _split_top,
            cut=beam.pvalue.AsSingleton(quantiles | "Cut" >> beam.Map(_cut_of, self.config.top_fraction)),
        ).with_outputs(REJECTED, main=KEPT)
        rejected_all = (scored.rejected, top.rejected) | "AllRejected" >> beam.Flatten()
        return StageResult(top.kept, rejected_all)
