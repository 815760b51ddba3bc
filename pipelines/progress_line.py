"""The progress line of a running job: a tqdm bar on a terminal, a summary line in logs.

One line says how much input is read of the total (bytes: the readers know file sizes), how
many records, how fast, how long is left, and per stage how many records it kept of those it
saw so far. The ETA is the time left to read the rest of the input at the rate so far; the
global steps after the last record (dedup, writing) are not in it, so once everything is read
the line says so instead.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from tqdm import tqdm

from transforms import live_progress

_LIVE_FORMAT = "{desc} {percentage:3.0f}%|{bar:20}| "  # then the line's text, braces escaped
_PLAIN_FORMAT = "{desc} "


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def describe(counts: dict[str, int], stages: list[str], elapsed: float,
             reading: float | None = None) -> dict[str, str | float | None]:
    """The parts of a progress line from live counts: ``read``, ``records``, ``rate``, ``eta``,
    ``stages`` (texts) and ``fraction`` (of the input bytes read, ``None`` while unknown).
    ``reading``: seconds from the start to the last time the records read grew (the rate's time;
    default ``elapsed``)."""
    reading = elapsed if reading is None else reading
    total, done = counts.get("bytes_total", 0), min(counts.get("bytes_read", 0), counts.get("bytes_total", 0))
    records = counts.get("read/kept", 0) + counts.get("read/rejected", 0)
    skipped = counts.get("read/skipped", 0)
    fraction = done / total if total else None
    if fraction is None:
        read, eta = "reading", "ETA unknown"
    else:
        read = f"read {_size(done)} of {_size(total)}"
        if fraction >= 1:
            eta = "input read; the stages finishing"
        elif fraction > 0:
            eta = f"ETA {clock(elapsed * (1 - fraction) / fraction)}"
        else:
            eta = "ETA unknown"
    seen = [s for s in stages if s != "read" and (f"{s}/kept" in counts or f"{s}/rejected" in counts)]
    return {
        "read": read,
        "records": f"{records:,} records" + (f" (+{skipped:,} skipped)" if skipped else ""),
        "rate": f"{records / reading if reading > 0 else 0:,.0f} records/s",
        "eta": eta,
        "stages": " ".join(f"{s} {counts.get(f'{s}/kept', 0):,}/"
                           f"{counts.get(f'{s}/kept', 0) + counts.get(f'{s}/rejected', 0):,}" for s in seen),
        "fraction": fraction,
    }


class Watcher(threading.Thread):
    """Redraws the bar every ``every`` seconds on a terminal, else writes one line each time."""

    def __init__(self, stream: TextIO, stages: list[str], board: str, live: bool, every: float):
        super().__init__(daemon=True, name="dataprep-progress")
        self._stream, self._stages, self._board, self._live, self._every = stream, stages, board, live, every
        self._done = threading.Event()
        self._bar: tqdm | None = None
        self._since = self._reading_until = time.monotonic()
        self._records = 0
        self.polled: dict[str, int] = {}  # counters of a runner that reports while it runs

    def counts(self) -> dict[str, int]:
        counts = live_progress.read_board(self._board)
        for key, value in self.polled.items():
            counts[key] = max(counts.get(key, 0), value)
        return counts

    def run(self) -> None:
        if self._live:
            self._bar = tqdm(file=self._stream, desc="dataprep", bar_format=_PLAIN_FORMAT, dynamic_ncols=True,
                             leave=False, mininterval=0)
        while not self._done.wait(self._every):
            self._show()

    def _show(self) -> None:
        now = time.monotonic()
        counts = self.counts()
        records = counts.get("read/kept", 0) + counts.get("read/rejected", 0) + counts.get("read/skipped", 0)
        if records != self._records:  # the rate is the reading rate: it stops when reading does
            self._records, self._reading_until = records, now
        elapsed = now - self._since
        parts = describe(counts, self._stages, elapsed, self._reading_until - self._since)
        text = " · ".join(str(parts[k]) for k in ("records", "rate", "eta", "stages") if parts[k])
        if self._bar is None:
            self._stream.write(f"progress {clock(elapsed)}: {parts['read']} · {text}\n")
            self._stream.flush()
            return
        text = text.replace("{", "{{").replace("}", "}}")  # tqdm's postfix would add a comma
        if parts["fraction"] is None:
            self._bar.bar_format = _PLAIN_FORMAT + text
        else:
            self._bar.bar_format, self._bar.total = _LIVE_FORMAT + text, 1000
            self._bar.n = round(1000 * parts["fraction"])
        self._bar.set_description_str(parts["read"], refresh=False)
        self._bar.refresh()

    def stop(self) -> None:
        self._done.set()
        self.join()
        if self._bar is not None:
            self._bar.close()
