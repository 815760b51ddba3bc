"""What fetching one URL ends in: a fetched record, or a rejection with a stable reason
(``transforms.crawl.reasons``), and the types the fetch loop carries on its way there."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from transforms.consent.site_rules import TdmRep
from transforms.crawl import reasons
from transforms.crawl.politeness import HostPacer
from transforms.crawl.robots import RobotsRules
from transforms.crawl.ssrf import SsrfBlocked
from transforms.crawl.url_norm import host_port
from transforms.record import stable_id

Record = dict[str, Any]  # as transforms.stage.Record, without importing Beam into the core


class FetchFailure(Exception):
    """Why the fetch of one URL stopped: a stable reason, a detail, what the response said so far."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None, content_type: str | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.content_type = content_type


@dataclass
class HttpResponse:
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
class UrlProgress:
    url: str
    chain: list[str]
    attempts: int = 0
    status: int | None = None
    content_type: str | None = None
    fetched_at: datetime | None = None



@dataclass
class HostState:
    """One host's pacing and its origins' rules, shared by the requests of ``crawl_host``."""

    pacer: HostPacer
    rng: random.Random
    robots: dict[str, asyncio.Task[RobotsRules]] = field(default_factory=dict)
    tdmrep: dict[str, asyncio.Task[TdmRep]] = field(default_factory=dict)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_header(headers: list[tuple[str, str]], name: str) -> str | None:
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


def outcome_base(record: Record, progress: UrlProgress, elapsed: float) -> Record:
    """What every outcome of a fetched URL says: where it went, how often it was tried, how long it took."""
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


def rejected_outcome(record: Record, progress: UrlProgress, failure: FetchFailure, elapsed: float) -> Record:
    return {
        **outcome_base(record, progress, elapsed),
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



def url_record(url: str, depth: int = 0, parent_url: str | None = None) -> dict[str, Any]:
    """The record the fetcher takes for one normalised URL."""
    return {"url": url, "depth": depth, "parent_url": parent_url, "host": host_port(url)[0]}
