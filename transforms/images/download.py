"""``Download``: image URLs → image bytes, through the crawler (``transforms.crawl``).

No second HTTP client: URLs are normalised as the crawler does, deduplicated, and fetched by
``FetchHosts`` (robots.txt, per-host rate and concurrency, backoff with Retry-After, timeouts,
the byte limit, content-type allow-list, SSRF guard with ``allow_private_addresses``, opt-out
directives incl. ``noai`` / ``noimageai``). With ``decode.while_fetching`` the fetch threads
decode each image as it arrives (``transforms.images.decode``). Outcomes are joined back to the caption records by
URL (``CoGroupByKey``); a URL that was not fetched rejects its records as
``download.<crawler reason>`` (``download.http_404``, ``download.robots_disallowed``...).
Records that came with their bytes (WebDataset samples) pass through untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.crawl import reasons
from transforms.crawl.config import IMAGE_CONTENT_TYPES, CrawlConfig
from transforms.crawl.fetch_hosts import FetchHosts
from transforms.crawl.fetch_outcome import url_record
from transforms.crawl.url_norm import InvalidUrl, normalize_url
from transforms.images.decode import DECODED, DecodeWhileFetching
from transforms.images.record import BODY
from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import (
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

# The crawler's politeness defaults, with the image media types and an image-sized byte cap.
IMAGE_CRAWL = CrawlConfig(content_types=IMAGE_CONTENT_TYPES)
# Every reason the crawler gives a URL it did not fetch (``transforms.crawl.reasons``).
DOWNLOAD_REASONS = (
    reasons.INVALID_URL,
    reasons.UNSUPPORTED_SCHEME,
    reasons.URL_TOO_LONG,
    reasons.OUT_OF_SCOPE,
    reasons.PAGE_BUDGET,
    reasons.ROBOTS_DISALLOWED,
    reasons.ROBOTS_UNAVAILABLE,
    reasons.CRAWL_DELAY_TOO_LONG,
    reasons.SSRF_BLOCKED,
    reasons.TOO_LARGE,
    reasons.BAD_CONTENT_TYPE,
    reasons.REDIRECT_LOOP,
    reasons.TOO_MANY_REDIRECTS,
    reasons.REDIRECT_INVALID,
    reasons.REDIRECT_OUT_OF_SCOPE,
    reasons.DNS_ERROR,
    reasons.CONNECTION_ERROR,
    reasons.TIMEOUT,
    reasons.TLS_ERROR,
    reasons.BAD_RESPONSE,
    reasons.FETCH_ERROR,
)
DOWNLOAD_REASON_PATTERNS = (r"http_[0-9]{3}", rf"{reasons.OPT_OUT_PREFIX}[a-z0-9_]+")


@dataclass(frozen=True)
class DownloadConfig:
    enabled: bool = True
    crawl: CrawlConfig = field(default_factory=lambda: IMAGE_CRAWL)


def _normalised(record: Record) -> tuple[str | None, tuple[str, str] | None]:
    try:
        return normalize_url(record.get("url") or ""), None
    except InvalidUrl as exc:
        return None, (exc.reason, exc.detail)


_READY, _INVALID = "ready", "invalid"


class _JoinFn(beam.DoFn):
    def __init__(self, stage: str):
        self._stage = stage

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        _url, groups = element
        yield from groups["ready"]  # samples that came with their bytes
        for record, (reason, detail) in groups["invalid"]:
            yield pvalue.TaggedOutput(REJECTED, rejected(record, self._stage, reason, detail))
        outcomes = groups["outcome"]
        outcome = outcomes[0] if outcomes else None
        for record in groups["record"]:
            if outcome is None:  # every admitted URL gets one outcome; guard all the same
                yield pvalue.TaggedOutput(
                    REJECTED, rejected(record, self._stage, reasons.FETCH_ERROR, "no outcome")
                )
                continue
            signals = {
                "http_status": outcome.get("status"),
                "content_type": outcome.get("content_type"),
                "fetched_at": outcome.get("fetched_at"),
                "final_url": outcome.get("final_url"),
            }
            if outcome["outcome"] == reasons.FETCHED:
                image = {DECODED: outcome[DECODED]} if DECODED in outcome else {BODY: outcome["body"]}
                yield {**record, **signals, **image}
            else:
                yield pvalue.TaggedOutput(
                    REJECTED,
                    rejected({**record, **signals}, self._stage, outcome["reason"], outcome.get("detail") or ""),
                )


class Download(GlobalStep):
    name = "download"
    config_class = DownloadConfig
    reasons = DOWNLOAD_REASONS
    # An HTTP error status, or a page's opt-out directive.
    reason_patterns = DOWNLOAD_REASON_PATTERNS
    # Absent on records that came with their bytes (WebDataset samples).
    signal_rules = SignalRules(nullable=("http_status", "content_type", "fetched_at", "final_url"))
    signal_fields = (
        pa.field("http_status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("fetched_at", pa.timestamp("ms", tz="UTC")),
        pa.field("final_url", pa.string()),
    )

    decode_while_fetching: DecodeWhileFetching | None = None

    @classmethod
    def for_job(cls, job_config: Any, run: RunContext) -> Download:
        step = cls.for_run(job_config.download, run)
        decode = getattr(job_config, "decode", None)
        if decode is not None and decode.enabled and decode.while_fetching:
            step.decode_while_fetching = DecodeWhileFetching(decode)
        return step

    def expand(self, records: beam.PCollection) -> StageResult:
        stage, crawl, ahead = self.name, self.config.crawl, self.decode_while_fetching

        # Every record leaves through the one join below, so that kept and rejected records each
        # come out of one step: a Flatten of two steps' outputs would be a barrier that the
        # in-process runner fills with every image before the next stage reads it.
        def split(record: Record) -> Iterator[Any]:
            if record.get(BODY) is not None:
                yield pvalue.TaggedOutput(_READY, ("id:" + record["id"], record))
                return
            url, invalid = _normalised(record)
            if invalid is not None:
                yield pvalue.TaggedOutput(_INVALID, ("id:" + record["id"], (record, invalid)))
            else:
                yield (url, record)

        keyed = records | "Normalise" >> beam.FlatMap(split).with_outputs(_READY, _INVALID, main=KEPT)
        outcomes = (
            keyed.kept
            | "Urls" >> beam.Keys()
            | "DistinctUrls" >> beam.Distinct()
            | "UrlRecords" >> beam.Map(url_record)
            | "Fetch" >> FetchHosts(crawl, postprocess=ahead, threads=ahead.threads if ahead else None)
            | "KeyOutcome" >> beam.Map(lambda o: (o["url"], o))
        )
        joined = (
            {"record": keyed.kept, "outcome": outcomes, "ready": keyed[_READY], "invalid": keyed[_INVALID]}
            | "JoinOutcomes" >> SpilledCoGroupByKey.for_run(self._run, ("record", "outcome", "ready", "invalid"))
            | "Merge" >> beam.ParDo(_JoinFn(stage)).with_outputs(REJECTED, main=KEPT)
        )
        return split_outputs(joined)
