"""The async fetcher against real servers on 127.0.0.1: a hostile site (every case ends with its
promised reason, in bounded time and memory), SSRF refusals, and politeness as the server sees it.

No test has a time limit of its own: every case ends through the crawler's timeouts, which are
set small here.
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import pytest
from crawl_sites import SITE_FILES, hostile_routes, linked_site, serve

from transforms.crawl import reasons
from transforms.crawl.config import CrawlConfig
from transforms.crawl.fetch_outcome import url_record
from transforms.crawl.fetcher import fetch_all
from transforms.crawl.url_norm import normalize_url

FAST = CrawlConfig(
    per_host_rate=500.0,
    per_host_concurrency=8,
    connect_timeout_s=1.0,
    read_timeout_s=0.5,
    total_timeout_s=1.5,
    max_body_bytes=1024 * 1024,
    max_redirects=3,
    max_retries=1,
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    max_retry_after_s=2.0,
    allowed_networks=("127.0.0.1/32",),
)
# The longest one URL may take under FAST: every attempt timing out, plus the longest wait.
BOUND_S = (FAST.max_retries + 1) * FAST.total_timeout_s + FAST.max_retry_after_s + 1.0

EXPECTED = {
    "/ok.html": reasons.FETCHED,
    "/redirect-ok": reasons.FETCHED,
    "/other-bot-noindex": reasons.FETCHED,  # X-Robots-Tag scoped to another crawler
    "/flaky": reasons.FETCHED,  # 429 with Retry-After, then 200
    "/private/secret.html": reasons.ROBOTS_DISALLOWED,
    "/no-ai/page.html": reasons.ROBOTS_DISALLOWED,  # disallowed for our user agent only
    "/never-ending": reasons.TOO_LARGE,
    "/huge": reasons.TOO_LARGE,
    "/gzip-bomb": reasons.TOO_LARGE,  # 50 MiB once decompressed, counted while streaming
    "/slow-drip": reasons.TIMEOUT,  # one byte every 50 ms: only the total timeout catches it
    "/hang": reasons.TIMEOUT,
    "/loop-a": reasons.REDIRECT_LOOP,
    "/chain-0": reasons.TOO_MANY_REDIRECTS,
    "/429": "http_429",
    "/429-long": "http_429",  # Retry-After of a day: not waited for
    "/500": "http_500",
    "/404": "http_404",
    "/image.png": reasons.BAD_CONTENT_TYPE,
    "/no-type": reasons.BAD_CONTENT_TYPE,
    "/noindex-header": "opt_out_noindex",
    "/noai-meta": "opt_out_noai",
    "/to-private": reasons.SSRF_BLOCKED,  # redirect to 10.255.255.1: checked again after redirects
    "/to-metadata": reasons.SSRF_BLOCKED,
    "/garbage": reasons.BAD_RESPONSE,
    "/reset": reasons.CONNECTION_ERROR,
}


def _records(base: str, paths) -> list[dict]:
    return [url_record(normalize_url(base + path)) for path in paths]


def _outcome(result: dict) -> str:
    return result.get("reason") or result["outcome"]


@pytest.fixture(scope="module")
def hostile_results():
    with serve(hostile_routes()) as site:
        started = time.monotonic()
        results = fetch_all(FAST, {"hostile": _records(site.url, EXPECTED)})
        elapsed = time.monotonic() - started
    return site, {r["url"].removeprefix(site.url): r for r in results}, elapsed


def test_every_hostile_case_ends_with_its_reason(hostile_results):
    _site, results, _elapsed = hostile_results
    assert {path: _outcome(r) for path, r in results.items()} == EXPECTED


def test_hostile_cases_end_in_bounded_time(hostile_results):
    _site, results, elapsed = hostile_results
    assert max(r["elapsed_s"] for r in results.values()) < BOUND_S
    assert elapsed < 2 * BOUND_S  # the cases ran concurrently, not one after another


def test_hostile_details(hostile_results):
    site, results, _elapsed = hostile_results
    assert results["/flaky"]["attempts"] == 2 and results["/flaky"]["status"] == 200
    assert results["/429"]["attempts"] == FAST.max_retries + 1 and results["/429"]["retryable"]
    assert results["/429-long"]["attempts"] == 1 and "Retry-After 86400" in results["/429-long"]["detail"]
    assert results["/redirect-ok"]["final_url"] == site.url + "/ok.html"
    assert results["/redirect-ok"]["redirects"] == [site.url + "/ok.html"]
    assert "/loop-b" in results["/loop-a"]["detail"]
    assert "10.255.255.1" in results["/to-private"]["detail"]
    assert "metadata" in results["/to-metadata"]["detail"]
    assert results["/ok.html"]["body"].startswith(b"<!doctype html>")
    assert results["/ok.html"]["ip"] == "127.0.0.1"
    assert results["/image.png"]["content_type"] == "image/png" and results["/image.png"]["status"] == 200
    assert not results["/404"]["retryable"] and results["/hang"]["retryable"]
    # robots.txt fetched once for the whole host, first, with our user agent.
    paths = site.paths()
    assert paths.count("/robots.txt") == 1 and paths[0] == "/robots.txt"
    assert all(hit.user_agent == FAST.user_agent for hit in site.hits)
    assert "/private/secret.html" not in paths and "/no-ai/page.html" not in paths


def test_body_limits_bound_memory():
    with serve(hostile_routes()) as site:
        tracemalloc.start()
        try:
            results = fetch_all(FAST, {"h": _records(site.url, ["/never-ending", "/gzip-bomb", "/huge"])})
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert {_outcome(r) for r in results} == {reasons.TOO_LARGE}
    # 64 MiB streamed and 50 MiB inflated, yet the client held a few times the 1 MiB limit.
    assert peak < 8 * FAST.max_body_bytes, peak


def test_names_resolving_to_loopback_are_refused_without_a_request():
    with serve({"/ok.html": lambda h: h.send_body(200, b"<p>ok</p>")}) as site:
        port = site.url.rsplit(":", 1)[1]
        strict = dataclasses.replace(FAST, allowed_networks=())
        results = fetch_all(
            strict,
            {
                "localhost": _records(f"http://localhost:{port}", ["/ok.html"]),
                "literal": _records(site.url, ["/ok.html"]),
                "private": [url_record(normalize_url("http://10.0.0.1/")), url_record("http://169.254.169.254/")],
            },
        )
        assert site.hits == []  # nothing was sent, not even robots.txt
    assert {_outcome(r) for r in results} == {reasons.SSRF_BLOCKED}
    details = sorted(r["detail"] for r in results)
    assert any("localhost resolves to 127.0.0.1" in d for d in details)
    assert all(not r["retryable"] for r in results)


@pytest.mark.parametrize(
    ("robots", "reason"),
    [
        (lambda h: h.send_body(503, b"down", "text/plain"), reasons.ROBOTS_UNAVAILABLE),
        (lambda h: h.send_body(200, b"User-agent: *\nCrawl-delay: 3600\n", "text/plain"), reasons.CRAWL_DELAY_TOO_LONG),
        (lambda h: h.send_body(404, b"none", "text/plain"), reasons.FETCHED),  # no robots.txt: allowed
        (lambda h: h.redirect("/real-robots.txt"), reasons.ROBOTS_DISALLOWED),  # redirects are followed
    ],
)
def test_robots_txt_outcomes(robots, reason):
    routes = {
        "/robots.txt": robots,
        "/page.html": lambda h: h.send_body(200, b"<p>page</p>"),
        "/real-robots.txt": lambda h: h.send_body(200, b"User-agent: *\nDisallow: /\n", "text/plain"),
    }
    with serve(routes) as site:
        (result,) = fetch_all(FAST, {"h": _records(site.url, ["/page.html"])})
        page_requested = "/page.html" in site.paths()
    assert _outcome(result) == reason
    assert page_requested == (reason == reasons.FETCHED)
    assert result["retryable"] == (reason == reasons.ROBOTS_UNAVAILABLE)


def test_per_host_rate_and_concurrency_as_the_server_sees_them():
    polite = dataclasses.replace(FAST, per_host_rate=20.0, per_host_concurrency=2)
    with serve(linked_site(12), delay_s=0.15) as site:
        results = fetch_all(polite, {"h": _records(site.url, [f"/p{i}.html" for i in range(12)])})
        hits = list(site.hits)
    assert {_outcome(r) for r in results} == {reasons.FETCHED}
    starts = [hit.at for hit in hits]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # Request starts 1/20 s apart, seen from the server (whose own scheduling adds noise).
    assert starts[-1] - starts[0] >= 0.95 * 0.05 * len(gaps)
    assert min(gaps) >= 0.03
    assert max(hit.in_flight for hit in hits) <= 2


def test_backoff_on_429_pauses_the_whole_host():
    sequential = dataclasses.replace(FAST, per_host_concurrency=1)
    routes = {
        "/a-429": lambda h: h.send_body(429, b"", "text/plain", {"Retry-After": "1"}),
        "/b.html": lambda h: h.send_body(200, b"<p>b</p>"),
        "/c.html": lambda h: h.send_body(200, b"<p>c</p>"),
    }
    with serve(routes) as site:
        fetch_all(sequential, {"h": _records(site.url, ["/a-429", "/b.html", "/c.html"])})
        hits = [(hit.path, hit.at) for hit in site.hits if hit.path not in SITE_FILES]
    assert [path for path, _ in hits] == ["/a-429", "/a-429", "/b.html", "/c.html"]
    assert hits[1][1] - hits[0][1] >= 0.95  # Retry-After honoured
