"""The async fetch loop of one host: robots.txt, pacing, redirects, retries, limits, outcome.

``Fetcher.crawl_host`` fetches every URL of one politeness key (a host) with at most
``per_host_concurrency`` requests in flight, and hands each URL's outcome to ``emit`` as soon
as it is known: a fetched record (body and headers, for the WARC) or a rejected one with a
stable reason (``transforms.crawl.reasons``). Many hosts run concurrently in one event loop
(``FetchHosts``), so one core keeps many hosts busy while each host sees a polite client.

Per URL, in order: robots.txt of the URL's origin (fetched once per run: cached in the run
folder, so later rounds of a seed crawl and other workers reuse it),
the SSRF check (IP literals here, names in ``CheckedResolver`` after DNS), the request under
connect/read/total timeouts, 429/5xx/timeouts retried with backoff (host-wide, honouring
Retry-After), redirects followed by hand (every hop checked again: scope, robots, SSRF; a
URL seen twice in a chain is a loop), TDMRep's tdmrep.json of the origin (once per run, cached
as robots.txt is) and robots.txt's Content-Usage rules, then, for 2xx: X-Robots-Tag, the
``tdm-reservation`` and ``Content-Usage`` headers, the content-type
allow-list and the size limit (Content-Length first, then counted while streaming, after
decompression), and for HTML the robots meta tag and the links to follow.

An origin's rules are checked in ``transforms.crawl.origin_rules``; the outcome records and the
reasons of failed requests are built in ``transforms.crawl.fetch_outcome``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime

import aiohttp
import yarl

from transforms.consent.signals import find_reservations
from transforms.crawl import reasons
from transforms.crawl.config import CrawlConfig
from transforms.crawl.fetch_outcome import (
    FetchFailure,
    HostState,
    HttpResponse,
    Record,
    UrlProgress,
    classify_error,
    media_type,
    outcome_base,
    rejected_outcome,
    response_header,
)
from transforms.crawl.html_scan import HTML_TYPES, scan_html
from transforms.crawl.origin_rules import ROBOTS, OriginRules
from transforms.crawl.politeness import HostPacer, backoff_delay, parse_retry_after
from transforms.crawl.robots import MAX_ROBOTS_BYTES, opt_out, robots_token, x_robots_directives
from transforms.crawl.ssrf import AddressPolicy, CheckedResolver, SsrfBlocked
from transforms.crawl.url_norm import InvalidUrl, Scope, host_port, resolve_link

READ_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PAGE = "page"


class Fetcher(OriginRules):
    """Fetches URLs host by host. Open with ``await Fetcher.open(config)``; close when done."""

    def __init__(
        self,
        config: CrawlConfig,
        session: aiohttp.ClientSession,
        resolver: CheckedResolver | None = None,
        robots_cache: str | None = None,
    ):
        self._config = config
        self._robots_cache = robots_cache
        self._session = session
        self._resolver = resolver
        self._policy = AddressPolicy(config.allow_private_addresses, config.allowed_networks)
        self._scope = Scope(config.allowed_hosts, config.allowed_domains)
        self._token = robots_token(config.user_agent)
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=config.connect_timeout_s,
            sock_connect=config.connect_timeout_s,
            sock_read=config.read_timeout_s,
        )

    @classmethod
    async def open(cls, config: CrawlConfig, robots_cache: str | None = None) -> Fetcher:
        policy = AddressPolicy(config.allow_private_addresses, config.allowed_networks)
        resolver = CheckedResolver(policy)
        connector = aiohttp.TCPConnector(
            resolver=resolver, limit=config.max_connections, limit_per_host=0, ttl_dns_cache=60
        )
        accept = ",".join(config.content_types) + ";q=1.0,*/*;q=0.1"
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": config.user_agent, "Accept": accept},
            trust_env=False,  # no proxy from the environment: the SSRF check must see the target
            auto_decompress=True,
        )
        return cls(config, session, resolver, robots_cache)

    async def close(self) -> None:
        await self._session.close()

    async def crawl_host(
        self,
        records: list[Record],
        emit: Callable[[Record], None],
        postprocess: Callable[[Record], Record] | None = None,
        executor: Executor | None = None,
    ) -> None:
        """Fetch every URL record of one host; ``emit`` each outcome as it is known.

        ``postprocess`` (WARC encoding, image decoding) runs on each fetched page in
        ``executor`` (default: the event loop's thread pool), off the loop (zlib, hashing,
        Pillow and OpenCV release the GIL), before it is emitted; a host loop waits for it
        before its next URL, which bounds the pages held."""
        config = self._config
        state = HostState(
            pacer=HostPacer(1.0 / config.per_host_rate, config.per_host_concurrency),
            rng=random.Random(records[0]["url"] if records else 0),
        )
        pending = iter(records)

        async def worker() -> None:
            for record in pending:
                try:
                    result = await self.fetch(record, state)
                    if postprocess is not None and result["outcome"] == reasons.FETCHED:
                        result = await asyncio.get_running_loop().run_in_executor(executor, postprocess, result)
                except Exception as exc:  # noqa: BLE001 - every URL must end with an outcome
                    result = rejected_outcome(
                        record,
                        UrlProgress(record["url"], [record["url"]]),
                        FetchFailure(reasons.FETCH_ERROR, f"{type(exc).__name__}: {exc}"),
                        0.0,
                    )
                emit(result)

        try:
            await asyncio.gather(*(worker() for _ in range(min(config.per_host_concurrency, len(records)))))
        finally:
            for task in [*state.robots.values(), *state.tdmrep.values()]:
                task.cancel()

    async def fetch(self, record: Record, state: HostState) -> Record:
        started = time.monotonic()
        progress = UrlProgress(record["url"], [record["url"]])
        try:
            return await self._fetch(record, state, progress, started)
        except FetchFailure as failure:
            return rejected_outcome(record, progress, failure, time.monotonic() - started)

    async def _fetch(self, record: Record, state: HostState, progress: UrlProgress, started: float) -> Record:
        config = self._config
        for hop in range(config.max_redirects + 1):
            url = progress.url
            if hop and not self._scope.allows(url):
                raise FetchFailure(reasons.REDIRECT_OUT_OF_SCOPE, f"redirected to {url}")
            await self._check_robots(url, state)
            response = await self._get_with_retries(url, state, progress, _PAGE)
            progress.status = response.status
            if response.location is None:
                if not 200 <= response.status < 300:
                    raise FetchFailure(
                        reasons.http_reason(response.status),
                        f"{response.status} {response.reason_phrase}",
                        response.status,
                    )
                return self._fetched(record, progress, response, time.monotonic() - started)
            try:
                target = resolve_link(url, response.location, config.max_url_length)
            except InvalidUrl as exc:
                raise FetchFailure(
                    reasons.REDIRECT_INVALID, f"Location {response.location!r}: {exc.detail}", response.status
                ) from exc
            if target in progress.chain:
                raise FetchFailure(reasons.REDIRECT_LOOP, " -> ".join([*progress.chain, target])[:500], response.status)
            progress.chain.append(target)
            progress.url = target
        raise FetchFailure(reasons.TOO_MANY_REDIRECTS, f"more than {config.max_redirects} redirects", progress.status)

    async def _get_with_retries(self, url: str, state: HostState, progress: UrlProgress, purpose: str) -> HttpResponse:
        config = self._config
        for attempt in range(config.max_retries + 1):
            progress.attempts += 1
            retry_after = None
            try:
                response = await self._get_once(url, state, purpose)
            except FetchFailure as failure:
                if not reasons.is_retryable(failure.reason) or attempt == config.max_retries:
                    raise
            else:
                if not reasons.is_retryable_status(response.status):
                    return response
                failure = FetchFailure(
                    reasons.http_reason(response.status), f"{response.status} {response.reason_phrase}", response.status
                )
                progress.status = response.status
                retry_after = parse_retry_after(response.retry_after)
                if attempt == config.max_retries:
                    raise failure
                if retry_after is not None and retry_after > config.max_retry_after_s:
                    failure.detail += f"; Retry-After {retry_after:g} s > {config.max_retry_after_s:g} s"
                    raise failure
            delay = backoff_delay(attempt, config.backoff_base_s, config.backoff_max_s, state.rng)
            state.pacer.defer(max(delay, retry_after or 0.0))
        raise AssertionError("unreachable")

    async def _get_once(self, url: str, state: HostState, purpose: str) -> HttpResponse:
        try:
            self._policy.check_literal(host_port(url)[0])
        except SsrfBlocked as exc:
            raise FetchFailure(reasons.SSRF_BLOCKED, str(exc)) from exc
        async with state.pacer.slot():
            try:
                async with asyncio.timeout(self._config.total_timeout_s):
                    async with self._session.get(
                        yarl.URL(url, encoded=True), allow_redirects=False, timeout=self._timeout
                    ) as response:
                        return await self._read(response, purpose)
            except FetchFailure:
                raise
            except Exception as exc:  # noqa: BLE001 - classified into a stable reason
                reason, detail = classify_error(exc)
                if reason == reasons.TIMEOUT and not str(exc):
                    detail = f"no complete response within {self._config.total_timeout_s:g} s"
                raise FetchFailure(reason, detail) from exc

    async def _read(self, response: aiohttp.ClientResponse, purpose: str) -> HttpResponse:
        config = self._config
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        peer = None
        if response.connection is not None and response.connection.transport is not None:
            peer = response.connection.transport.get_extra_info("peername")
        result = HttpResponse(
            status=response.status,
            reason_phrase=response.reason or "",
            http_version=f"HTTP/{response.version.major}.{response.version.minor}" if response.version else "HTTP/1.1",
            headers=headers,
            fetched_at=datetime.now(UTC),
            ip=peer[0] if peer else self._address_of(response.url.host),
            retry_after=response_header(headers, "Retry-After"),
            content_type=response_header(headers, "Content-Type"),
        )
        if response.status in _REDIRECTS:
            result.location = response_header(headers, "Location")
            if result.location is not None:
                return result
        if not 200 <= response.status < 300:
            return result
        if purpose == ROBOTS:
            result.body = await self._read_body(response, MAX_ROBOTS_BYTES, truncate=True)
            return result
        x_robots = [v for k, v in headers if k.lower() == "x-robots-tag"]
        directives = set().union(*(x_robots_directives(x_robots, t) for t in (self._token, *config.robots_agent_tokens)))
        directive = opt_out(directives, config.opt_out_directives)
        if directive is not None:
            raise FetchFailure(
                reasons.OPT_OUT_PREFIX + directive,
                f"X-Robots-Tag: {', '.join(x_robots)}",
                response.status,
                result.content_type,
            )
        reserved = self._reserved_by_headers(headers)
        if reserved is not None:
            raise FetchFailure(reasons.OPT_OUT_PREFIX + reserved[0], reserved[1], response.status, result.content_type)
        media = media_type(result.content_type)
        if not config.allows_content_type(media):
            raise FetchFailure(
                reasons.BAD_CONTENT_TYPE, f"Content-Type {result.content_type!r}", response.status, result.content_type
            )
        if response.content_length is not None and response.content_length > config.max_body_bytes:
            raise FetchFailure(
                reasons.TOO_LARGE,
                f"Content-Length {response.content_length} > {config.max_body_bytes}",
                response.status,
                result.content_type,
            )
        try:
            result.body = await self._read_body(response, config.max_body_bytes, truncate=False)
        except FetchFailure as failure:
            failure.content_type = result.content_type
            raise
        return result

    def _reserved_by_headers(self, headers: list[tuple[str, str]]) -> tuple[str, str] | None:
        """``(reason suffix, evidence)`` of a TDMRep or Content-Usage response header reservation."""
        wanted = {"tdm_reservation_header": self._config.honour_tdmrep,
                  "content_usage_header": self._config.honour_content_usage}
        tokens = (self._token, *self._config.robots_agent_tokens)
        for signal, evidence in find_reservations(headers, [], tokens):
            if wanted.get(signal):
                return signal.removesuffix("_header"), evidence
        return None

    def _address_of(self, host: str | None) -> str | None:
        """The checked address of ``host`` when the connection is already back in the pool."""
        if not host:
            return None
        if self._policy.check_literal(host):
            return host.strip("[]")
        return self._resolver.addresses.get(host) if self._resolver is not None else None

    async def _read_body(self, response: aiohttp.ClientResponse, limit: int, truncate: bool) -> bytes:
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                if truncate:
                    chunks.append(chunk[: len(chunk) - (size - limit)])
                    break
                raise FetchFailure(reasons.TOO_LARGE, f"body exceeds {limit} bytes (stopped reading)", response.status)
            chunks.append(chunk)
        return b"".join(chunks)

    def _links(self, record: Record, response: HttpResponse, url: str) -> tuple[frozenset[str], list[str]]:
        if media_type(response.content_type) not in HTML_TYPES:
            return frozenset(), []
        want_links = record.get("depth", 0) < self._config.depth
        scan = scan_html(response.body, url, self._token, want_links, self._config.max_url_length)
        return scan.directives, scan.links

    def _fetched(self, record: Record, progress: UrlProgress, response: HttpResponse, elapsed: float) -> Record:
        directives, links = self._links(record, response, progress.url)
        base = outcome_base(record, progress, elapsed)
        directive = opt_out(directives, self._config.opt_out_directives)
        if directive is not None:
            failure = FetchFailure(
                reasons.OPT_OUT_PREFIX + directive,
                f"<meta name=robots>: {', '.join(sorted(directives))}",
                response.status,
            )
            progress.content_type, progress.fetched_at = response.content_type, response.fetched_at
            return {**rejected_outcome(record, progress, failure, elapsed), "links": links}
        return {
            **base,
            "outcome": reasons.FETCHED,
            "reason": None,
            "detail": None,
            "retryable": False,
            "status": response.status,
            "reason_phrase": response.reason_phrase,
            "http_version": response.http_version,
            "headers": response.headers,
            "body": response.body,
            "content_type": response.content_type,
            "fetched_at": response.fetched_at,
            "ip": response.ip,
            "links": links,
        }


def fetch_all(config: CrawlConfig, hosts: dict[str, list[Record]]) -> list[Record]:
    """Fetch the URL records of each host concurrently, outside Beam (tests, small tools)."""

    async def main() -> list[Record]:
        fetcher = await Fetcher.open(config)
        results: list[Record] = []
        try:
            await asyncio.gather(*(fetcher.crawl_host(records, results.append) for records in hosts.values()))
        finally:
            await fetcher.close()
        return results

    return asyncio.run(main())

