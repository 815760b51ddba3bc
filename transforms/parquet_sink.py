"""``ShardedParquetSink``: records to sharded, id-sorted, zstd Parquet; deterministic files.

Shard assignment comes from the record id, and the number of shards of a partition from its
row count and text bytes, so the same input and config give the same files, byte for byte.
Each shard is one ``GroupByKey`` group: a worker holds at most one shard (bounded by
``max_rows_per_shard`` and ``max_text_bytes_per_shard``) while it sorts and encodes it.
The sink outputs one small dict per file written (path, rows, bytes, sha256) for the manifest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.stage import Record
from transforms.storage import join, write_atomic


@dataclass(frozen=True)
class ParquetSinkConfig:
    # Bounds on one shard, which one worker holds in memory while it sorts and encodes it.
    max_rows_per_shard: int = 100_000
    max_text_bytes_per_shard: int = 256 * 1024 * 1024
    # Row groups of ~10k documents keep DuckDB / pyarrow scans parallel and selective.
    row_group_rows: int = 10_000
    zstd_level: int = 3


@dataclass(frozen=True)
class _PartitionSize:
    rows: int = 0
    text_bytes: int = 0


def shard_of(record_id: str, num_shards: int) -> int:
    """The shard of a record: from its id's leading hex digits, so it never depends on order."""
    return int(record_id[:12], 16) % num_shards if num_shards > 1 else 0


def shards_for(size: _PartitionSize, config: ParquetSinkConfig) -> int:
    by_rows = math.ceil(size.rows / config.max_rows_per_shard)
    by_bytes = math.ceil(size.text_bytes / config.max_text_bytes_per_shard)
    return max(1, by_rows, by_bytes)


def _text_bytes(record: Record) -> int:
    text = record.get("text")
    return len(text) if isinstance(text, str) else 0


class _SizeFn(beam.CombineFn):
    def create_accumulator(self) -> tuple[int, int]:
        return (0, 0)

    def add_input(self, acc: tuple[int, int], record_bytes: int) -> tuple[int, int]:
        return (acc[0] + 1, acc[1] + record_bytes)

    def merge_accumulators(self, accs: Iterable[tuple[int, int]]) -> tuple[int, int]:
        rows = text = 0
        for acc_rows, acc_text in accs:
            rows += acc_rows
            text += acc_text
        return (rows, text)

    def extract_output(self, acc: tuple[int, int]) -> _PartitionSize:
        return _PartitionSize(*acc)


def encode_shard(records: list[Record], schema: pa.Schema, config: ParquetSinkConfig) -> bytes:
    """One shard's Parquet bytes: rows sorted by id, columns from ``schema`` (extra keys ignored)."""
    records = sorted(records, key=lambda r: r["id"])
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
    """

    def __init__(
        self,
        directory: str,
        schema: pa.Schema,
        config: ParquetSinkConfig = ParquetSinkConfig(),
        partition_of: Callable[[Record], str] | None = None,
    ):
        super().__init__()
        if config.max_rows_per_shard < 1 or config.row_group_rows < 1:
            raise ValueError("max_rows_per_shard and row_group_rows must be >= 1")
        self._directory = directory
        self._schema = schema
        self._config = config
        self._partition_of = partition_of or (lambda record: "")

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        partition_of = self._partition_of
        config = self._config
        keyed = records | "KeyByPartition" >> beam.Map(lambda r: (partition_of(r), r))
        sizes = beam.pvalue.AsDict(
            keyed
            | "TextBytes" >> beam.MapTuple(lambda part, r: (part, _text_bytes(r)))
            | "PartitionSizes" >> beam.CombinePerKey(_SizeFn())
        )
        return (
            keyed
            | "KeyByShard"
            >> beam.Map(
                lambda kv, sizes: (
                    (kv[0], shard_of(kv[1]["id"], shards_for(sizes[kv[0]], config))),
                    kv[1],
                ),
                sizes=sizes,
            )
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.Map(self._write, sizes=sizes)
        )

    def _write(self, shard_group: tuple[tuple[str, int], Iterable[Record]], sizes: dict[str, Any]) -> dict:
        (partition, shard), records = shard_group
        num_shards = shards_for(sizes[partition], self._config)
        rows = list(records)
        data = encode_shard(rows, self._schema, self._config)
        name = f"part-{shard:05d}-of-{num_shards:05d}.parquet"
        path = join(self._directory, partition, name) if partition else join(self._directory, name)
        write_atomic(path, data)
        return {
            "path": path,
            "partition": partition,
            "rows": len(rows),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
