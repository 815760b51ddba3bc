"""What every job does once its pipeline has finished, in one order: header, gate, manifest,
report, then ``_SUCCESS``.

The report is written before the seal so that the seal covers it, and on a failed gate too
(unsealed): it shows which expectation failed and on which records. A failed gate raises
``ValidationFailed`` after that, so the run never gets ``_SUCCESS``.
"""

from __future__ import annotations

import time
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.config import config_hash, to_dict
from pipelines.drift import DEFAULT_THRESHOLD
from pipelines.report import write_report
from pipelines.runner import runner_name
from pipelines.version import code_version
from run_folder.facts import load_run_facts
from run_folder.gate import ValidationFailed, gate
from run_folder.manifest import write_manifest
from run_folder.seal import seal_run


def run_header(job: str, schema_version: str, run_id: str, inputs: list[str], config: Any,
               options: PipelineOptions, started: float, stage_seconds: dict[str, float]) -> dict[str, Any]:
    """The manifest's header: what ran, on what, with which config and code, how long."""
    return {
        "run_id": run_id,
        "job": job,
        "schema_version": schema_version,
        "inputs": list(inputs),
        "config": to_dict(config),
        "config_hash": config_hash(config),
        "code_version": code_version(),
        "runner": runner_name(options),
        "seconds": round(time.time() - started, 3),
        "stage_seconds": stage_seconds,
    }


def publish_run(run_dir: str, stage_order: list[str], header: dict[str, Any], previous_run: str | None = None,
                drift_threshold: float = DEFAULT_THRESHOLD, compare_previous: bool = True) -> dict[str, Any]:
    """Gate, manifest, report, ``_SUCCESS``; return the manifest (raise on a failed gate)."""
    failure = None
    try:
        gate_result = gate(run_dir, load_run_facts(run_dir))
    except ValidationFailed as exc:
        failure, gate_result = exc, exc.result
    header["validation"] = gate_result.summary()
    manifest = write_manifest(run_dir, stage_order, header)
    write_report(run_dir, previous_run_dir=previous_run, drift_threshold=drift_threshold,
                 manifest=manifest, find_previous=compare_previous, sealed=failure is None)
    if failure is not None:
        raise failure
    seal_run(run_dir)
    return manifest
