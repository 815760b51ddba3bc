"""The image-caption job: read → consent → licence → caption filters → URL dedup → download →
decode → takedown → placeholder → image filters → NSFW → [alignment] → exact and near dedup →
[caption rewrites] → write (Parquet, and WebDataset tars when ``output.webdataset``).

    dataprep run images --input <tables-or-tars-or-warc>... --output <dir-or-s3-uri>
                        [--config images.yaml] [-- <Beam flags>]

A declaration, as ``pipelines/text.py``: the stages are ``STAGES`` below, in order, each
configured by the section of ``ImagesConfig`` named after it and skipped when not ``enabled``;
``pipelines/job_runner.py`` builds and runs it (output, manifest, statistics, validation with
``schemas/images_suites.py``, gate and report as the text job's); see ``docs/images.md``.

Why this order: first the page's reservations and licence (pairs from crawled HTML carry them
from the reader), so that a reserved page's images are never downloaded. Then cheap: caption
length and boilerplate need only the caption, language ID a fastText call, URL dedup a shuffle;
all run before any download. Then download, decode; the takedown blocklist right after decode,
where an image's sha256 and pHash exist; the placeholder check counts URLs over every decoded
image before the size filters drop any; the CLIP alignment score (off by default: it needs a
checkpoint) before dedup, since copies of an image differ in their captions and the keeper
should be one whose caption fits; exact dedup (cheap) before near dedup; NSFW (the costly model)
last, on what every cheaper step kept. The NSFW score depends on the image alone and dedup's
keeper is chosen by pixels and bytes, so the detector scores each distinct image once; a dropped
duplicate carries no score, its ``dup_of`` names the keeper, whose own fate (kept, or rejected
by NSFW) the trace shows.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial
from typing import Any

from pipelines import job_runner
from pipelines.job import ExtraSink, Job, RunFlag, job_config
from run_folder.layout import WEBDATASET_DIR
from run_folder.storage import join
from schemas.images import BASE_FIELDS, SCHEMA_VERSION
from schemas.images_suites import images_suites
from transforms.consent.signals import PAGE_SIGNALS
from transforms.crawl.config import CrawlConfig
from transforms.filters.consent import ConsentConfig, ConsentFilter
from transforms.filters.license import LicenseFilter
from transforms.filters.takedown import TakedownFilter
from transforms.images.alignment import AlignmentFilter
from transforms.images.caption_boilerplate import CaptionBoilerplateFilter
from transforms.images.caption_language import CaptionLanguageFilter
from transforms.images.caption_length import CaptionLengthFilter
from transforms.images.caption_rewrite import CaptionRewriteJoin, default_images_synthetic
from transforms.images.decode import Decode
from transforms.images.dedup import ExactImageDedup, NearImageDedup
from transforms.images.download import Download
from transforms.images.image_filter import ImageFilter
from transforms.images.nsfw import NsfwFilter
from transforms.images.output_config import ImageOutputConfig, strip_rejected
from transforms.images.placeholder import Placeholder
from transforms.images.profile import IMAGE_PROFILE
from transforms.images.read import ImageReadConfig, ReadCaptionInputs
from transforms.images.url_dedup import UrlDedup
from transforms.images.webdataset_writer import WebDatasetSink
from transforms.spill import MemoryConfig
from transforms.synthetic import SyntheticConfig, load_synthetic_stats

STAGES = (
    ConsentFilter,
    LicenseFilter,
    CaptionLengthFilter,
    CaptionBoilerplateFilter,
    CaptionLanguageFilter,
    UrlDedup,
    Download,
    Decode,
    TakedownFilter,
    Placeholder,
    ImageFilter,
    AlignmentFilter,
    ExactImageDedup,
    NearImageDedup,
    NsfwFilter,
)

ALWAYS_ON = ("download", "decode")  # without them there is no image to write


def _check(config: Any) -> None:
    if config.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
    for name in ALWAYS_ON:
        if not getattr(config, name).enabled:
            raise ValueError(f"{name} cannot be disabled: without it there is no image to write")


ImagesConfig = job_config(
    "ImagesConfig",
    "The image-caption job's settings: one section per stage, named after it.",
    __name__,
    STAGES,
    before=[
        ("crawl", CrawlConfig, CrawlConfig),  # pages crawled first with --urls
        ("read", ImageReadConfig, ImageReadConfig),
    ],
    # Every reservation, noimageai included: this job trains on the images (docs/consent.md).
    defaults={"consent": lambda: ConsentConfig(honoured=PAGE_SIGNALS)},
    after=[
        # LaCLIP-style caption rewrites of kept images (``--synthetic caption``; off by default).
        ("synthetic", SyntheticConfig, default_images_synthetic),
        ("output", ImageOutputConfig, ImageOutputConfig),
        # What bounds a worker's memory whatever the input size (docs/operations.md sizes it).
        ("memory", MemoryConfig, MemoryConfig),
        # Records per stage batch (fastText over captions, ONNX over images).
        ("batch_size", int, 64),
    ],
    post_init=_check,
)
Config = ImagesConfig


def with_crawl_flags(config: Any, args: argparse.Namespace) -> Any:
    """The CLI's crawl flags (``--allow-private-addresses``, ``--allowed-host``, rates...) applied
    to the download's crawler, as ``dataprep crawl`` applies them to its own."""
    from pipelines.crawl import config_from_args

    download = replace(config.download, crawl=config_from_args(args, config.download.crawl))
    return replace(config, download=download)


def _private_addresses(config: Any, allow: bool) -> Any:
    """The download may reach private and loopback addresses (tests, intranets)."""
    crawl = replace(config.download.crawl, allow_private_addresses=True)
    return replace(config, download=replace(config.download, crawl=crawl))


def _webdataset(records: Any, run: Any, config: Any) -> Any:
    return records | "WriteWebDataset" >> WebDatasetSink(
        join(run.run_dir, WEBDATASET_DIR), JOB.schema, config.output.webdataset_samples_per_shard,
        spill_dir=run.spill_dir, memory=run.memory,
    )


JOB = Job(
    "images", STAGES, ImagesConfig,
    reader=ReadCaptionInputs,
    base_fields=BASE_FIELDS, schema_version=SCHEMA_VERSION,
    suites=images_suites,
    sink=lambda config: config.output.sink(),  # the WebDataset settings are not the sink's
    stats_profile=IMAGE_PROFILE,
    branch=CaptionRewriteJoin,
    strip_rejected=lambda config: partial(strip_rejected, keep_image=config.output.rejected_image_bytes),
    extra_sinks=(ExtraSink("WebDataset", lambda config: config.output.webdataset, _webdataset),),
    report_data={"synthetic": load_synthetic_stats},
    flags=(RunFlag("allow_private_addresses", "--allow-private-addresses", _private_addresses),),
    cli_config=with_crawl_flags,
)


def build(pipeline: Any, inputs: list[str], run: Any, config: Any) -> Any:
    return job_runner.build(JOB, pipeline, inputs, run, config)


def run(inputs: list[str], output: str, run_id: str, config: Any, beam_args: list[str], **options: Any) -> dict:
    return job_runner.run(JOB, inputs, output, run_id, config, beam_args, **options)


stage_order, enabled_stages = JOB.stage_order, JOB.enabled_stages
