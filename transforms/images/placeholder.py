"""Error placeholders: the same bytes served for many different URLs ("image not found",
"removed", hot-link blockers, 1x1 trackers).

A ``CombinePerKey`` per ``sha256`` counts the distinct requested URLs serving those bytes (not the
final URLs: many broken links redirecting to one ``/notfound.png`` are the commonest case) (a set capped at
``min_urls``, so the accumulator stays small however popular a placeholder is); records are
joined to their count by ``CoGroupByKey`` and rejected as ``placeholder.shared_bytes`` when at
least ``min_urls`` distinct URLs served them. Exact dedup (later) keeps one copy of content that
a few URLs share; this stage removes content that a host sends for everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import (
    KEPT,
    POSITIVE,
    REJECTED,
    GlobalStep,
    SignalRules,
    StageResult,
    rejected,
    split_outputs,
)


@dataclass(frozen=True)
class PlaceholderConfig:
    enabled: bool = True
    # Real photos are re-hosted by a handful of URLs (mirrors, CDNs); an error image is served
    # for every broken link of a host. 10 distinct URLs separates the two on LAION-style data
    # without touching legitimately shared images; configurable.
    min_urls: int = 10

    def __post_init__(self) -> None:
        if self.min_urls < 2:
            raise ValueError(f"min_urls must be >= 2, got {self.min_urls}")


class DistinctUrlCount(beam.CombineFn):
    """Distinct URLs, counted up to ``cap`` (beyond which the exact number does not matter)."""

    def __init__(self, cap: int):
        self._cap = cap

    def create_accumulator(self) -> set[str]:
        return set()

    def add_input(self, acc: set[str], url: str) -> set[str]:
        if len(acc) < self._cap:
            acc.add(url)
        return acc

    def merge_accumulators(self, accs: Iterable[set[str]]) -> set[str]:
        merged: set[str] = set()
        for acc in accs:
            for url in acc:
                if len(merged) >= self._cap:
                    return merged
                merged.add(url)
        return merged

    def extract_output(self, acc: set[str]) -> int:
        return len(acc)


class Placeholder(GlobalStep):
    name = "placeholder"
    config_class = PlaceholderConfig
    reasons = ("shared_bytes",)
    signal_rules = SignalRules(ranges={"sha256_url_count": POSITIVE})
    signal_fields = (pa.field("sha256_url_count", pa.int32()),)

    def expand(self, records: beam.PCollection) -> StageResult:
        stage, min_urls = self.name, self.config.min_urls
        keyed = records | "KeyBySha" >> beam.Map(lambda r: (r["sha256"], r))
        counts = (
            keyed
            | "Urls" >> beam.MapTuple(lambda sha, r: (sha, r.get("url") or r["id"]))
            | "CountUrls" >> beam.CombinePerKey(DistinctUrlCount(min_urls))
        )

        def decide(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
            _sha, groups = element
            count = groups["count"][0] if groups["count"] else 0
            for record in groups["record"]:
                record = {**record, "sha256_url_count": count}
                if count >= min_urls:
                    yield pvalue.TaggedOutput(
                        REJECTED, rejected(record, stage, "shared_bytes", f"served for >= {count} distinct URLs")
                    )
                else:
                    yield record

        out = (
            {"record": keyed, "count": counts}
            | "JoinCounts" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Decide" >> beam.FlatMap(decide).with_outputs(REJECTED, main=KEPT)
        )
        return split_outputs(out)
