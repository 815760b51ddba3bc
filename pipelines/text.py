"""The text job: read → url filter → extract → language → quality → harm → PII → exact dedup → write.

A thin assembly: the stages come from ``transforms.registry.TEXT_STAGES`` in order, each
configured by the section of ``TextConfig`` named after it, skipped when not ``enabled``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from pipelines import assembly
from pipelines.assembly import StageOutputs, apply_stages
from pipelines.config import config_hash, to_dict
from pipelines.drift import DEFAULT_THRESHOLD
from pipelines.progress import run_with_progress
from pipelines.report import write_report
from pipelines.runner import pipeline_options, runner_name
from pipelines.version import code_version
from schemas.text import REJECTED_SCHEMA, SCHEMA_VERSION, TEXT_SCHEMA
from schemas.text_suites import text_suites
from transforms.balance import BalanceConfig, load_balance_stats
from transforms.crawl.config import CrawlConfig
from transforms.decontaminate import DecontaminateConfig, load_decontaminate_stats
from transforms.dedup_exact import ExactDedupConfig
from transforms.dedup_minhash import MinHashDedupConfig, load_minhash_stats, publish_band_table
from transforms.extract import ExtractConfig
from transforms.filters.c4 import C4QualityConfig
from transforms.filters.fineweb import FineWebQualityConfig
from transforms.filters.gopher_quality import GopherQualityConfig
from transforms.filters.gopher_repetition import GopherRepetitionConfig
from transforms.filters.harm import HarmFilterConfig
from transforms.filters.language import LanguageFilterConfig
from transforms.filters.quality_model import QualityModelConfig
from transforms.line_dedup import LineDedupConfig
from transforms.filters.url_filter import UrlFilterConfig
from transforms.pii import RedactPiiConfig
from transforms.tokens import TokenCountConfig, TokenTotals, load_token_totals
from transforms.parquet_sink import ParquetSinkConfig, ShardedParquetSink
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import ReadInputs
from transforms.registry import TEXT_STAGES
from transforms.run_commit import DATA, REJECTED_DIR, begin_run, seal_run, write_manifest
from transforms.run_facts import WriteRunFacts, file_fact, kept_fact, load_run_facts, read_fact, rejected_fact
from transforms.run_gate import ValidationFailed, gate
from transforms.validate import ValidateStages
from transforms.stage import RunContext
from transforms.stats import CollectStats
from transforms.storage import join

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TextConfig:
    """The text job's settings: one section per stage, named after it, plus read and output."""

    crawl: CrawlConfig = field(default_factory=CrawlConfig)  # used with --urls
    read: ReadConfig = field(default_factory=ReadConfig)
    url_filter: UrlFilterConfig = field(default_factory=UrlFilterConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    language: LanguageFilterConfig = field(default_factory=LanguageFilterConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4_quality: C4QualityConfig = field(default_factory=C4QualityConfig)
    fineweb_quality: FineWebQualityConfig = field(default_factory=FineWebQualityConfig)
    harm: HarmFilterConfig = field(default_factory=HarmFilterConfig)
    pii: RedactPiiConfig = field(default_factory=RedactPiiConfig)
    dedup_exact: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    dedup_minhash: MinHashDedupConfig = field(default_factory=MinHashDedupConfig)
    line_dedup: LineDedupConfig = field(default_factory=LineDedupConfig)
    quality_model: QualityModelConfig = field(default_factory=QualityModelConfig)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    tokens: TokenCountConfig = field(default_factory=TokenCountConfig)
    output: ParquetSinkConfig = field(default_factory=ParquetSinkConfig)
    # Records per stage batch: large enough for fastText / scikit-learn to vectorise.
    batch_size: int = 256


Config = TextConfig


def enabled_stages(config: Any) -> list[Any]:
    return assembly.enabled_stages(TEXT_STAGES, config)


def stage_order(config: Any) -> list[str]:
    return assembly.stage_order(TEXT_STAGES, config)


def build(pipeline: beam.Pipeline, inputs: list[str], run: RunContext, config: Any) -> StageOutputs:
    """Add the text job to ``pipeline``: every input record ends in data/ or rejected/."""
    run_dir = run.run_dir
    read = pipeline | "Read" >> ReadInputs(inputs, config.read)
    outputs = apply_stages(read, TEXT_STAGES, config, run, config.batch_size)
    records = outputs.final
    if config.tokens.enabled:
        _ = records | "TokenTotals" >> TokenTotals(config.tokens.encoding, run_dir)
    outputs.all_rejected = list(outputs.rejected.values()) | "AllRejected" >> beam.Flatten()
    data_files = records | "WriteData" >> ShardedParquetSink(
        join(run_dir, DATA), TEXT_SCHEMA, config.output
    )
    rejected_files = outputs.all_rejected | "WriteRejected" >> ShardedParquetSink(
        join(run_dir, REJECTED_DIR), REJECTED_SCHEMA, config.output,
        partition_of=lambda r: f"stage={r['reject_stage']}",
    )
    facts = [
        read.kept | "FactRead" >> beam.Map(read_fact),
        read.rejected | "FactReadRejected" >> beam.Map(read_fact),
        records | "FactKept" >> beam.Map(kept_fact),
        outputs.all_rejected | "FactRejected" >> beam.Map(rejected_fact),
        data_files | "FactDataFiles" >> beam.Map(file_fact),
        rejected_files | "FactRejectedFiles" >> beam.Map(file_fact),
    ]
    _ = facts | "AllFacts" >> beam.Flatten() | "RunFacts" >> WriteRunFacts(run_dir)
    _ = pipeline | "Stats" >> CollectStats(outputs, run_dir)
    _ = pipeline | "Validate" >> ValidateStages(outputs, text_suites(config), run_dir)
    return outputs


def run(
    inputs: list[str],
    output: str,
    run_id: str,
    config: Any,
    beam_args: list[str],
    dedup_index: str | None = None,
    previous_run: str | None = None,
    drift_threshold: float = DEFAULT_THRESHOLD,
    compare_previous: bool = True,
) -> dict:
    """Run the text job into ``<output>/<run_id>/`` and commit it; return the manifest.

    With ``dedup_index``, near-duplicates of documents published by earlier runs are dropped,
    and this run's band table is appended to the index only after its own ``_SUCCESS``.
    The report compares against ``previous_run`` (default: the latest earlier run under
    ``output``) unless ``compare_previous`` is False.
    """
    options = pipeline_options(beam_args)
    run_dir = join(output, run_id)
    if dedup_index and not config.dedup_minhash.enabled:
        raise ValueError("--dedup-index needs the dedup_minhash stage enabled")
    begin_run(run_dir)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, inputs, RunContext(run_dir, run_id, dedup_index), config)
    progress = run_with_progress(pipeline, stage_order(config))
    header = {
        "run_id": run_id,
        "job": "text",
        "schema_version": SCHEMA_VERSION,
        "inputs": list(inputs),
        "config": to_dict(config),
        "config_hash": config_hash(config),
        "code_version": code_version(),
        "runner": runner_name(options),
        "seconds": round(time.time() - started, 3),
        "stage_seconds": progress.stage_seconds,
    }
    staged = {
        "dedup_minhash": load_minhash_stats,
        "tokens": load_token_totals,
        "balance": load_balance_stats,
        "decontaminate": load_decontaminate_stats,
    }
    for name, load in staged.items():  # global steps' own report data, staged by the pipeline
        if getattr(config, name).enabled:
            header[name] = load(run_dir)
    failure = None
    try:
        gate_result = gate(run_dir, load_run_facts(run_dir))
    except ValidationFailed as exc:
        failure, gate_result = exc, exc.result
    header["validation"] = gate_result.summary()
    manifest = write_manifest(run_dir, stage_order(config), header)
    # Rendered on failure too: the report shows which expectation failed and on which records.
    write_report(run_dir, previous_run_dir=previous_run, drift_threshold=drift_threshold,
                 manifest=manifest, find_previous=compare_previous, sealed=failure is None)
    if failure is not None:
        raise failure
    seal_run(run_dir)
    if dedup_index:
        manifest["dedup_index"] = publish_band_table(run_dir, dedup_index, run_id)
    return manifest
