"""The text job: read → takedown → url filter → consent → licence → extract → language →
quality → harm → PII → [synthetic] → exact and near dedup → write.

A declaration (``pipelines/job.py``): the stages are ``STAGES`` below, in order, each configured
by the section of ``TextConfig`` named after it (of the stage's own ``config_class``) and skipped
when not ``enabled``; ``pipelines/job_runner.py`` builds and runs it. Adding a stage is its
import and one line in ``STAGES``: the config section, the output columns, the suites, the
funnel, the statistics and ``trace`` follow from its class.

Why this order: cheap first. The takedown blocklist and the URL filter need no text, so they run
before extraction; so do the consent and licence stages, which read the response headers and the
HTML that extraction discards. Language ID comes before the quality rules (their thresholds were set on English, as in FineWeb) and before the
harm model (English only). PII is redacted after the filters, so rejected records keep the text
as it was judged, and before dedup, so redacted copies of one page still meet. Exact dedup
(cheap) runs before MinHash, so near-duplicate clustering sees fewer documents. C4-style line
dedup (off by default) removes corpus-wide repeated lines before the quality rules judge the
text. The model quality score, decontamination and balance work on the deduplicated set, and
token counts are taken on what is published.

Stages that see one batch at a time are ``Stage`` classes (built from their config); global
steps are ``PTransform`` classes built with ``for_run(config, RunContext)``.
"""

from __future__ import annotations

from typing import Any

from pipelines import job_runner
from pipelines.job import ExtraSink, Job, RunFlag, job_config
from schemas.text import BASE_FIELDS, SCHEMA_VERSION
from schemas.text_suites import text_suites
from transforms.balance import Balance, load_balance_stats
from transforms.crawl.config import CrawlConfig
from transforms.decontaminate import Decontaminate, load_decontaminate_stats
from transforms.dedup_exact import ExactDedup
from transforms.dedup_minhash import MinHashDedup, load_minhash_stats, publish_band_table
from transforms.extract import Extract
from transforms.filters.c4 import C4QualityFilter
from transforms.filters.consent import ConsentFilter
from transforms.filters.fineweb import FineWebQualityFilter
from transforms.filters.gopher_quality import GopherQualityFilter
from transforms.filters.gopher_repetition import GopherRepetitionFilter
from transforms.filters.harm import HarmFilter
from transforms.filters.language import LanguageFilter
from transforms.filters.license import LicenseFilter
from transforms.filters.llm_guard import LlmGuard
from transforms.filters.quality_model import QualityModel
from transforms.filters.takedown import TakedownFilter
from transforms.filters.url_filter import UrlFilter
from transforms.line_dedup import LineDedup
from transforms.parquet_sink import ParquetSinkConfig
from transforms.pii import RedactPii
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import ReadInputs, workers_for
from transforms.spill import MemoryConfig
from transforms.synthetic import SyntheticConfig, load_synthetic_stats
from transforms.synthetic.branch import SyntheticJoin
from transforms.tokens import TokenCount, TokenTotals, load_token_totals

STAGES = (
    TakedownFilter,
    UrlFilter,
    ConsentFilter,
    LicenseFilter,
    Extract,
    LanguageFilter,
    LineDedup,
    GopherRepetitionFilter,
    GopherQualityFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    HarmFilter,
    LlmGuard,
    RedactPii,
    ExactDedup,
    MinHashDedup,
    QualityModel,
    Decontaminate,
    Balance,
    TokenCount,
)

TextConfig = job_config(
    "TextConfig",
    "The text job's settings: one section per stage, named after it, plus read and output.",
    __name__,
    STAGES,
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
    "text", STAGES, TextConfig,
    reader=ReadInputs,
    base_fields=BASE_FIELDS, schema_version=SCHEMA_VERSION,
    suites=text_suites,
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
    # Every core once the input is more than one read split (docs/performance.md: 1.93x).
    workers=lambda inputs, config: workers_for(inputs, config.read),
)


def build(pipeline: Any, inputs: list[str], run: Any, config: Any) -> Any:
    return job_runner.build(JOB, pipeline, inputs, run, config)


def run(inputs: list[str], output: str, run_id: str, config: Any, beam_args: list[str], **options: Any) -> dict:
    return job_runner.run(JOB, inputs, output, run_id, config, beam_args, **options)


stage_order, enabled_stages = JOB.stage_order, JOB.enabled_stages
