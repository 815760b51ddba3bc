"""Caption length: DataComp's basic filter keeps captions of more than 2 words and more than 5
characters (Gadre et al., 2023, "DataComp", §3.4 / App. "Basic filtering")."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import COUNT, Drop, Filter, Record, SignalRules


@dataclass(frozen=True)
class CaptionLengthConfig:
    enabled: bool = True
    min_words: int = 3  # DataComp basic: more than 2 words
    min_chars: int = 6  # DataComp basic: more than 5 characters
    max_chars: int = 0  # 0: no upper bound; LAION-style pipelines often cut very long alt text

    def __post_init__(self) -> None:
        if min(self.min_words, self.min_chars, self.max_chars) < 0:
            raise ValueError("caption length bounds must be >= 0")


class CaptionLengthFilter(Filter):
    name = "caption_length"
    config_class = CaptionLengthConfig
    reasons = ("too_few_words", "too_short", "too_long")
    signal_rules = SignalRules(ranges={"caption_words": COUNT, "caption_chars": COUNT})
    signal_fields = (pa.field("caption_words", pa.int32()), pa.field("caption_chars", pa.int32()))

    def __init__(self, config: CaptionLengthConfig = CaptionLengthConfig()):
        self.config = config

    def score(self, record: Record) -> Record:
        caption = (record.get("caption") or "").strip()
        return {"caption_words": len(caption.split()), "caption_chars": len(caption)}

    def decide(self, record: Record) -> Drop | None:
        words, chars = record["caption_words"], record["caption_chars"]
        if words < self.config.min_words:
            return Drop("too_few_words", f"{words} words < {self.config.min_words}")
        if chars < self.config.min_chars:
            return Drop("too_short", f"{chars} characters < {self.config.min_chars}")
        if self.config.max_chars and chars > self.config.max_chars:
            return Drop("too_long", f"{chars} characters > {self.config.max_chars}")
        return None
