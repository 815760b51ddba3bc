"""URL dedup before download: one fetch per image URL (a ``GroupByKey`` on the URL).

Keeper: the record with the smallest id (deterministic on any runner); the others are rejected
as ``url_dedup.duplicate_url`` with ``dup_of`` naming the keeper. Captions of the dropped copies
stay on their rejected records, so a later job may merge them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.crawl.url_norm import InvalidUrl, normalize_url
from transforms.images.record import BODY
from transforms.spilled_shuffle import SpilledGroupByKey
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

DUP_OF = pa.field("dup_of", pa.string())


@dataclass(frozen=True)
class UrlDedupConfig:
    enabled: bool = True


def keep_first(group: Iterable[Record], stage: str, reason: str, rank: Any = None) -> Iterator[Any]:
    """Keep the best record of a group (lowest ``rank``, then lowest id); reject the rest with
    ``dup_of``. Shared by the URL and exact image dedups."""
    records = sorted(group, key=lambda r: (rank(r) if rank else (), r["id"]))
    keeper = records[0]
    yield {**keeper, "dup_of": None}
    for record in records[1:]:
        yield pvalue.TaggedOutput(
            REJECTED, rejected({**record, "dup_of": keeper["id"]}, stage, reason, f"dup of {keeper['id']}")
        )


class UrlDedup(GlobalStep):
    name = "url_dedup"
    config_class = UrlDedupConfig
    role = DEDUP
    reasons = ("duplicate_url",)
    signal_rules = SignalRules(must_be_null=("dup_of",))
    signal_fields = (DUP_OF,)

    def expand(self, records: beam.PCollection) -> StageResult:
        stage = self.name
        return split_outputs(
            records
            | "KeyByUrl" >> beam.Map(lambda r: (url_key(r), r))
            | "GroupByUrl" >> SpilledGroupByKey(self._run)
            | "KeepFirst"
            >> beam.FlatMap(lambda kv: keep_first(kv[1], stage, "duplicate_url")).with_outputs(REJECTED, main=KEPT)
        )


def url_key(record: Record) -> str:
    """The crawler's normalised URL; samples that come with their bytes (WebDataset) and URLs
    that do not normalise are their own key (the download stage rejects the latter)."""
    if record.get(BODY) is not None or not record.get("url"):
        return "id:" + record["id"]
    try:
        return normalize_url(record["url"])
    except InvalidUrl:
        return "id:" + record["id"]
