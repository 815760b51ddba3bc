"""Crawl throughput and memory: our crawler against a plain sequential ``requests`` loop.

A real site on loopback: Python's HTML documentation (Debian's ``python3.11-doc``, 530 pages)
served by ``http.server`` from a child process, on ``--hosts`` ports (each port a "host" for
politeness, ``politeness_scope: authority``; the URL list has every page on every host),
optionally with ``--latency-ms`` of delay per response to stand in for a remote server's
round trip. Every variant fetches the same URL
list in its own child process, which reports its wall time and its peak RSS (``ru_maxrss``):

- ``requests``: one ``requests.Session``, one URL after another (the baseline);
- ``requests_warc``: the same loop writing each response to a gzipped WARC with warcio, as
  ``benchmarks/sample_site.py`` does (the baseline doing the archiving our job does);
- ``fetcher``: our async fetch loops (robots.txt, pacing, limits) without Beam;
- ``beam``: the whole ``pipelines.crawl`` job on the in-process FnApiRunner, WARC shards and
  fetch log written.

    python -m benchmarks.crawl --pages 530 --hosts 4 --latency-ms 0 20
    (apt-get install -y python3.11-doc for the site; --html-dir to serve another folder)

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_HTML_DIR = "/usr/share/doc/python3.11/html"
VARIANTS = ("requests", "requests_warc", "fetcher", "beam")


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    disable_nagle_algorithm = True  # as real servers do (nginx tcp_nodelay)
    latency_s = 0.0

    def do_GET(self) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(root: str, hosts: int, latency_ms: float) -> None:
    """Serve ``root`` on ``hosts`` ports of 127.0.0.1; print the base URLs; stop at stdin EOF."""
    handler = type("Handler", (_Handler,), {"latency_s": latency_ms / 1000})
    servers = []
    for _ in range(hosts):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    print(json.dumps([f"http://127.0.0.1:{s.server_address[1]}" for s in servers]), flush=True)
    sys.stdin.read()
    for server in servers:
        server.shutdown()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_requests(urls: list[str]) -> dict:
    import requests

    fetched = 0
    with requests.Session() as session:
        session.headers["User-Agent"] = "benchmark-requests"
        for url in urls:
            response = session.get(url, timeout=30)
            fetched += response.status_code == 200 and bool(response.content)
    return {"fetched": fetched}


def _run_requests_warc(urls: list[str]) -> dict:
    """The baseline that also archives: each response appended to a gzipped WARC (warcio)."""
    from io import BytesIO

    import requests
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    fetched = 0
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "out.warc.gz", "wb") as out:
        writer = WARCWriter(out, gzip=True)
        with requests.Session() as session:
            session.headers["User-Agent"] = "benchmark-requests"
            for url in urls:
                response = session.get(url, timeout=30)
                headers = StatusAndHeaders(f"{response.status_code} {response.reason}",
                                           list(response.headers.items()), protocol="HTTP/1.1")
                writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(response.content),
                                                              http_headers=headers))
                fetched += response.status_code == 200 and bool(response.content)
    return {"fetched": fetched}


def _config(concurrency: int):
    from transforms.crawl.config import CrawlConfig

    # A site we run ourselves: no pacing to speak of, loopback allowed.
    return CrawlConfig(
        per_host_rate=10_000.0,
        per_host_concurrency=concurrency,
        politeness_scope="authority",
        allowed_networks=("127.0.0.1/32",),
        max_hosts_in_flight=64,
    )


def _run_fetcher(urls: list[str], concurrency: int) -> dict:
    import asyncio

    from transforms.crawl.fetch_outcome import url_record
    from transforms.crawl.fetcher import Fetcher
    from transforms.crawl.url_norm import normalize_url, politeness_key

    hosts: dict[str, list] = {}
    for url in urls:
        record = url_record(normalize_url(url))
        hosts.setdefault(politeness_key(record["url"], "authority"), []).append(record)
    fetched = {"n": 0}

    def emit(result: dict) -> None:  # count and drop, as FetchHosts hands pages on
        fetched["n"] += result["outcome"] == "fetched"

    async def crawl() -> None:
        fetcher = await Fetcher.open(_config(concurrency))
        try:
            await asyncio.gather(*(fetcher.crawl_host(records, emit) for records in hosts.values()))
        finally:
            await fetcher.close()

    asyncio.run(crawl())
    return {"fetched": fetched["n"]}


def _run_beam(urls: list[str], concurrency: int) -> dict:
    from pipelines import crawl

    with tempfile.TemporaryDirectory() as tmp:
        url_list = Path(tmp) / "urls.txt"
        url_list.write_text("".join(f"{u}\n" for u in urls))
        manifest = crawl.run(
            [str(url_list)], str(Path(tmp) / "out"), "bench", _config(concurrency), ["--runner=FnApiRunner"]
        )
    return {
        "fetched": manifest["totals"]["fetched"],
        "bytes": manifest["totals"]["bytes"],
        "warc_files": len(manifest["warc_files"]),
    }


def _child(variant: str, url_file: str, concurrency: int) -> None:
    urls = Path(url_file).read_text().split()
    started = time.perf_counter()
    if variant == "requests":
        result = _run_requests(urls)
    elif variant == "requests_warc":
        result = _run_requests_warc(urls)
    elif variant == "fetcher":
        result = _run_fetcher(urls, concurrency)
    else:
        result = _run_beam(urls, concurrency)
    seconds = time.perf_counter() - started
    print(json.dumps({**result, "seconds": seconds, "peak_rss_mib": _peak_rss_mib()}))


def _measure(variant: str, url_file: str, concurrency: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.crawl",
            "--child",
            variant,
            "--url-file",
            url_file,
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["pages_per_s"] = result["fetched"] / result["seconds"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crawl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--html-dir", default=DEFAULT_HTML_DIR, help="folder of HTML pages to serve")
    parser.add_argument("--pages", type=int, default=530, help="pages of the site used (default 530)")
    parser.add_argument("--hosts", type=int, default=4, help="server ports, each a host (default 4)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        nargs="+",
        default=[0.0, 20.0],
        help="delay per response, one scenario each (default 0 20)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="our per-host concurrency (default 4)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url-file", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.root, args.hosts, args.latency_ms[0])
        return 0
    if args.child:
        _child(args.child, args.url_file, args.concurrency)
        return 0
    root = Path(args.html_dir)
    if not root.is_dir():
        print(
            f"benchmarks.crawl: no HTML folder at {root} (apt-get install -y python3.11-doc, or --html-dir)",
            file=sys.stderr,
        )
        return 2
    pages = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html"))[: args.pages]
    rows = []
    for latency in args.latency_ms:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.crawl",
                "--serve",
                "--root",
                str(root),
                "--hosts",
                str(args.hosts),
                "--latency-ms",
                str(latency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            bases = json.loads(server.stdout.readline())
            urls = [f"{base}/{page}" for page in pages for base in bases]  # every page on every host
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as url_file:
                url_file.write("".join(f"{u}\n" for u in urls))
            for variant in args.variants:
                result = _measure(variant, url_file.name, args.concurrency)
                rows.append({"latency_ms": latency, "variant": variant, "urls": len(urls), **result})
                print(
                    f"latency {latency:>5g} ms  {variant:<13} {result['fetched']:>5} pages  "
                    f"{result['seconds']:7.2f} s  {result['pages_per_s']:8.1f} pages/s  "
                    f"peak RSS {result['peak_rss_mib']:6.1f} MiB",
                    flush=True,
                )
            os.unlink(url_file.name)
        finally:
            server.stdin.close()
            server.wait()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"hosts": args.hosts, "concurrency_per_host": args.concurrency, "cpus": os.cpu_count(), "rows": rows},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
