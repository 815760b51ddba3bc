"""Exact dedup on normalised text, through a Beam shuffle.

Texts that are equal after normalisation (Unicode NFKC, lower case, every run of
non-alphanumeric characters collapsed to one space) form a cluster. The keeper is chosen by a
documented, deterministic policy: earliest ``fetched_at`` (records without one come last), then
smallest ``id``. The others are rejected as ``dedup_exact.duplicate`` with ``dup_of`` set to the
keeper's id. Every record gets ``dup_cluster_size``.

Only (fetched_at, id) pairs go through the combiner that picks keepers; records meet their
cluster's keeper in a ``SpilledCoGroupByKey`` on the content hash (the records through spill
files, so memory stays bounded whatever the input size).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import (
    DEDUP,
    KEPT,
    REJECTED,
    GlobalStep,
    Record,
    SignalRules,
    StageResult,
    rejected,
    split_outputs,
)

_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True)
class ExactDedupConfig:
    enabled: bool = True


def normalise(text: str) -> str:
    return _NON_ALNUM.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def content_key(text: str | None) -> str:
    return hashlib.blake2b(normalise(text or "").encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def keeper_rank(record: Record) -> tuple[bool, bool, str, str]:
    """Smaller ranks first: crawled before synthetic (a rephrase never displaces its source),
    earliest fetch, records without a fetch time last, then smallest id."""
    fetched_at = record.get("fetched_at")
    return (bool(record.get("synthetic")), fetched_at is None, fetched_at.isoformat() if fetched_at else "",
            record["id"])


class _KeeperFn(beam.CombineFn):
    """(best rank, cluster size) per content key; mergeable, so it lifts before the shuffle."""

    def create_accumulator(self) -> tuple[Any, int]:
        return (None, 0)

    def add_input(self, acc: tuple[Any, int], rank: tuple) -> tuple[Any, int]:
        best, size = acc
        return (rank if best is None or rank < best else best, size + 1)

    def merge_accumulators(self, accs: Iterable[tuple[Any, int]]) -> tuple[Any, int]:
        best, size = None, 0
        for acc_best, acc_size in accs:
            size += acc_size
            if acc_best is not None and (best is None or acc_best < best):
                best = acc_best
        return (best, size)

    def extract_output(self, acc: tuple[Any, int]) -> tuple[str, int]:
        best, size = acc
        return (best[-1], size)


def _emit(key: str, grouped: dict[str, list]) -> Iterator[Any]:
    ((keeper_id, size),) = grouped["keeper"]
    for record in grouped["records"]:
        record["dup_cluster_size"] = size
        if record["id"] == keeper_id:
            record["dup_of"] = None
            yield record
        else:
            record["dup_of"] = keeper_id
            yield pvalue.TaggedOutput(
                REJECTED, rejected(record, ExactDedup.name, "duplicate", f"dup_of={keeper_id}")
            )


class ExactDedup(GlobalStep):
    """Kept records (one per cluster) on ``kept``; the other members on ``rejected``."""

    name = "dedup_exact"
    config_class = ExactDedupConfig
    role, cluster_size_field = DEDUP, "dup_cluster_size"
    reasons = ("duplicate",)
    signal_rules = SignalRules(must_be_null=("dup_of",), ranges={"dup_cluster_size": (1, None)})
    signal_fields = (
        pa.field("dup_of", pa.string()),
        pa.field("dup_cluster_size", pa.int32()),
    )

    def expand(self, records: beam.PCollection) -> StageResult:
        keyed = records | "KeyByContent" >> beam.Map(lambda r: (content_key(r.get("text")), r))
        keepers = (
            keyed
            | "Rank" >> beam.MapTuple(lambda key, r: (key, keeper_rank(r)))
            | "PickKeeper" >> beam.CombinePerKey(_KeeperFn())
        )
        return split_outputs(
            {"records": keyed, "keeper": keepers}
            | "JoinKeeper" >> SpilledCoGroupByKey.for_run(self._run, "records", stream_large=True)
            | "Split" >> beam.FlatMapTuple(_emit).with_outputs(REJECTED, main=KEPT)
        )
