"""The image-caption job: read → consent → licence → caption filters → URL dedup → download →
decode → takedown → placeholder → image filters → NSFW → [alignment] → exact and near dedup →
[caption rewrites] → write (Parquet, and WebDataset tars when ``output.webdataset``).

    dataprep run images --input <tables-or-tars-or-warc>... --output <dir-or-s3-uri>
                        [--config images.yaml] [-- <Beam flags>]

A thin assembly, as ``pipelines/text.py``: the stages come from
``transforms.images.stages.IMAGE_STAGES`` in order, each configured by the section of ``Config``
named after it and skipped when not ``enabled``. Output, manifest, statistics, validation, gate
and report are the text job's (``ShardedParquetSink``, ``run_facts``, ``CollectStats``,
``ValidateStages`` with ``schemas/images_suites.py``, ``gate``, ``write_report``); see
``docs/images.md``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field, replace
from typing import Any

import apache_beam as beam

from pipelines import assembly
from pipelines.assembly import StageOutputs, apply_stages
from pipelines.drift import DEFAULT_THRESHOLD
from pipelines.progress import run_with_progress
from pipelines.publish import publish_run, run_header
from pipelines.runner import pipeline_options
from schemas.images import IMAGE_SCHEMA, REJECTED_SCHEMA, SCHEMA_VERSION
from schemas.images_suites import images_suites
from transforms.consent.signals import PAGE_SIGNALS
from transforms.crawl.config import CrawlConfig
from transforms.filters.consent import ConsentConfig
from transforms.filters.license import LicenseConfig
from transforms.filters.takedown import TakedownConfig
from transforms.images.alignment import AlignmentConfig
from transforms.images.caption_boilerplate import CaptionBoilerplateConfig
from transforms.images.caption_language import CaptionLanguageConfig
from transforms.images.caption_length import CaptionLengthConfig
from transforms.images.caption_rewrite import CaptionRewriteJoin, default_images_synthetic
from transforms.images.decode import DecodeConfig
from transforms.images.dedup import ExactImageDedupConfig, NearImageDedupConfig
from transforms.images.download import DownloadConfig
from transforms.images.image_filter import ImageFilterConfig
from transforms.images.nsfw import NsfwConfig
from transforms.images.placeholder import PlaceholderConfig
from transforms.images.profile import IMAGE_PROFILE
from transforms.images.read import ImageReadConfig, ReadCaptionInputs
from transforms.images.record import BODY
from transforms.images.stages import IMAGE_STAGES
from transforms.images.url_dedup import UrlDedupConfig
from transforms.images.webdataset_writer import WebDatasetSink
from transforms.parquet_sink import ParquetSinkConfig, ShardedParquetSink
from run_folder.layout import DATA, REJECTED_DIR, WEBDATASET_DIR
from run_folder.seal import begin_run
from run_folder.facts import WriteRunFacts, file_fact, kept_fact, read_fact, rejected_fact
from transforms.spill import MemoryConfig
from transforms.stage import RunContext
from transforms.stats import CollectStats
from run_folder.storage import join
from transforms.synthetic import (
    account_for,
    GenerateSynthetic,
    SyntheticConfig,
    load_synthetic_stats,
    preflight,
)
from transforms.validate import ValidateStages

ALWAYS_ON = ("download", "decode")  # without them there is no image to write


@dataclass(frozen=True)
class ImageOutputConfig:
    # The sink bounds shards by rows (it counts text bytes, not image bytes): 5,000 images of
    # ~25 KB (256 px JPEG q95) are ~125 MB per shard, 1,000-row groups ~25 MB.
    max_rows_per_shard: int = 5_000
    row_group_rows: int = 1_000
    zstd_level: int = 3
    # Rejected records keep their signals; their (re-encoded) image only when asked.
    rejected_image_bytes: bool = False
    # Kept records also as WebDataset tars (webdataset/shard-SSSSS.tar: <id>.jpg, .txt, .json),
    # for training loaders that stream tars; shards are held in memory, as the Parquet ones.
    webdataset: bool = False
    webdataset_samples_per_shard: int = 5_000

    def sink(self) -> ParquetSinkConfig:
        return ParquetSinkConfig(
            max_rows_per_shard=self.max_rows_per_shard,
            row_group_rows=self.row_group_rows,
            zstd_level=self.zstd_level,
        )


@dataclass(frozen=True)
class ImagesConfig:
    """The image-caption job's settings: one section per stage, named after it."""

    crawl: CrawlConfig = field(default_factory=CrawlConfig)  # pages crawled first with --urls
    read: ImageReadConfig = field(default_factory=ImageReadConfig)
    # Every reservation, noimageai included: this job trains on the images (docs/consent.md).
    consent: ConsentConfig = field(default_factory=lambda: ConsentConfig(honoured=PAGE_SIGNALS))
    license: LicenseConfig = field(default_factory=LicenseConfig)
    caption_length: CaptionLengthConfig = field(default_factory=CaptionLengthConfig)
    caption_boilerplate: CaptionBoilerplateConfig = field(default_factory=CaptionBoilerplateConfig)
    caption_language: CaptionLanguageConfig = field(default_factory=CaptionLanguageConfig)
    url_dedup: UrlDedupConfig = field(default_factory=UrlDedupConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    takedown: TakedownConfig = field(default_factory=TakedownConfig)
    placeholder: PlaceholderConfig = field(default_factory=PlaceholderConfig)
    image_filter: ImageFilterConfig = field(default_factory=ImageFilterConfig)
    nsfw: NsfwConfig = field(default_factory=NsfwConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    dedup_exact: ExactImageDedupConfig = field(default_factory=ExactImageDedupConfig)
    dedup_near: NearImageDedupConfig = field(default_factory=NearImageDedupConfig)
    # LaCLIP-style caption rewrites of kept images (``--synthetic caption``; off by default).
    synthetic: SyntheticConfig = field(default_factory=default_images_synthetic)
    output: ImageOutputConfig = field(default_factory=ImageOutputConfig)
    # What bounds a worker's memory whatever the input size (docs/operations.md sizes it).
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    # Records per stage batch (fastText over captions, ONNX over images).
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ALWAYS_ON:
            if not getattr(self, name).enabled:
                raise ValueError(f"{name} cannot be disabled: without it there is no image to write")


Config = ImagesConfig


def with_crawl_flags(config: ImagesConfig, args: argparse.Namespace) -> ImagesConfig:
    """The CLI's crawl flags (``--allow-private-addresses``, ``--allowed-host``, rates...) applied
    to the download's crawler, as ``dataprep crawl`` applies them to its own."""
    from pipelines.crawl import config_from_args

    download = replace(config.download, crawl=config_from_args(args, config.download.crawl))
    return replace(config, download=download)


def enabled_stages(config: ImagesConfig) -> list[Any]:
    return assembly.enabled_stages(IMAGE_STAGES, config)


def stage_order(config: ImagesConfig) -> list[str]:
    return assembly.stage_order(IMAGE_STAGES, config, _caption_rewrite(config, None))


def _caption_rewrite(config: ImagesConfig, run: RunContext | None) -> CaptionRewriteJoin | None:
    return CaptionRewriteJoin(config.synthetic, run, config.batch_size) if config.synthetic.enabled else None


def _strip_rejected(record: dict, keep_image: bool) -> dict:
    record = {k: v for k, v in record.items() if k != BODY}
    if not keep_image:
        record["image"] = None
    return record


def build(pipeline: beam.Pipeline, inputs: list[str], run: RunContext, config: ImagesConfig) -> StageOutputs:
    """Add the image-caption job to ``pipeline``: every input pair ends in data/ or rejected/."""
    run_dir = run.run_dir
    read = pipeline | "Read" >> ReadCaptionInputs(inputs, config.read)
    synthetic = _caption_rewrite(config, run)
    outputs = apply_stages(read, IMAGE_STAGES, config, run, config.batch_size, branch=synthetic)
    records = outputs.final
    keep_image = config.output.rejected_image_bytes
    outputs.all_rejected = tuple(
        rejected | f"StripRejected{i}" >> beam.Map(_strip_rejected, keep_image)
        for i, rejected in enumerate(outputs.rejected.values())
    )
    sink = config.output.sink()
    spill = {"spill_dir": run.spill_dir, "memory": run.memory}
    data_files = records | "WriteData" >> ShardedParquetSink(join(run_dir, DATA), IMAGE_SCHEMA, sink, **spill)
    rejected_files = outputs.all_rejected | "WriteRejected" >> ShardedParquetSink(
        join(run_dir, REJECTED_DIR), REJECTED_SCHEMA, sink, partition_of=lambda r: f"stage={r['reject_stage']}",
        **spill,
    )
    facts = [
        read.kept | "FactRead" >> beam.Map(read_fact),
        read.rejected | "FactReadRejected" >> beam.Map(read_fact),
        records | "FactKept" >> beam.Map(kept_fact),
        *[rejected | f"FactRejected{i}" >> beam.Map(rejected_fact) for i, rejected in enumerate(outputs.all_rejected)],
        data_files | "FactDataFiles" >> beam.Map(file_fact),
        rejected_files | "FactRejectedFiles" >> beam.Map(file_fact),
    ]
    if config.output.webdataset:
        webdataset_files = records | "WriteWebDataset" >> WebDatasetSink(
            join(run_dir, WEBDATASET_DIR), IMAGE_SCHEMA, config.output.webdataset_samples_per_shard, **spill
        )
        facts.append(webdataset_files | "FactWebDatasetFiles" >> beam.Map(file_fact))
    if synthetic is not None:  # records born in this run: the input grows by them
        facts.append(account_for(synthetic.parts, records, outputs.all_rejected, run_dir))
    _ = tuple(facts) | "RunFacts" >> WriteRunFacts(run_dir)
    _ = pipeline | "Stats" >> CollectStats(
        outputs, run_dir, (*IMAGE_STAGES, GenerateSynthetic), profile=IMAGE_PROFILE
    )
    _ = pipeline | "Validate" >> ValidateStages(outputs, images_suites(config), run_dir, memory=run.memory)
    return outputs


def run(
    inputs: list[str],
    output: str,
    run_id: str,
    config: ImagesConfig,
    beam_args: list[str],
    allow_private_addresses: bool = False,
    previous_run: str | None = None,
    drift_threshold: float = DEFAULT_THRESHOLD,
    compare_previous: bool = True,
    **_ignored: Any,
) -> dict:
    """Run the image-caption job into ``<output>/<run_id>/`` and commit it; return the manifest.

    ``allow_private_addresses`` (``--allow-private-addresses``) lets the download reach
    private and loopback addresses (tests, intranets). The report compares against
    ``previous_run`` (default: the latest earlier run under ``output``) unless
    ``compare_previous`` is False. Other keyword arguments the CLI passes to every job
    (``dedup_index``) do not apply to this job and are ignored. A run whose critical
    expectation failed raises ``ValidationFailed`` after writing its report, unsealed.
    """
    if allow_private_addresses:
        download = config.download
        config = replace(
            config, download=replace(download, crawl=replace(download.crawl, allow_private_addresses=True))
        )
    options = pipeline_options(beam_args)
    run_dir = join(output, run_id)
    preflight(config.synthetic)  # a clear error now if the model or server cannot answer
    begin_run(run_dir)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, list(inputs), RunContext(run_dir, run_id, memory=config.memory), config)
    progress = run_with_progress(pipeline, stage_order(config))
    header = run_header("images", SCHEMA_VERSION, run_id, inputs, config, options, started, progress.stage_seconds)
    if config.synthetic.enabled:
        header["synthetic"] = load_synthetic_stats(run_dir)
    return publish_run(run_dir, stage_order(config), header, previous_run, drift_threshold, compare_previous)
