"""Progress of a running job: input read of the total, records per second, an ETA, and the
records kept and rejected per stage as they become known.

``run_with_progress`` replaces ``with beam.Pipeline(...)``'s implicit ``run()`` and
``wait_until_finish()``. Two sources feed it, whichever the runner offers:

- Local runners (the in-process ``FnApiRunner`` publishes Beam metrics only when the job is
  over; ``multi_processing`` workers are other processes): the workers' live counts
  (``transforms/live_progress.py``) in a temporary folder this function names for the run.
- Runners that return at once (Dataflow, Flink, Spark, the portable job service): their Beam
  counters (``<stage>/kept``, ``<stage>/rejected``, ``read/bytes``...), polled.

On a terminal a tqdm bar shows them, redrawn every ``interval`` seconds, and the records per
stage are printed at the end. Anywhere else (logs, CI) it is quiet but for one summary line
every ``log_every`` seconds (``DATAPREP_PROGRESS_SECONDS``, default 60). Counts are for watching
only; the run's figures of record come from the stats and run-facts combiners.

Time per stage comes from the runner's own execution-time metrics where it publishes them
(``FnApiRunner`` does): milliseconds spent in the stage's transforms, summed over workers.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineState

from pipelines.progress_line import Watcher, clock
from transforms import live_progress

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


def print_stage_table(progress: RunProgress, stages: list[str], stream: TextIO) -> None:
    stream.write(f"{'stage':<20}{'kept':>10}{'rejected':>10}{'busy s':>10}\n")
    for stage in stages:
        counts = progress.stage_counts.get(stage)
        kept, dropped = (counts["kept"], counts["rejected"]) if counts else ("-", "-")
        busy = progress.stage_seconds.get(stage, "-")
        stream.write(f"{stage:<20}{kept:>10}{dropped:>10}{busy:>10}\n")
    stream.write(f"finished in {clock(progress.seconds)} ({progress.seconds:.1f} s)\n")
    stream.flush()


def counter_values(result: Any) -> dict[str, int]:
    """Every Beam counter of a running job as ``{"<namespace>/<name>": value}`` (committed, else
    attempted); the reader's ``read/bytes`` and ``read/bytes_total`` under the live names."""
    try:
        counters = result.metrics().query(MetricsFilter())["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics: nothing to show
        return {}
    values: dict[str, int] = {}
    for metric in counters:
        name = metric.key.metric
        key = {"read/bytes": "bytes_read", "read/bytes_total": "bytes_total"}.get(
            f"{name.namespace}/{name.name}", f"{name.namespace}/{name.name}")
        value = metric.committed if metric.committed is not None else metric.attempted
        values[key] = values.get(key, 0) + int(value or 0)
    return values


def log_every_seconds() -> float:
    """How often a run not on a terminal logs a progress line: ``DATAPREP_PROGRESS_SECONDS``."""
    value = os.environ.get("DATAPREP_PROGRESS_SECONDS", "60")
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ValueError(f"DATAPREP_PROGRESS_SECONDS must be a number of seconds, got {value!r}") from exc
    if seconds <= 0:
        raise ValueError(f"DATAPREP_PROGRESS_SECONDS must be > 0, got {value!r}")
    return seconds


def run_with_progress(pipeline: beam.Pipeline, stages: list[str], stream: TextIO | None = None,
                      interval: float = 0.5, log_every: float | None = None) -> RunProgress:
    """Run ``pipeline`` to the end, showing progress on ``stream`` (stderr): a live bar on a
    terminal, else a line every ``log_every`` seconds.

    Raises ``RuntimeError`` when the job ends in any state but DONE (runners that raise on
    failure themselves raise their own error).
    """
    stream = stream or sys.stderr
    live = stream.isatty()
    board = tempfile.mkdtemp(prefix="dataprep-progress-")
    watcher = Watcher(stream, stages, board, live, interval if live else (log_every or log_every_seconds()))
    os.environ[live_progress.ENV] = board
    started = time.monotonic()
    watcher.start()
    try:
        result = pipeline.run()
        while not PipelineState.is_terminal(result.state):
            watcher.polled = counter_values(result)
            time.sleep(interval)
        state = result.wait_until_finish()
    finally:
        watcher.stop()
        os.environ.pop(live_progress.ENV, None)
        shutil.rmtree(board, ignore_errors=True)
    if state is not None and state != PipelineState.DONE:
        raise RuntimeError(f"pipeline ended in state {state}")
    progress = RunProgress(result, round(time.monotonic() - started, 3),
                           stage_counts(result, stages), stage_seconds(result, stages))
    if live:
        print_stage_table(progress, stages, stream)
    return progress
