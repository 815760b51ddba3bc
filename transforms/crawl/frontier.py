"""Which URLs a crawl round fetches: normalise, dedup, drop the already seen, apply the budget;
and which links the next round gets.

``PrepareUrls`` takes raw URL records (``raw_url``, ``depth``, ``parent_url``) and returns
``admitted`` URL records for ``FetchHosts`` and ``rejected`` outcomes (invalid URL, out of
scope, over budget) for the fetch log; URLs already in an earlier round's fetch log leave
without a second row. Dedup is a ``CombinePerKey`` on the normalised URL that keeps the
shallowest occurrence (ties: the smallest parent), so the result never depends on order.
The page budget keeps the URLs whose hash ranks among the ``budget`` smallest: a uniform,
deterministic sample when a round's frontier is larger than what is left of the budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from transforms.crawl import reasons
from transforms.crawl.config import CrawlConfig
from transforms.crawl.fetch_outcome import prefetch_rejection, url_record
from transforms.crawl.url_norm import InvalidUrl, Scope, normalize_url
from transforms.record import stable_id
from transforms.stage import Record

ADMITTED = "admitted"
REJECTED = "rejected"
SEEN = "seen"
MAX_LOGGED_URL = 4096


def candidate(raw: Record, config: CrawlConfig) -> tuple[str, Record]:
    """``(dedup key, record)`` of a raw URL record; the record carries ``reject`` when refused."""
    raw_url = raw.get("raw_url") or ""
    depth, parent = raw.get("depth", 0), raw.get("parent_url")
    try:
        url = normalize_url(raw_url, config.max_url_length)
    except InvalidUrl as exc:
        shown = raw_url[:MAX_LOGGED_URL]
        return shown, {
            "url": shown,
            "depth": depth,
            "parent_url": parent,
            "host": None,
            "reject": (exc.reason, exc.detail),
        }
    record = {**url_record(url, depth, parent), "reject": None}
    if not Scope(config.allowed_hosts, config.allowed_domains).allows(url):
        record["reject"] = (reasons.OUT_OF_SCOPE, "not in allowed_hosts / allowed_domains")
    return url, record


def _shallowest(records: Iterable[Record]) -> Record:
    return min(records, key=lambda r: (r["depth"], r["parent_url"] or "", r["reject"] is not None))


def url_rank(url: str) -> int:
    """A uniform 60-bit rank (Beam's integer coder holds signed 64-bit values)."""
    return int(stable_id(url)[:15], 16)


class _SplitFn(beam.DoFn):
    def process(self, joined: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        _url, groups = joined
        if not groups["candidate"]:
            return
        (record,) = groups["candidate"]
        if groups["seen"]:
            yield pvalue.TaggedOutput(SEEN, record["url"])
        elif record["reject"] is not None:
            yield pvalue.TaggedOutput(REJECTED, prefetch_rejection(record, *record["reject"]))
        else:
            yield {k: v for k, v in record.items() if k != "reject"}


class PrepareUrls(beam.PTransform):
    """Raw URL records → a dict of ``admitted``, ``rejected`` and ``seen`` PCollections.

    ``seen_urls``: normalised URLs with an outcome in an earlier round (a PCollection), or None.
    ``budget``: URLs this round may admit (``None``: no limit).
    """

    def __init__(self, config: CrawlConfig, seen_urls: beam.PCollection | None, budget: int | None):
        super().__init__()
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0 or None, got {budget}")
        self._config = config
        self._seen = seen_urls
        self._budget = budget

    def expand(self, raw: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self._config
        candidates = raw | "Normalise" >> beam.Map(candidate, config) | "Dedup" >> beam.CombinePerKey(_shallowest)
        seen = self._seen if self._seen is not None else raw.pipeline | "NoneSeen" >> beam.Create([])
        split = (
            {"candidate": candidates, "seen": seen | "KeySeen" >> beam.Map(lambda url: (url, None))}
            | "JoinSeen" >> beam.CoGroupByKey()
            | "Split" >> beam.ParDo(_SplitFn()).with_outputs(REJECTED, SEEN, main=ADMITTED)
        )
        admitted, rejected = split[ADMITTED], split[REJECTED]
        if self._budget is not None:
            admitted, over = admitted | "Budget" >> _ApplyBudget(self._budget)
            rejected = (rejected, over) | "AllRejected" >> beam.Flatten()
        return {ADMITTED: admitted, REJECTED: rejected, SEEN: split[SEEN]}


class _ApplyBudget(beam.PTransform):
    def __init__(self, budget: int):
        super().__init__()
        self._budget = budget

    def expand(self, urls: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        budget = self._budget
        detail = f"the run's page budget was spent; this round admitted {budget} URLs"
        if budget == 0:
            threshold = pvalue.AsSingleton(urls.pipeline | "NoThreshold" >> beam.Create([-1]))
        else:
            threshold = pvalue.AsSingleton(
                urls
                | "Ranks" >> beam.Map(lambda r: url_rank(r["url"]))
                | "Smallest" >> beam.combiners.Top.Smallest(budget)
                | "Threshold" >> beam.Map(lambda ranks: ranks[-1] if len(ranks) == budget else None)
            )

        def admit(record: Record, threshold: int | None) -> Iterator[Any]:
            if threshold is None or url_rank(record["url"]) <= threshold:
                yield record
            else:
                yield pvalue.TaggedOutput(REJECTED, prefetch_rejection(record, reasons.PAGE_BUDGET, detail))

        split = urls | "Admit" >> beam.FlatMap(admit, threshold).with_outputs(REJECTED, main=ADMITTED)
        return split[ADMITTED], split[REJECTED]


def next_links(result: Record, config: CrawlConfig) -> Iterator[tuple[str, Record]]:
    """The links of one outcome that the next round should consider, keyed by URL."""
    scope = Scope(config.allowed_hosts, config.allowed_domains)
    page = result.get("final_url") or result["url"]
    for link in result.get("links") or ():
        if scope.follows(link, page):
            yield link, {"url": link, "depth": result["depth"] + 1, "parent_url": result["url"]}


class NextFrontier(beam.PTransform):
    """Outcomes → the next round's URL list (JSON lines, gzipped) under ``prefix``; returns the
    links written (one per distinct URL) for counting."""

    def __init__(self, config: CrawlConfig, prefix: str):
        super().__init__()
        self._config = config
        self._prefix = prefix

    def expand(self, results: beam.PCollection) -> beam.PCollection:
        links = (
            results
            | "Links" >> beam.FlatMap(next_links, self._config)
            | "DedupLinks" >> beam.CombinePerKey(lambda rs: min(rs, key=lambda r: (r["depth"], r["parent_url"])))
            | "Values" >> beam.Values()
        )
        _ = (
            links
            | "ToJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
            | "WriteFrontier" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl.gz")
        )
        return links
