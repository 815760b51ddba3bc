"""``RangeShards``: records to files, one per (partition, shard), each a contiguous id range.

The common core of every sharded writer (Parquet, WebDataset, WARC). Records stream into spill
files (``transforms.spill``) under their partition and id hash, the spill facts counting each
partition's rows and weight; once every record is spilled, each partition's shard count is
known from the facts (no shuffle of its own) and each shard is
one task that hands the writer's ``write`` its records in id order, as chunks: the shard's id
range is read back in sub-ranges of about a quarter of ``MemoryConfig.task_bytes`` of spilled
records, each sorted by id: a chunk's records and what a writer builds of them take about four
times their pickled size (measured: a chunk of 81 MB pickled pages is 113 MB of records, and
its Arrow table takes 200 MB more while built). A worker holds one chunk at a time (and what the
writer buffers, such as a Parquet row group), never the shard nor the output: writing is
bounded by configuration whatever the shard's size.

Shard ``s`` of ``n`` holds the ids whose leading 48 bits fall in the ``s``-th of ``n`` equal
ranges (``shard_of``): the same input and config give the same files, and shards concatenated in
order are sorted by id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from transforms.spill import (
    DeleteSpilled,
    MemoryConfig,
    SpillWrite,
    id_hash,
    part_bytes,
    paths_with,
    range_index,
    range_of,
    read_range,
    task_count,
)
from transforms.stage import Record

# (partition, shard, shard count, the shard's records in id order as chunks) -> outputs (file facts).
WriteShard = Callable[[str, int, int, Iterator[list[Record]]], Iterable[Any]]


def shard_of(record_id: str, num_shards: int) -> int:
    """The shard of a record id among ``num_shards``: its id's range, never the input order."""
    return range_index(id_hash(record_id), num_shards)


def shard_tasks(facts: list[dict], num_shards: Callable[[int, int], int]) -> list[tuple[str, int, int]]:
    """``(partition, shard, shard count)`` for every shard, sized from the spill facts (rows and
    weight per partition summed over every run file): no shuffle of its own."""
    sizes: dict[str, list[int]] = {}
    for fact in facts:
        for part, (rows, _bytes) in fact["parts"].items():
            size = sizes.setdefault(part, [0, 0])
            size[0] += rows
            size[1] += fact["weights"].get(part, 0)
    tasks = []
    for part, (rows, weight) in sorted(sizes.items()):
        count = num_shards(rows, weight)
        tasks += [(part, shard, count) for shard in range(count)]
    return tasks


def id_ordered_chunks(paths: list[str], partition: str, low: int, high: int, chunks: int) -> Iterator[list[Record]]:
    """The records of ``[low, high)`` in ``chunks`` consecutive sub-ranges, each sorted by id:
    together in id order, since a project id's hash is its leading hex digits."""
    for index in range(chunks):
        chunk_low = low + (high - low) * index // chunks
        chunk_high = low + (high - low) * (index + 1) // chunks
        records = [record for _hashed, record in read_range(paths, partition, chunk_low, chunk_high)]
        records.sort(key=lambda record: record["id"])
        yield records
        del records  # not held while the next chunk is read


# What a chunk's records and a writer's work on them take in memory, per pickled byte (above).
_EXPANSION = 4


class _WriteShardFn(beam.DoFn):
    def __init__(self, write: WriteShard, memory: MemoryConfig):
        self._write = write
        self._memory = memory

    def process(self, task: tuple[str, int, int], facts: list[dict]) -> Iterator[Any]:
        partition, shard, num_shards = task
        low, high = range_of(shard, num_shards)
        # Ids are uniform hashes: each shard holds about an equal share of the partition.
        chunks = task_count(part_bytes(facts, partition) // num_shards * _EXPANSION, self._memory)
        records = id_ordered_chunks(paths_with(facts, partition), partition, low, high, chunks)
        yield from self._write(partition, shard, num_shards, records)


class RangeShards(beam.PTransform):
    """Records -> ``write(partition, shard, num_shards, id-ordered chunks)`` per shard.

    ``partition_of`` maps a record to its partition ("" for none); ``weight_of`` gives what
    ``num_shards(rows, weight)`` bounds besides rows (text or member bytes); ``prepare`` trims a
    record before it is spilled (fields the file does not hold). ``outputs`` name tagged
    outputs that ``write`` may emit besides the main one (``main``).
    """

    def __init__(
        self,
        spill_dir: str,
        write: WriteShard,
        num_shards: Callable[[int, int], int],
        partition_of: Callable[[Record], str] | None = None,
        weight_of: Callable[[Record], int] | None = None,
        prepare: Callable[[Record], Record] | None = None,
        memory: MemoryConfig = MemoryConfig(),
        outputs: tuple[str, ...] = (),
        main: str = "files",
    ):
        super().__init__()
        self._outputs, self._main = outputs, main
        self._spill_dir = spill_dir
        self._write = write
        self._num_shards = num_shards
        self._partition_of = partition_of or (lambda record: "")
        self._weight_of = weight_of or (lambda record: 0)
        self._prepare = prepare or (lambda record: record)
        self._memory = memory

    def expand(self, records: beam.PCollection | Sequence[beam.PCollection]) -> beam.PCollection:
        """``records``: one PCollection, or several (every stage's rejected records), each spilled
        where it is produced: a Flatten of them first would be a barrier that the in-process
        runner fills with every record before the sink reads it."""
        partition_of, prepare = self._partition_of, self._prepare
        num_shards = self._num_shards
        inputs = [records] if isinstance(records, beam.PCollection) else list(records)

        def item_of(record: Record) -> tuple[str, int, Record]:
            return partition_of(record), id_hash(record["id"]), prepare(record)

        facts = [
            pcoll | f"Spill{i}" >> SpillWrite(self._spill_dir, self._memory, item_of, self._weight_of)
            for i, pcoll in enumerate(inputs)
        ] | "AllSpillFacts" >> beam.Flatten()
        tasks = (
            inputs[0].pipeline
            | "Once" >> beam.Impulse()
            | "ShardTasks" >> beam.FlatMap(lambda _, facts: shard_tasks(facts, num_shards), facts=pvalue.AsList(facts))
            | "SpreadTasks" >> beam.Reshuffle()
        )
        write = beam.ParDo(_WriteShardFn(self._write, self._memory), facts=pvalue.AsList(facts))
        if self._outputs:
            write = write.with_outputs(*self._outputs, main=self._main)
        written = tasks | "WriteShards" >> write
        main = written[self._main] if self._outputs else written
        _ = main | "DeleteSpilled" >> DeleteSpilled(facts)
        return written
