"""The text job: read → takedown → url filter → consent → licence → extract → language →
quality → harm → PII → [synthetic] → exact and near dedup → write.

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
from pipelines.drift import DEFAULT_THRESHOLD
from pipelines.progress import run_with_progress
from pipelines.publish import publish_run, run_header
from pipelines.runner import pipeline_options
from schemas.text import REJECTED_SCHEMA, SCHEMA_VERSION, TEXT_SCHEMA
from schemas.text_suites import text_suites
from transforms.balance import BalanceConfig, load_balance_stats
from transforms.crawl.config import CrawlConfig
from transforms.decontaminate import DecontaminateConfig, load_decontaminate_stats
from transforms.dedup_exact import ExactDedupConfig
from transforms.dedup_minhash import MinHashDedupConfig, load_minhash_stats, publish_band_table
from transforms.extract import ExtractConfig
from transforms.filters.c4 import C4QualityConfig
from transforms.filters.consent import ConsentConfig
from transforms.filters.fineweb import FineWebQualityConfig
from transforms.filters.gopher_quality import GopherQualityConfig
from transforms.filters.gopher_repetition import GopherRepetitionConfig
from transforms.filters.harm import HarmFilterConfig
from transforms.filters.llm_guard import LlmGuardConfig
from transforms.filters.language import LanguageFilterConfig
from transforms.filters.license import LicenseConfig
from transforms.filters.quality_model import QualityModelConfig
from transforms.filters.takedown import TakedownConfig
from transforms.line_dedup import LineDedupConfig
from transforms.filters.url_filter import UrlFilterConfig
from transforms.pii import RedactPiiConfig
from transforms.tokens import TokenCountConfig, TokenTotals, load_token_totals
from transforms.parquet_sink import ParquetSinkConfig, ShardedParquetSink
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import ReadInputs
from transforms.registry import TEXT_STAGES
from run_folder.layout import DATA, REJECTED_DIR
from run_folder.seal import begin_run
from run_folder.facts import (
    WriteRunFacts,
    file_fact,
    kept_fact,
    read_fact,
    rejected_fact,
    skipped_fact,
)
from transforms.validate import ValidateStages
from transforms.spill import MemoryConfig
from transforms.stage import RunContext
from transforms.stats import CollectStats
from transforms.synthetic import (
    account_for,
    STAGE as SYNTHETIC_STAGE,
    GenerateSynthetic,
    SyntheticBranch,
    SyntheticConfig,
    load_synthetic_stats,
    preflight,
)
from run_folder.storage import join

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TextConfig:
    """The text job's settings: one section per stage, named after it, plus read and output."""

    crawl: CrawlConfig = field(default_factory=CrawlConfig)  # used with --urls
    read: ReadConfig = field(default_factory=ReadConfig)
    takedown: TakedownConfig = field(default_factory=TakedownConfig)
    url_filter: UrlFilterConfig = field(default_factory=UrlFilterConfig)
    consent: ConsentConfig = field(default_factory=ConsentConfig)
    license: LicenseConfig = field(default_factory=LicenseConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    language: LanguageFilterConfig = field(default_factory=LanguageFilterConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4_quality: C4QualityConfig = field(default_factory=C4QualityConfig)
    fineweb_quality: FineWebQualityConfig = field(default_factory=FineWebQualityConfig)
    harm: HarmFilterConfig = field(default_factory=HarmFilterConfig)
    llm_guard: LlmGuardConfig = field(default_factory=LlmGuardConfig)  # off: needs a server
    pii: RedactPiiConfig = field(default_factory=RedactPiiConfig)
    dedup_exact: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    dedup_minhash: MinHashDedupConfig = field(default_factory=MinHashDedupConfig)
    line_dedup: LineDedupConfig = field(default_factory=LineDedupConfig)
    quality_model: QualityModelConfig = field(default_factory=QualityModelConfig)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    tokens: TokenCountConfig = field(default_factory=TokenCountConfig)
    # LLM-generated records seeded by kept ones, gated like crawled ones (off by default).
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    output: ParquetSinkConfig = field(default_factory=ParquetSinkConfig)
    # What bounds a worker's memory whatever the input size (docs/operations.md sizes it).
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    # Records per stage batch: large enough for fastText / scikit-learn to vectorise.
    batch_size: int = 256


Config = TextConfig


def enabled_stages(config: Any) -> list[Any]:
    return assembly.enabled_stages(TEXT_STAGES, config)


def stage_order(config: Any) -> list[str]:
    branch = SyntheticJoin(config.synthetic, None, config.batch_size) if config.synthetic.enabled else None
    return assembly.stage_order(TEXT_STAGES, config, branch)


class SyntheticJoin:
    """The synthetic branch as the job's ``assembly.Branch``: seeded by the records that passed
    every per-record stage, gated by those same stages, joined before dedup (which judges
    crawled and synthetic records together). ``parts`` keeps the branch's outputs for the
    run facts and the report."""

    name = SYNTHETIC_STAGE

    def __init__(self, config: SyntheticConfig, run: RunContext | None, batch_size: int):
        self._config, self._run, self._batch_size = config, run, batch_size
        self.parts: dict[str, beam.PCollection] = {}

    def position(self, stages: list[Any]) -> int:
        return assembly.branch_position(stages)

    def __call__(self, records: beam.PCollection, gates: list[Any]) -> tuple[beam.PCollection, beam.PCollection]:
        self.parts = records | "Synthetic" >> SyntheticBranch(self._config, self._run, gates, self._batch_size)
        merged = (records, self.parts["kept"]) | "WithSynthetic" >> beam.Flatten()
        return merged, self.parts["rejected"]


def build(pipeline: beam.Pipeline, inputs: list[str], run: RunContext, config: Any) -> StageOutputs:
    """Add the text job to ``pipeline``: every input record ends in data/ or rejected/."""
    run_dir = run.run_dir
    read = pipeline | "Read" >> ReadInputs(inputs, config.read)
    synthetic = SyntheticJoin(config.synthetic, run, config.batch_size) if config.synthetic.enabled else None
    outputs = apply_stages(read, TEXT_STAGES, config, run, config.batch_size, branch=synthetic)
    records = outputs.final
    if config.tokens.enabled:
        _ = records | "TokenTotals" >> TokenTotals(config.tokens.encoding, run_dir)
    outputs.all_rejected = tuple(outputs.rejected.values())
    data_files = records | "WriteData" >> ShardedParquetSink(
        join(run_dir, DATA), TEXT_SCHEMA, config.output, spill_dir=run.spill_dir, memory=run.memory
    )
    rejected_files = outputs.all_rejected | "WriteRejected" >> ShardedParquetSink(
        join(run_dir, REJECTED_DIR), REJECTED_SCHEMA, config.output,
        partition_of=lambda r: f"stage={r['reject_stage']}", spill_dir=run.spill_dir, memory=run.memory,
    )
    facts = [
        read.kept | "FactRead" >> beam.Map(read_fact),
        read.rejected | "FactReadRejected" >> beam.Map(read_fact),
        read.skipped | "FactSkipped" >> beam.Map(skipped_fact),
        records | "FactKept" >> beam.Map(kept_fact),
        *[rejected | f"FactRejected{i}" >> beam.Map(rejected_fact) for i, rejected in enumerate(outputs.all_rejected)],
        data_files | "FactDataFiles" >> beam.Map(file_fact),
        rejected_files | "FactRejectedFiles" >> beam.Map(file_fact),
    ]
    if synthetic is not None:  # records born in this run: the input grows by them
        facts.append(account_for(synthetic.parts, records, outputs.all_rejected, run_dir))
    _ = tuple(facts) | "RunFacts" >> WriteRunFacts(run_dir)
    _ = pipeline | "Stats" >> CollectStats(outputs, run_dir, stage_classes=(*TEXT_STAGES, GenerateSynthetic))
    _ = pipeline | "Validate" >> ValidateStages(outputs, text_suites(config), run_dir, memory=run.memory)
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
    preflight(config.synthetic)  # a clear error now if the model or server cannot answer
    begin_run(run_dir)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, inputs, RunContext(run_dir, run_id, dedup_index, config.memory), config)
    progress = run_with_progress(pipeline, stage_order(config))
    header = run_header("text", SCHEMA_VERSION, run_id, inputs, config, options, started, progress.stage_seconds)
    staged = {
        "dedup_minhash": load_minhash_stats,
        "tokens": load_token_totals,
        "balance": load_balance_stats,
        "decontaminate": load_decontaminate_stats,
        "synthetic": load_synthetic_stats,
    }
    for name, load in staged.items():  # global steps' own report data, staged by the pipeline
        if getattr(config, name).enabled:
            header[name] = load(run_dir)
    manifest = publish_run(run_dir, stage_order(config), header, previous_run, drift_threshold, compare_previous)
    if dedup_index:
        manifest["dedup_index"] = publish_band_table(run_dir, dedup_index, run_id)
    return manifest
