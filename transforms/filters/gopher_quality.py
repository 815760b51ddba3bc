"""Gopher quality rules: drop documents whose words, symbols and lines do not look like prose.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
appendix A, with the thresholds of datatrove's ``GopherQualityFilter``. Each rule is off when
its threshold is ``None``.

Where we depart from datatrove 0.10 (each change measured on the 181 gold articles of
scrapinghub-aeb, ``tests/test_gopher_quality.py``):

- Words come from ``text_stats.tokenize`` (whitespace, punctuation peeled off) instead of spaCy
  or NLTK; see that module for the differences.
- The alphabetic-word fraction, and the "#" and ellipsis ratios, divide by the number of words,
  punctuation tokens excluded, as the paper defines them ("80% of words in a document contain at
  least one alphabetic character") and as datatrove's first version did. datatrove 0.10 divides by
  all tokens, punctuation included, so ordinary news prose full of commas, quotes and figures
  falls under 0.8 there: 22 of the 181 gold articles (Reuters, Billboard, CBS Sports...) against
  3 with ours (a Portuguese race table, high-school box scores, a meal plan of times and doses).
- Line fractions are over non-blank lines (``text_stats``), so blank lines between paragraphs do
  not dilute the bullet and ellipsis fractions.

As in datatrove, stop words are matched case-sensitively and counted once each (at least two of
the eight must appear), and bullet lines are those starting with "•" or "-".
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import COUNT, FRACTION, Drop, Filter, Record, SignalRules
from transforms.text_stats import has_alpha, is_blank, is_word, nonblank_lines, ratio, tokenize

# Gopher appendix A: "the, be, to, of, and, that, have, with".
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


@dataclass(frozen=True)
class GopherQualityConfig:
    enabled: bool = True
    min_words: int | None = 50  # Gopher app. A: "between 50 and 100,000 words"
    max_words: int | None = 100_000  # Gopher app. A
    min_mean_word_length: float | None = 3.0  # Gopher app. A: "mean word length ... 3 to 10"
    max_mean_word_length: float | None = 10.0  # Gopher app. A
    max_hash_word_ratio: float | None = 0.1  # Gopher app. A: "symbol-to-word ratio > 0.1" for "#"
    max_ellipsis_word_ratio: float | None = 0.1  # Gopher app. A: the same for "..." and "…"
    max_bullet_line_frac: float | None = 0.9  # Gopher app. A: "90% of lines starting with a bullet"
    max_ellipsis_line_frac: float | None = 0.3  # Gopher app. A: "> 30% ending with an ellipsis"
    min_alpha_word_frac: float | None = 0.8  # Gopher app. A: "80% of words ... an alphabetic char"
    min_stop_words: int | None = 2  # Gopher app. A: "at least two of the following English words"
    stop_words: tuple[str, ...] = GOPHER_STOP_WORDS
    bullet_starts: tuple[str, ...] = ("•", "-")  # datatrove's bullets
    ellipsis_ends: tuple[str, ...] = ("...", "…")


class GopherQualityFilter(Filter):
    name = "gopher_quality"
    config_class = GopherQualityConfig
    reasons = (
        "empty_text",
        "word_count",
        "mean_word_length",
        "hash_word_ratio",
        "ellipsis_word_ratio",
        "bullet_line_frac",
        "ellipsis_line_frac",
        "alpha_word_frac",
        "stop_word_count",
    )
    signal_rules = SignalRules(
        ranges={
            "gopher_word_count": COUNT,
            "gopher_mean_word_length": COUNT,
            "gopher_hash_word_ratio": FRACTION,
            "gopher_ellipsis_word_ratio": FRACTION,
            "gopher_bullet_line_frac": FRACTION,
            "gopher_ellipsis_line_frac": FRACTION,
            "gopher_alpha_word_frac": FRACTION,
            "gopher_stop_word_count": COUNT,
        }
    )
    signal_fields = (
        pa.field("gopher_word_count", pa.int32()),  # words, punctuation tokens excluded
        pa.field("gopher_mean_word_length", pa.float32()),  # characters per word
        pa.field("gopher_hash_word_ratio", pa.float32()),  # "#" per word, capped at 1
        pa.field("gopher_ellipsis_word_ratio", pa.float32()),  # "..." and "…" per word, capped at 1
        pa.field("gopher_bullet_line_frac", pa.float32()),  # of non-blank lines
        pa.field("gopher_ellipsis_line_frac", pa.float32()),  # of non-blank lines
        pa.field("gopher_alpha_word_frac", pa.float32()),  # words with an alphabetic character
        pa.field("gopher_stop_word_count", pa.int32()),  # distinct stop words present
    )

    def __init__(self, config: GopherQualityConfig = GopherQualityConfig()):
        if (
            config.min_words is not None
            and config.max_words is not None
            and config.min_words > config.max_words
        ):
            raise ValueError(f"min_words {config.min_words} > max_words {config.max_words}")
        self.config = config
        self._stop_words = frozenset(config.stop_words)

    def score(self, record: Record) -> Record:
        text = record.get("text") or ""
        words = [token for token in tokenize(text) if is_word(token)]
        n_words = len(words)
        lines = [line.strip() for line in nonblank_lines(text)]
        config = self.config
        return {
            "gopher_word_count": n_words,
            "gopher_mean_word_length": ratio(sum(map(len, words)), n_words),
            "gopher_hash_word_ratio": ratio(text.count("#"), n_words, cap=1.0),
            "gopher_ellipsis_word_ratio": ratio(
                text.count("...") + text.count("…"), n_words, cap=1.0
            ),
            "gopher_bullet_line_frac": ratio(
                sum(line.startswith(config.bullet_starts) for line in lines), len(lines)
            ),
            "gopher_ellipsis_line_frac": ratio(
                sum(line.endswith(config.ellipsis_ends) for line in lines), len(lines)
            ),
            "gopher_alpha_word_frac": ratio(sum(map(has_alpha, words)), n_words),
            "gopher_stop_word_count": len(self._stop_words.intersection(words)),
        }

    def decide(self, record: Record) -> Drop | None:
        config = self.config
        if is_blank(record.get("text") or ""):
            return Drop("empty_text")
        words = record["gopher_word_count"]
        if config.min_words is not None and words < config.min_words:
            return Drop("word_count", f"{words} < {config.min_words}")
        if config.max_words is not None and words > config.max_words:
            return Drop("word_count", f"{words} > {config.max_words}")
        mean = record["gopher_mean_word_length"]
        if config.min_mean_word_length is not None and mean < config.min_mean_word_length:
            return Drop("mean_word_length", f"{mean:.2f} < {config.min_mean_word_length}")
        if config.max_mean_word_length is not None and mean > config.max_mean_word_length:
            return Drop("mean_word_length", f"{mean:.2f} > {config.max_mean_word_length}")
        for reason, limit in (
            ("hash_word_ratio", config.max_hash_word_ratio),
            ("ellipsis_word_ratio", config.max_ellipsis_word_ratio),
            ("bullet_line_frac", config.max_bullet_line_frac),
            ("ellipsis_line_frac", config.max_ellipsis_line_frac),
        ):
            value = record[f"gopher_{reason}"]
            if limit is not None and value > limit:
                return Drop(reason, f"{value:.3f} > {limit}")
        alpha = record["gopher_alpha_word_frac"]
        if config.min_alpha_word_frac is not None and alpha < config.min_alpha_word_frac:
            return Drop("alpha_word_frac", f"{alpha:.3f} < {config.min_alpha_word_frac}")
        stop = record["gopher_stop_word_count"]
        if config.min_stop_words is not None and stop < config.min_stop_words:
            return Drop("stop_word_count", f"{stop} < {config.min_stop_words}")
        return None
