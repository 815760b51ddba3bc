"""Image dedup: exact by ``sha256`` of the served bytes, near by 64-bit pHash within a Hamming
distance, both through Beam shuffles (no worker holds all hashes).

Keeper policy (both): the image with the most original pixels wins (a resized copy loses to its
source), then the most original bytes (less compression), then the smallest id (deterministic).
Others are rejected with ``dup_of`` = the keeper's id.

Near duplicates: the 64 bits are cut into ``max_distance + 1`` blocks (11 for the default 10):
two hashes within distance d differ in at most d bits, so by pigeonhole at least one of the d+1
blocks is identical. Each record is keyed by (block index, block value) for every block; each
group compares its members pairwise (``hamming <= max_distance``) and emits, for each record
that has a better one in the group, the worse record → its best better one. A record with any better near duplicate is rejected
(``dedup_near.near_duplicate``, ``dup_of`` = its best such neighbour). This is the greedy rule of
imagededup's ``find_duplicates_to_remove``: in a chain A > B > C where only A~B and B~C are
within the distance, C is dropped too (it is a near copy of something dropped); it never keeps
two images within the distance of each other. A group larger than ``max_bucket`` (a degenerate
block value, e.g. all-zero bits of flat images) is compared only within windows of that size
after sorting by hash, bounding the work of one key.

Default distance 10 of 64 bits: imagededup's default ``max_distance_threshold`` for PHash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue

from transforms.images.keep_best import KeepBestPerKey
from transforms.images.url_dedup import DUP_OF
from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import (
    DEDUP,
    KEPT,
    REJECTED,
    GlobalStep,
    Record,
    RunContext,
    SignalRules,
    StageResult,
    rejected,
    split_outputs,
)

HASH_BITS = 64


def keeper_rank(record: Record) -> tuple[int, int]:
    """Sort key, best first: more original pixels, then more original bytes."""
    return (
        -(record.get("original_width") or 0) * (record.get("original_height") or 0),
        -(record.get("original_bytes") or 0),
    )


def blocks(max_distance: int) -> list[tuple[int, int]]:
    """(shift, width) of ``max_distance + 1`` contiguous blocks covering the 64 bits."""
    count = max_distance + 1
    base, extra = divmod(HASH_BITS, count)
    spans, start = [], 0
    for i in range(count):
        width = base + (1 if i < extra else 0)
        spans.append((start, width))
        start += width
    return spans


def band_keys(phash: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    value = int(phash, 16)
    return [(i, (value >> shift) & ((1 << width) - 1)) for i, (shift, width) in enumerate(spans)]


@dataclass(frozen=True)
class ExactImageDedupConfig:
    enabled: bool = True


@dataclass(frozen=True)
class NearImageDedupConfig:
    enabled: bool = True
    max_distance: int = 10  # imagededup's PHash default
    max_bucket: int = 1000

    def __post_init__(self) -> None:
        if not 0 <= self.max_distance < HASH_BITS:
            raise ValueError(f"max_distance must be in [0, {HASH_BITS}), got {self.max_distance}")
        if self.max_bucket < 2:
            raise ValueError(f"max_bucket must be >= 2, got {self.max_bucket}")


class ExactImageDedup(GlobalStep):
    name = "dedup_exact"
    config_class = ExactImageDedupConfig
    role = DEDUP
    reasons = ("duplicate",)
    signal_rules = SignalRules(must_be_null=("dup_of",))
    signal_fields = (DUP_OF,)

    def __init__(self, config: ExactImageDedupConfig = ExactImageDedupConfig(), run: RunContext | None = None):
        super().__init__(config, run)

    def expand(self, records: beam.PCollection) -> StageResult:
        stage = self.name
        return split_outputs(
            records | "KeepBest" >> KeepBestPerKey(self._run, lambda r: r["sha256"], stage, "duplicate", keeper_rank)
        )


def near_pairs(
    members: Iterable[tuple[str, str, tuple]], max_distance: int, max_bucket: int
) -> Iterator[tuple[str, tuple]]:
    """``(worse id, (rank, better id))`` for members ``(id, phash, rank)`` that have a better
    member within the distance: the best such, once per worse member (the step keeps the best
    over every group, so one per group is all it needs: a cluster of n near copies gives n
    pairs, not n²/2). Each member's window is compared at once (XOR and popcount in numpy)."""
    ordered = sorted(members, key=lambda m: (m[1], m[0]))
    values = np.array([int(phash, 16) for _, phash, _ in ordered], dtype=np.uint64)
    keys = [(rank, id_) for id_, _, rank in ordered]
    best: dict[int, tuple] = {}
    for i in range(len(ordered) - 1):
        window = values[i + 1 : i + max_bucket]
        for j in (np.flatnonzero(np.bitwise_count(window ^ values[i]) <= max_distance) + i + 1).tolist():
            better, worse = (keys[i], j) if keys[i] < keys[j] else (keys[j], i)
            if worse not in best or better < best[worse]:
                best[worse] = better
    for worse, better in best.items():
        yield ordered[worse][0], better


class NearImageDedup(GlobalStep):
    name = "dedup_near"
    config_class = NearImageDedupConfig
    role = DEDUP
    reasons = ("near_duplicate",)
    signal_rules = SignalRules(must_be_null=("dup_of",))
    signal_fields = (DUP_OF,)

    def __init__(self, config: NearImageDedupConfig = NearImageDedupConfig(), run: RunContext | None = None):
        super().__init__(config, run)

    def expand(self, records: beam.PCollection) -> StageResult:
        stage = self.name
        spans = blocks(self.config.max_distance)
        max_distance, max_bucket = self.config.max_distance, self.config.max_bucket

        def bands(record: Record) -> Iterator[tuple[tuple[int, int], tuple[str, str, tuple]]]:
            member = (record["id"], record["phash"], keeper_rank(record))
            for key in band_keys(record["phash"], spans):
                yield key, member

        best_better = (
            records
            | "Bands" >> beam.FlatMap(bands)
            | "GroupByBand" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(lambda kv: near_pairs(kv[1], max_distance, max_bucket))
            | "BestBetter" >> beam.CombinePerKey(min)
        )

        def decide(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
            _id, groups = element
            better = groups["better"][0] if groups["better"] else None
            for record in groups["record"]:
                if better is None:
                    yield {**record, "dup_of": None}
                else:
                    yield pvalue.TaggedOutput(
                        REJECTED,
                        rejected({**record, "dup_of": better[1]}, stage, "near_duplicate", f"dup of {better[1]}"),
                    )

        out = (
            {"record": records | "KeyById" >> beam.Map(lambda r: (r["id"], r)), "better": best_better}
            | "JoinBetter" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Decide" >> beam.FlatMap(decide).with_outputs(REJECTED, main=KEPT)
        )
        return split_outputs(out)
