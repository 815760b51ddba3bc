"""Pure text statistics shared by the heuristic quality filters (Gopher, C4, FineWeb).

These run on every document, so they stay on ``str`` methods and single passes; each filter
computes what it needs once per document and derives all of its signals from that.

Tokens. datatrove splits words with NLTK's Treebank tokenizer or spaCy's; we split on whitespace
and peel each piece's leading and trailing punctuation off as tokens of their own. Ordinary prose
gives the same words at a fraction of the cost, with no model to load. The differences:
contractions stay whole ("don't"; NLTK and spaCy: "do", "n't"); a run of punctuation is one token
(")." where they give ")", "."); punctuation inside a word stays in it ("U.S", "e.g",
"well-known"); and there is no segmentation of scripts written without spaces (Chinese, Japanese,
Thai), where a whole run counts as one word. The filters that use tokens are calibrated on
space-delimited (English) text, as in Gopher and FineWeb.

Lines. ``str.splitlines`` (so "\\r\\n" and "\\u2028" end a line too), and blank lines (nothing
but whitespace and zero-width spacers) are layout, not lines: every line statistic is over
non-blank lines. On text without blank lines (trafilatura's output, which FineWeb's thresholds
were fitted on) this gives the reference's result; on text whose paragraphs are separated by
blank lines it keeps a fraction such as "share of short lines" from being inflated by the
separators.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import numpy as np

# Zero-width characters that pages use as spacers (lines holding only U+200B are common in
# extracted text).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
# datatrove's PUNCTUATION (utils/text.py) plus the rest of ASCII punctuation and common quotes,
# dashes and bullets; control and zero-width characters count as symbols too. A token made only
# of these is a symbol, not a word.
PUNCTUATION = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "‘’‚‛“”„‟«»‹›´"
    "–—―‐‑‒…·•‣►▪◦●∶"
    "、。，．：；！？（）【】《》〈〉「」『』〔〕━～％＆＋＝＠＃＊"
    + "".join(map(chr, (*range(9), 11, 12, *range(14, 32), *range(127, 160))))
    + ZERO_WIDTH
)
PUNCTUATION_SET = frozenset(PUNCTUATION)
# A line made only of these is blank.
BLANK = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + ZERO_WIDTH


def tokenize(text: str) -> list[str]:
    """Whitespace-separated pieces, with leading and trailing punctuation runs as their own tokens.

    ``"(Hello), world!"`` gives ``["(", "Hello", "),", "world", "!"]``.
    """
    tokens: list[str] = []
    append = tokens.append
    for piece in text.split():
        if piece[0] not in PUNCTUATION_SET and piece[-1] not in PUNCTUATION_SET:
            append(piece)
            continue
        core = piece.strip(PUNCTUATION)
        if len(core) == len(piece) or not core:
            append(piece)
            continue
        lead = len(piece) - len(piece.lstrip(PUNCTUATION))
        if lead:
            append(piece[:lead])
        append(core)
        tail = lead + len(core)
        if tail < len(piece):
            append(piece[tail:])
    return tokens


def is_word(token: str) -> bool:
    """A token that is not made only of punctuation and symbols (``tokenize`` never yields "")."""
    return token[0] not in PUNCTUATION_SET


def has_alpha(word: str) -> bool:
    """Whether ``word`` holds at least one alphabetic character."""
    return word.isalpha() or any(c.isalpha() for c in word)


def is_blank(line: str) -> bool:
    """Whether ``line`` holds nothing but whitespace and zero-width spacers."""
    return not line.strip(BLANK)


def nonblank_lines(text: str) -> list[str]:
    """Lines of ``text`` that are not blank, unstripped."""
    return [line for line in text.splitlines() if line.strip(BLANK)]


def paragraphs(text: str) -> list[str]:
    """Runs of non-blank lines, each joined by "\\n"; blank lines separate paragraphs."""
    result: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip(BLANK):
            current.append(line)
        elif current:
            result.append("\n".join(current))
            current = []
    if current:
        result.append("\n".join(current))
    return result


def duplicates(items: list[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and how many characters those repeats hold."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def ratio(numerator: float, denominator: float, cap: float | None = None) -> float:
    """``numerator / denominator``, 0.0 when the denominator is 0; at most ``cap`` if given."""
    if denominator <= 0:
        return 0.0 if numerator <= 0 or cap is None else cap
    value = numerator / denominator
    return value if cap is None or value <= cap else cap


@dataclass(frozen=True)
class NGramLevel:
    """The n-grams of a token sequence for one n, as integer ids (equal ids, equal n-grams)."""

    n: int
    ids: np.ndarray  # the id of the n-gram starting at each position
    first: np.ndarray  # for each id, the position where it first occurs
    offsets: np.ndarray  # character offset of each token, tokens concatenated; one extra at the end

    def top_chars(self) -> int:
        """Characters covered by every occurrence of the most frequent n-gram (the first seen among
        equals), written with single spaces between tokens, as datatrove measures it; 0 when no
        n-gram occurs twice."""
        if not self.ids.size:
            return 0
        counts = np.bincount(self.ids)
        best = int(counts.max())
        if best < 2:
            return 0
        start = int(np.argmax(counts[self.ids] == best))
        return int(self.offsets[start + self.n] - self.offsets[start] + self.n - 1) * best

    def duplicate_chars(self) -> int:
        """Characters in repeated n-grams, tokens concatenated, scanning left to right and jumping
        past each repeat so that overlapping repeats count once (datatrove's
        ``find_all_duplicate``)."""
        n = self.n
        # Only positions whose n-gram occurred earlier can be repeats: the scan visits those and
        # adds the positions in between to ``seen`` in bulk.
        candidates = np.flatnonzero(self.first[self.ids] < np.arange(self.ids.size)).tolist()
        if not candidates:
            return 0
        ids = self.ids.tolist()
        seen: set[int] = set()
        repeats: list[int] = []
        i = 0
        for j in candidates:
            if j < i:
                continue
            seen.update(ids[i:j])
            if ids[j] in seen:
                repeats.append(j)
                i = j + n
            else:
                seen.add(ids[j])
                i = j + 1
        starts = np.array(repeats, dtype=np.int64)
        return int((self.offsets[starts + n] - self.offsets[starts]).sum())


def ngram_levels(tokens: list[str], max_n: int) -> Iterator[NGramLevel]:
    """The n-grams of ``tokens`` for n = 2 .. ``max_n``, one level at a time.

    An n-gram's id is that of the pair (its leading (n-1)-gram, its last token), so each level
    costs one vectorised pass whatever n is, and only one level is held at a time.
    """
    size = len(tokens)
    offsets = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, tokens), np.int64, size), out=offsets[1:])
    # A token's id is the position of its first occurrence: equal tokens, equal ids.
    first_seen: dict[str, int] = {}
    unigrams = np.fromiter(map(first_seen.setdefault, tokens, count()), np.int64, size)
    base = max(size, 1)
    level = unigrams
    for n in range(2, max_n + 1):
        pairs = level[: max(size - n + 1, 0)] * base + unigrams[n - 1 :]
        _, first, level = np.unique(pairs, return_index=True, return_inverse=True)
        level = level.reshape(-1)
        yield NGramLevel(n, level, first, offsets)
