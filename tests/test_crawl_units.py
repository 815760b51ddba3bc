"""The crawler's pure cores, without Beam or a network: URLs, SSRF policy, robots, pacing,
HTML scanning, URL lists and WARC encoding."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from transforms.crawl import reasons
from transforms.crawl.config import CrawlConfig
from transforms.crawl.html_scan import scan_html
from transforms.crawl.politeness import HostPacer, backoff_delay, parse_retry_after
from transforms.crawl.robots import RobotsRules, opt_out, robots_token, x_robots_directives
from transforms.crawl.ssrf import AddressPolicy, CheckedResolver, SsrfBlocked
from transforms.crawl.url_inputs import read_url_file, url_format
from transforms.crawl.url_norm import InvalidUrl, Scope, normalize_url, politeness_key
from transforms.crawl.warc_writer import encode_page, encode_shard, stored_headers
from transforms.readers.read_config import ReadConfig
from transforms.readers.warc import read_warc
from transforms.record import stable_id


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c?x=1&y=%7e#frag", "http://example.com/a/c?x=1&y=~"),
        ("https://user:secret@Example.com:443", "https://example.com/"),
        ("http://bücher.ch/ä b", "http://xn--bcher-kva.ch/%C3%A4%20b"),
        ("http://0x7f.1/", "http://127.0.0.1/"),  # legacy IPv4 forms resolve like this in sockets
        ("http://2130706433:8080/x/..", "http://127.0.0.1:8080/"),
        ("http://[::FFFF:127.0.0.1]/", "http://[::ffff:7f00:1]/"),
        ("http://example.com./%2f%41/.", "http://example.com/%2FA/"),
        (" http://exa\tmple.com/p?b=2&a=1 ", "http://example.com/p?b=2&a=1"),
    ],
)
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", reasons.UNSUPPORTED_SCHEME),
        ("javascript:alert(1)", reasons.UNSUPPORTED_SCHEME),
        ("/relative/path", reasons.UNSUPPORTED_SCHEME),
        ("http://", reasons.INVALID_URL),
        ("http://[zz]/", reasons.INVALID_URL),
        ("http://example.com:99999/", reasons.INVALID_URL),
        ("", reasons.INVALID_URL),
        ("http://example.com/" + "a" * 3000, reasons.URL_TOO_LONG),
    ],
)
def test_normalize_url_rejects(url, reason):
    with pytest.raises(InvalidUrl) as caught:
        normalize_url(url)
    assert caught.value.reason == reason


def test_scope_and_politeness_key():
    scope = Scope(hosts=("a.example.com", "127.0.0.1:8080"), domains=("example.org",))
    assert scope.allows("http://a.example.com/x")
    assert scope.allows("http://127.0.0.1:8080/")
    assert not scope.allows("http://127.0.0.1:8081/")
    assert scope.allows("https://www.example.org/") and scope.allows("http://example.org/")
    assert not scope.allows("http://badexample.org/")
    unrestricted = Scope()
    assert unrestricted.follows("http://h.com/b", "http://h.com/a")
    assert not unrestricted.follows("http://other.com/", "http://h.com/a")
    assert politeness_key("http://h.com:8080/a") == "h.com"
    assert politeness_key("http://h.com/a", "authority") == "h.com:80"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.5", "private"),
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.64.0.1", "not_global"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("240.0.0.1", "reserved"),
        ("93.184.215.14", None),
        ("2606:4700::1", None),
    ],
)
def test_address_policy_default_refuses_non_global(address, why):
    assert AddressPolicy().blocked_reason(address) == why


def test_address_policy_allowances():
    private = AddressPolicy(allow_private=True)
    assert private.blocked_reason("10.0.0.1") is None and private.blocked_reason("127.0.0.1") is None
    assert private.blocked_reason("169.254.169.254") == "metadata"  # never, even with private allowed
    loopback_only = AddressPolicy(allowed_networks=("127.0.0.1/32",))
    assert loopback_only.blocked_reason("127.0.0.1") is None
    assert loopback_only.blocked_reason("127.0.0.2") == "loopback"
    with pytest.raises(SsrfBlocked, match="resolves to 10.0.0.1"):
        loopback_only.check("intranet", ["127.0.0.1", "10.0.0.1"])  # every address must pass
    assert loopback_only.check_literal("127.0.0.1") is True
    assert loopback_only.check_literal("example.com") is False
    with pytest.raises(SsrfBlocked):
        loopback_only.check_literal("[::1]")


def test_checked_resolver_refuses_names_that_resolve_to_loopback():
    async def resolve(policy: AddressPolicy):
        resolver = CheckedResolver(policy)
        try:
            return await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(SsrfBlocked, match="localhost resolves to 127.0.0.1, a loopback address"):
        asyncio.run(resolve(AddressPolicy()))
    assert asyncio.run(resolve(AddressPolicy(allow_private=True)))[0]["host"] == "127.0.0.1"


def test_robots_rules():
    rules = RobotsRules.parse(
        b"User-agent: *\nDisallow: /private\nAllow: /private/ok\nCrawl-delay: 2\n"
        b"\nUser-agent: genai-dataprep\nDisallow: /nogenai\nRequest-rate: 1/5\n"
    )
    token = robots_token("genai-dataprep/0.1 (+https://example.com)")
    assert token == "genai-dataprep"
    assert not rules.allows("http://x/nogenai/page", token)
    assert rules.allows("http://x/private", token)  # our own group replaces the * group
    assert not rules.allows("http://x/private", "otherbot")
    assert rules.allows("http://x/private/ok", "otherbot")
    assert rules.interval_s(token) == 5.0 and rules.interval_s("otherbot") == 2.0
    assert RobotsRules.allow_all().allows("http://x/anything", token)
    assert not RobotsRules.unreachable("http_503", "503 Service Unavailable").allows("http://x/", token)


def test_opt_out_directives():
    token = "genai-dataprep"
    assert x_robots_directives(["noindex, nofollow"], token) == {"noindex", "nofollow"}
    assert x_robots_directives(["otherbot: noindex"], token) == set()
    assert x_robots_directives(["genai-dataprep: noai"], token) == {"noai"}
    assert x_robots_directives(["max-snippet: 20"], token) == {"max-snippet: 20"}
    honoured = CrawlConfig().opt_out_directives
    assert opt_out({"none"}, honoured) == "noindex"
    assert opt_out({"noimageai"}, honoured) == "noimageai"
    assert opt_out({"nofollow", "max-snippet: 20"}, honoured) is None
    assert opt_out({"noimageai"}, ("noindex", "noai")) is None


def test_scan_html_meta_and_links():
    page = (
        b'<html><head><base href="/docs/"><meta name="ROBOTS" content="NoAI, follow"></head><body>'
        b'<a href="a.html#top">a</a><a href="http://other.com/x">x</a><a href="b.html" rel="nofollow">b</a>'
        b'<a href="mailto:me@x.com">m</a><a href="a.html">again</a></body></html>'
    )
    scan = scan_html(page, "http://h.com/index.html", "genai-dataprep", want_links=True, max_url_length=2048)
    assert scan.directives == {"noai", "follow"}
    assert scan.links == ["http://h.com/docs/a.html", "http://other.com/x"]
    nofollow = scan_html(
        b'<meta name="genai-dataprep" content="nofollow"><a href="/a">a</a>',
        "http://h.com/",
        "genai-dataprep",
        want_links=True,
        max_url_length=2048,
    )
    assert nofollow.links == [] and nofollow.directives == {"nofollow"}
    head_only = scan_html(page, "http://h.com/", "genai-dataprep", want_links=False, max_url_length=2048)
    assert head_only.directives == {"noai", "follow"} and head_only.links == []
    late_meta = b'<html><head></head><body><meta name="robots" content="noai"></body></html>'
    assert scan_html(late_meta, "http://h.com/", "t", want_links=False, max_url_length=2048).directives == set()
    assert scan_html(b"", "http://h.com/", "t", True, 2048).links == []
    assert scan_html(b"\x00\xff<<<", "http://h.com/", "t", True, 2048).links == []


def test_backoff_and_retry_after():
    rng = random.Random(0)
    delays = [backoff_delay(a, 1.0, 10.0, rng) for a in range(6)]
    for attempt, delay in enumerate(delays):
        ceiling = min(10.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert parse_retry_after("120") == 120.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_host_pacer_spaces_requests_and_caps_concurrency():
    starts: list[float] = []
    active = {"now": 0, "max": 0}

    async def main() -> None:
        pacer = HostPacer(interval_s=0.02, concurrency=2)

        async def request() -> None:
            async with pacer.slot():
                starts.append(time.monotonic())
                active["now"] += 1
                active["max"] = max(active["max"], active["now"])
                await asyncio.sleep(0.05)
                active["now"] -= 1

        await asyncio.gather(*(request() for _ in range(8)))

    asyncio.run(main())
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.019
    assert active["max"] == 2


def _write(path, data: bytes, compress: bool = False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


def test_url_lists_in_every_format(tmp_path):
    urls = ["http://a.com/1", "http://b.com/2"]
    text = _write(tmp_path / "u.txt", b"# comment\nhttp://a.com/1\n\nhttp://b.com/2\n")
    csv_file = _write(tmp_path / "u.csv.gz", b"id,url\n1,http://a.com/1\n2,http://b.com/2\n", compress=True)
    tsv = _write(tmp_path / "u.tsv", b"http://a.com/1\tx\nhttp://b.com/2\ty\n")  # no header named url
    jsonl = _write(tmp_path / "u.jsonl", b'{"url": "http://a.com/1", "depth": 1}\n"http://b.com/2"\n{"nope": 1}\n')
    parquet = str(tmp_path / "u.parquet")
    pq.write_table(pa.table({"url": urls, "other": [1, 2]}), parquet)
    for path in (text, csv_file, tsv, parquet):
        assert [r["raw_url"] for r in read_url_file(path)] == urls, path
    rows = list(read_url_file(jsonl))
    assert [r["raw_url"] for r in rows] == [*urls, None]
    assert rows[0]["depth"] == 1
    assert url_format("x.csv.zst") == "csv" and url_format("list") == "text"


def _page(url: str, body: bytes, when: datetime) -> dict:
    return {
        "id": stable_id(url),
        "url": url,
        "final_url": url,
        "status": 200,
        "reason_phrase": "OK",
        "http_version": "HTTP/1.1",
        "headers": [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        "body": body,
        "fetched_at": when,
        "ip": "127.0.0.1",
    }


def test_warc_shard_offsets_and_reader_roundtrip(tmp_path):
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    pages = [_page(f"http://h.com/{i}", f"<p>page {i}</p>".encode(), when) for i in (3, 1, 2)]
    data, placed = encode_shard([encode_page(p) for p in pages], "s.warc.gz", {"isPartOf": "test"})
    assert [row["url"] for row in placed] == ["http://h.com/1", "http://h.com/2", "http://h.com/3"]
    assert placed[0]["bytes"] == len(b"<p>page 1</p>") and "body" not in placed[0]
    path = tmp_path / "s.warc.gz"
    path.write_bytes(data)
    for place in placed:
        member = data[place["warc_offset"] : place["warc_offset"] + place["warc_length"]]
        record = next(ArchiveIterator(io.BytesIO(member)))
        page = next(p for p in pages if p["id"] == place["id"])
        assert record.rec_headers.get_header("WARC-Target-URI") == page["url"]
        assert record.content_stream().read() == page["body"]
    kept = [rec for rec, drop in read_warc(str(path), ReadConfig()) if drop is None]
    assert [r["url"] for r in kept] == ["http://h.com/1", "http://h.com/2", "http://h.com/3"]
    assert kept[0]["fetched_at"] == when.replace(microsecond=678000)
    assert stored_headers([("Content-Encoding", "gzip")], 5) == [
        ("X-Crawler-Content-Encoding", "gzip"),
        ("Content-Length", "5"),
    ]


def test_reasons_retryable():
    for reason in ("timeout", "connection_error", "dns_error", "http_429", "http_503", "robots_unavailable"):
        assert reasons.is_retryable(reason)
    for reason in ("http_404", "robots_disallowed", "ssrf_blocked", "too_large", "opt_out_noai", None):
        assert not reasons.is_retryable(reason)


def test_config_validation_and_yaml_lists():
    with pytest.raises(ValueError, match="per_host_rate"):
        CrawlConfig(per_host_rate=0)
    with pytest.raises(ValueError, match="CIDR"):
        CrawlConfig(allowed_networks=("not-a-net",))
    config = CrawlConfig(content_types=["Text/HTML", "image/*"])
    assert config.content_types == ("text/html", "image/*")
    assert config.allows_content_type("image/png") and not config.allows_content_type("application/pdf")
    assert json.loads(json.dumps(config.content_types)) == ["text/html", "image/*"]
