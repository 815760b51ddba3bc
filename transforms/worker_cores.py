"""The cores one worker process may count on for its own threads (image decoding, onnxruntime).

A stage's thread pool defaults to the machine's cores, which is right for one worker per
machine (the local default, and one SDK process per VM on Dataflow). When the local runner runs
several worker processes, ``pipelines.runner.pipeline_options`` writes each one's share into
``DATAPREP_WORKER_CORES``, which the worker processes it starts inherit: two workers on 2 cores
then each count one core instead of both (docs/images.md measured the oversubscription).
"""

from __future__ import annotations

import os

WORKER_CORES_VARIABLE = "DATAPREP_WORKER_CORES"


def machine_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_cores() -> int:
    """This worker's share of the cores: ``DATAPREP_WORKER_CORES`` if set, else every core."""
    value = os.environ.get(WORKER_CORES_VARIABLE, "").strip()
    return max(1, int(value)) if value else machine_cores()
