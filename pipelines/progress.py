"""Progress of a running job on the terminal: elapsed time, records per stage, time per stage.

``run_with_progress`` replaces ``with beam.Pipeline(...)``'s implicit ``run()`` and
``wait_until_finish()``. What a runner can tell while it works differs:

- The in-process ``FnApiRunner`` runs the whole job inside ``pipeline.run()`` and publishes
  metrics only when it returns, so while it works we print one elapsed-time line (rewritten in
  place), and the records per stage at the end.
- Runners that return at once (Dataflow, Flink, Spark, the portable job service) report counters
  while the job runs: we poll ``result.metrics()`` and print the records kept and rejected per
  stage (the ``<stage>/kept`` and ``<stage>/rejected`` counters) every ``interval`` seconds.

Nothing is printed when the stream is not a terminal (logs, CI). Counters are for watching only;
the run's figures of record come from the stats and run-facts combiners.

Time per stage comes from the runner's own execution-time metrics where it publishes them
(``FnApiRunner`` does): milliseconds spent in the stage's transforms, summed over workers.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineState

EXECUTION_TIME = "metric:ptransform_execution_time:total_msecs:v1"


@dataclass
class RunProgress:
    """What a finished run reported: the Beam result, counts and busy seconds per stage."""

    result: Any
    seconds: float
    stage_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def stage_counts(result: Any, stages: list[str]) -> dict[str, dict[str, int]]:
    """``{stage: {"kept": n, "rejected": m}}`` from the stage counters (committed, else attempted)."""
    counts: dict[str, dict[str, int]] = {}
    try:
        counters = result.metrics().query(MetricsFilter())["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics: nothing to show
        return counts
    wanted = set(stages)
    for metric in counters:
        name = metric.key.metric
        if name.namespace in wanted and name.name in ("kept", "rejected"):
            value = metric.committed if metric.committed is not None else metric.attempted
            stage = counts.setdefault(name.namespace, {"kept": 0, "rejected": 0})
            stage[name.name] += int(value or 0)
    return {stage: counts[stage] for stage in stages if stage in counts}


def stage_seconds(result: Any, stages: list[str]) -> dict[str, float]:
    """Busy seconds per stage from the runner's execution-time metrics, where it has them."""
    monitoring = getattr(result, "monitoring_metrics", None)
    if monitoring is None:
        return {}
    try:
        counters = monitoring().query(MetricsFilter())["counters"]
    except Exception:  # noqa: BLE001 - optional runner feature
        return {}
    by_label = {stage.lower(): stage for stage in stages}
    msecs: dict[str, float] = {}
    for metric in counters:
        if metric.key.metric.name != EXECUTION_TIME or not metric.key.step:
            continue
        stage = by_label.get(metric.key.step.split("/", 1)[0].lower())
        if stage is not None:
            value = metric.committed if metric.committed is not None else metric.attempted
            msecs[stage] = msecs.get(stage, 0.0) + float(value or 0)
    return {stage: round(msecs[stage] / 1000, 3) for stage in stages if stage in msecs}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _counts_line(counts: dict[str, dict[str, int]]) -> str:
    return "  ".join(f"{stage} {c['kept']}/{c['kept'] + c['rejected']}" for stage, c in counts.items())


class _Ticker(threading.Thread):
    """Rewrites one status line with the elapsed time until stopped."""

    def __init__(self, stream: TextIO, started: float, interval: float):
        super().__init__(daemon=True, name="dataprep-progress")
        self._stream, self._since, self._interval = stream, started, interval
        self._done = threading.Event()
        self.status = "running"

    def run(self) -> None:
        while not self._done.wait(self._interval):
            self._stream.write(f"\r{self.status} · {_clock(time.monotonic() - self._since)} elapsed\033[K")
            self._stream.flush()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self._stream.write("\r\033[K")
        self._stream.flush()


def print_stage_table(progress: RunProgress, stages: list[str], stream: TextIO) -> None:
    stream.write(f"{'stage':<20}{'kept':>10}{'rejected':>10}{'busy s':>10}\n")
    for stage in stages:
        counts = progress.stage_counts.get(stage)
        kept, dropped = (counts["kept"], counts["rejected"]) if counts else ("-", "-")
        busy = progress.stage_seconds.get(stage, "-")
        stream.write(f"{stage:<20}{kept:>10}{dropped:>10}{busy:>10}\n")
    stream.write(f"finished in {_clock(progress.seconds)} ({progress.seconds:.1f} s)\n")
    stream.flush()


def run_with_progress(pipeline: beam.Pipeline, stages: list[str], stream: TextIO | None = None,
                      interval: float = 2.0) -> RunProgress:
    """Run ``pipeline`` to the end, showing progress on ``stream`` (stderr) when it is a terminal.

    Raises ``RuntimeError`` when the job ends in any state but DONE (runners that raise on
    failure themselves raise their own error).
    """
    stream = stream or sys.stderr
    live = stream.isatty()
    started = time.monotonic()
    ticker = _Ticker(stream, started, interval) if live else None
    if ticker:
        ticker.start()
    try:
        result = pipeline.run()
        while not PipelineState.is_terminal(result.state):
            if ticker:
                ticker.status = _counts_line(stage_counts(result, stages)) or "running"
            time.sleep(interval)
        state = result.wait_until_finish()
    finally:
        if ticker:
            ticker.stop()
    if state is not None and state != PipelineState.DONE:
        raise RuntimeError(f"pipeline ended in state {state}")
    progress = RunProgress(result, round(time.monotonic() - started, 3),
                           stage_counts(result, stages), stage_seconds(result, stages))
    if live:
        print_stage_table(progress, stages, stream)
    return progress
