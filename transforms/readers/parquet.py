"""Parquet files, streamed a batch of rows at a time (``iter_batches``), ``source_key`` ``row:N``.

Rows are numbered from 0. Only the configured columns are read. A file without the text column
(or the configured id column), or whose text column does not hold strings, is one
``wrong_schema`` record naming its columns; a file pyarrow cannot read is ``corrupt_file``. A
``Split`` is a range of row groups; its row numbers continue from the rows of the groups before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.readers.base import ReadResult, file_quarantine, record_from_fields
from transforms.readers.input_stream import open_raw
from transforms.readers.read_config import ReadConfig
from transforms.readers.split import WHOLE, Split


class _StorageFile:
    """The file handle as pyarrow sees it, noting errors of the storage itself, which pyarrow
    would otherwise pass on looking like its own ``OSError`` for a corrupt page."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self.storage_error: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._handle, name)
        if name not in ("read", "readinto", "seek", "tell"):
            return attribute

        def noting(*args: Any) -> Any:
            try:
                return attribute(*args)
            except Exception as exc:
                self.storage_error = exc
                raise

        return noting


def read_parquet(path: str, config: ReadConfig, split: Split = WHOLE) -> Iterator[ReadResult]:
    """Every row of the Parquet file at ``path`` (of ``split``); one quarantine record if it
    cannot be read."""
    with open_raw(path) as handle:
        source = _StorageFile(handle)
        row = split.records_before
        try:
            parquet = pq.ParquetFile(pa.PythonFile(source, mode="r"))
            columns, problem = parquet_columns(parquet.schema_arrow, config)
            if problem:
                yield file_quarantine(path, "wrong_schema", problem, split.quarantine_key)
                return
            groups = None if split == WHOLE else range(split.start, split.end or parquet.num_row_groups)
            batches = parquet.iter_batches(batch_size=config.parquet_batch_rows, row_groups=groups, columns=columns)
            for batch in batches:
                for fields in batch.to_pylist():
                    yield record_from_fields(path, f"row:{row}", fields, config, f"row {row}")
                    row += 1
        except (pa.ArrowException, OSError) as exc:
            if source.storage_error is not None:
                raise
            detail = f"unreadable Parquet at row {row}: {exc}" + split.unread_rest("row groups")
            yield file_quarantine(path, "corrupt_file", detail, split.quarantine_key)


def parquet_columns(schema: pa.Schema, config: ReadConfig) -> tuple[list[str], str]:
    """The columns to read, or why the file's schema cannot give records."""
    names = schema.names
    required = [config.text_field] + ([config.id_field] if config.id_field else [])
    missing = [name for name in required if name not in names]
    if missing:
        return [], f"no column {', '.join(map(repr, missing))}; columns: {names}"
    text_type = schema.field(config.text_field).type
    if pa.types.is_dictionary(text_type):
        text_type = text_type.value_type
    if not (
        pa.types.is_string(text_type)
        or pa.types.is_large_string(text_type)
        or pa.types.is_string_view(text_type)
    ):
        return [], f"column {config.text_field!r} is {text_type}, not a string; columns: {names}"
    wanted = required + [name for name in (config.url_field, config.fetched_at_field) if name]
    return [name for name in dict.fromkeys(wanted) if name in names], ""
