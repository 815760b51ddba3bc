"""Live counts from the workers to the driver's progress line, on local runners too.

Beam counters reach the driver of the in-process ``FnApiRunner`` only once the job is over, and
its ``multi_processing`` workers are other processes. So where the driver has set
``DATAPREP_PROGRESS_DIR`` (``pipelines/progress.py`` does, for the run it watches; subprocess
workers inherit it), each process also keeps its counts in memory and a daemon thread writes
them every ``FLUSH_SECONDS`` to one small JSON file per process there. Where the variable is
unset (remote workers, plain tests) every call returns at once. Counts are for watching only:
the run's figures of record come from the run facts.

Keys: ``bytes_total`` and ``files_total`` (planned input), ``bytes_read``, ``<stage>/kept``,
``<stage>/rejected``, ``read/skipped``.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter

ENV = "DATAPREP_PROGRESS_DIR"
FLUSH_SECONDS = 0.5


class _Board:
    """This process's counts for one watched run, and the thread that writes them out."""

    def __init__(self, folder: str):
        self.folder = folder
        self._counts: Counter[str] = Counter()
        # (path, start) -> bytes of that part of the file read so far, while it is read
        self._open_parts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._path = os.path.join(folder, f"{os.getpid()}-{id(self)}.json")
        threading.Thread(target=self._flush_until_gone, daemon=True, name="dataprep-live-progress").start()

    def add(self, key: str, n: int) -> None:
        with self._lock:
            self._counts[key] += n

    def position(self, path: str, start: int, done: int) -> None:
        with self._lock:
            part = (path, start)
            self._open_parts[part] = max(done, self._open_parts.get(part, 0))

    def part_done(self, path: str, start: int, size: int) -> None:
        with self._lock:
            self._open_parts.pop((path, start), None)
            self._counts["bytes_read"] += size

    def _snapshot(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
            counts["bytes_read"] = counts.get("bytes_read", 0) + sum(self._open_parts.values())
        return counts

    def _flush_until_gone(self) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_SECONDS):
            if not os.path.isdir(self.folder):
                return  # the run is over: the driver removed the folder
            temporary = f"{self._path}.tmp"
            try:
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(self._snapshot(), handle)
                os.replace(temporary, self._path)
            except OSError:
                return


_board: _Board | None = None
_board_lock = threading.Lock()


def _current() -> _Board | None:
    global _board
    folder = os.environ.get(ENV)
    if not folder:
        return None
    board = _board
    if board is None or board.folder != folder:
        with _board_lock:
            if _board is None or _board.folder != folder:
                _board = _Board(folder)
            board = _board
    return board


def add(key: str, n: int = 1) -> None:
    board = _current()
    if board is not None and n:
        board.add(key, n)


def position(path: str, start: int, done: int) -> None:
    """``done`` bytes of the part of input file ``path`` that starts at byte ``start`` (a split,
    or 0 for the whole file) are read so far. Parts, not files: the splits of one file are read
    by several workers at once, and each knows only its own."""
    board = _current()
    if board is not None:
        board.position(path, start, done)


def part_done(path: str, start: int, size: int) -> None:
    """The part of ``path`` that starts at ``start`` is read: it counts ``size`` bytes."""
    board = _current()
    if board is not None:
        board.part_done(path, start, size)


def read_board(folder: str) -> dict[str, int]:
    """The counts of every process, summed (files being rewritten are skipped this time)."""
    total: Counter[str] = Counter()
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    for name in names:
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    total.update(json.load(handle))
            except (OSError, ValueError):
                continue
    return dict(total)
