"""Per-host pacing and backoff: how one fetch loop stays polite to its host.

``HostPacer`` spaces request starts at least ``interval`` seconds apart and caps the requests
in flight; robots.txt's crawl-delay only ever widens the interval, and a 429/5xx answer defers
every request to the host, not just the one retried. Because the crawl groups URLs by host
through a shuffle and one loop handles a host, the limits hold across the whole job.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class HostPacer:
    def __init__(self, interval_s: float, concurrency: int, clock: Callable[[], float] = time.monotonic):
        if interval_s < 0 or concurrency < 1:
            raise ValueError(f"need interval_s >= 0 and concurrency >= 1, got {interval_s}, {concurrency}")
        self.interval_s = interval_s
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._next_start = 0.0

    def widen(self, interval_s: float) -> None:
        self.interval_s = max(self.interval_s, interval_s)

    def defer(self, seconds: float) -> None:
        """No request to this host starts within ``seconds`` from now."""
        self._next_start = max(self._next_start, self._clock() + seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            while (wait := self._next_start - self._clock()) > 0:
                await asyncio.sleep(wait)
            # No await between the check and the reservation: the loop is single-threaded.
            self._next_start = self._clock() + self.interval_s
            yield


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff
    and Jitter", 2015): half the capped exponential, plus a uniform draw over the other half,
    so retries spread out but never come back immediately."""
    ceiling = min(max_s, base_s * (2**attempt))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
