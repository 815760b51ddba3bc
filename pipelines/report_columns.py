"""Columns of a run's committed Parquet files, read for a report section.

Each file is opened seekable, so Parquet reads its footer and the named column chunks, not the
text; one file's columns are in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from run_folder.storage import join


def column_rows(run_dir: str, paths: Sequence[str], columns: Sequence[str]) -> Iterator[Iterator[tuple[Any, ...]]]:
    """Per file that has every one of ``columns``: its rows as tuples of those columns' values."""
    for path in paths:
        with FileSystems.open(join(run_dir, path), compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            parquet = pq.ParquetFile(handle)
            if not all(c in parquet.schema_arrow.names for c in columns):
                continue
            table = parquet.read(columns=list(columns))
        yield zip(*(table.column(c).to_pylist() for c in columns), strict=True)
