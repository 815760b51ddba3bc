"""``ShardedParquetSink``: records to sharded, id-sorted, zstd Parquet; deterministic files.

Shard assignment comes from the record id (shard ``s`` of ``n`` holds the ``s``-th of ``n``
equal id ranges), and the number of shards of a partition from its row count and text bytes, so
the same input and config give the same files, byte for byte. Records reach the shards through
spill files, not the runner's shuffle (``transforms.range_shards``), and a shard is encoded as
it streams in id order: a worker holds one chunk of it (``memory.task_bytes``) and one row
group, whatever the shard's and the input's size. The sink outputs one small dict per file
written (path, rows, bytes, sha256) for the manifest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from run_folder.storage import join, open_atomic
from transforms.range_shards import RangeShards, shard_of
from transforms.spill import MemoryConfig, default_spill_dir
from transforms.stage import Record

__all__ = ["ParquetSinkConfig", "ShardedParquetSink", "shard_of", "shards_for", "write_shard"]


@dataclass(frozen=True)
class ParquetSinkConfig:
    # Bounds on one shard's file (a worker streams it: they bound file sizes, not memory).
    max_rows_per_shard: int = 100_000
    max_text_bytes_per_shard: int = 256 * 1024 * 1024
    # Row groups of ~10k documents keep DuckDB / pyarrow scans parallel and selective.
    row_group_rows: int = 10_000
    zstd_level: int = 3


def shards_for(rows: int, text_bytes: int, config: ParquetSinkConfig) -> int:
    by_rows = math.ceil(rows / config.max_rows_per_shard)
    by_bytes = math.ceil(text_bytes / config.max_text_bytes_per_shard)
    return max(1, by_rows, by_bytes)


def _text_bytes(record: Record) -> int:
    text = record.get("text")
    return len(text) if isinstance(text, str) else 0


def write_shard(chunks: Iterable[list[Record]], handle: BinaryIO, schema: pa.Schema, config: ParquetSinkConfig) -> int:
    """Rows in the given (id) order as Parquet on ``handle``, columns from ``schema``, a row
    group per ``row_group_rows`` whatever the chunks' sizes (the bytes ``pq.write_table`` of the
    whole shard gives); returns the row count."""
    rows, pending = 0, []
    group = config.row_group_rows
    with pq.ParquetWriter(handle, schema, compression="zstd", compression_level=config.zstd_level) as writer:
        for chunk in chunks:
            rows += len(chunk)
            pending.append(pa.Table.from_pylist(chunk, schema=schema))
            del chunk  # its records are in the table: not held while the next chunk is read
            held = sum(table.num_rows for table in pending)
            if held >= group:
                table = pa.concat_tables(pending)
                whole = held - held % group
                writer.write_table(table.slice(0, whole), row_group_size=group)
                pending = [table.slice(whole)]
        held = sum(table.num_rows for table in pending)
        if held:
            writer.write_table(pa.concat_tables(pending), row_group_size=group)
    return rows


class ShardedParquetSink(beam.PTransform):
    """Write records under ``directory``/<partition>/part-SSSSS-of-NNNNN.parquet.

    ``partition_of`` maps a record to a sub-folder ("" for none), e.g. ``stage=language``.
    ``spill_dir`` (default: ``_staging/spill`` beside ``directory``, in the run folder) holds
    the records between the two passes.
    """

    def __init__(
        self,
        directory: str,
        schema: pa.Schema,
        config: ParquetSinkConfig = ParquetSinkConfig(),
        partition_of: Callable[[Record], str] | None = None,
        spill_dir: str | None = None,
        memory: MemoryConfig = MemoryConfig(),
    ):
        super().__init__()
        if config.max_rows_per_shard < 1 or config.row_group_rows < 1:
            raise ValueError("max_rows_per_shard and row_group_rows must be >= 1")
        self._directory = directory
        self._schema = schema
        self._config = config
        self._partition_of = partition_of
        self._spill_dir = spill_dir or default_spill_dir(directory)
        self._memory = memory

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        config, names = self._config, self._schema.names
        return records | "Shards" >> RangeShards(
            self._spill_dir,
            self._write,
            num_shards=lambda rows, text_bytes: shards_for(rows, text_bytes, config),
            partition_of=self._partition_of,
            weight_of=_text_bytes,
            prepare=lambda record: {name: record.get(name) for name in names},
            memory=self._memory,
        )

    def _write(self, partition: str, shard: int, num_shards: int, chunks: Iterator[list[Record]]) -> Iterator[dict]:
        chunks = (chunk for chunk in chunks if chunk)
        first = next(chunks, None)
        if first is None:  # an empty range writes no file
            return
        name = f"part-{shard:05d}-of-{num_shards:05d}.parquet"
        path = join(self._directory, partition, name) if partition else join(self._directory, name)
        chunks = itertools.chain([first], chunks)
        del first  # the chain lets go of it once read, so the shard never holds its first chunk
        with open_atomic(path) as handle:
            rows = write_shard(chunks, handle, self._schema, self._config)
        yield {"path": path, "partition": partition, "rows": rows, "bytes": handle.bytes, "sha256": handle.sha256}
