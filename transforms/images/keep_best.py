"""``KeepBestPerKey``: one keeper per key, the other records rejected with ``dup_of``.

The URL dedup and the exact image dedup keep the best record of each key (lowest rank, then
smallest id). Grouping the records by key would hold every copy of a key in one task's memory
(one image served for a million URLs, one URL listed a million times), and a task's range is
cut by bytes but one key cannot be. So only ``(rank, id)`` pairs pick each key's keeper, in a
combiner that lifts before the shuffle, and the records stream past their key's keeper one at
a time (``SpilledCoGroupByKey`` with ``stream_large``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import KEPT, REJECTED, Record, RunContext, rejected


class _SmallestFn(beam.CombineFn):
    """The smallest ``(rank, id)`` of a key; its id is the keeper."""

    def create_accumulator(self) -> tuple | None:
        return None

    def add_input(self, best: tuple | None, ranked: tuple) -> tuple:
        return ranked if best is None or ranked < best else best

    def merge_accumulators(self, accumulators: Iterable[tuple | None]) -> tuple | None:
        return min((acc for acc in accumulators if acc is not None), default=None)

    def extract_output(self, best: tuple) -> str:
        return best[-1]


class KeepBestPerKey(beam.PTransform):
    """``records | KeepBestPerKey(run, key_of, stage, reason, rank)`` -> ``kept`` (``dup_of``
    None) and ``rejected`` (``dup_of`` = the keeper's id) outputs."""

    def __init__(self, run: RunContext | None, key_of: Callable[[Record], Any], stage: str, reason: str,
                 rank: Callable[[Record], tuple] | None = None):
        super().__init__()
        self._run = run
        self._key_of = key_of
        self._stage = stage
        self._reason = reason
        self._rank = rank

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        key_of, rank, stage, reason = self._key_of, self._rank, self._stage, self._reason
        keyed = records | "Key" >> beam.Map(lambda r: (key_of(r), r))
        keepers = (
            keyed
            | "Rank" >> beam.MapTuple(lambda key, r: (key, (rank(r) if rank else (), r["id"])))
            | "PickKeeper" >> beam.CombinePerKey(_SmallestFn())
        )

        def emit(_key: Any, grouped: dict[str, list]) -> Iterator[Any]:
            (keeper,) = grouped["keeper"]
            for record in grouped["record"]:
                if record["id"] == keeper:
                    yield {**record, "dup_of": None}
                else:
                    yield pvalue.TaggedOutput(
                        REJECTED, rejected({**record, "dup_of": keeper}, stage, reason, f"dup of {keeper}")
                    )

        return (
            {"record": keyed, "keeper": keepers}
            | "JoinKeeper" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Split" >> beam.FlatMapTuple(emit).with_outputs(REJECTED, main=KEPT)
        )
