"""Build, run, validate, report and publish any declared job (``pipelines/job.py``).

``build`` adds a job to a Beam pipeline: read, the planned stages (and the branch where it
joins), the kept records to data/ and every stage's rejected records to rejected/ (each
stage's stream written where it is produced, never flattened), the job's extra sinks, the run
facts, the statistics and the validation suites. ``run`` is the whole lifecycle: flags checked
and applied, the branch's backend checked, the run folder begun, the pipeline run with
progress, the manifest's header (with the report data the stages staged), then gate, manifest,
report and ``_SUCCESS`` (``pipelines/publish.py``), then what the flags publish.
"""

from __future__ import annotations

import time
from typing import Any

import apache_beam as beam

from pipelines.assembly import StageOutputs, apply_stages
from pipelines.drift import DEFAULT_THRESHOLD
from pipelines.job import Job
from pipelines.progress import run_with_progress
from pipelines.publish import publish_run, run_header
from pipelines.runner import pipeline_options
from run_folder.facts import (
    WriteRunFacts,
    file_fact,
    kept_fact,
    read_fact,
    rejected_fact,
    skipped_fact,
)
from run_folder.layout import DATA, REJECTED_DIR
from run_folder.seal import begin_run
from run_folder.storage import join
from transforms.parquet_sink import ShardedParquetSink
from transforms.stage import RunContext
from transforms.stats import CollectStats
from transforms.synthetic import GenerateSynthetic, account_for, preflight
from transforms.validate import ValidateStages


def _by_stage(record: dict) -> str:
    return f"stage={record['reject_stage']}"


def build(job: Job, pipeline: beam.Pipeline, inputs: list[str], run: RunContext, config: Any) -> StageOutputs:
    """Add ``job`` to ``pipeline``: every input record ends in data/ or rejected/."""
    run_dir = run.run_dir
    read = pipeline | "Read" >> job.read(list(inputs), config)
    plan = job.plan(config)
    branch = job.branch(config.synthetic, run, config.batch_size) if plan.branch is not None else None
    outputs = apply_stages(read, plan, config, run, config.batch_size, branch=branch)
    records = outputs.final
    strip = job.strip_rejected(config) if job.strip_rejected is not None else None
    outputs.all_rejected = tuple(
        rejected | f"StripRejected{i}" >> beam.Map(strip) if strip is not None else rejected
        for i, rejected in enumerate(outputs.rejected.values())
    )
    sink, spill = job.sink(config), {"spill_dir": run.spill_dir, "memory": run.memory}
    data_files = records | "WriteData" >> ShardedParquetSink(join(run_dir, DATA), job.schema, sink, **spill)
    rejected_files = outputs.all_rejected | "WriteRejected" >> ShardedParquetSink(
        join(run_dir, REJECTED_DIR), job.rejected_schema, sink, partition_of=_by_stage, **spill
    )
    facts = [
        (read.kept, read_fact),
        (read.rejected, read_fact),
        *([(read.skipped, skipped_fact)] if job.reads_skipped else []),
        (records, kept_fact),
        *[(rejected, rejected_fact) for rejected in outputs.all_rejected],
        (data_files, file_fact),
        (rejected_files, file_fact),
    ]
    for extra in job.extra_sinks:
        if extra.enabled(config):
            files = extra.write(records, run, config)
            if files is not None:
                facts.append((files, file_fact))
    if branch is not None:  # records born in this run: the input grows by them
        facts.append(account_for(branch.parts, records, outputs.all_rejected, run_dir))
    _ = pipeline | "RunFacts" >> WriteRunFacts(run_dir, facts)
    _ = pipeline | "Stats" >> CollectStats(
        outputs, run_dir, (*job.stages, GenerateSynthetic), profile=job.stats_profile
    )
    _ = pipeline | "Validate" >> ValidateStages(outputs, job.validation_suites(config), run_dir, memory=run.memory)
    return outputs


def run(
    job: Job,
    inputs: list[str],
    output: str,
    run_id: str,
    config: Any,
    beam_args: list[str],
    previous_run: str | None = None,
    drift_threshold: float = DEFAULT_THRESHOLD,
    compare_previous: bool = True,
    **flags: Any,
) -> dict:
    """Run ``job`` into ``<output>/<run_id>/`` and commit it; return the manifest.

    ``flags`` are the job's ``RunFlag``s by name (``dedup_index=...``); one the job does not
    accept, given a value, raises ``ValueError`` before anything runs. The report compares
    against ``previous_run`` (default: the latest earlier run under ``output``) unless
    ``compare_previous`` is False. A run whose critical expectation failed raises
    ``ValidationFailed`` after writing its report, unsealed.
    """
    refused = job.refused(flags)
    if refused:
        raise ValueError("; ".join(refused))
    given = [(flag, flags[flag.name]) for flag in job.flags if flags.get(flag.name) not in (None, False)]
    for flag, value in given:
        config = flag.apply(config, value)
    options = pipeline_options(beam_args, lambda: job.workers(list(inputs), config))
    run_dir = join(output, run_id)
    preflight(config.synthetic)  # a clear error now if the model or server cannot answer
    begin_run(run_dir)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    context = RunContext(run_dir, run_id, flags.get("dedup_index"), config.memory)
    build(job, pipeline, list(inputs), context, config)
    order = job.stage_order(config)
    progress = run_with_progress(pipeline, order)
    header = run_header(job.name, job.schema_version, run_id, inputs, config, options, started,
                        progress.stage_seconds)
    for name, load in job.report_data.items():  # the steps' own report data, staged by the pipeline
        if getattr(config, name).enabled:
            header[name] = load(run_dir)
    manifest = publish_run(run_dir, order, header, previous_run, drift_threshold, compare_previous)
    for flag, value in given:
        if flag.publish is not None:
            manifest[flag.name] = flag.publish(run_dir, value, run_id)
    return manifest
