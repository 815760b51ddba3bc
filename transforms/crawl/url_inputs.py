"""URL lists in, as raw URL records: text, CSV/TSV, JSON lines and Parquet, local or ``s3://``.

The format comes from the name (``.txt``/``.urls``/``.lst``: one URL a line, ``#`` comments;
``.csv``/``.tsv``: the ``url_field`` column, or the first column when the header has none;
``.jsonl``/``.ndjson``/``.json``: the ``url_field`` key, or a bare JSON string; ``.parquet``:
the ``url_field`` column), any ``.gz``/``.zst`` suffix aside; compression is detected from the
first bytes. Rows may carry ``depth`` and ``parent_url`` (the crawl's own frontier files do).
A row without a URL still yields a record, which normalisation rejects as ``invalid_url``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from transforms.readers.input_stream import open_input, open_raw
from transforms.stage import Record

TEXT, CSV, TSV, JSONL, PARQUET = "text", "csv", "tsv", "jsonl", "parquet"
_SUFFIXES = {
    ".txt": TEXT,
    ".urls": TEXT,
    ".lst": TEXT,
    ".csv": CSV,
    ".tsv": TSV,
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".json": JSONL,
    ".parquet": PARQUET,
}
_COMPRESSION = (".gz", ".zst", ".zstd")
MAX_LINE_BYTES = 1024 * 1024


def url_format(path: str) -> str:
    name = path.lower()
    for suffix in _COMPRESSION:
        name = name.removesuffix(suffix)
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return TEXT


def _raw(url: Any, depth: Any = 0, parent_url: Any = None) -> Record:
    return {
        "raw_url": url if isinstance(url, str) else None,
        "depth": depth if isinstance(depth, int) and depth >= 0 else 0,
        "parent_url": parent_url if isinstance(parent_url, str) else None,
    }


def _lines(path: str) -> Iterator[str]:
    with open_input(path) as stream:
        while line := stream.readline(MAX_LINE_BYTES):
            yield line.decode("utf-8", errors="replace")


def read_url_file(path: str, url_field: str = "url") -> Iterator[Record]:
    """Every URL row of one URL-list file, as ``{"raw_url", "depth", "parent_url"}``."""
    fmt = url_format(path)
    if fmt == PARQUET:
        yield from _read_parquet(path, url_field)
    elif fmt in (CSV, TSV):
        rows = csv.reader(_lines(path), delimiter="\t" if fmt == TSV else ",")
        header = next(rows, None)
        if header is None:
            return
        column = header.index(url_field) if url_field in header else 0
        if url_field not in header:
            yield _raw(header[0] if header else None)
        for row in rows:
            if row:
                yield _raw(row[column] if column < len(row) else None)
    elif fmt == JSONL:
        for line in _lines(path):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                yield _raw(None)
                continue
            if isinstance(value, dict):
                yield _raw(value.get(url_field), value.get("depth", 0), value.get("parent_url"))
            else:
                yield _raw(value)
    else:
        for line in _lines(path):
            line = line.strip()
            if line and not line.startswith("#"):
                yield _raw(line)


def _read_parquet(path: str, url_field: str) -> Iterator[Record]:
    with open_raw(path) as handle:
        parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
        names = set(parquet.schema_arrow.names)
        if url_field not in names:
            raise ValueError(f"{path}: no column {url_field!r} (columns: {sorted(names)})")
        columns = [c for c in (url_field, "depth", "parent_url") if c in names]
        for batch in parquet.iter_batches(batch_size=8192, columns=columns):
            for row in batch.to_pylist():
                yield _raw(row[url_field], row.get("depth", 0), row.get("parent_url"))


def match_files(patterns: Sequence[str]) -> list[str]:
    """The files the patterns (paths, globs, ``s3://``) match; raises if one matches none."""
    paths: set[str] = set()
    for pattern in patterns:
        try:
            (result,) = FileSystems.match([pattern])
        except BeamIOError as exc:
            raise ValueError(f"URL input {pattern!r} could not be matched: {exc}") from exc
        if not result.metadata_list:
            raise ValueError(f"URL input {pattern!r} matched no files")
        paths.update(m.path for m in result.metadata_list)
    return sorted(paths)


class ReadUrlFiles(beam.PTransform):
    """Files (already matched) → raw URL records, read inside the pipeline, spread over workers."""

    def __init__(self, paths: Sequence[str], reader: Any = read_url_file, **reader_args: Any):
        super().__init__()
        self._paths = list(paths)
        self._reader = reader
        self._reader_args = reader_args

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        reader, args = self._reader, self._reader_args
        return (
            pbegin
            | "ListFiles" >> beam.Create(self._paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles" >> beam.FlatMap(lambda path: reader(path, **args))
        )
