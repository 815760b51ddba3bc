"""A real web site on loopback, crawled into a WARC: the demo sample and a benchmark corpus.

Python ships its own documentation: ``pydoc``'s HTTP server renders a page for every
importable module (the stdlib's docstrings, written by CPython's authors) and for the
language reference topics, with links between them. Crawled breadth-first into a gzipped
WARC with request and response records, it gives a sample that exists on any machine
with Python, with no network and no text written by this project. A folder of static
HTML (for example Debian's ``python3.11-doc``) can be served and crawled the same way.

This is a stopgap until the project's real crawler lands: one host, one thread, no
robots.txt, no politeness; links are sorted so that the same site gives the same WARC.

    python -m benchmarks.sample_site --out sample.warc.gz --max-pages 200
    python -m benchmarks.sample_site --out docs.warc.gz --max-pages 600 \
        --html-dir /usr/share/doc/python3.11/html
"""

from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.request import Request, urlopen

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

USER_AGENT = "genai-dataprep-sample-crawler/0.1"
FETCH_TIMEOUT_S = 60

# pydoc imports a module to render its page. Only the standard library is crawled (the
# index also lists site-packages and the working directory: this project's own code), less
# the modules whose import acts (a package's ``__main__`` runs its CLI, ``antigravity``
# opens a browser, ``test.autotest`` runs CPython's test suite, ``idlelib``/``turtledemo``
# start GUIs) and private modules, whose pages are mostly stubs of C extensions.
_PYDOC_SKIPPED_PACKAGES = frozenset({"antigravity", "this", "test", "idlelib", "turtledemo", "ensurepip"})


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def extract_links(html: str, base_url: str) -> list[str]:
    """Absolute, fragment-free targets of the page's ``<a href>`` links, sorted, unique."""
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    links = {urldefrag(urljoin(base_url, href.strip())).url for href in parser.hrefs}
    return sorted(link for link in links if urlsplit(link).scheme in ("http", "https"))


def pydoc_page_allowed(url: str) -> bool:
    """Whether crawling ``url`` on a pydoc server is safe and worth it (see the note above)."""
    path = urlsplit(url).path.rsplit("/", 1)[-1]
    if path.startswith("getfile"):  # source listings: code, not prose
        return False
    if not path.endswith(".html"):
        return True  # the index, topic?key=..., search?key=...
    parts = path.removesuffix(".html").split(".")
    if parts[0] not in sys.stdlib_module_names or parts[0] in _PYDOC_SKIPPED_PACKAGES:
        return False
    return not any(part.startswith("_") for part in parts)


def _http_protocol(version: int) -> str:
    return "HTTP/1.1" if version == 11 else "HTTP/1.0"


def _fetch(url: str, request_headers: dict[str, str]) -> tuple[int, str, str, list[tuple[str, str]], bytes]:
    """GET ``url``; return (status, reason, protocol, headers, body), error statuses included."""
    try:
        with urlopen(Request(url, headers=request_headers), timeout=FETCH_TIMEOUT_S) as response:
            return (response.status, response.reason, _http_protocol(response.version),
                    list(response.headers.items()), response.read())
    except HTTPError as error:
        with error:
            return error.code, error.reason, "HTTP/1.1", list(error.headers.items()), error.read()


def crawl_to_warc(
    seed_url: str,
    out_path: str | Path,
    max_pages: int,
    allowed_host: str | None = None,
    page_allowed: Callable[[str], bool] | None = None,
) -> list[str]:
    """Crawl breadth-first from ``seed_url`` and write each request/response pair to a WARC.

    Only ``http(s)`` links on ``allowed_host`` (``host:port`` or bare host; default: the
    seed's) are followed, and only those ``page_allowed`` accepts (default: all). Links of a
    page are queued in sorted order, so the crawl order depends only on the site. Stops after
    ``max_pages`` responses. Returns the fetched URLs in order.
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    allowed_host = (allowed_host or urlsplit(seed_url).netloc).lower()

    def in_scope(url: str) -> bool:
        parts = urlsplit(url)
        on_host = allowed_host in (parts.netloc.lower(), (parts.hostname or "").lower())
        return on_host and (page_allowed is None or page_allowed(url))

    seed_url = urldefrag(seed_url).url
    queue, seen, fetched = deque([seed_url]), {seed_url}, []
    with open(out_path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record(
            Path(out_path).name,
            {"software": USER_AGENT, "format": "WARC File Format 1.0", "isPartOf": seed_url},
        ))
        while queue and len(fetched) < max_pages:
            url = queue.popleft()
            parts = urlsplit(url)
            # urllib sends exactly these (Host from the URL); recorded as sent.
            request_headers = {"Host": parts.netloc, "User-Agent": USER_AGENT,
                               "Accept-Encoding": "identity", "Connection": "close"}
            status, reason, protocol, headers, body = _fetch(url, request_headers)
            # urllib removes chunked framing; the stored payload is the de-chunked body.
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            target = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
            ip = {"WARC-IP-Address": parts.hostname or ""}
            request = writer.create_warc_record(
                url, "request", payload=BytesIO(b""), warc_headers_dict=ip,
                http_headers=StatusAndHeaders(f"GET {target} HTTP/1.1", list(request_headers.items()),
                                              is_http_request=True),
            )
            response = writer.create_warc_record(
                url, "response", payload=BytesIO(body), warc_headers_dict=ip,
                http_headers=StatusAndHeaders(f"{status} {reason}", headers, protocol=protocol),
            )
            writer.write_request_response_pair(request, response)
            fetched.append(url)
            content_type = {k.lower(): v for k, v in headers}.get("content-type", "")
            if status == 200 and content_type.startswith("text/html"):
                charset = _charset(content_type)
                for link in extract_links(body.decode(charset, errors="replace"), url):
                    if link not in seen and in_scope(link):
                        seen.add(link)
                        queue.append(link)
    return fetched


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip("\"'")
    return "utf-8"


# pydoc runs in a child process: to render a page it re-imports the module (a reload when
# already imported, ``threading`` included, which breaks the server thread's shutdown), and
# some modules print or exit on import. The child exits when its stdin closes.
_PYDOC_SERVER = r"""
import os, pydoc, sys

def handler(url, content_type):
    try:
        return pydoc._url_handler(url, content_type)
    except BaseException as exc:
        return pydoc.html.page("Error", pydoc.html.escape(f"{type(exc).__name__}: {exc}"))

server = pydoc._start_server(handler, hostname="127.0.0.1", port=0)
if server.error:
    sys.exit(f"pydoc server failed to start: {server.error}")
print(server.url, flush=True)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
sys.stdin.read()
os._exit(0)
"""


@contextmanager
def serve_python_docs() -> Iterator[str]:
    """Serve pydoc's HTML documentation on 127.0.0.1 (a free port); yield its base URL."""
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([sys.executable, "-c", _PYDOC_SERVER], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            url = child.stdout.readline().strip()
            if not url:
                child.wait(timeout=FETCH_TIMEOUT_S)
                errors.seek(0)
                raise RuntimeError(f"pydoc server exited ({child.returncode}): {errors.read().decode()[-2000:]}")
            yield url
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            child.stdout.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve the static files under ``root`` on 127.0.0.1 (threaded, a free port); yield its URL."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="serve_directory", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def crawl_site(out_path: str | Path, max_pages: int, html_dir: str | Path | None = None,
               start_page: str | None = None) -> list[str]:
    """Serve pydoc (or ``html_dir``), crawl it from ``start_page`` into ``out_path``, stop.

    pydoc's crawl starts at its topics page by default: the language reference's prose comes
    first, then the module pages (whose docstrings pydoc joins with ``&nbsp;``, not spaces).
    """
    if html_dir is None:
        with serve_python_docs() as base_url:
            return crawl_to_warc(urljoin(base_url, start_page or "topics.html"), out_path, max_pages,
                                 page_allowed=pydoc_page_allowed)
    with serve_directory(html_dir) as base_url:
        return crawl_to_warc(urljoin(base_url, start_page or "index.html"), out_path, max_pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sample_site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the WARC to write (gzipped), e.g. sample.warc.gz")
    parser.add_argument("--max-pages", type=int, default=200, help="stop after this many responses (default 200)")
    parser.add_argument("--html-dir", help="crawl this folder of static HTML instead of pydoc")
    parser.add_argument("--start-page", help="first page, relative to the site root (default: pydoc's "
                        "topics.html, a folder's index.html)")
    args = parser.parse_args(argv)
    if args.html_dir and not Path(args.html_dir).is_dir():
        print(f"sample_site: no HTML folder at {args.html_dir} (for Python's docs: "
              "apt-get install -y python3.11-doc, then --html-dir /usr/share/doc/python3.11/html)",
              file=sys.stderr)
        return 2
    fetched = crawl_site(args.out, args.max_pages, args.html_dir, args.start_page)
    print(f"crawled {len(fetched)} pages into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
