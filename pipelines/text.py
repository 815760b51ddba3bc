"""The text job: read → takedown → url filter → consent → licence → extract → language →
quality → harm → PII → [synthetic] → exact and near dedup → write.

A declaration (``pipelines/job.py``): the stages are ``transforms.registry.TEXT_STAGES`` in
order, each configured by the section of ``TextConfig`` named after it (of the stage's own
``config_class``) and skipped when not ``enabled``; ``pipelines/job_runner.py`` builds and runs it.
"""

from __future__ import annotations

from typing import Any

from pipelines import job_runner
from pipelines.job import ExtraSink, Job, RunFlag, job_config
from schemas.text import REJECTED_SCHEMA, SCHEMA_VERSION, TEXT_SCHEMA
from schemas.text_suites import text_suites
from transforms.balance import load_balance_stats
from transforms.crawl.config import CrawlConfig
from transforms.decontaminate import load_decontaminate_stats
from transforms.dedup_minhash import load_minhash_stats, publish_band_table
from transforms.parquet_sink import ParquetSinkConfig
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import ReadInputs
from transforms.registry import TEXT_STAGES
from transforms.spill import MemoryConfig
from transforms.stats.fields import TEXT_PROFILE
from transforms.synthetic import SyntheticConfig, load_synthetic_stats
from transforms.synthetic.branch import SyntheticJoin
from transforms.tokens import TokenTotals, load_token_totals

TextConfig = job_config(
    "TextConfig",
    "The text job's settings: one section per stage, named after it, plus read and output.",
    __name__,
    TEXT_STAGES,
    before=[
        ("crawl", CrawlConfig, CrawlConfig),  # used with --urls
        ("read", ReadConfig, ReadConfig),
    ],
    after=[
        # LLM-generated records seeded by kept ones, gated like crawled ones (off by default).
        ("synthetic", SyntheticConfig, SyntheticConfig),
        ("output", ParquetSinkConfig, ParquetSinkConfig),
        # What bounds a worker's memory whatever the input size (docs/operations.md sizes it).
        ("memory", MemoryConfig, MemoryConfig),
        # Records per stage batch: large enough for fastText / scikit-learn to vectorise.
        ("batch_size", int, 256),
    ],
)
Config = TextConfig


def _needs_minhash(config: Any, index: str) -> Any:
    if not config.dedup_minhash.enabled:
        raise ValueError("--dedup-index needs the dedup_minhash stage enabled")
    return config


def _token_totals(records: Any, run: Any, config: Any) -> None:
    _ = records | "TokenTotals" >> TokenTotals(config.tokens.encoding, run.run_dir)


JOB = Job(
    name="text",
    stages=TEXT_STAGES,
    config=TextConfig,
    read=lambda inputs, config: ReadInputs(inputs, config.read),
    reads_skipped=True,
    schema=TEXT_SCHEMA,
    rejected_schema=REJECTED_SCHEMA,
    schema_version=SCHEMA_VERSION,
    suites=text_suites,
    sink=lambda config: config.output,
    stats_profile=TEXT_PROFILE,
    branch=SyntheticJoin,
    extra_sinks=(ExtraSink("TokenTotals", lambda config: config.tokens.enabled, _token_totals),),
    report_data={
        "dedup_minhash": load_minhash_stats,
        "tokens": load_token_totals,
        "balance": load_balance_stats,
        "decontaminate": load_decontaminate_stats,
        "synthetic": load_synthetic_stats,
    },
    # Near-duplicates of documents published by earlier runs are dropped; this run's band
    # table is appended to the index only after its own ``_SUCCESS``.
    flags=(RunFlag("dedup_index", "--dedup-index", _needs_minhash, publish_band_table),),
)


def build(pipeline: Any, inputs: list[str], run: Any, config: Any) -> Any:
    return job_runner.build(JOB, pipeline, inputs, run, config)


def run(inputs: list[str], output: str, run_id: str, config: Any, beam_args: list[str], **options: Any) -> dict:
    return job_runner.run(JOB, inputs, output, run_id, config, beam_args, **options)


stage_order, enabled_stages = JOB.stage_order, JOB.enabled_stages
