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
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import yarl

from transforms.consent.signals import find_reservations
from transforms.consent.site_rules import TDMREP_PATH, TdmRep, robots_content_usage
from transforms.crawl import reasons
from transforms.crawl.config import CrawlConfig
from transforms.crawl.html_scan import HTML_TYPES, scan_html
from transforms.crawl.politeness import HostPacer, backoff_delay, parse_retry_after
from transforms.crawl.robots import (
    MAX_ROBOTS_BYTES,
    RobotsRules,
    cache_robots,
    load_cached_robots,
    opt_out,
    robots_token,
    x_robots_directives,
)
from transforms.crawl.ssrf import AddressPolicy, CheckedResolver, SsrfBlocked
from transforms.crawl.url_norm import InvalidUrl, Scope, host_port, origin, resolve_link
from transforms.record import stable_id

Record = dict[str, Any]  # as transforms.stage.Record, without importing Beam into the core

READ_CHUNK = 64 * 1024
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 §2.3.1.2
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PAGE = "page"
_ROBOTS = "robots"


class _Failure(Exception):
    def __init__(self, reason: str, detail: str = "", status: int | None = None, content_type: str | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.content_type = content_type


@dataclass
class _Response:
    status: int
    reason_phrase: str
    http_version: str
    headers: list[tuple[str, str]]
    fetched_at: datetime
    ip: str | None
    location: str | None = None
    retry_after: str | None = None
    content_type: str | None = None
    body: bytes = b""


@dataclass
class _UrlProgress:
    url: str
    chain: list[str]
    attempts: int = 0
    status: int | None = None
    content_type: str | None = None
    fetched_at: datetime | None = None


@dataclass
class _HostState:
    pacer: HostPacer
    rng: random.Random
    robots: dict[str, asyncio.Task[RobotsRules]] = field(default_factory=dict)
    tdmrep: dict[str, asyncio.Task[TdmRep]] = field(default_factory=dict)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def _is_ssrf(exc: BaseException) -> SsrfBlocked | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SsrfBlocked):
            return current
        seen.add(id(current))
        nested = getattr(current, "os_error", None)
        current = nested if isinstance(nested, BaseException) else (current.__cause__ or current.__context__)
    return None


def classify_error(exc: BaseException) -> tuple[str, str]:
    """The stable reason and a detail for an exception raised by one request."""
    blocked = _is_ssrf(exc)
    if blocked is not None:
        return reasons.SSRF_BLOCKED, str(blocked)
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return reasons.TIMEOUT, detail
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return reasons.DNS_ERROR, detail
    if isinstance(exc, aiohttp.ClientSSLError):
        return reasons.TLS_ERROR, detail
    if isinstance(exc, aiohttp.InvalidURL):
        return reasons.INVALID_URL, detail
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return reasons.BAD_RESPONSE, detail
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return reasons.CONNECTION_ERROR, detail
    return reasons.FETCH_ERROR, detail


class Fetcher:
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
    ) -> None:
        """Fetch every URL record of one host; ``emit`` each outcome as it is known.

        ``postprocess`` (e.g. WARC encoding) runs on each fetched page in the event loop's
        thread pool, off the loop (zlib and hashing release the GIL), before it is emitted;
        a host loop waits for it before its next URL, which bounds the pages held."""
        config = self._config
        state = _HostState(
            pacer=HostPacer(1.0 / config.per_host_rate, config.per_host_concurrency),
            rng=random.Random(records[0]["url"] if records else 0),
        )
        pending = iter(records)

        async def worker() -> None:
            for record in pending:
                try:
                    result = await self.fetch(record, state)
                    if postprocess is not None and result["outcome"] == reasons.FETCHED:
                        result = await asyncio.get_running_loop().run_in_executor(None, postprocess, result)
                except Exception as exc:  # noqa: BLE001 - every URL must end with an outcome
                    result = self._rejected(
                        record,
                        _UrlProgress(record["url"], [record["url"]]),
                        _Failure(reasons.FETCH_ERROR, f"{type(exc).__name__}: {exc}"),
                        0.0,
                    )
                emit(result)

        try:
            await asyncio.gather(*(worker() for _ in range(min(config.per_host_concurrency, len(records)))))
        finally:
            for task in [*state.robots.values(), *state.tdmrep.values()]:
                task.cancel()

    async def fetch(self, record: Record, state: _HostState) -> Record:
        started = time.monotonic()
        progress = _UrlProgress(record["url"], [record["url"]])
        try:
            return await self._fetch(record, state, progress, started)
        except _Failure as failure:
            return self._rejected(record, progress, failure, time.monotonic() - started)

    async def _fetch(self, record: Record, state: _HostState, progress: _UrlProgress, started: float) -> Record:
        config = self._config
        for hop in range(config.max_redirects + 1):
            url = progress.url
            if hop and not self._scope.allows(url):
                raise _Failure(reasons.REDIRECT_OUT_OF_SCOPE, f"redirected to {url}")
            await self._check_robots(url, state)
            response = await self._get_with_retries(url, state, progress, _PAGE)
            progress.status = response.status
            if response.location is None:
                if not 200 <= response.status < 300:
                    raise _Failure(
                        reasons.http_reason(response.status),
                        f"{response.status} {response.reason_phrase}",
                        response.status,
                    )
                return self._fetched(record, progress, response, time.monotonic() - started)
            try:
                target = resolve_link(url, response.location, config.max_url_length)
            except InvalidUrl as exc:
                raise _Failure(
                    reasons.REDIRECT_INVALID, f"Location {response.location!r}: {exc.detail}", response.status
                ) from exc
            if target in progress.chain:
                raise _Failure(reasons.REDIRECT_LOOP, " -> ".join([*progress.chain, target])[:500], response.status)
            progress.chain.append(target)
            progress.url = target
        raise _Failure(reasons.TOO_MANY_REDIRECTS, f"more than {config.max_redirects} redirects", progress.status)

    async def _check_robots(self, url: str, state: _HostState) -> None:
        try:
            self._policy.check_literal(host_port(url)[0])
        except SsrfBlocked as exc:
            raise _Failure(reasons.SSRF_BLOCKED, str(exc)) from exc
        key = origin(url)
        task = state.robots.get(key)
        if task is None:
            task = state.robots[key] = asyncio.ensure_future(self._fetch_robots(key, state))
        rules = await asyncio.shield(task)
        if rules.unavailable is not None:
            reason = reasons.SSRF_BLOCKED if rules.reason == reasons.SSRF_BLOCKED else reasons.ROBOTS_UNAVAILABLE
            raise _Failure(reason, rules.unavailable)
        interval = rules.interval_s(self._token)
        if interval > self._config.max_crawl_delay_s:
            raise _Failure(
                reasons.CRAWL_DELAY_TOO_LONG,
                f"{key} asks for {interval:g} s between requests > {self._config.max_crawl_delay_s:g}",
            )
        state.pacer.widen(interval)
        for token in (self._token, *self._config.robots_agent_tokens):
            if not rules.allows(url, token):
                raise _Failure(reasons.ROBOTS_DISALLOWED, f"{key}/robots.txt disallows it for {token}")
        if self._config.honour_content_usage:
            evidence = robots_content_usage(rules.text, url, (self._token, *self._config.robots_agent_tokens))
            if evidence is not None:
                raise _Failure(reasons.OPT_OUT_PREFIX + "content_usage", evidence)
        if self._config.honour_tdmrep:
            task = state.tdmrep.get(key)
            if task is None:
                task = state.tdmrep[key] = asyncio.ensure_future(self._fetch_tdmrep(key, state))
            evidence = (await asyncio.shield(task)).reservation(url)
            if evidence is not None:
                raise _Failure(reasons.OPT_OUT_PREFIX + "tdm_reservation", evidence)

    async def _fetch_tdmrep(self, key: str, state: _HostState) -> TdmRep:
        """``key``'s tdmrep.json, once per run: cached beside robots.txt (under its own key)."""
        cache_key = key + TDMREP_PATH
        if self._robots_cache is not None:
            cached = await asyncio.to_thread(load_cached_robots, self._robots_cache, cache_key)
            if cached is not None:
                return TdmRep.parse(cached.text)
        url = key + TDMREP_PATH
        try:
            response = await self._get_with_retries(url, state, _UrlProgress(url, [url]), _ROBOTS)
        except _Failure:
            return TdmRep()  # unreachable: no reservation read (retried with the next run)
        found = 200 <= response.status < 300 and response.location is None
        text = response.body.decode("utf-8", errors="replace") if found else None
        if self._robots_cache is not None:
            rules = RobotsRules(text=text)
            await asyncio.to_thread(cache_robots, self._robots_cache, cache_key, rules)
        return TdmRep.parse(text)

    async def _fetch_robots(self, key: str, state: _HostState) -> RobotsRules:
        """The rules of ``key``: from the run's robots cache when an earlier round (or another
        worker) fetched them, otherwise from the host, then cached for the rest of the run."""
        if self._robots_cache is None:
            return await self._fetch_robots_from_host(key, state)
        cached = await asyncio.to_thread(load_cached_robots, self._robots_cache, key)
        if cached is not None:
            return cached
        rules = await self._fetch_robots_from_host(key, state)
        await asyncio.to_thread(cache_robots, self._robots_cache, key, rules)
        return rules

    async def _fetch_robots_from_host(self, key: str, state: _HostState) -> RobotsRules:
        url = f"{key}/robots.txt"
        progress = _UrlProgress(url, [url])
        for _ in range(MAX_ROBOTS_REDIRECTS + 1):
            try:
                response = await self._get_with_retries(progress.url, state, progress, _ROBOTS)
            except _Failure as failure:
                return RobotsRules.unreachable(failure.reason, f"{url}: {failure.reason}: {failure.detail}")
            if response.location is None:
                if 200 <= response.status < 300:
                    return RobotsRules.parse(response.body)
                # 4xx: "unavailable", crawl without restriction (RFC 9309 §2.3.1.3).
                return RobotsRules.allow_all()
            try:
                progress.url = resolve_link(progress.url, response.location, self._config.max_url_length)
            except InvalidUrl:
                return RobotsRules.allow_all()
        return RobotsRules.allow_all()

    async def _get_with_retries(self, url: str, state: _HostState, progress: _UrlProgress, purpose: str) -> _Response:
        config = self._config
        for attempt in range(config.max_retries + 1):
            progress.attempts += 1
            retry_after = None
            try:
                response = await self._get_once(url, state, purpose)
            except _Failure as failure:
                if not reasons.is_retryable(failure.reason) or attempt == config.max_retries:
                    raise
            else:
                if not reasons.is_retryable_status(response.status):
                    return response
                failure = _Failure(
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

    async def _get_once(self, url: str, state: _HostState, purpose: str) -> _Response:
        try:
            self._policy.check_literal(host_port(url)[0])
        except SsrfBlocked as exc:
            raise _Failure(reasons.SSRF_BLOCKED, str(exc)) from exc
        async with state.pacer.slot():
            try:
                async with asyncio.timeout(self._config.total_timeout_s):
                    async with self._session.get(
                        yarl.URL(url, encoded=True), allow_redirects=False, timeout=self._timeout
                    ) as response:
                        return await self._read(response, purpose)
            except _Failure:
                raise
            except Exception as exc:  # noqa: BLE001 - classified into a stable reason
                reason, detail = classify_error(exc)
                if reason == reasons.TIMEOUT and not str(exc):
                    detail = f"no complete response within {self._config.total_timeout_s:g} s"
                raise _Failure(reason, detail) from exc

    async def _read(self, response: aiohttp.ClientResponse, purpose: str) -> _Response:
        config = self._config
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        peer = None
        if response.connection is not None and response.connection.transport is not None:
            peer = response.connection.transport.get_extra_info("peername")
        result = _Response(
            status=response.status,
            reason_phrase=response.reason or "",
            http_version=f"HTTP/{response.version.major}.{response.version.minor}" if response.version else "HTTP/1.1",
            headers=headers,
            fetched_at=datetime.now(UTC),
            ip=peer[0] if peer else self._address_of(response.url.host),
            retry_after=_header(headers, "Retry-After"),
            content_type=_header(headers, "Content-Type"),
        )
        if response.status in _REDIRECTS:
            result.location = _header(headers, "Location")
            if result.location is not None:
                return result
        if not 200 <= response.status < 300:
            return result
        if purpose == _ROBOTS:
            result.body = await self._read_body(response, MAX_ROBOTS_BYTES, truncate=True)
            return result
        x_robots = [v for k, v in headers if k.lower() == "x-robots-tag"]
        directives = set().union(*(x_robots_directives(x_robots, t) for t in (self._token, *config.robots_agent_tokens)))
        directive = opt_out(directives, config.opt_out_directives)
        if directive is not None:
            raise _Failure(
                reasons.OPT_OUT_PREFIX + directive,
                f"X-Robots-Tag: {', '.join(x_robots)}",
                response.status,
                result.content_type,
            )
        reserved = self._reserved_by_headers(headers)
        if reserved is not None:
            raise _Failure(reasons.OPT_OUT_PREFIX + reserved[0], reserved[1], response.status, result.content_type)
        media = media_type(result.content_type)
        if not config.allows_content_type(media):
            raise _Failure(
                reasons.BAD_CONTENT_TYPE, f"Content-Type {result.content_type!r}", response.status, result.content_type
            )
        if response.content_length is not None and response.content_length > config.max_body_bytes:
            raise _Failure(
                reasons.TOO_LARGE,
                f"Content-Length {response.content_length} > {config.max_body_bytes}",
                response.status,
                result.content_type,
            )
        try:
            result.body = await self._read_body(response, config.max_body_bytes, truncate=False)
        except _Failure as failure:
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
                raise _Failure(reasons.TOO_LARGE, f"body exceeds {limit} bytes (stopped reading)", response.status)
            chunks.append(chunk)
        return b"".join(chunks)

    def _base(self, record: Record, progress: _UrlProgress, elapsed: float) -> Record:
        return {
            "id": stable_id(record["url"]),
            "url": record["url"],
            "final_url": progress.url,
            "host": host_port(record["url"])[0],
            "depth": record.get("depth", 0),
            "parent_url": record.get("parent_url"),
            "attempts": progress.attempts,
            "redirects": progress.chain[1:],
            "elapsed_s": round(elapsed, 3),
        }

    def _links(self, record: Record, response: _Response, url: str) -> tuple[frozenset[str], list[str]]:
        if media_type(response.content_type) not in HTML_TYPES:
            return frozenset(), []
        want_links = record.get("depth", 0) < self._config.depth
        scan = scan_html(response.body, url, self._token, want_links, self._config.max_url_length)
        return scan.directives, scan.links

    def _fetched(self, record: Record, progress: _UrlProgress, response: _Response, elapsed: float) -> Record:
        directives, links = self._links(record, response, progress.url)
        base = self._base(record, progress, elapsed)
        directive = opt_out(directives, self._config.opt_out_directives)
        if directive is not None:
            failure = _Failure(
                reasons.OPT_OUT_PREFIX + directive,
                f"<meta name=robots>: {', '.join(sorted(directives))}",
                response.status,
            )
            progress.content_type, progress.fetched_at = response.content_type, response.fetched_at
            return {**self._rejected(record, progress, failure, elapsed), "links": links}
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

    def _rejected(self, record: Record, progress: _UrlProgress, failure: _Failure, elapsed: float) -> Record:
        return {
            **self._base(record, progress, elapsed),
            "outcome": reasons.REJECTED,
            "status": failure.status if failure.status is not None else progress.status,
            "reason": failure.reason,
            "detail": failure.detail[:500],
            "retryable": reasons.is_retryable(failure.reason),
            "content_type": failure.content_type or progress.content_type,
            "fetched_at": progress.fetched_at,
            "links": [],
        }


def prefetch_rejection(record: Record, reason: str, detail: str) -> Record:
    """The outcome of a URL refused before any request (invalid, out of scope, over budget)."""
    url = record["url"]
    return {
        "id": stable_id(url),
        "url": url,
        "final_url": None,
        "host": record.get("host"),
        "depth": record.get("depth", 0),
        "parent_url": record.get("parent_url"),
        "attempts": 0,
        "redirects": [],
        "elapsed_s": 0.0,
        "outcome": reasons.REJECTED,
        "status": None,
        "reason": reason,
        "detail": detail[:500],
        "retryable": reasons.is_retryable(reason),
        "content_type": None,
        "fetched_at": None,
        "links": [],
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


def url_record(url: str, depth: int = 0, parent_url: str | None = None) -> dict[str, Any]:
    """The record the fetcher takes for one normalised URL."""
    return {"url": url, "depth": depth, "parent_url": parent_url, "host": host_port(url)[0]}
