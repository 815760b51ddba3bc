"""Mergeable summaries: fixed-bin histograms, bounded top counts, the k smallest by key.

Each summary is plain data (dicts, lists, numbers) so that it pickles cheaply between Beam
workers, serialises to JSON as it is, and merges the same way inside a ``CombineFn`` and in the
report (``merge_*`` functions take any number of summaries, in any order).

Histograms have fixed bins declared up front (Dolma's approach), never bins fitted to the data,
so histograms of two files, two workers or two runs line up bin for bin and can be added or
compared. A histogram's ``counts`` has one slot more than its ``edges``: slot 0 counts values
below ``edges[0]``, slot i counts ``edges[i-1] <= x < edges[i]``, the last slot counts values at
or above ``edges[-1]``; a bin spec may close its last bin (``x == edges[-1]`` goes to the last
bin, not to overflow) so a fraction of exactly 1.0 is in range.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

Summary = dict[str, Any]


@dataclass(frozen=True)
class Bins:
    """Fixed bin edges; ``closed`` puts ``x == edges[-1]`` in the last bin."""

    kind: str
    edges: tuple[float, ...]
    closed: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if len(self.edges) < 2 or any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"bin edges must increase, got {self.edges}")

    def slot(self, value: float) -> int:
        if self.closed and value == self.edges[-1]:
            return len(self.edges) - 1
        return bisect_right(self.edges, value)

    def labels(self) -> list[str]:
        """One label per slot: underflow, each bin, overflow."""
        edges = self.edges
        if self.integer:
            inner = [_int_range_label(low, high) for low, high in pairwise(edges)]
            low_label, high_label = _int_label(edges[0]), _int_label(edges[-1])
        else:
            inner = [f"{low:g}–{high:g}" for low, high in pairwise(edges)]
            low_label, high_label = f"{edges[0]:g}", f"{edges[-1]:g}"
        return [f"<{low_label}", *inner, f">{high_label}" if self.closed else f"≥{high_label}"]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": list(self.edges), "closed": self.closed,
                "integer": self.integer, "labels": self.labels()}


def _int_range_label(low: float, high: float) -> str:
    """``[low, high)`` of integers: "0", "2–4", then "1k–2k" once the upper edge is round."""
    if high - low == 1:
        return _int_label(low)
    if high < 1000:
        return f"{_int_label(low)}–{_int_label(high - 1)}"
    return f"{_int_label(low)}–{_int_label(high)}"


def _int_label(x: float) -> str:
    x = int(x)
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if x >= size and x % size == 0:
            return f"{x // size}{unit}"
    return str(x)


def fraction_bins(width: float = 0.05) -> Bins:
    """[0, 1] in equal bins: shares, ratios, probabilities."""
    n = round(1 / width)
    return Bins("fraction", tuple(round(i * width, 10) for i in range(n + 1)), closed=True)


def linear_bins(low: float, high: float, width: float) -> Bins:
    n = round((high - low) / width)
    return Bins("linear", tuple(round(low + i * width, 10) for i in range(n + 1)))


def log_count_bins(max_exponent: int = 9) -> Bins:
    """Counts on a 1-2-5 log scale: 0, 1, 2–4, 5–9, 10–19, ... up to 10**max_exponent."""
    edges = [0, 1]
    for exponent in range(max_exponent):
        edges += [2 * 10**exponent, 5 * 10**exponent, 10 ** (exponent + 1)]
    return Bins("log", tuple(edges), integer=True)


# ---- histograms ---------------------------------------------------------------------------


def histogram(bins: Bins) -> Summary:
    return {"counts": [0] * (len(bins.edges) + 1), "missing": 0, "sum": 0.0, "min": None, "max": None}


def add_value(hist: Summary, bins: Bins, value: Any) -> None:
    """Count ``value``; ``None``, NaN and non-numbers count as missing."""
    if value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value)):
        hist["missing"] += 1
        return
    value = float(value)
    hist["counts"][bins.slot(value)] += 1
    hist["sum"] += value
    hist["min"] = value if hist["min"] is None else min(hist["min"], value)
    hist["max"] = value if hist["max"] is None else max(hist["max"], value)


def merge_histograms(hists: Iterable[Summary]) -> Summary:
    merged: Summary | None = None
    for hist in hists:
        if merged is None:
            merged = {**hist, "counts": list(hist["counts"])}
            continue
        if len(hist["counts"]) != len(merged["counts"]):
            raise ValueError("histograms with different bins cannot be merged")
        merged["counts"] = [a + b for a, b in zip(merged["counts"], hist["counts"])]
        merged["missing"] += hist["missing"]
        merged["sum"] += hist["sum"]
        merged["min"] = _pick(min, merged["min"], hist["min"])
        merged["max"] = _pick(max, merged["max"], hist["max"])
    if merged is None:
        raise ValueError("nothing to merge")
    return merged


def _pick(fn, a, b):
    return b if a is None else a if b is None else fn(a, b)


# ---- top counts (Misra-Gries) -------------------------------------------------------------


def top_counts() -> Summary:
    """Counts per value, bounded: exact while there are at most ``capacity`` distinct values.

    Beyond that, the Misra-Gries summary (mergeable, Agarwal et al. 2012, "Mergeable
    summaries"): each kept count is at most ``error`` below the true count, and any value whose
    true count exceeds ``error`` is kept. ``total`` is exact, so ``total - sum(counts)`` is the
    "other" share.
    """
    return {"counts": {}, "total": 0, "error": 0}


def add_item(top: Summary, item: Any, capacity: int, count: int = 1) -> None:
    key = str(item)
    top["counts"][key] = top["counts"].get(key, 0) + count
    top["total"] += count
    if len(top["counts"]) > 2 * capacity:
        _compact(top, capacity)


def _compact(top: Summary, capacity: int) -> None:
    counts = top["counts"]
    if len(counts) <= capacity:
        return
    cut = heapq.nlargest(capacity + 1, counts.values())[-1]
    top["counts"] = {k: v - cut for k, v in counts.items() if v > cut}
    top["error"] += cut


def merge_top_counts(tops: Iterable[Summary], capacity: int) -> Summary:
    merged = top_counts()
    for top in tops:
        for key, count in top["counts"].items():
            merged["counts"][key] = merged["counts"].get(key, 0) + count
        merged["total"] += top["total"]
        merged["error"] += top["error"]
    _compact(merged, capacity)
    return merged


def finish_top_counts(top: Summary, capacity: int) -> Summary:
    """Compacted to ``capacity``, counts sorted by count (descending) then value."""
    _compact(top, capacity)
    ordered = sorted(top["counts"].items(), key=lambda kv: (-kv[1], kv[0]))
    return {**top, "counts": dict(ordered)}


# ---- the k smallest by key ----------------------------------------------------------------


def add_smallest(items: list[list[Any]], key: str, value: Any, k: int) -> list[list[Any]]:
    """``items`` as ``[key, value]`` pairs sorted by key; keeps the ``k`` smallest keys.

    The k smallest keys of a set do not depend on the order elements arrive or merge in, so a
    sample chosen this way is the same on every runner and every rerun.
    """
    if len(items) >= k and key >= items[-1][0]:
        return items
    if any(existing == key for existing, _ in items):
        return items
    items.append([key, value])
    items.sort(key=lambda kv: kv[0])
    del items[k:]
    return items


def merge_smallest(lists: Iterable[list[list[Any]]], k: int) -> list[list[Any]]:
    merged: dict[str, Any] = {}
    for items in lists:
        for key, value in items:
            merged.setdefault(key, value)
    return [[key, merged[key]] for key in sorted(merged)[:k]]
