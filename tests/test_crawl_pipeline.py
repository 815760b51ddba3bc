"""The crawl job end to end on Beam's in-process runner, against real servers on 127.0.0.1:
fetch log and WARC archive, seed crawls with depth and budget, ``--retry-failed``, S3 output,
the command line, and a real site (Python's own documentation served by pydoc)."""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import json
import os
from collections import Counter

import apache_beam as beam
import duckdb
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import assert_conserved
from crawl_sites import SITE_FILES, hostile_routes, linked_site, serve, serve_pydoc
from warcio.archiveiterator import ArchiveIterator

from pipelines import crawl
from run_folder.storage import read_bytes
from transforms.crawl.config import CrawlConfig
from transforms.crawl.frontier import ADMITTED, REJECTED, SEEN, PrepareUrls
from transforms.readers.read_inputs import ReadConfig, read_file

pytestmark = pytest.mark.slow

BEAM = ["--runner=FnApiRunner"]
CONFIG = CrawlConfig(
    per_host_rate=500.0,
    per_host_concurrency=4,
    politeness_scope="authority",  # several loopback "sites" on one address, each its own host
    connect_timeout_s=1.0,
    read_timeout_s=0.5,
    total_timeout_s=1.5,
    max_body_bytes=1024 * 1024,
    max_retries=1,
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    max_retry_after_s=2.0,
    allowed_networks=("127.0.0.1/32",),
)


def _fetch_log(run_dir: str) -> list[dict]:
    return duckdb.sql(f"select * from '{run_dir}/fetch_log/*/*.parquet' order by url").to_arrow_table().to_pylist()


def _url_list(tmp_path, name: str, urls: list[str]) -> str:
    path = tmp_path / name
    path.write_text("".join(f"{u}\n" for u in urls))
    return str(path)


def test_crawl_writes_fetch_log_and_warc(tmp_path):
    hostile_paths = [
        "/ok.html",
        "/404",
        "/never-ending",
        "/loop-a",
        "/to-private",
        "/private/secret.html",
        "/hang",
        "/noai-meta",
        "/image.png",
    ]
    with serve(hostile_routes()) as bad, serve(linked_site(10)) as good:
        urls = [bad.url + p for p in hostile_paths] + [good.url + "/", good.url + "/", "not a url", "ftp://x/"]
        config = dataclasses.replace(CONFIG, depth=2, max_hosts_in_flight=1)
        manifest = crawl.run([_url_list(tmp_path, "urls.txt", urls)], str(tmp_path / "out"), "r1", config, BEAM)
    run_dir = str(tmp_path / "out" / "r1")
    assert_conserved(run_dir)
    rows = _fetch_log(run_dir)
    by_url = {row["url"].replace(bad.url, ""): row for row in rows}
    outcome = {u: row["reason"] or row["outcome"] for u, row in by_url.items() if u.startswith("/")}
    assert outcome == {
        "/ok.html": "fetched",
        "/404": "http_404",
        "/never-ending": "too_large",
        "/loop-a": "redirect_loop",
        "/to-private": "ssrf_blocked",
        "/private/secret.html": "robots_disallowed",
        "/hang": "timeout",
        "/noai-meta": "opt_out_noai",
        "/image.png": "bad_content_type",
    }
    assert by_url["not a url"]["reason"] == by_url["ftp://x/"]["reason"] == "unsupported_scheme"
    # Seed crawl: / redirects to p0 (round 0); p1-p3 (round 1); p4-p6 (round 2); depth 2 stops there.
    good_rows = {row["final_url"].replace(good.url, ""): row for row in rows if row["url"].startswith(good.url)}
    assert sorted(good_rows) == ["/p0.html", "/p1.html", "/p2.html", "/p3.html", "/p4.html", "/p5.html", "/p6.html"]
    assert {p: r["round"] for p, r in good_rows.items()}["/p5.html"] == 2
    assert good_rows["/p4.html"]["parent_url"] == good.url + "/p1.html"
    # Exactly one row per distinct URL, and the manifest reconciles with the log.
    assert len(rows) == len({row["url"] for row in rows}) == manifest["totals"]["urls"] == 18
    assert manifest["totals"]["fetched"] == sum(row["outcome"] == "fetched" for row in rows) == 8
    assert [r["round"] for r in manifest["rounds"]] == [0, 1, 2]
    assert manifest["rounds"][2]["already_seen"] == 2  # p2 and p3 were linked again from round 1
    assert manifest["totals"]["retryable"] == 1  # /hang
    # Every fetched row points at its own gzip member in a WARC shard.
    for row in rows:
        if row["outcome"] != "fetched":
            assert row["warc_file"] is None
            continue
        data = read_bytes(os.path.join(run_dir, row["warc_file"]))
        member = data[row["warc_offset"] : row["warc_offset"] + row["warc_length"]]
        record = next(ArchiveIterator(io.BytesIO(member)))
        assert record.rec_headers.get_header("WARC-Target-URI") == row["final_url"]
        assert len(record.content_stream().read()) == row["bytes"]
    # The text job reads the archive as it is.
    texts = [rec for path in manifest["warc_files"] for rec, drop in read_file(path, ReadConfig()) if drop is None]
    assert len(texts) == 8 and all(rec["body"] for rec in texts)
    assert sorted(os.listdir(run_dir)) == ["_SUCCESS", "fetch_log", "manifest.json", "warc"]
    assert json.loads((tmp_path / "out" / "r1" / "manifest.json").read_text())["totals"] == manifest["totals"]


def test_page_budget_limits_a_deep_crawl(tmp_path):
    with serve(linked_site(40, fanout=4)) as site:
        config = dataclasses.replace(CONFIG, depth=5, page_budget=6)
        manifest = crawl.run(
            [_url_list(tmp_path, "seed.txt", [site.url + "/p0.html"])], str(tmp_path / "out"), "b", config, BEAM
        )
        requested = [p for p in site.paths() if p not in SITE_FILES]
    rows = _fetch_log(str(tmp_path / "out" / "b"))
    assert_conserved(tmp_path / "out" / "b")
    admitted = [row for row in rows if row["reason"] != "page_budget"]
    assert len(admitted) == 6 == len(requested) == sum(r["admitted"] for r in manifest["rounds"])
    assert sum(row["reason"] == "page_budget" for row in rows) > 0
    assert manifest["rounds"][-1]["admitted"] == 0  # the round where the budget ran out


def test_retry_failed_fetches_only_retryable_failures(tmp_path):
    calls = Counter()

    def recovers(h):
        calls["recovers"] += 1
        if calls["recovers"] <= 2:  # both attempts of the first run fail
            h.send_body(503, b"busy", "text/plain")
        else:
            h.send_body(200, b"<p>back</p>")

    routes = {**hostile_routes(), "/recovers": recovers}
    with serve(routes) as site:
        urls = [site.url + p for p in ("/ok.html", "/404", "/recovers", "/500")]
        first = crawl.run([_url_list(tmp_path, "u.txt", urls)], str(tmp_path / "out"), "first", CONFIG, BEAM)
        site.hits.clear()
        second = crawl.run(
            None, str(tmp_path / "out"), "second", CONFIG, BEAM, retry_failed=str(tmp_path / "out" / "first")
        )
        requested = sorted(set(site.paths()) - SITE_FILES)
    assert_conserved(tmp_path / "out" / "first")
    assert_conserved(tmp_path / "out" / "second")
    assert first["totals"]["reasons"] == {"http_404": 1, "http_503": 1, "http_500": 1}
    assert requested == ["/500", "/recovers"]  # neither the fetched page nor the 404 again
    rows = {row["url"].replace(site.url, ""): row for row in _fetch_log(str(tmp_path / "out" / "second"))}
    assert rows["/recovers"]["outcome"] == "fetched" and rows["/500"]["reason"] == "http_500"
    assert second["totals"]["urls"] == 2


def test_pydoc_site_from_s3_list_to_s3_archive(tmp_path, s3_server):
    bucket = s3_server.create_bucket()
    pages = ["", "json.html", "textwrap.html", "keywords.html", "topics.html", "collections.abc.html"]
    with serve_pydoc() as base:
        csv = tmp_path / "pages.csv.gz"
        csv.write_bytes(
            gzip.compress(("title,url\n" + "".join(f"p{i},{base}{p}\n" for i, p in enumerate(pages))).encode())
        )
        urls = s3_server.upload(csv, bucket, "lists/pages.csv.gz")
        manifest = crawl.run([urls], f"s3://{bucket}/crawls", "docs", CONFIG, BEAM + s3_server.pipeline_args())
    assert manifest["totals"]["fetched"] == len(pages), manifest["totals"]
    assert_conserved(f"s3://{bucket}/crawls/docs", s3_server)
    (warc,) = manifest["warc_files"]
    assert warc.startswith(f"s3://{bucket}/crawls/docs/warc/")
    records = [rec for rec, drop in read_file(warc, ReadConfig()) if drop is None]
    assert sorted(r["url"].removeprefix(base) for r in records) == sorted(pages)
    assert all(b"Pydoc" in r["body"] for r in records)
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket, Prefix="crawls/docs/")["Contents"]}
    assert "crawls/docs/_SUCCESS" in keys and not any("_staging" in k for k in keys)


def test_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    crawl.add_arguments(parser)
    with serve(hostile_routes()) as site:
        urls = _url_list(tmp_path, "u.txt", [site.url + "/ok.html", site.url + "/404"])
        args = parser.parse_args(
            [
                "--urls",
                urls,
                "--output",
                str(tmp_path / "out"),
                "--run-id",
                "cli",
                "--allow-private-addresses",
                "--per-host-rate",
                "100",
                "--timeout",
                "2",
            ]
        )
        assert crawl.main(args, BEAM) == 0
    out = capsys.readouterr().out
    assert "2 URLs: 1 fetched" in out and "http_404" in out
    assert crawl.config_from_args(args).allow_private_addresses is True
    assert crawl.main(parser.parse_args(["--output", str(tmp_path / "out")]), BEAM) == 2
    bad = parser.parse_args(["--urls", urls, "--output", str(tmp_path / "out"), "--per-host-rate", "0"])
    assert crawl.main(bad, BEAM) == 2


def test_private_addresses_are_refused_by_default(tmp_path):
    with serve(hostile_routes()) as site:
        config = dataclasses.replace(CONFIG, allowed_networks=())
        manifest = crawl.run(
            [_url_list(tmp_path, "u.txt", [site.url + "/ok.html"])], str(tmp_path / "out"), "strict", config, BEAM
        )
        assert site.hits == []
    assert manifest["totals"]["reasons"] == {"ssrf_blocked": 1}
    assert_conserved(tmp_path / "out" / "strict")


def test_prepare_urls_dedups_drops_seen_and_applies_the_budget():
    raw = [
        {"raw_url": "http://a.com/x#frag", "depth": 1, "parent_url": "http://a.com/"},
        {"raw_url": "HTTP://A.com/x", "depth": 0, "parent_url": None},  # the shallowest occurrence wins
        {"raw_url": "http://a.com/seen", "depth": 0, "parent_url": None},
        {"raw_url": "mailto:me@a.com", "depth": 0, "parent_url": None},
        {"raw_url": "http://outside.org/", "depth": 0, "parent_url": None},
    ] + [{"raw_url": f"http://a.com/p{i}", "depth": 0, "parent_url": None} for i in range(6)]
    config = dataclasses.replace(CONFIG, allowed_domains=("a.com",))
    with TestPipeline(runner="FnApiRunner") as pipeline:
        urls = pipeline | beam.Create(raw)
        seen = pipeline | "Seen" >> beam.Create(["http://a.com/seen"])
        unlimited = urls | "Unlimited" >> PrepareUrls(config, seen, budget=None)
        budgeted = urls | "Budgeted" >> PrepareUrls(config, seen, budget=4)
        assert_that(unlimited[SEEN], equal_to(["http://a.com/seen"]), label="Seen")
        assert_that(
            unlimited[ADMITTED] | beam.Map(lambda r: (r["url"], r["depth"])),
            equal_to([("http://a.com/x", 0)] + [(f"http://a.com/p{i}", 0) for i in range(6)]),
            label="Deduped",
        )
        assert_that(
            budgeted[REJECTED] | beam.Map(lambda r: r["reason"]) | beam.combiners.Count.PerElement(),
            equal_to([("unsupported_scheme", 1), ("out_of_scope", 1), ("page_budget", 3)]),
            label="Rejected",
        )
        assert_that(budgeted[ADMITTED] | beam.combiners.Count.Globally(), equal_to([4]), label="Budget")


def test_robots_txt_is_fetched_once_per_host_for_the_whole_crawl(tmp_path):
    with serve(linked_site(12, fanout=2)) as site:
        config = dataclasses.replace(CONFIG, depth=3)
        manifest = crawl.run(
            [_url_list(tmp_path, "seed.txt", [site.url + "/p0.html"])], str(tmp_path / "out"), "robots", config, BEAM
        )
        robots_fetches = site.paths().count("/robots.txt")
    assert len(manifest["rounds"]) >= 3  # several rounds, each on its own Beam job
    assert_conserved(tmp_path / "out" / "robots")
    assert robots_fetches == 1
