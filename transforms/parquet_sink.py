"""``ShardedParquetSink``: records to sharded, id-sorted, zstd Parquet; deterministic files.

Shard assignment comes from the record id (shard ``s`` of ``n`` holds the ``s``-th of ``n``
equal id ranges), and the number of shards of a partition from its row count and text bytes, so
the same input and config give the same files, byte for byte. Records reach the shards through
spill files, not the runner's shuffle (``transforms.range_shards``): a worker holds one shard
(bounded by ``max_rows_per_shard`` and ``max_text_bytes_per_shard``) while it sorts and encodes
it, whatever the input size. The sink outputs one small dict per file written (path, rows,
bytes, sha256) for the manifest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from run_folder.storage import join, write_atomic
from transforms.range_shards import RangeShards, shard_of
from transforms.spill import MemoryConfig, default_spill_dir
from transforms.stage import Record

__all__ = ["ParquetSinkConfig", "ShardedParquetSink", "encode_shard", "shard_of", "shards_for"]


@dataclass(frozen=True)
class ParquetSinkConfig:
    # Bounds on one shard, which one worker holds in memory while it sorts and encodes it.
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


def encode_shard(records: list[Record], schema: pa.Schema, config: ParquetSinkConfig) -> bytes:
    """One shard's Parquet bytes: rows in the given (id) order, columns from ``schema``."""
    table = pa.Table.from_pylist(records, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=config.zstd_level,
        row_group_size=config.row_group_rows,
    )
    return sink.getvalue().to_pybytes()


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

    def _write(self, partition: str, shard: int, num_shards: int, rows: list[Record]) -> Iterator[dict]:
        if not rows:
            return
        data = encode_shard(rows, self._schema, self._config)
        name = f"part-{shard:05d}-of-{num_shards:05d}.parquet"
        path = join(self._directory, partition, name) if partition else join(self._directory, name)
        write_atomic(path, data)
        yield {
            "path": path,
            "partition": partition,
            "rows": len(rows),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
