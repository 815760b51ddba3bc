"""Time and memory of a subprocess and all its descendants, for benchmarks that run a job as a
child process (``benchmarks/text_pipeline.py``).

"peak tree PSS" samples the summed PSS of the process and all its descendants every 0.1 s (PSS
splits pages that forked children share, so the sum does not count them twice); "max proc RSS"
is the largest single process of the tree, from ``wait4``'s rusage.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(pid: int) -> int:
    """Summed PSS of ``pid`` and all its descendants, in kB."""
    children, total, todo = _children_map(), 0, [pid]
    while todo:
        current = todo.pop()
        total += _pss_kb(current)
        todo.extend(children.get(current, ()))
    return total


class _PeakTreePss(threading.Thread):
    def __init__(self, pid: int, interval_s: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval_s, self.peak_kb = pid, interval_s, 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, tree_pss_kb(self.pid))
            if self.done.wait(self.interval_s):
                return


@dataclass
class Measured:
    returncode: int
    wall_s: float
    cpu_s: float
    peak_tree_pss_mb: float
    max_proc_rss_mb: float


def measure(command: list[str], log: Path, env: dict[str, str] | None = None, cpu: int | None = None) -> Measured:
    """Run ``command`` (output to ``log``), pinned to ``cpu`` if given; time and memory of its tree."""
    own_cpus = os.sched_getaffinity(0)
    with open(log, "wb") as out:
        started = time.perf_counter()
        # The child inherits this thread's affinity, and its descendants the child's.
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            os.sched_setaffinity(0, own_cpus)
        sampler = _PeakTreePss(child.pid)
        sampler.start()
        # wait4's rusage covers the child and every descendant it reaped: CPU summed, RSS the max.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    return Measured(child.returncode, wall, usage.ru_utime + usage.ru_stime,
                    sampler.peak_kb / 1024, usage.ru_maxrss / 1024)
