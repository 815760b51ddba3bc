"""Live progress of a real CLI run: a bar that advances on a terminal, one line per interval in a log."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, aeb_pages, write_warc

from pipelines.progress_line import describe

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
CLI = [sys.executable, "-m", "pipelines.cli", "run", "text"]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# What the bar shows: "<n> records · <rate> records/s · ETA h:mm:ss"
_LINE = re.compile(r"([\d,]+) records.*? ([\d,]+) records/s · (ETA \d+:\d\d:\d\d|ETA unknown|input read)")


@pytest.fixture(scope="module")
def pages_warc(tmp_path_factory) -> Path:
    """The article benchmark's 181 real pages: a few seconds of reading and filtering."""
    pages = [(url, html) for url, html, _ in aeb_pages()]
    return write_warc(tmp_path_factory.mktemp("progress") / "pages.warc.gz", pages)


def _run_in_terminal(args: list[str]) -> tuple[int, str]:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; everything it drew, and its status."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 220, 0, 0))  # rows, columns
    os.set_blocking(controller, False)
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select.select([controller], [], [], 0.2)
        try:
            chunk = os.read(controller, 65536) if ready else b""
        except OSError:  # EIO: every writer of the terminal has closed it
            chunk = b""
        if chunk:
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    os.close(controller)
    return process.wait(), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_the_bar_advances_with_records_rate_and_eta_on_a_terminal(tmp_path, pages_warc):
    status, drawn = _run_in_terminal(CLI + ["--input", str(pages_warc), "--output", str(tmp_path), "--run-id", "t"])
    assert status == 0, drawn[-3000:]
    frames = [_ANSI.sub("", frame) for frame in drawn.split("\r")]
    seen = [(int(m[1].replace(",", "")), m[3]) for frame in frames if (m := _LINE.search(frame))]
    records = [n for n, _ in seen]
    assert len(set(records)) >= 2, frames[-20:]  # it advanced while the job ran
    assert records == sorted(records)
    assert any(eta.startswith("ETA") for _, eta in seen)
    assert any(re.search(r"\d+%\|", frame) for frame in frames)  # the bar, with the share read
    assert "input 181 documents" in drawn and (tmp_path / "t" / "_SUCCESS").exists()


@pytest.mark.slow
def test_a_log_gets_one_summary_line_per_interval_and_no_bar(tmp_path):
    log = tmp_path / "run.log"
    interval = 1.0
    started = time.monotonic()
    with open(log, "w") as handle:
        done = subprocess.run(CLI + ["--input", str(CC_WARC), "--output", str(tmp_path), "--run-id", "l"],
                              stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, "DATAPREP_PROGRESS_SECONDS": str(interval)})
    wall = time.monotonic() - started
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("progress ")]
    assert 1 <= len(lines) <= wall / interval + 1, (wall, lines)
    assert all(_LINE.search(line) for line in lines), lines
    assert " of 135.9 kB" in lines[-1], lines  # once the files are listed, their total size
    assert "\r" not in text and "|" not in "".join(lines)


def test_the_eta_is_the_rest_of_the_input_at_the_rate_so_far():
    counts = {"bytes_total": 1000, "bytes_read": 250, "read/kept": 40, "read/rejected": 10,
              "read/skipped": 50, "language/kept": 30, "language/rejected": 5}
    parts = describe(counts, ["read", "language", "dedup_exact"], elapsed=10.0)
    assert parts["fraction"] == 0.25 and parts["eta"] == "ETA 0:00:30"
    assert parts["records"] == "50 records (+50 skipped)" and parts["rate"] == "5 records/s"
    assert parts["stages"] == "language 30/35"
    assert describe({}, [], 1.0)["eta"] == "ETA unknown"
    assert describe({**counts, "bytes_read": 1000}, [], 1.0)["eta"].startswith("input read")
