"""Real HTTP servers on 127.0.0.1 for the crawler's tests: a static site and a hostile one.

Every handler loop is bounded (bytes written, sleeps, a stop event) so that a test ends even
when the crawler misbehaves; the server records each request (path, time, user agent, how
many were in flight) so tests can check politeness from the server's side.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# What a crawler fetches once per origin besides the pages: robots.txt and TDMRep's rules.
SITE_FILES = frozenset({"/robots.txt", "/.well-known/tdmrep.json"})
MAX_STREAM_BYTES = 64 * 1024 * 1024  # the never-ending body stops here if the client never does


@dataclass
class Hit:
    path: str
    at: float
    user_agent: str
    in_flight: int


@dataclass
class Site:
    url: str
    hits: list[Hit] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]


def _page(title: str, body: str = "", head: str = "") -> bytes:
    return (
        f"<!doctype html><html><head><title>{title}</title>{head}</head>"
        f"<body><h1>{title}</h1><p>{title} is a page of the test site with enough words to read.</p>"
        f"{body}</body></html>"
    ).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[str, Callable[[_Handler], None]] = {}
    site: Site
    stop: threading.Event
    lock: threading.Lock
    state: dict[str, int]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.state["in_flight"] += 1
            self.site.hits.append(
                Hit(self.path, time.monotonic(), self.headers.get("User-Agent", ""), self.state["in_flight"])
            )
        try:
            route = self.routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_body(404, b"not found", "text/plain")
            else:
                route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.lock:
                self.state["in_flight"] -= 1

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_body(status, b"", None, {"Location": location})


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-response are what these tests are about


@contextmanager
def serve(routes: dict[str, Callable[[_Handler], None]], delay_s: float = 0.0) -> Iterator[Site]:
    """A threaded server on 127.0.0.1 (a free port) with ``routes``; yields its ``Site``."""
    stop = threading.Event()
    site = Site("")

    def delayed(route: Callable[[_Handler], None]) -> Callable[[_Handler], None]:
        def run(handler: _Handler) -> None:
            stop.wait(delay_s)
            route(handler)

        return run

    handler = type(
        "Handler",
        (_Handler,),
        {
            "routes": {p: delayed(r) if delay_s else r for p, r in routes.items()},
            "site": site,
            "stop": stop,
            "lock": threading.Lock(),
            "state": {"in_flight": 0},
        },
    )
    server = _QuietServer(("127.0.0.1", 0), handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


def static_routes(root: Path) -> dict[str, Callable[[_Handler], None]]:
    """Serve the files under ``root`` (HTML by suffix) at their relative paths."""
    routes = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            kind = "text/html; charset=utf-8" if path.suffix == ".html" else "text/plain"
            routes["/" + path.relative_to(root).as_posix()] = lambda h, body=body, kind=kind: h.send_body(
                200, body, kind
            )
    return routes


def linked_site(pages: int, fanout: int = 3) -> dict[str, Callable[[_Handler], None]]:
    """``/`` and ``/p<i>.html`` pages linking to the next ``fanout`` pages: a site to seed-crawl."""

    def page(i: int) -> Callable[[_Handler], None]:
        links = "".join(f'<a href="/p{j}.html">page {j}</a> ' for j in range(i + 1, min(pages, i + 1 + fanout)))
        body = _page(f"page {i}", links)
        return lambda h: h.send_body(200, body)

    routes = {f"/p{i}.html": page(i) for i in range(pages)}
    routes["/"] = lambda h: h.redirect("/p0.html", 301)
    routes["/robots.txt"] = lambda h: h.send_body(200, b"User-agent: *\nAllow: /\n", "text/plain")
    return routes


@functools.cache
def _gzip_bomb(size: int = 50 * 1024 * 1024) -> bytes:
    """~50 KiB of gzip that inflates to ``size`` bytes of HTML, built without holding ``size``."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"a" * (1024 * 1024)
    parts = [packer.compress(b"<p>")]
    parts += [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


def hostile_routes() -> dict[str, Callable[[_Handler], None]]:
    """One route per way a site can misbehave; each ends by itself."""

    def never_ending(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()  # no Content-Length, HTTP/1.1: the body lasts until the connection closes
        h.close_connection = True
        chunk = b"<p>" + b"x" * 65_536 + b"</p>"
        sent = 0
        while sent < MAX_STREAM_BYTES and not h.stop.is_set():
            h.wfile.write(chunk)
            sent += len(chunk)

    def slow_drip(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(100_000):
            if h.stop.wait(0.05):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    def hang(h: _Handler) -> None:
        h.stop.wait(30)  # sends nothing: the client's read timeout must fire
        h.close_connection = True

    def garbage(h: _Handler) -> None:
        h.wfile.write(b"\x00\x01 this is not HTTP \r\n\r\n")
        h.close_connection = True

    def reset(h: _Handler) -> None:
        h.close_connection = True  # closes without a status line

    counter: dict[str, int] = {}

    def flaky(h: _Handler) -> None:
        counter["flaky"] = counter.get("flaky", 0) + 1
        if counter["flaky"] == 1:
            h.send_body(429, b"slow down", "text/plain", {"Retry-After": "1"})
        else:
            h.send_body(200, _page("flaky, second try"))

    bomb, huge = _gzip_bomb(), b"<p>" + b"h" * (3 * 1024 * 1024) + b"</p>"

    def gzip_bomb(h: _Handler) -> None:
        h.send_body(200, bomb, "text/html", {"Content-Encoding": "gzip"})

    routes: dict[str, Callable[[_Handler], None]] = {
        "/robots.txt": lambda h: h.send_body(
            200,
            b"User-agent: *\nDisallow: /private/\n\nUser-agent: genai-dataprep\nDisallow: /private/\n"
            b"Disallow: /no-ai/\n",
            "text/plain",
        ),
        "/ok.html": lambda h: h.send_body(200, _page("ok")),
        "/private/secret.html": lambda h: h.send_body(200, _page("secret")),
        "/no-ai/page.html": lambda h: h.send_body(200, _page("no ai")),
        "/never-ending": never_ending,
        "/slow-drip": slow_drip,
        "/hang": hang,
        "/loop-a": lambda h: h.redirect("/loop-b"),
        "/loop-b": lambda h: h.redirect("/loop-a"),
        "/redirect-ok": lambda h: h.redirect("/ok.html", 301),
        "/429": lambda h: h.send_body(429, b"too many", "text/plain", {"Retry-After": "1"}),
        "/429-long": lambda h: h.send_body(429, b"come back tomorrow", "text/plain", {"Retry-After": "86400"}),
        "/flaky": flaky,
        "/500": lambda h: h.send_body(500, b"oops", "text/plain"),
        "/404": lambda h: h.send_body(404, b"gone", "text/plain"),
        "/huge": lambda h: h.send_body(200, huge),
        "/gzip-bomb": gzip_bomb,
        "/image.png": lambda h: h.send_body(200, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png"),
        "/no-type": lambda h: h.send_body(200, b"<p>what am I</p>", None),
        "/noindex-header": lambda h: h.send_body(200, _page("noindex"), headers={"X-Robots-Tag": "noindex"}),
        "/other-bot-noindex": lambda h: h.send_body(
            200, _page("other bot"), headers={"X-Robots-Tag": "otherbot: noindex"}
        ),
        "/noai-meta": lambda h: h.send_body(200, _page("noai", head='<meta name="robots" content="noai, noimageai">')),
        "/to-private": lambda h: h.redirect("http://10.255.255.1/admin"),
        "/to-metadata": lambda h: h.redirect("http://169.254.169.254/latest/meta-data/"),
        "/garbage": garbage,
        "/reset": reset,
    }
    for i in range(10):  # a chain longer than the crawler's redirect limit, without a loop
        routes[f"/chain-{i}"] = lambda h, i=i: h.redirect(f"/chain-{i + 1}")
    return routes


@contextmanager
def serve_pydoc() -> Iterator[str]:
    """Python's documentation (pydoc's server) in a child process; yields its base URL.

    A child process, because pydoc re-imports a module to render its page (``forceload``),
    which would replace classes such as ``collections.Counter`` inside the test process.
    The child serves until its standard input closes.
    """
    code = (
        "import sys\nfrom benchmarks.sample_site import serve_python_docs\n"
        "with serve_python_docs() as url:\n    print(url, flush=True)\n    sys.stdin.read()\n"
    )
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        url = child.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"pydoc server did not start: {url!r}")
        yield url
    finally:
        child.stdin.close()
        child.wait()
