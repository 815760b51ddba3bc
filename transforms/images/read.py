"""``ReadCaptionInputs``: caption tables, WebDataset tars and crawled WARCs to image records.

The reader is chosen by the file name (``ImageReadConfig.formats``); every file is read inside
the pipeline (a FlatMap over the matched paths, never ``beam.Create`` of payloads). Kept records
come out on ``kept``, drops on ``rejected`` as ``read.<reason>`` rejections.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from transforms import live_progress
from transforms.images.html_alt import read_warc_alt_pairs
from transforms.images.record import new_image_record
from transforms.images.tables import read_delimited_table, read_jsonl_table, read_parquet_table
from transforms.images.webdataset import read_webdataset
from transforms.readers.base import FILE_KEY, READ_STAGE, ReadResult
from transforms.readers.read_inputs import match_input_sizes, plan_progress
from transforms.stage import KEPT, REJECTED, Drop, rejected

PARQUET, CSV, TSV, JSONL, TAR, WARC = "parquet", "csv", "tsv", "jsonl", "tar", "warc"
DEFAULT_FORMATS: tuple[tuple[str, str], ...] = (
    (".parquet", PARQUET),
    (".csv", CSV),
    (".csv.gz", CSV),
    (".tsv", TSV),
    (".tsv.gz", TSV),
    (".jsonl", JSONL),
    (".jsonl.gz", JSONL),
    (".json", JSONL),
    (".tar", TAR),
    (".tar.gz", TAR),
    (".tgz", TAR),
    (".warc", WARC),
    (".warc.gz", WARC),
)
_KNOWN = (PARQUET, CSV, TSV, JSONL, TAR, WARC)


@dataclass(frozen=True)
class ImageReadConfig:
    # None: the first known convention the file has (LAION URL/TEXT, CC3M url/caption, ...).
    url_column: str | None = None
    caption_column: str | None = None
    # A WebDataset member larger than this rejects its sample: the crawler's body limit.
    max_member_bytes: int = 10 * 1024 * 1024
    formats: tuple[tuple[str, str], ...] = DEFAULT_FORMATS

    def __post_init__(self) -> None:
        if self.max_member_bytes < 1:
            raise ValueError(f"max_member_bytes must be >= 1, got {self.max_member_bytes}")
        formats = tuple((str(suffix).lower(), str(fmt)) for suffix, fmt in self.formats)
        for suffix, fmt in formats:
            if fmt not in _KNOWN:
                raise ValueError(f"unknown format {fmt!r} for {suffix!r}; known: {_KNOWN}")
        object.__setattr__(self, "formats", formats)

    def format_of(self, path: str) -> str | None:
        name = path.lower()
        matches = [(len(suffix), fmt) for suffix, fmt in self.formats if name.endswith(suffix)]
        return max(matches)[1] if matches else None


def read_caption_file(path: str, config: ImageReadConfig) -> Iterator[ReadResult]:
    fmt = config.format_of(path)
    cols = (config.url_column, config.caption_column)
    if fmt == PARQUET:
        yield from read_parquet_table(path, *cols)
    elif fmt in (CSV, TSV):
        yield from read_delimited_table(path, "," if fmt == CSV else "\t", *cols)
    elif fmt == JSONL:
        yield from read_jsonl_table(path, *cols)
    elif fmt == TAR:
        yield from read_webdataset(path, config.max_member_bytes)
    elif fmt == WARC:
        yield from read_warc_alt_pairs(path)
    else:
        record = new_image_record(path, FILE_KEY, url=None, caption=None)
        yield record, Drop("unsupported_format", f"{path}: the name matches no configured format")


class _ReadFn(beam.DoFn):
    def __init__(self, config: ImageReadConfig):
        self._config = config

    def process(self, path_and_size: tuple[str, int]) -> Iterable[Any]:
        path, size = path_and_size
        for record, drop in read_caption_file(path, self._config):
            if drop is None:
                live_progress.add(f"{READ_STAGE}/{KEPT}")
                yield record
            else:
                live_progress.add(f"{READ_STAGE}/{REJECTED}")
                yield pvalue.TaggedOutput(REJECTED, rejected(record, READ_STAGE, drop.reason, drop.detail))
        live_progress.part_done(path, 0, size)


class ReadCaptionInputs(beam.PTransform):
    """Every file the patterns match, as image records (``kept``) and ``read.*`` rejections
    (``reasons``: the closed set its readers give)."""

    reasons = (
        "missing_url",  # a table row without a URL
        "missing_columns",  # a table with no known (url, caption) pair of columns
        "missing_image",  # a WebDataset sample without an image member
        "unsafe_tar_member",
        # whole files (quarantine)
        "truncated_file",
        "corrupt_file",
        "unsupported_format",
    )
    reason_patterns: tuple[str, ...] = ()
    skipped_output = False

    def __init__(self, patterns: Sequence[str], config: ImageReadConfig = ImageReadConfig()):
        super().__init__()
        if isinstance(patterns, str) or not patterns:
            raise ValueError(f"patterns must be a non-empty list of paths or globs, got {patterns!r}")
        self._patterns = list(patterns)
        self._config = config

    def expand(self, pbegin: pvalue.PBegin) -> pvalue.DoOutputsTuple:
        return (
            pbegin
            | "ListFiles" >> beam.Create(sorted(match_input_sizes(self._patterns).items()))
            | "PlanProgress" >> beam.Map(plan_progress)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles" >> beam.ParDo(_ReadFn(self._config)).with_outputs(REJECTED, main=KEPT)
        )
