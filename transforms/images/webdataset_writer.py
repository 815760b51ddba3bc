"""``WebDatasetSink``: kept image-caption records as WebDataset shards, beside the Parquet.

``<directory>/shard-00000.tar`` ... ``shard-NNNNN.tar``, numbered without gaps (WebDataset's
brace notation, ``shard-{00000..00009}.tar``, names them all). Each record is one sample keyed by
its id: ``<id>.<jpg|webp|png>`` (the re-encoded image bytes, as in the Parquet ``image``
column), ``<id>.txt`` (the caption, UTF-8) and ``<id>.json`` (every other column of ``schema``,
sorted keys), the layout img2dataset writes and ``webdataset``/``tarfile`` read.

Deterministic, as ``ShardedParquetSink``: the shard count is ``ceil(records /
samples_per_shard)``, the shard of a record comes from its id (``range_shards.shard_of``), samples
are sorted by id and tar headers carry no time, owner or mode of the writer, so the same input and
config give the same bytes. So ``samples_per_shard`` is the mean shard size, not a bound: shards
vary as hash ranges do (a shard may even be empty, an empty tar, and keeps its name). Records
reach their shard through spill files (``transforms.range_shards``) in id-ordered chunks, and
each shard streams into ``storage.open_atomic`` (local or ``s3://``): a worker holds one chunk,
never the shard. The sink outputs one dict per shard (path, rows,
bytes, sha256), the form ``run_folder.facts.file_fact`` takes.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import tarfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa

from run_folder.storage import join, open_atomic
from transforms.range_shards import RangeShards
from transforms.spill import MemoryConfig, default_spill_dir
from transforms.stage import Record

# The image column's format (``decode.output_format``) -> the extension WebDataset readers decode.
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "png": "png"}


def shard_count(rows: int, samples_per_shard: int) -> int:
    return math.ceil(rows / samples_per_shard) if rows else 0


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.tar"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):  # fetched_at
        return value.isoformat()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def metadata(record: Record, columns: tuple[str, ...]) -> bytes:
    """The sample's ``.json``: the record's ``columns`` (absent ones null), keys sorted."""
    values = {name: record.get(name) for name in columns}
    return json.dumps(
        values, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_jsonable
    ).encode()


def _member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def write_shard(records: Iterable[Record], columns: tuple[str, ...], handle: BinaryIO) -> int:
    """One shard as a tar on ``handle``, samples in the given (id) order; returns the sample count."""
    rows = 0
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for record in records:
            key = record["id"]
            _member(archive, f"{key}.{EXTENSIONS[record['format']]}", record["image"])
            _member(archive, f"{key}.txt", (record.get("caption") or "").encode())
            _member(archive, f"{key}.json", metadata(record, columns))
            rows += 1
    return rows


class WebDatasetSink(beam.PTransform):
    """Write records as ``<directory>/shard-SSSSS.tar``; outputs one file dict per shard."""

    def __init__(
        self,
        directory: str,
        schema: pa.Schema,
        samples_per_shard: int = 5_000,
        spill_dir: str | None = None,
        memory: MemoryConfig = MemoryConfig(),
    ):
        super().__init__()
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self._directory = directory
        self._columns = tuple(name for name in schema.names if name != "image")
        self._samples_per_shard = samples_per_shard
        self._spill_dir = spill_dir or default_spill_dir(directory)
        self._memory = memory

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        per_shard, columns = self._samples_per_shard, (*self._columns, "image")
        return records | "Shards" >> RangeShards(
            self._spill_dir,
            self._write,
            num_shards=lambda rows, _weight: shard_count(rows, per_shard),
            prepare=lambda record: {name: record.get(name) for name in columns},
            memory=self._memory,
        )

    def _write(self, _partition: str, shard: int, _num_shards: int, chunks: Iterator[list[Record]]) -> Iterator[dict]:
        path = join(self._directory, shard_name(shard))
        with open_atomic(path) as handle:
            rows = write_shard(itertools.chain.from_iterable(chunks), self._columns, handle)
        yield {"path": path, "partition": "", "rows": rows, "bytes": handle.bytes, "sha256": handle.sha256}
