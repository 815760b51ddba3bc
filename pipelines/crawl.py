"""The crawl job: URL lists or seeds → polite, safe fetching → WARC archive and fetch log.

    dataprep crawl --urls LIST... --output DIR_OR_S3 [--run-id ID] [--config crawl.yaml]
                   [--depth N] [--page-budget N] [--allowed-host H] [--allowed-domain D]
                   [--retry-failed PREVIOUS_RUN_DIR] [--allow-private-addresses] [-- <Beam flags>]

A run is one Beam job per round: round 0 fetches the URL lists (or, with ``--retry-failed``,
the URLs a previous run failed on with a retryable reason); each later round fetches the
links found in the round before, up to ``depth`` and the ``page_budget``. Per round:
read → normalise, dedup, drop the already seen, budget → fetch host by host → WARC shards and
the fetch log (``pipelines.crawl_round``). The run begins, commits and seals through the run
layer (``run_folder``), with its own manifest: rounds and outcomes by reason.

    <output>/<run_id>/
      warc/crawl-r<round>-SSSSS-of-NNNNN.warc.gz   fetched pages (gzip per record)
      fetch_log/round=<r>/part-SSSSS-of-NNNNN.parquet   one row per URL, fetched or rejected
      manifest.json                                 rounds, outcomes by reason, files
      _SUCCESS                                      written last
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam

from pipelines.config import config_hash, load_config, to_dict
from pipelines.crawl_round import build_round, check_round, warcinfo_fields
from pipelines.runner import pipeline_options, runner_name
from pipelines.version import code_version
from run_folder.layout import STAGING_DIR
from run_folder.manifest import delete_unwritten, store_manifest
from run_folder.seal import begin_run, seal_run
from run_folder.staged import clear_staging
from run_folder.storage import join, list_files
from transforms.crawl import reasons
from transforms.crawl.config import IMAGE_CONTENT_TYPES, TEXT_CONTENT_TYPES, CrawlConfig
from transforms.crawl.crawl_facts import load_round_facts
from transforms.crawl.fetch_log import FETCH_LOG_DIR, retryable_urls
from transforms.crawl.url_inputs import match_files, read_url_file
from transforms.crawl.warc_writer import WARC_DIR

__all__ = [
    "CrawlConfig",
    "Config",
    "TEXT_CONTENT_TYPES",
    "IMAGE_CONTENT_TYPES",
    "add_arguments",
    "add_crawl_options",
    "config_from_args",
    "main",
    "run",
    "warc_files",
]

log = logging.getLogger(__name__)

Config = CrawlConfig


def run(
    urls: Sequence[str] | None,
    output: str,
    run_id: str,
    config: CrawlConfig,
    beam_args: list[str],
    retry_failed: str | None = None,
) -> dict[str, Any]:
    """Crawl into ``<output>/<run_id>/`` and commit it; return the manifest.

    ``urls``: URL-list paths, globs or ``s3://`` URIs. ``retry_failed``: a previous run's
    folder; then only the URLs it failed on with a retryable reason are fetched (``urls`` is
    recorded but not read). ``manifest["warc_files"]`` lists the WARC shards written.
    """
    options = pipeline_options(beam_args)
    run_dir = join(output, run_id)
    if retry_failed and retry_failed.rstrip("/") == run_dir.rstrip("/"):
        raise ValueError(f"--retry-failed {retry_failed} is the run being written; give the retry a new run id")
    if retry_failed:
        previous = [p for p in list_files(join(retry_failed, FETCH_LOG_DIR)) if p.endswith(".parquet")]
        if not previous:
            raise ValueError(f"--retry-failed {retry_failed}: no fetch log under it")
        inputs, reader, reader_args = previous, retryable_urls, {}
    elif urls:
        inputs, reader, reader_args = match_files(urls), read_url_file, {"url_field": config.url_field}
    else:
        raise ValueError("nothing to crawl: give URL lists or a run to retry")
    begin_run(run_dir)
    clear_staging(run_dir)  # round facts, robots cache and frontier of an earlier attempt
    started = time.time()
    warc_info = warcinfo_fields(run_id, config)
    rounds: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    admitted = 0
    # Round r fetches pages at depth >= r, and links are only taken from pages shallower than
    # ``depth``, so the rounds end by themselves within this bound.
    for round_index in range(config.depth + 1):
        budget = None if config.page_budget == 0 else max(0, config.page_budget - admitted)
        seen_files = [join(run_dir, f["path"]) for f in files if f["kind"] == "fetch_log"]
        with beam.Pipeline(options=options) as pipeline:
            build_round(
                pipeline, run_dir, round_index, inputs, reader, reader_args, seen_files, budget, config, warc_info
            )
        facts = load_round_facts(run_dir, round_index)
        rounds.append(check_round(facts, round_index))
        files.extend(facts["files"])
        admitted += rounds[-1]["admitted"]
        log.info("crawl round %d: %s", round_index, rounds[-1])
        if not rounds[-1]["next_frontier"]:
            break
        frontier = join(run_dir, STAGING_DIR, "frontier", f"round={round_index + 1}")
        inputs = [p for p in list_files(frontier) if p.endswith(".jsonl.gz")]
        reader, reader_args = read_url_file, {"url_field": "url"}
    header = {
        "run_id": run_id,
        "job": "crawl",
        "inputs": list(urls or []),
        "retry_failed": retry_failed,
        "config": to_dict(config),
        "config_hash": config_hash(config),
        "code_version": code_version(),
        "runner": runner_name(options),
        "seconds": round(time.time() - started, 3),
    }
    return _commit(run_dir, header, rounds, files)


def _commit(
    run_dir: str, header: dict[str, Any], rounds: list[dict[str, Any]], files: list[dict[str, Any]]
) -> dict[str, Any]:
    delete_unwritten(run_dir, (WARC_DIR, FETCH_LOG_DIR), {join(run_dir, f["path"]) for f in files})
    reasons_total: Counter[str] = Counter()
    for r in rounds:
        reasons_total.update(r["reasons"])
    warc = sorted(f["path"] for f in files if f["kind"] == "warc")
    manifest = {
        **header,
        "totals": {
            "urls": sum(r["fetched"] + r["rejected"] for r in rounds),
            "fetched": sum(r["fetched"] for r in rounds),
            "rejected": sum(r["rejected"] for r in rounds),
            "retryable": sum(n for reason, n in reasons_total.items() if reasons.is_retryable(reason)),
            "bytes": sum(r["bytes"] for r in rounds),
            "reasons": dict(sorted(reasons_total.items())),
        },
        "rounds": rounds,
        "files": sorted(files, key=lambda f: f["path"]),
        "warc_files": [join(run_dir, p) for p in warc],
        "fetch_log": join(run_dir, FETCH_LOG_DIR),
    }
    store_manifest(run_dir, manifest)
    seal_run(run_dir)
    return manifest


def warc_files(manifest: dict[str, Any]) -> list[str]:
    """The WARC shards of a crawl run, as input paths for the text job (may be empty)."""
    return list(manifest["warc_files"])


# ---- command line -------------------------------------------------------------------------

_OVERRIDES = {  # argparse dest -> CrawlConfig field
    "depth": "depth",
    "page_budget": "page_budget",
    "allowed_hosts": "allowed_hosts",
    "allowed_domains": "allowed_domains",
    "user_agent": "user_agent",
    "per_host_rate": "per_host_rate",
    "per_host_concurrency": "per_host_concurrency",
    "content_types": "content_types",
    "max_body_bytes": "max_body_bytes",
    "total_timeout_s": "total_timeout_s",
    "allow_private_addresses": "allow_private_addresses",
    "allowed_networks": "allowed_networks",
}


def add_crawl_options(parser: argparse.ArgumentParser) -> None:
    """The flags that override ``CrawlConfig`` (shared by ``crawl`` and ``run text --urls``)."""
    group = parser.add_argument_group("crawl settings (override --config)")
    group.add_argument("--depth", type=int, help="follow links this many hops from the URLs (default 0)")
    group.add_argument("--page-budget", type=int, help="at most this many URLs fetched in the run (0: no limit)")
    group.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="HOST[:PORT]",
        help="crawl only this host (repeatable); default for links: the page's own host",
    )
    group.add_argument(
        "--allowed-domain",
        dest="allowed_domains",
        action="append",
        metavar="DOMAIN",
        help="crawl only this domain and its subdomains (repeatable)",
    )
    group.add_argument("--user-agent", help="User-Agent header; robots.txt rules match its product token")
    group.add_argument("--per-host-rate", type=float, metavar="REQ_PER_S", help="requests per second per host")
    group.add_argument("--per-host-concurrency", type=int, metavar="N", help="requests in flight per host")
    group.add_argument(
        "--content-type",
        dest="content_types",
        action="append",
        metavar="TYPE",
        help="accepted media type (repeatable; 'image/*' style allowed)",
    )
    group.add_argument("--max-body-bytes", type=int, metavar="BYTES", help="largest body kept")
    group.add_argument(
        "--timeout", dest="total_timeout_s", type=float, metavar="SECONDS", help="total time for one request"
    )
    group.add_argument(
        "--allow-private-addresses",
        action="store_true",
        default=None,
        help="allow private/loopback/link-local targets (off by default: SSRF defence)",
    )
    group.add_argument(
        "--allow-network",
        dest="allowed_networks",
        action="append",
        metavar="CIDR",
        help="allow targets in this network only (repeatable), e.g. 127.0.0.1/32",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every flag of ``dataprep crawl``."""
    parser.add_argument(
        "--urls",
        nargs="+",
        metavar="FILE_OR_URI",
        help="URL lists (.txt, .csv, .tsv, .jsonl, .parquet; gz/zst; local or s3://)",
    )
    parser.add_argument("--output", required=True, help="folder or s3:// prefix; the run goes to <output>/<run-id>/")
    parser.add_argument("--run-id", help="default: the UTC time, YYYYmmddTHHMMSSZ")
    parser.add_argument("--config", help="crawl YAML config (defaults for anything it leaves out)")
    parser.add_argument(
        "--retry-failed",
        metavar="RUN_DIR",
        help="fetch only the URLs this earlier run failed on with a retryable reason",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    add_crawl_options(parser)


def config_from_args(args: argparse.Namespace, base: CrawlConfig | None = None) -> CrawlConfig:
    """``base`` (or the ``--config`` YAML, or the defaults) with the flags given applied."""
    if base is None:
        base = load_config(CrawlConfig, getattr(args, "config", None))
    changes = {
        field: getattr(args, dest) for dest, field in _OVERRIDES.items() if getattr(args, dest, None) is not None
    }
    for name in ("allowed_hosts", "allowed_domains", "content_types", "allowed_networks"):
        if name in changes:
            changes[name] = tuple(changes[name])
    return dataclasses.replace(base, **changes)


def _print_summary(manifest: dict[str, Any], run_dir: str) -> None:
    totals = manifest["totals"]
    print(f"crawl {manifest['run_id']}: {run_dir}")
    print(
        f"{totals['urls']} URLs: {totals['fetched']} fetched ({totals['bytes']} bytes), "
        f"{totals['rejected']} rejected ({totals['retryable']} retryable), "
        f"{len(manifest['rounds'])} round(s), {len(manifest['warc_files'])} WARC file(s), {manifest['seconds']} s"
    )
    for reason, n in sorted(totals["reasons"].items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<28}{n:>8}")


def main(args: argparse.Namespace, beam_args: list[str] | None = None) -> int:
    """``dataprep crawl``: 0 on success, 1 when the run failed, 2 on bad usage."""
    if not args.urls and not args.retry_failed:
        print("dataprep crawl: give --urls or --retry-failed", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
    except (OSError, ValueError, TypeError) as exc:
        print(f"dataprep crawl: bad config: {exc}", file=sys.stderr)
        return 2
    run_id = args.run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        manifest = run(args.urls, args.output, run_id, config, list(beam_args or []), args.retry_failed)
    except Exception as exc:  # noqa: BLE001 - reported, exit non-zero
        log.debug("crawl failed", exc_info=True)
        print(f"dataprep crawl: run {run_id} failed, nothing published: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _print_summary(manifest, join(args.output, run_id))
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m pipelines.crawl", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parsed = parser.parse_args(argv[:cut])
    logging.basicConfig(level=logging.INFO if parsed.verbose else logging.WARNING)
    sys.exit(main(parsed, argv[cut + 1 :]))
