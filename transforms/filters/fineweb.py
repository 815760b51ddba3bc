"""FineWeb's own quality rules: drop list-like, unpunctuated and line-repeating documents.

Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the Finest Text Data at Scale"
(the three filters they derived after adopting C4's and Gopher's, plus the newline ratio of
datatrove's ``FineWebQualityFilter``, whose parameter names and defaults these are):

- line punctuation ratio: lines ending in one of ``stop_chars``, over lines; dropped at or below
  ``line_punct_thr``.
- short line ratio: lines of at most ``short_line_length`` characters, over lines; dropped at or
  above ``short_line_thr``.
- char duplicate ratio: characters of lines equal to an earlier line, over the characters of all
  lines; dropped at or above ``char_duplicates_ratio``.
- newline ratio: line breaks per token; dropped above ``new_line_ratio``.

Comparisons and ``stop_chars`` (. ' " ! ?) are those of the code FineWeb was built with and of
the paper ("<= 0.12", ">= 0.67"); datatrove 0.10 made the comparisons strict and swapped the
stop characters for a multilingual set without quotes. As in datatrove 0.10, lines are the
non-blank lines (``text_stats``), here also stripped; line breaks are counted between them, so
blank lines between paragraphs do not double the newline ratio. Tokens come from
``text_stats.tokenize`` instead of spaCy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import FRACTION, Drop, Filter, Record, SignalRules
from transforms.text_stats import duplicates, is_blank, nonblank_lines, ratio, tokenize


@dataclass(frozen=True)
class FineWebQualityConfig:
    enabled: bool = True
    line_punct_thr: float | None = 0.12  # FineWeb paper and code: "<= 0.12" is dropped
    # datatrove: when True, a ratio of exactly 0 (no punctuated line at all) is not dropped.
    line_punct_exclude_zero: bool = False
    stop_chars: tuple[str, ...] = (".", "'", '"', "!", "?")  # FineWeb code (datatrove 0.2)
    short_line_thr: float | None = 0.67  # FineWeb paper and code: ">= 0.67" is dropped
    short_line_length: int = 30  # FineWeb code: at most 30 characters (paper: "shorter than 30")
    # FineWeb code (datatrove's default, with which FineWeb was built); the paper's text says 0.1.
    char_duplicates_ratio: float | None = 0.01
    new_line_ratio: float | None = 0.3  # FineWeb code (datatrove): newlines per word


class FineWebQualityFilter(Filter):
    name = "fineweb_quality"
    config_class = FineWebQualityConfig
    reasons = ("empty_text", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "newline_ratio")
    signal_rules = SignalRules(
        ranges={
            "fineweb_line_punct_ratio": FRACTION,
            "fineweb_short_line_ratio": FRACTION,
            "fineweb_char_dup_ratio": FRACTION,
            "fineweb_newline_ratio": FRACTION,
        }
    )
    signal_fields = (
        pa.field("fineweb_line_punct_ratio", pa.float32()),  # of non-blank lines
        pa.field("fineweb_short_line_ratio", pa.float32()),  # of non-blank lines
        pa.field("fineweb_char_dup_ratio", pa.float32()),  # of the characters of non-blank lines
        pa.field("fineweb_newline_ratio", pa.float32()),  # line breaks per token, capped at 1
    )

    def __init__(self, config: FineWebQualityConfig = FineWebQualityConfig()):
        if config.short_line_length < 0:
            raise ValueError(f"short_line_length must be >= 0, got {config.short_line_length}")
        self.config = config

    def score(self, record: Record) -> Record:
        text = record.get("text") or ""
        lines = [line.strip() for line in nonblank_lines(text)]
        config = self.config
        short = config.short_line_length
        return {
            "fineweb_line_punct_ratio": ratio(
                sum(line.endswith(config.stop_chars) for line in lines), len(lines)
            ),
            "fineweb_short_line_ratio": ratio(
                sum(len(line) <= short for line in lines), len(lines)
            ),
            "fineweb_char_dup_ratio": ratio(duplicates(lines)[1], sum(map(len, lines))),
            "fineweb_newline_ratio": ratio(max(len(lines) - 1, 0), len(tokenize(text)), cap=1.0),
        }

    def decide(self, record: Record) -> Drop | None:
        config = self.config
        if is_blank(record.get("text") or ""):
            return Drop("empty_text")
        punct = record["fineweb_line_punct_ratio"]
        if (
            config.line_punct_thr is not None
            and punct <= config.line_punct_thr
            and not (punct == 0 and config.line_punct_exclude_zero)
        ):
            return Drop("line_punct_ratio", f"{punct:.3f} <= {config.line_punct_thr}")
        short = record["fineweb_short_line_ratio"]
        if config.short_line_thr is not None and short >= config.short_line_thr:
            return Drop("short_line_ratio", f"{short:.3f} >= {config.short_line_thr}")
        dup = record["fineweb_char_dup_ratio"]
        if config.char_duplicates_ratio is not None and dup >= config.char_duplicates_ratio:
            return Drop("char_dup_ratio", f"{dup:.3f} >= {config.char_duplicates_ratio}")
        newline = record["fineweb_newline_ratio"]
        if config.new_line_ratio is not None and newline > config.new_line_ratio:
            return Drop("newline_ratio", f"{newline:.3f} > {config.new_line_ratio}")
        return None
