"""One round of the crawl job as a Beam pipeline, and the check that it lost no URL.

read → normalise, dedup, drop the already seen, budget (``PrepareUrls``) → group by host, fetch
and encode each page as a gzipped WARC record (``FetchHosts``, ``encode_page``) → WARC shards
(``WriteWarcShards``) and the fetch log (``ShardedParquetSink``); the round's facts are staged
for the driver (``WriteRoundFacts``), which checks them (``check_round``) before the next round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam

from run_folder.layout import STAGING_DIR
from run_folder.manifest import ConservationError
from run_folder.storage import join
from transforms.crawl import reasons
from transforms.crawl.config import CrawlConfig
from transforms.crawl.crawl_facts import WriteRoundFacts, count, file_fact, row_fact
from transforms.crawl.fetch_hosts import FetchHosts
from transforms.crawl.fetch_log import FETCH_LOG_DIR, FETCH_LOG_SCHEMA, log_row, read_fetch_log
from transforms.crawl.frontier import ADMITTED, REJECTED, SEEN, NextFrontier, PrepareUrls
from transforms.crawl.robots import robots_token
from transforms.crawl.url_inputs import ReadUrlFiles
from transforms.crawl.warc_writer import FILES, WriteWarcShards, encode_page
from transforms.parquet_sink import ParquetSinkConfig, ShardedParquetSink


def _seen_urls(path: str) -> Any:
    return (row["url"] for row in read_fetch_log(path, ["url"]))


def _relative(run_dir: str, path: str) -> str:
    prefix = run_dir.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _log_file_fact(info: dict[str, Any], run_dir: str, round_index: int) -> Any:
    return file_fact(
        {
            "path": _relative(run_dir, info["path"]),
            "kind": "fetch_log",
            "round": round_index,
            "records": info["rows"],
            "bytes": info["bytes"],
            "sha256": info["sha256"],
        }
    )


def build_round(
    pipeline: beam.Pipeline,
    run_dir: str,
    round_index: int,
    inputs: Sequence[str],
    reader: Callable[..., Any],
    reader_args: dict[str, Any],
    seen_files: Sequence[str],
    budget: int | None,
    config: CrawlConfig,
    warc_info: dict[str, str],
) -> None:
    """Add one crawl round to ``pipeline``: every distinct URL read ends in the fetch log
    (or was already there from an earlier round)."""
    raw = pipeline | "ReadUrls" >> ReadUrlFiles(inputs, reader, **reader_args)
    seen = pipeline | "ReadSeen" >> ReadUrlFiles(seen_files, _seen_urls) if seen_files else None
    prepared = raw | "Prepare" >> PrepareUrls(config, seen, budget)
    results = prepared[ADMITTED] | "Fetch" >> FetchHosts(
        config, postprocess=encode_page, robots_cache=join(run_dir, STAGING_DIR, "robots")
    )
    fetched, fetch_rejected = results | "ByOutcome" >> beam.Partition(
        lambda r, _n: 0 if r["outcome"] == reasons.FETCHED else 1, 2
    )
    warc = fetched | "WriteWarc" >> WriteWarcShards(run_dir, round_index, config.warc_shard_bytes, warc_info)
    rows = (
        (warc.rows, fetch_rejected, prepared[REJECTED])
        | "AllOutcomes" >> beam.Flatten()
        | "LogRows" >> beam.Map(log_row, round_index)
    )
    log_files = rows | "WriteFetchLog" >> ShardedParquetSink(
        join(run_dir, FETCH_LOG_DIR, f"round={round_index}"),
        FETCH_LOG_SCHEMA,
        ParquetSinkConfig(max_rows_per_shard=config.fetch_log_rows_per_shard),
    )
    facts = [
        raw | "FactInput" >> beam.Map(count("inputs")),
        prepared[SEEN] | "FactSeen" >> beam.Map(count("already_seen")),
        prepared[REJECTED] | "FactPrefetch" >> beam.Map(count("prefetch_rejected")),
        results | "FactAdmitted" >> beam.Map(count("admitted")),
        rows | "FactRows" >> beam.Map(row_fact),
        warc[FILES] | "FactWarc" >> beam.Map(file_fact),
        log_files | "FactLog" >> beam.Map(_log_file_fact, run_dir, round_index),
    ]
    if config.depth > 0:
        prefix = join(run_dir, STAGING_DIR, "frontier", f"round={round_index + 1}", "links")
        links = results | "NextFrontier" >> NextFrontier(config, prefix)
        facts.append(links | "FactFrontier" >> beam.Map(count("frontier")))
    _ = facts | "AllFacts" >> beam.Flatten() | "RoundFacts" >> WriteRoundFacts(run_dir, round_index)


def check_round(facts: dict[str, Any], round_index: int) -> dict[str, Any]:
    """Conservation of one round: every admitted or refused URL has one row; every fetched
    page is in a WARC shard; the fetch log files hold exactly the rows counted."""
    c = Counter(facts["count"])
    rows = c["fetched"] + c["rejected"]
    warc_records = sum(f["records"] for f in facts["files"] if f["kind"] == "warc")
    log_records = sum(f["records"] for f in facts["files"] if f["kind"] == "fetch_log")
    if rows != c["admitted"] + c["prefetch_rejected"]:
        raise ConservationError(
            f"round {round_index}: {rows} fetch-log rows for {c['admitted']} admitted "
            f"+ {c['prefetch_rejected']} refused URLs"
        )
    if warc_records != c["fetched"] or log_records != rows:
        raise ConservationError(
            f"round {round_index}: files hold {warc_records} WARC records / {log_records} "
            f"rows; counted {c['fetched']} fetched / {rows} rows"
        )
    return {
        "round": round_index,
        "inputs": c["inputs"],
        "already_seen": c["already_seen"],
        "admitted": c["admitted"],
        "fetched": c["fetched"],
        "rejected": c["rejected"],
        "reasons": facts["reasons"],
        "bytes": facts["bytes"],
        "next_frontier": c["frontier"],
    }


def warcinfo_fields(run_id: str, config: CrawlConfig) -> dict[str, str]:
    """The fields of each WARC file's ``warcinfo`` record: the run, the crawler and its robots policy."""
    return {
        "isPartOf": run_id,
        "http-header-user-agent": config.user_agent,
        "robots": f"obey ({robots_token(config.user_agent)})",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
    }

