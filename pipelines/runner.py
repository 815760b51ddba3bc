"""Beam pipeline options for our jobs: in-process by default, more workers on request, any
runner by flags.

Beam's default ``DirectRunner`` first tries to download the Prism runner binary, which fails
offline; unless the user names a runner we choose the in-process ``FnApiRunner`` explicitly.
``dataprep run --workers N`` or ``DATAPREP_WORKERS=N`` (``0``: one per core this process may
use) runs it with N worker processes (``--direct_num_workers=N
--direct_running_mode=multi_processing``), each counting its share of the cores for its thread
pools (``transforms.worker_cores``); Beam's own flags always win. Every other flag passes
through unchanged (Dataflow/Flink/Spark flags work as documented by Beam).

With none of those set, the job picks (``Job.workers``): the text job runs one worker per core
once its input is more than one read split (a 1 GiB WARC: 1.93x on 2 cores, byte-identical
output; docs/performance.md) and in-process below that, where starting workers and loading their
models costs more than it saves. The images job stays in-process: its fetch is keyed by host,
so two workers were slower, and two workers once lost records there (an unexplained, since
unreproduced loss that the conservation check caught; docs/images.md). Any lost record fails
the run before anything is published, whatever the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from transforms.worker_cores import WORKER_CORES_VARIABLE, machine_cores

DEFAULT_RUNNER = "FnApiRunner"
LOCAL_RUNNERS = (DEFAULT_RUNNER, "DirectRunner", "BundleBasedDirectRunner")
WORKERS_VARIABLE = "DATAPREP_WORKERS"


def default_workers(job_default: Callable[[], int] = lambda: 1) -> int:
    """``DATAPREP_WORKERS`` if set (``0``: every core), else ``job_default()``."""
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if not value:
        return job_default()
    workers = int(value)
    if workers < 0:
        raise ValueError(f"{WORKERS_VARIABLE} must be >= 0 (0: every core), got {value}")
    return workers or machine_cores()


class JobOptions(PipelineOptions):
    """Pipeline options that make each view once. Beam asks for ``view_as(TypeOptions)`` at every
    transform it applies (about 2,300 times while the text graph is built) and each new view
    parses the flags again (0.6 ms). A view reads and writes the options' shared values, so one
    view per options class behaves as a new one each time."""

    def view_as(self, cls):
        views = self.__dict__.setdefault("_views", {})
        if cls not in views:
            views[cls] = super().view_as(cls)
        return views[cls]

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_views", None)  # views are remade on demand
        return state


def pipeline_options(beam_args: list[str], job_workers: Callable[[], int] = lambda: 1) -> PipelineOptions:
    """Options for ``beam_args``; on the local runner, ``default_workers(job_workers)`` worker
    processes unless the flags set ``--direct_num_workers``, and processes (not threads) for more
    than one unless they set ``--direct_running_mode``. ``job_workers`` is asked only then, once
    the options' storage settings are in effect (it may list the inputs)."""
    options = JobOptions(list(beam_args))
    # The driver itself reads and writes the run folder (manifest, markers): same settings.
    FileSystems.set_options(options)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    # The flags the user wrote (``get_all_options(drop_default=True)`` hides one equal to Beam's
    # default, such as ``--direct_num_workers=1``).
    given = {arg[2:].split("=", 1)[0] for arg in beam_args if arg.startswith("--")}
    if standard.runner in LOCAL_RUNNERS:
        direct = options.view_as(DirectOptions)
        if "direct_num_workers" not in given:
            direct.direct_num_workers = default_workers(job_workers)
        if direct.direct_num_workers > 1 and "direct_running_mode" not in given:
            direct.direct_running_mode = "multi_processing"
    workers = options.view_as(DirectOptions).direct_num_workers if standard.runner in LOCAL_RUNNERS else 1
    # Each local worker's share of the cores, for its thread pools (``transforms.worker_cores``).
    if workers > 1:
        os.environ[WORKER_CORES_VARIABLE] = str(max(1, machine_cores() // workers))
    else:
        os.environ.pop(WORKER_CORES_VARIABLE, None)
    return options


def runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else type(runner).__name__
