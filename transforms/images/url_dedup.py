"""URL dedup before download: one fetch per image URL (``KeepBestPerKey`` on the URL).

Keeper: the record with the smallest id (deterministic on any runner); the others are rejected
as ``url_dedup.duplicate_url`` with ``dup_of`` naming the keeper. Captions of the dropped copies
stay on their rejected records, so a later job may merge them.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa

from transforms.crawl.url_norm import InvalidUrl, normalize_url
from transforms.images.keep_best import KeepBestPerKey
from transforms.images.record import BODY
from transforms.stage import (
    DEDUP,
    GlobalStep,
    Record,
    SignalRules,
    StageResult,
    split_outputs,
)

DUP_OF = pa.field("dup_of", pa.string())


@dataclass(frozen=True)
class UrlDedupConfig:
    enabled: bool = True


class UrlDedup(GlobalStep):
    name = "url_dedup"
    config_class = UrlDedupConfig
    role = DEDUP
    reasons = ("duplicate_url",)
    signal_rules = SignalRules(must_be_null=("dup_of",))
    signal_fields = (DUP_OF,)

    def expand(self, records: beam.PCollection) -> StageResult:
        stage = self.name
        return split_outputs(records | "KeepFirst" >> KeepBestPerKey(self._run, url_key, stage, "duplicate_url"))


def url_key(record: Record) -> str:
    """The crawler's normalised URL; samples that come with their bytes (WebDataset) and URLs
    that do not normalise are their own key (the download stage rejects the latter)."""
    if record.get(BODY) is not None or not record.get("url"):
        return "id:" + record["id"]
    try:
        return normalize_url(record["url"])
    except InvalidUrl:
        return "id:" + record["id"]
