"""The report page in a real browser: headless Chromium (Debian's ``chromium`` package).

Chromium runs with its DevTools protocol on a loopback port; a small client
(``websocket-client``) loads ``report/index.html`` from disk, collects every console message,
uncaught exception and browser log entry (a Content-Security-Policy violation, a failed load),
checks in the page that every section and every plot rendered with a size, and saves a full-page
screenshot to ``test-artifacts/report.png``. Any console error fails the test.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SHARED_DATA, aeb_pages, write_warc
from test_report import run_text, write_gate_shaped_validation

from pipelines.report_html import SECTIONS

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]
WIDTH = 1400

# `make test` installs Debian's chromium; without it this module fails, it never skips.
assert CHROMIUM is not None, "chromium is not installed (apt-get install -y chromium)"

import websocket  # noqa: E402


class Browser:
    """Headless Chromium driven over the DevTools protocol: one page, every event kept."""

    def __init__(self, profile: Path):
        self._process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._devtools_port()
        deadline = time.monotonic() + 30
        while True:
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5).read())
            pages = [t for t in targets if t.get("type") == "page"]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self._ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=900, deviceScaleFactor=1, mobile=False)

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            lines.append(line)
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                return int(found.group(1))
            if not line and self._process.poll() is not None:
                break
        self.close()
        raise RuntimeError("chromium did not start its DevTools server:\n" + "".join(lines[-20:]))

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        message_id = self._next_id
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')}")
        return errors

    def screenshot(self, path: Path) -> None:
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": WIDTH, "height": size["height"], "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        if getattr(self, "_ws", None) is not None:
            self._ws.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    instance = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    """A report with every section filled: two runs over different inputs (drift), exact
    duplicates (clusters), rejections at several stages and validation results."""
    folder = tmp_path_factory.mktemp("browser-inputs")
    pages = aeb_pages()
    first = write_warc(folder / "first.warc.gz", [(u, h) for u, h, _ in pages[:40]])
    second = write_warc(folder / "second.warc.gz",
                        [(u, h) for u, h, _ in pages[40:100]] + [(f"{u}?copy", h) for u, h, _ in pages[40:46]])
    out = tmp_path_factory.mktemp("browser-out")
    run_text([str(CC_WARC), str(first)], str(out), "20240101T000000Z")
    run_dir = out / "20240102T000000Z"
    run_text([str(second)], str(out), run_dir.name, before_report=write_gate_shaped_validation)
    return run_dir / "report" / "index.html"


CHECK_PAGE = """(() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const sections = [...document.querySelectorAll('header[id], section[id]')].map(s => {
    const box = s.getBoundingClientRect();
    return {id: s.id, width: box.width, height: box.height};
  });
  const plots = [...document.querySelectorAll('svg.plot')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {name: svg.dataset.plot, width: box.width, height: box.height,
            marks: svg.querySelectorAll('rect').length, text: svg.textContent.trim().slice(0, 40)};
  });
  return {sections, plots, title: document.title,
          overflowing: document.documentElement.scrollWidth > window.innerWidth + 1};
})()"""


def test_report_renders_without_console_errors_and_every_plot_drawn(browser, report_page):
    browser.open(report_page.as_uri())
    browser.screenshot(ARTIFACTS / "report.png")
    assert browser.console_errors() == []
    page = browser.evaluate(CHECK_PAGE)
    assert page["title"].startswith("dataprep report")
    rendered = {s["id"]: s for s in page["sections"]}
    for section_id in ["header", *(sid for sid, _ in SECTIONS)]:
        assert section_id in rendered, f"section {section_id} missing"
        assert rendered[section_id]["height"] > 20, f"section {section_id} has no height"
    plots = page["plots"]
    names = {p["name"] for p in plots}
    assert {"funnel", "drift", "dist.text_length", "dist.lang", "dist.domain", "clusters.dedup_exact"} <= names
    for plot in plots:
        assert plot["width"] > 50 and plot["height"] > 20, plot
        assert plot["marks"] > 0 or plot["text"] == "no data", plot
    assert not page["overflowing"], "the page is wider than the window"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def images_report_page(tmp_path_factory):
    """A small image-caption run: kept photos, an exact duplicate, a too-small image, a bomb."""
    from crawl_sites import serve
    from test_images_pipeline import BEAM_ARGS, FAST_CRAWL, _routes

    from pipelines import images
    from transforms.images.download import DownloadConfig

    folder = tmp_path_factory.mktemp("browser-images")
    rows = [("/img/china.jpg", "the roof of a temple in china"), ("/img/flower.jpg", "a pink flower in a garden"),
            ("/img/china_copy.jpg", "the same temple photo on another host"),
            ("/img/tiny.jpg", "a tiny thumbnail of a flower"), ("/img/bomb.png", "a png claiming ten gigapixels")]
    with serve(_routes()) as site:
        table = folder / "pairs.jsonl"
        table.write_text("".join(json.dumps({"url": site.url + path, "caption": caption}) + "\n"
                                 for path, caption in rows))
        config = images.Config(download=DownloadConfig(crawl=FAST_CRAWL))
        images.run([str(table)], str(folder / "out"), "images", config, BEAM_ARGS, allow_private_addresses=True)
    return folder / "out" / "images" / "report" / "index.html"


def test_images_report_renders_its_sections_and_plots(browser, images_report_page):
    browser.open(images_report_page.as_uri())
    browser.screenshot(ARTIFACTS / "report-images.png")
    assert browser.console_errors() == []
    page = browser.evaluate(CHECK_PAGE)
    rendered = {s["id"]: s for s in page["sections"]}
    for section_id in ["header", *(sid for sid, _ in SECTIONS)]:
        assert rendered.get(section_id, {}).get("height", 0) > 20, f"section {section_id} missing or empty"
    plots = {p["name"]: p for p in page["plots"]}
    for name in ("funnel", "dist.caption_length", "dist.width", "dist.nsfw_score", "dist.caption_lang",
                 "clusters.dedup_exact"):
        assert plots[name]["marks"] > 0 and plots[name]["width"] > 50, name
    assert plots["drift"]["text"] == "no previous run"
    assert not page["overflowing"], "the page is wider than the window"


def test_console_errors_are_caught(browser, tmp_path):
    """The check itself: a page that loads from the network breaks the report's policy."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
                    "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                    "<img src='http://127.0.0.1:9/x.png'><script>console.error('boom')</script></body></html>")
    browser.open(page.as_uri())
    errors = browser.console_errors()
    assert any("boom" in e for e in errors)
    assert any("Content Security Policy" in e or "img-src" in e for e in errors)
