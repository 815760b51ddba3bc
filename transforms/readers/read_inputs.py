"""``ReadInputs``: local paths, globs and ``s3://`` URIs to records, with every drop accounted.

The patterns are matched when the pipeline is built, so a pattern that matches nothing (or two
files whose base names collide, which would collide their record ids) fails before anything
runs. Each file is planned into splits (``split_plan``: one for a file up to
``ReadConfig.split_bytes``), the ``(path, split)`` tasks are reshuffled so a runner spreads them
over workers, and each streams through the reader for its format, restricted to its split. Kept
records come out on ``kept`` (main), drops on ``rejected`` as ``read.<reason>`` rejections, and
records that are no document (``Skip``) on ``skipped`` as their type alone: they are counted
apart, outside the funnel.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from transforms import live_progress
from transforms.readers.base import READ_STAGE, ReadResult, Skip, base_name, file_quarantine
from transforms.readers.input_stream import sniff
from transforms.readers.jsonl import read_jsonl
from transforms.readers.parquet import read_parquet
from transforms.readers.read_config import JSONL, PARQUET, WARC, ReadConfig
from transforms.readers.split import WHOLE, Split
from transforms.readers.split_plan import plan_splits
from transforms.readers.warc import read_warc
from transforms.stage import KEPT, REJECTED, rejected
from transforms.worker_cores import machine_cores

READERS = {WARC: read_warc, JSONL: read_jsonl, PARQUET: read_parquet}
SKIPPED = "skipped"
_LIVE_KEPT, _LIVE_REJECTED, _LIVE_SKIPPED = (f"{READ_STAGE}/{kind}" for kind in (KEPT, REJECTED, SKIPPED))


def read_file(path: str, config: ReadConfig, split: Split = WHOLE) -> Iterator[ReadResult]:
    """The records of one file (of ``split``), by the reader its name (or, failing that, its
    first bytes) picks."""
    fmt, head = _format_of(path, config)
    if fmt is None:
        yield file_quarantine(
            path,
            "unsupported_format",
            f"the name matches no configured format and the first bytes {head!r} "
            "are not WARC, JSON lines or Parquet",
        )
        return
    yield from READERS[fmt](path, config, split)


def plan_file(path: str, config: ReadConfig) -> list[Split]:
    """The splits ``read_file`` reads the file at ``path`` in (one for a small file)."""
    fmt, _ = _format_of(path, config)
    return [WHOLE] if fmt is None else plan_splits(path, fmt, config)


def _format_of(path: str, config: ReadConfig) -> tuple[str | None, bytes]:
    """The file's format by name, else by its first bytes (returned for the message)."""
    fmt = config.format_of(path)
    if fmt is not None:
        return fmt, b""
    head = sniff(path)
    return _format_of_content(head), head


def _format_of_content(head: bytes) -> str | None:
    if head.startswith(b"WARC/"):
        return WARC
    if head.startswith(b"PAR1"):
        return PARQUET
    if head.lstrip().startswith(b"{"):
        return JSONL
    return None


def match_inputs(patterns: Sequence[str]) -> list[str]:
    """The files the patterns name, sorted and each once.

    Raises ``ValueError`` naming the pattern that matches nothing or names a local directory,
    and the files whose base names collide.
    """
    return sorted(match_input_sizes(patterns))


def match_input_sizes(patterns: Sequence[str]) -> dict[str, int]:
    """``match_inputs`` with each file's size in bytes (the total that progress counts toward)."""
    paths = {}
    for pattern in patterns:
        try:
            (result,) = FileSystems.match([pattern])
        except BeamIOError as exc:
            raise ValueError(f"input pattern {pattern!r} could not be matched: {exc}") from exc
        if not result.metadata_list:
            raise ValueError(f"input pattern {pattern!r} matched no files")
        for metadata in result.metadata_list:
            if "://" not in metadata.path and os.path.isdir(metadata.path):
                raise ValueError(f"input pattern {pattern!r} names a directory; use {pattern.rstrip('/')}/*")
            paths[metadata.path] = metadata.size_in_bytes
    names = Counter(base_name(path) for path in paths)
    clashes = sorted(path for path in paths if names[base_name(path)] > 1)
    if clashes:
        raise ValueError(
            "record ids are stable_id(file base name, key), so input files must have distinct "
            f"base names; these collide: {clashes[:10]}"
        )
    return paths


def workers_for(patterns: Sequence[str], config: ReadConfig) -> int:
    """Local worker processes for reading ``patterns``: every core once they hold more than one
    split's worth (``split_bytes``, else its default), so splits and files spread over workers;
    one, in-process, below that, where starting workers and loading their models would cost
    more than they save."""
    total = sum(match_input_sizes(patterns).values())
    return machine_cores() if total > (config.split_bytes or ReadConfig.split_bytes) else 1


def plan_progress(path_and_size: tuple[str, int]) -> tuple[str, int]:
    """Counts the file toward the run's total before any file is read (a Reshuffle follows)."""
    beam.metrics.Metrics.counter(READ_STAGE, "bytes_total").inc(path_and_size[1])
    live_progress.add("files_total")
    live_progress.add("bytes_total", path_and_size[1])
    return path_and_size


class _PlanFileFn(beam.DoFn):
    def __init__(self, config: ReadConfig):
        self._config = config
        self._files = beam.metrics.Metrics.counter(READ_STAGE, "files")
        self._splits = beam.metrics.Metrics.counter(READ_STAGE, "splits")

    def process(self, path_and_size: tuple[str, int]) -> Iterable[tuple[str, Split, int]]:
        path, size = path_and_size
        self._files.inc()
        for split in plan_file(path, self._config):
            self._splits.inc()
            yield path, split, size


class _ReadSplitFn(beam.DoFn):
    def __init__(self, config: ReadConfig):
        self._config = config
        self._kept = beam.metrics.Metrics.counter(READ_STAGE, "kept")
        self._rejected = beam.metrics.Metrics.counter(READ_STAGE, "rejected")
        self._skipped = beam.metrics.Metrics.counter(READ_STAGE, SKIPPED)
        self._bytes = beam.metrics.Metrics.counter(READ_STAGE, "bytes")

    def process(self, task: tuple[str, Split, int]) -> Iterable[Any]:
        path, split, size = task
        for record, drop in read_file(path, self._config, split):
            if drop is None:
                self._kept.inc()
                live_progress.add(_LIVE_KEPT)
                yield record
            elif isinstance(drop, Skip):
                self._skipped.inc()
                live_progress.add(_LIVE_SKIPPED)
                yield pvalue.TaggedOutput(SKIPPED, drop.reason)
            else:
                self._rejected.inc()
                live_progress.add(_LIVE_REJECTED)
                yield pvalue.TaggedOutput(REJECTED, rejected(record, READ_STAGE, drop.reason, drop.detail))
        read = split.progress_bytes(size)
        self._bytes.inc(read)
        live_progress.part_done(path, split.start, read)


class ReadInputs(beam.PTransform):
    """Read every file the patterns match into records.

    Returns a ``DoOutputsTuple`` with ``kept`` (main), ``rejected`` and ``skipped`` (the type of
    each record that is no document) outputs. ``reasons`` and ``reason_patterns`` are the
    closed set of ``read.*`` reasons its readers give (the suites' and the report's).
    """

    reasons = (
        # WARC record types that may carry a page's bytes but no page (transforms/readers/warc.py);
        # request, warcinfo, metadata and revisit records are skipped, never rejected
        "warc_continuation_record",
        "warc_unknown_record",
        # records
        "http_status_invalid",
        "record_too_large",
        "invalid_utf8",
        "http_decoding_error",
        "missing_id",
        "missing_text",
        "line_too_large",
        "invalid_json",
        # whole files (quarantine)
        "truncated_file",
        "corrupt_file",
        "unsupported_format",
        "wrong_schema",
    )
    reason_patterns = (r"http_status_[0-9]{3}",)
    skipped_output = True

    def __init__(self, patterns: Sequence[str], config: ReadConfig = ReadConfig()):
        super().__init__()
        if isinstance(patterns, str) or not patterns:
            raise ValueError(f"patterns must be a non-empty list of paths or globs, got {patterns!r}")
        if not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"every pattern must be a non-empty string, got {patterns!r}")
        self._patterns = list(patterns)
        self._config = config

    def expand(self, pbegin: pvalue.PBegin) -> pvalue.DoOutputsTuple:
        sizes = match_input_sizes(self._patterns)
        return (
            pbegin
            | "ListFiles" >> beam.Create(sorted(sizes.items()))
            | "PlanProgress" >> beam.Map(plan_progress)
            | "PlanSplits" >> beam.ParDo(_PlanFileFn(self._config))
            | "SpreadSplits" >> beam.Reshuffle()
            | "ReadSplits" >> beam.ParDo(_ReadSplitFn(self._config)).with_outputs(REJECTED, SKIPPED, main=KEPT)
        )
