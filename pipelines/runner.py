"""Beam pipeline options for our jobs: every core of the machine by default, any runner by flags.

Beam's default ``DirectRunner`` first tries to download the Prism runner binary, which fails
offline; unless the user names a runner we choose the in-process ``FnApiRunner`` explicitly.
On that local runner a job uses one worker process per core this process may run on
(``--direct_num_workers=N --direct_running_mode=multi_processing``, as a user would pass them)
unless told otherwise: ``dataprep run --workers N``, ``DATAPREP_WORKERS=N`` in the environment,
or Beam's own ``--direct_num_workers`` / ``--direct_running_mode`` flags, which always win.
One worker runs in-process (no worker start-up: what the tests use). Every other flag passes
through unchanged (Dataflow/Flink/Spark flags work as documented by Beam).
"""

from __future__ import annotations

import os

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

DEFAULT_RUNNER = "FnApiRunner"
LOCAL_RUNNERS = (DEFAULT_RUNNER, "DirectRunner", "BundleBasedDirectRunner")
WORKERS_VARIABLE = "DATAPREP_WORKERS"


def default_workers() -> int:
    """``DATAPREP_WORKERS`` if set, else the cores this process may run on."""
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if value:
        workers = int(value)
        if workers < 1:
            raise ValueError(f"{WORKERS_VARIABLE} must be >= 1, got {value}")
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Options for ``beam_args``; on the local runner, ``default_workers()`` worker processes
    unless the flags set ``--direct_num_workers``, and processes (not threads) for more than one
    unless they set ``--direct_running_mode``."""
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    # The flags the user wrote (``get_all_options(drop_default=True)`` hides one equal to Beam's
    # default, such as ``--direct_num_workers=1``).
    given = {arg[2:].split("=", 1)[0] for arg in beam_args if arg.startswith("--")}
    if standard.runner in LOCAL_RUNNERS:
        direct = options.view_as(DirectOptions)
        if "direct_num_workers" not in given:
            direct.direct_num_workers = default_workers()
        if direct.direct_num_workers > 1 and "direct_running_mode" not in given:
            direct.direct_running_mode = "multi_processing"
    # The driver itself reads and writes the run folder (manifest, markers): same settings.
    FileSystems.set_options(options)
    return options


def runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else type(runner).__name__
