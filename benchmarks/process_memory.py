"""Time and memory of a subprocess and all its descendants, for benchmarks that run a job as a
child process (``benchmarks/text_pipeline.py``).

"peak tree PSS" samples the summed PSS of the process and all its descendants every 0.1 s, or
less often when a sample costs more than 2% of a core (PSS
splits pages that forked children share, so the sum does not count them twice); "max proc RSS"
is the largest peak RSS (``VmHWM``) of any process of the tree, sampled with it; "PSS at the
peak" is each process's share of the peak tree sample (the driver and each worker). Not
``wait4``'s ``ru_maxrss``: Linux carries that across fork and exec, so a job started by a
benchmark that holds gigabytes (the images it serves) would report the benchmark's own RSS.
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


def _peak_rss_kb(pid: int) -> int:
    """The process's peak RSS since it started its program (``VmHWM``), in kB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory_kb(pid: int) -> tuple[dict[int, int], int]:
    """The PSS of ``pid`` and of each of its descendants, and the largest peak RSS among them, in kB."""
    children, parts, largest, todo = _children_map(), {}, 0, [pid]
    while todo:
        current = todo.pop()
        parts[current] = _pss_kb(current)
        largest = max(largest, _peak_rss_kb(current))
        todo.extend(children.get(current, ()))
    return parts, largest


class _PeakTreeMemory(threading.Thread):
    """Samples every ``interval_s``, or less often when a sample is dear: reading PSS walks each
    process's page tables (~22 ms of CPU for a 1.5 GB process), and at 0.1 s it took 0.25-0.35
    of a core from the job it measured, which a two-worker run on 2 cores has no core to spare
    for. ``max_share`` bounds the sampler's share of one core."""

    def __init__(self, pid: int, interval_s: float = 0.1, max_share: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval_s, self.max_share = pid, interval_s, max_share
        self.peak_kb, self.peak_rss_kb = 0, 0
        self.peak_parts_kb: list[int] = []  # each process's PSS at the peak, largest first
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            started = time.thread_time()
            parts, rss = tree_memory_kb(self.pid)
            pss = sum(parts.values())
            if pss > self.peak_kb:
                self.peak_kb = pss
                self.peak_parts_kb = sorted((kb for kb in parts.values() if kb), reverse=True)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            cost = time.thread_time() - started
            if self.done.wait(max(self.interval_s, cost / self.max_share)):
                return


@dataclass
class Measured:
    returncode: int
    wall_s: float
    cpu_s: float
    peak_tree_pss_mb: float
    max_proc_rss_mb: float
    pss_at_peak_mb: tuple[float, ...] = ()  # each process of the tree at the peak, largest first


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
        sampler = _PeakTreeMemory(child.pid)
        sampler.start()
        # wait4's rusage covers the child and every descendant it reaped: CPU summed.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    return Measured(child.returncode, wall, usage.ru_utime + usage.ru_stime,
                    sampler.peak_kb / 1024, sampler.peak_rss_kb / 1024,
                    tuple(round(kb / 1024) for kb in sampler.peak_parts_kb))
