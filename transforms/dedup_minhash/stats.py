"""The report's MinHash section as data: one mergeable ``CombineFn`` over small facts.

Facts (tuples): ``("docs", signed, without_shingles)`` per signature bundle,
``("cluster", keeper_id, size, members_of_this_run, from_previous_run, example_ids)`` per
component of two or more nodes, the components' ``("round", number, step, changed)`` and,
with verification, ``("verify", pairs_checked, pairs_passed)`` per bundle.
The output is one JSON-ready dict: cluster count, the cluster-size histogram (fixed bins, so
reports of different runs compare), the largest clusters with example ids, removals by reason
and the rounds the components took.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from transforms.dedup_minhash.bands import approximate_threshold, estimated_threshold
from transforms.dedup_minhash.config import MinHashDedupConfig, band_params, config_dict

# Lower edges of the size bins: 2, 3, 4, 5-8, 9-16, ..., 513-1024, 1025+.
SIZE_BINS = (2, 3, 4, 5, 9, 17, 33, 65, 129, 257, 513, 1025)


def size_bin(size: int) -> str:
    for lower, upper in itertools.pairwise(SIZE_BINS):
        if size < upper:
            return str(lower) if upper == lower + 1 else f"{lower}-{upper - 1}"
    return f"{SIZE_BINS[-1]}+"


class MinHashStatsFn(beam.CombineFn):
    def __init__(self, config: MinHashDedupConfig):
        self._config = config

    def create_accumulator(self) -> dict[str, Any]:
        return {
            "docs": 0,
            "no_shingles": 0,
            "clusters": 0,
            "in_clusters": 0,
            "removed": 0,
            "previous_clusters": 0,
            "removed_previous": 0,
            "sizes": Counter(),
            "largest": [],
            "rounds": Counter(),
            "verify_checked": 0,
            "verify_passed": 0,
        }

    def add_input(self, acc: dict[str, Any], fact: tuple) -> dict[str, Any]:
        kind = fact[0]
        if kind == "docs":
            acc["docs"] += fact[1]
            acc["no_shingles"] += fact[2]
        elif kind == "round":
            acc["rounds"][(fact[1], fact[2])] += fact[3]
        elif kind == "verify":
            acc["verify_checked"] += fact[1]
            acc["verify_passed"] += fact[2]
        elif kind == "cluster":
            _, keeper, size, current, previous, examples = fact
            acc["clusters"] += 1
            acc["in_clusters"] += current
            acc["sizes"][size_bin(size)] += 1
            if previous:
                acc["previous_clusters"] += 1
                acc["removed_previous"] += current
            else:
                acc["removed"] += current - 1
            self._offer(acc["largest"], (size, keeper, bool(previous), tuple(examples)))
        else:
            raise ValueError(f"unknown fact {fact!r}")
        return acc

    def _offer(self, heap: list, item: tuple) -> None:
        # Min-heap of the largest clusters; ties broken by keeper id (smaller id wins).
        entry = (item[0], _Descending(item[1]), item[2], item[3])
        if len(heap) < self._config.largest_clusters:
            heapq.heappush(heap, entry)
        elif heap and entry > heap[0]:
            heapq.heapreplace(heap, entry)

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        merged = self.create_accumulator()
        for acc in accs:
            for key in (
                "docs",
                "no_shingles",
                "clusters",
                "in_clusters",
                "removed",
                "previous_clusters",
                "removed_previous",
                "verify_checked",
                "verify_passed",
            ):
                merged[key] += acc[key]
            merged["sizes"].update(acc["sizes"])
            merged["rounds"].update(acc["rounds"])
            for entry in acc["largest"]:
                self._offer(merged["largest"], (entry[0], entry[1].value, entry[2], entry[3]))
        return merged

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        config = self._config
        changed = Counter()
        for (number, _step), count in acc["rounds"].items():
            changed[number] += count
        # Round n ran and changed nothing -> converged after n rounds. A round with no facts
        # never ran (gated) or saw no edges, which also means nothing changed.
        quiet = [n for n in range(1, config.max_rounds + 1) if changed[n] == 0]
        largest = sorted(acc["largest"], reverse=True)
        return {
            "config": config_dict(config),
            "band_params": band_params(config),
            "estimated_threshold": round(estimated_threshold(config.bands, config.rows), 4),
            "approximate_threshold": round(approximate_threshold(config.bands, config.rows), 4),
            "documents": acc["docs"],
            "documents_without_shingles": acc["no_shingles"],
            "clusters": acc["clusters"],
            "documents_in_clusters": acc["in_clusters"],
            "removed_near_duplicate": acc["removed"],
            "verification": {
                "threshold": config.verify_threshold,
                "pairs_checked": acc["verify_checked"],
                "pairs_passed": acc["verify_passed"],
            },
            "clusters_with_previous_run": acc["previous_clusters"],
            "removed_near_duplicate_of_previous_run": acc["removed_previous"],
            "cluster_size_histogram": {
                label: acc["sizes"][label] for label in map(size_bin, SIZE_BINS) if acc["sizes"][label]
            },
            "largest_clusters": [
                {
                    "cluster_id": keeper.value,
                    "size": size,
                    "with_previous_run": previous,
                    "example_ids": list(examples),
                }
                for size, keeper, previous, examples in largest
            ],
            "components": {
                "max_rounds": config.max_rounds,
                "converged": bool(quiet),
                "rounds": quiet[0] if quiet else config.max_rounds,
                "changed_per_round": [
                    {
                        "round": n,
                        "large_star": acc["rounds"][(n, "large")],
                        "small_star": acc["rounds"][(n, "small")],
                    }
                    for n in sorted(changed)
                    if changed[n]
                ],
            },
        }


class _Descending:
    """Reverses string order inside the heap tuple: among equal sizes, smaller ids rank higher."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __reduce__(self):
        return (_Descending, (self.value,))
