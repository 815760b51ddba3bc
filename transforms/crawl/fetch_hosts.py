"""``FetchHosts``: URL records → outcomes, one fetch loop per host, many hosts per event loop.

URLs are keyed by politeness key (host) and grouped through a shuffle, so each host's URLs
reach exactly one fetch loop and its rate and concurrency limits hold across the whole job.
Inside a worker one asyncio event loop runs up to ``max_hosts_in_flight`` host loops at once:
``process`` starts a host and only waits when that many are running; ``finish_bundle`` runs
the rest to the end. Outcomes are yielded as they come (at most ``_MAX_BUFFERED`` wait), so a
worker holds in-flight bodies and a small buffer, never a whole host's pages.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from transforms.crawl.config import CrawlConfig
from transforms.crawl.fetcher import Fetcher
from transforms.crawl.url_norm import politeness_key
from transforms.stage import Record

_MAX_BUFFERED = 64


class _FetchHostsFn(beam.DoFn):
    def __init__(
        self,
        config: CrawlConfig,
        postprocess: Callable[[Record], Record] | None,
        robots_cache: str | None,
        threads: int | None,
    ):
        self._config = config
        self._postprocess = postprocess
        self._robots_cache = robots_cache
        self._threads = threads
        self._hosts = beam.metrics.Metrics.counter("crawl", "hosts")
        self._fetched = beam.metrics.Metrics.counter("crawl", "fetched")
        self._rejected = beam.metrics.Metrics.counter("crawl", "rejected")

    def setup(self) -> None:
        self._executor = ThreadPoolExecutor(self._threads, "postprocess") if self._threads else None
        if hasattr(self._postprocess, "setup"):
            self._postprocess.setup()
        self._loop = asyncio.new_event_loop()
        self._fetcher: Fetcher | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outputs: deque[Record] = deque()
        self._changed: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def _emit(self, result: Record) -> None:
        self._outputs.append(result)
        (self._fetched if result["outcome"] == "fetched" else self._rejected).inc()
        self._changed.set()

    def _run_until(self, done: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not done():
                await self._changed.wait()
                self._changed.clear()

        self._loop.run_until_complete(wait())
        if self._failure is not None:
            # A host loop died without an outcome for each URL: fail the bundle (the runner
            # retries it) rather than lose URLs.
            raise RuntimeError("a host fetch loop failed") from self._failure

    def _drain(self) -> Iterator[Record]:
        while self._outputs:
            yield self._outputs.popleft()

    def process(self, element: tuple[str, Iterable[Record]]) -> Iterator[Record]:
        _key, records = element
        if self._fetcher is None:
            self._fetcher = self._loop.run_until_complete(Fetcher.open(self._config, self._robots_cache))
            self._changed = asyncio.Event()
        self._hosts.inc()
        records = sorted(records, key=lambda r: r["url"])
        task = self._loop.create_task(self._fetcher.crawl_host(records, self._emit, self._postprocess, self._executor))
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self._failure = t.exception()
            self._changed.set()

        task.add_done_callback(finished)
        limit = self._config.max_hosts_in_flight
        while len(self._tasks) >= limit:
            self._run_until(lambda: len(self._tasks) < limit or len(self._outputs) >= _MAX_BUFFERED)
            yield from self._drain()
        yield from self._drain()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        while self._tasks or self._outputs:
            if self._tasks:
                self._run_until(lambda: not self._tasks or len(self._outputs) >= _MAX_BUFFERED)
            for result in self._drain():
                yield GlobalWindows.windowed_value(result)

    def teardown(self) -> None:
        if getattr(self, "_loop", None) is None or self._loop.is_closed():
            return
        if self._fetcher is not None:
            self._loop.run_until_complete(self._fetcher.close())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()
        if self._executor is not None:
            self._executor.shutdown()


class FetchHosts(beam.PTransform):
    """URL records (``url``, ``depth``, ``parent_url``) → outcome records (fetched or rejected).

    Every input URL gives exactly one outcome; fetched ones carry ``body`` and ``headers``, or
    whatever ``postprocess`` (run off the event loop, e.g. ``warc_writer.encode_page``) makes
    of them. ``robots_cache`` (a folder, local or ``s3://``) keeps each origin's robots.txt for
    the whole run, so later rounds and other workers do not fetch it again. ``threads``: a
    pool of its own for ``postprocess`` (its ``setup()``, if it has one, runs once per worker).
    """

    def __init__(
        self,
        config: CrawlConfig,
        postprocess: Callable[[Record], Record] | None = None,
        robots_cache: str | None = None,
        threads: int | None = None,
    ):
        super().__init__()
        self._config = config
        self._postprocess = postprocess
        self._robots_cache = robots_cache
        self._threads = threads

    def expand(self, urls: beam.PCollection) -> beam.PCollection:
        scope = self._config.politeness_scope
        return (
            urls
            | "KeyByHost" >> beam.Map(lambda r: (politeness_key(r["url"], scope), r))
            | "GroupByHost" >> beam.GroupByKey()
            | "FetchHostLoops" >> beam.ParDo(
                _FetchHostsFn(self._config, self._postprocess, self._robots_cache, self._threads)
            )
        )
