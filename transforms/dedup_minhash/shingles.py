"""Word n-gram shingles of normalised text, hashed for a whole batch of documents at once.

Normalisation (as FineWeb's ``simplify_text``, in spirit): Unicode NFKC, lower case, every
digit replaced by ``0`` (so changed dates and counters do not break shingles), every run of
non-alphanumeric characters collapsed to one space. Han, kana and hangul characters count as
words of their own, since those scripts do not separate words with spaces.

Normalisation is vectorised over the batch too: after NFKC and lower case (C, per text), every
code point is mapped through one table built from the same ``\w`` and ``\d`` classes (itself,
``0``, or a space), so no regex runs per text; texts with unspaced scripts take ``normalise``.
Hashing is vectorised over the batch: the normalised texts are joined into one byte buffer,
each word gets a 64-bit polynomial hash from prefix sums (numpy, wrapping arithmetic
mod 2^64), consecutive word hashes are combined into n-gram hashes, and each n-gram hash is
mixed (MurmurHash3 ``fmix64``) and cut to the 32 bits that datasketch's ``affine32`` scheme
takes as input. A document with fewer than ``ngram`` words has one shingle: all its words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_HAS_UNSPACED = re.compile(f"[{_UNSPACED}]")
_WORD = re.compile(r"\w+")
# Slower than _WORD: only for texts that hold characters of those scripts.
_WORD_OR_UNSPACED = re.compile(rf"[{_UNSPACED}]|[^\W{_UNSPACED}]+")
_DIGIT = re.compile(r"\d")

_U64 = np.uint64
_BYTE_BASE = _U64(0x100000001B3)  # odd, so invertible mod 2^64 (FNV-1a's 64-bit prime)
_BYTE_BASE_INV = _U64(pow(0x100000001B3, -1, 1 << 64))
_WORD_BASE = _U64(0x9E3779B97F4A7C15)  # odd (2^64 / golden ratio)
_SPACE, _NEWLINE = 32, 10


def _folded(text: str | None) -> str:
    if not text:
        return ""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def normalise(text: str | None) -> str:
    return _words(_folded(text))


def _words(text: str) -> str:
    words = " ".join((_WORD_OR_UNSPACED if _HAS_UNSPACED.search(text) else _WORD).findall(text))
    if "_" in words:
        words = " ".join(words.replace("_", " ").split())
    return _DIGIT.sub("0", words)


@functools.cache
def _fold_table() -> np.ndarray:
    """Code point -> what ``normalise`` leaves of it: itself inside a word, ``0`` for a digit,
    a space otherwise (``_`` included). Built once per process (~0.2 s, 4.4 MB) from the very
    regexes ``normalise`` uses, so the two agree by construction."""
    every = "".join(map(chr, range(0x110000)))
    table = np.full(0x110000, _SPACE, dtype=np.uint32)
    for match in _WORD.finditer(every):
        table[match.start() : match.end()] = np.arange(match.start(), match.end(), dtype=np.uint32)
    for match in re.finditer(r"\d+", every):
        table[match.start() : match.end()] = ord("0")
    table[ord("_")] = _SPACE
    return table


def normalised_buffer(texts: Sequence[str | None]) -> bytes:
    """``"\\n".join(normalise(t) for t in texts)`` in UTF-8, except that words may be separated
    by several spaces (the hashing splits on runs of them): one table lookup per code point."""
    folded = [_folded(text) for text in texts]
    joined = "\n".join(folded)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    mapped = _fold_table()[points]
    mapped[np.cumsum([len(text) + 1 for text in folded])[:-1] - 1] = _NEWLINE
    out = mapped.tobytes().decode("utf-32-le")
    if points.size and points.max() >= 0x3040 and _HAS_UNSPACED.search(joined):
        parts = out.split("\n")  # the joins are the only newlines left
        for i, text in enumerate(folded):
            if _HAS_UNSPACED.search(text):
                parts[i] = _words(text)
        out = "\n".join(parts)
    return out.encode("utf-8")


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: a bijection that spreads every input bit."""
    values = values ^ (values >> _U64(33))
    values = values * _U64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> _U64(33))
    values = values * _U64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> _U64(33))


_POWER_CACHE: dict[int, np.ndarray] = {}


def _powers(base: np.uint64, count: int) -> np.ndarray:
    """base^0 .. base^(count-1) mod 2^64, from a per-process table grown by doubling."""
    key = int(base)
    table = _POWER_CACHE.get(key)
    if table is None or table.size < count:
        size = max(count, 2 * (table.size if table is not None else 1 << 16))
        table = np.full(size, base, dtype=_U64)
        table[0] = 1
        table = np.cumprod(table, dtype=_U64)
        _POWER_CACHE[key] = table
    return table[:count]


def _word_hashes(buffer: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every word in ``buffer`` (words split by spaces, documents by newlines) and
    the document index of each word."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    if data.size == 0:
        return np.zeros(0, dtype=_U64), np.zeros(0, dtype=np.int64)
    is_sep = (data == _SPACE) | (data == _NEWLINE)
    word_char = ~is_sep
    edges = np.diff(np.concatenate(([False], word_char, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    weighted = data.astype(_U64) * _powers(_BYTE_BASE, data.size)
    prefix = np.concatenate((np.zeros(1, dtype=_U64), np.cumsum(weighted, dtype=_U64)))
    # sum_{i in word} byte_i * base^(i - start), by shifting the prefix-sum difference back.
    hashes = (prefix[ends] - prefix[starts]) * _powers(_BYTE_BASE_INV, data.size)[starts]
    hashes = fmix64(hashes ^ (ends - starts).astype(_U64) * _WORD_BASE)
    doc_of_word = np.cumsum(data == _NEWLINE)[starts]
    return hashes, doc_of_word


def _combine(words: np.ndarray, count: int, width: int) -> np.ndarray:
    """Order-sensitive hash of each run of ``width`` consecutive words among ``count`` windows."""
    combined = np.zeros(count, dtype=_U64)
    for offset in range(width):
        combined = combined * _WORD_BASE + words[offset : offset + count]
    return combined


def shingle_hashes(texts: Sequence[str | None], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every document's word n-grams, concatenated, and offsets into them.

    Document ``i``'s hashes are ``hashes[offsets[i]:offsets[i + 1]]`` (empty when its
    normalised text has no words). Duplicated n-grams within a document are kept: MinHash is
    set-based, so they change nothing.
    """
    words, doc_of_word = _word_hashes(normalised_buffer(texts))
    words_per_doc = np.bincount(doc_of_word, minlength=len(texts))
    first_word = np.concatenate(([0], np.cumsum(words_per_doc)))
    windows = max(words.size - ngram + 1, 0)
    full = _combine(words, windows, ngram)
    # A window is a shingle when it ends inside the document it starts in.
    inside = doc_of_word[:windows] == doc_of_word[ngram - 1 : ngram - 1 + windows]
    pieces, counts = [], np.zeros(len(texts), dtype=np.int64)
    kept = full[inside]
    kept_doc = doc_of_word[:windows][inside]
    counts += np.bincount(kept_doc, minlength=len(texts))
    short = np.flatnonzero((words_per_doc > 0) & (words_per_doc < ngram))
    if short.size:
        extra = [_combine(words[first_word[d] :], 1, int(words_per_doc[d]))[0] for d in short]
        counts[short] = 1
        order = np.argsort(np.concatenate((kept_doc, short)), kind="stable")
        pieces = np.concatenate((kept, np.array(extra, dtype=_U64)))[order]
    else:
        pieces = kept
    hashes = (fmix64(pieces) >> _U64(32)).astype(np.uint32)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return hashes, offsets


def shingles(text: str | None, ngram: int) -> list[str]:
    """The n-grams themselves, for tests, docs and the per-document baseline benchmark."""
    words = normalise(text).split()
    if not words:
        return []
    if len(words) < ngram:
        return [" ".join(words)]
    return [" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
