"""URL + caption tables: Parquet, CSV, TSV and JSON lines (gzip/zstd detected from the bytes).

Columns come from the config (``url_column``, ``caption_column``) or, when not named, from the
first pair of ``record.KNOWN_COLUMNS`` the file has (LAION ``URL``/``TEXT``, CC3M
``url``/``caption``...). A row without a URL is rejected (``read.missing_url``); a missing
caption is kept as ``None`` and left to the caption filters. ``source_key`` is ``row:N``.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow.parquet as pq

from transforms.images.record import KNOWN_COLUMNS, new_image_record
from transforms.readers.base import ReadResult, file_quarantine
from transforms.readers.input_stream import InputDamaged, open_input, open_raw
from transforms.stage import Drop

PARQUET_BATCH_ROWS = 4096


def pick_columns(
    names: Iterable[str], url_column: str | None, caption_column: str | None
) -> tuple[str, str] | None:
    """The (url, caption) columns to read, or ``None`` when the file has no usable pair."""
    names = set(names)
    if url_column and caption_column:
        return (url_column, caption_column) if url_column in names else None
    for url, caption in KNOWN_COLUMNS:
        if (url_column or url) in names and (caption_column or caption) in names:
            return (url_column or url, caption_column or caption)
    return None


def _rows_to_records(path: str, rows: Iterable[dict[str, Any]], columns: tuple[str, str]) -> Iterator[ReadResult]:
    url_col, caption_col = columns
    for number, row in enumerate(rows):
        url = row.get(url_col)
        caption = row.get(caption_col)
        record = new_image_record(
            path,
            f"row:{number}",
            url=url.strip() if isinstance(url, str) and url.strip() else None,
            caption=caption if isinstance(caption, str) else None,
        )
        if record["url"] is None:
            yield record, Drop("missing_url", f"{path} row {number}: no {url_col!r}")
        else:
            yield record, None


def _no_columns(path: str, names: Iterable[str]) -> ReadResult:
    return file_quarantine(
        path,
        "missing_columns",
        f"no URL/caption columns among {sorted(names)[:20]}; set read.url_column/caption_column",
    )


def read_parquet_table(path: str, url_column: str | None, caption_column: str | None) -> Iterator[ReadResult]:
    try:
        handle = open_raw(path)
        parquet = pq.ParquetFile(handle)
    except Exception as exc:  # noqa: BLE001 - an unreadable file becomes one quarantine record
        yield file_quarantine(path, "corrupt_file", f"{type(exc).__name__}: {exc}")
        return
    with handle:
        columns = pick_columns(parquet.schema_arrow.names, url_column, caption_column)
        if columns is None:
            yield _no_columns(path, parquet.schema_arrow.names)
            return
        wanted = [c for c in dict.fromkeys(columns) if c in parquet.schema_arrow.names]

        def rows() -> Iterator[dict[str, Any]]:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                yield from batch.to_pylist()

        try:
            yield from _rows_to_records(path, rows(), columns)
        except OSError as exc:
            yield file_quarantine(path, "corrupt_file", f"{type(exc).__name__}: {exc}")


def _lines(stream) -> Iterator[str]:
    while True:
        line = stream.readline()
        if not line:
            return
        yield line.decode("utf-8", errors="replace")


def read_delimited_table(
    path: str, delimiter: str, url_column: str | None, caption_column: str | None
) -> Iterator[ReadResult]:
    """Streams the file line by line (quoted newlines inside a field are kept by ``csv``)."""
    try:
        with open_input(path) as stream:
            reader = csv.DictReader(_lines(stream), delimiter=delimiter)
            names = reader.fieldnames or []
            columns = pick_columns(names, url_column, caption_column)
            if columns is None:
                yield _no_columns(path, names)
                return
            yield from _rows_to_records(path, reader, columns)
    except InputDamaged as exc:
        yield file_quarantine(path, exc.reason, exc.detail)
    except csv.Error as exc:
        yield file_quarantine(path, "corrupt_file", f"{type(exc).__name__}: {exc}")


class _BadLine(Exception):
    pass


def _json_rows(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _BadLine(f"line {number}: {exc}") from exc
        yield row if isinstance(row, dict) else {}


def read_jsonl_table(path: str, url_column: str | None, caption_column: str | None) -> Iterator[ReadResult]:
    """Streams the file; without configured columns, the first row's keys pick them."""
    try:
        with open_input(path) as stream:
            rows = _json_rows(_lines(stream))
            first = next(rows, None)
            if first is None:
                return
            columns = pick_columns(first.keys(), url_column, caption_column)
            if columns is None:
                yield _no_columns(path, first.keys())
                return
            yield from _rows_to_records(path, itertools.chain([first], rows), columns)
    except InputDamaged as exc:
        yield file_quarantine(path, exc.reason, exc.detail)
    except _BadLine as exc:
        yield file_quarantine(path, "corrupt_file", str(exc))
