"""Spill files: large values leave memory for sorted, range-readable files under the run's staging.

The in-process runner keeps every shuffle's data in memory until the step that reads it has run,
so a shuffle of record bodies makes memory grow with the input. Bodies go through spill files
instead (the shuffles carry only compact keys), on every runner alike:

- ``SpillWrite`` buffers ``(part, key_hash, value)`` items, at most ``MemoryConfig.buffer_bytes``
  of them per worker process over all its writers; a full buffer is sorted by ``(part, key_hash)`` and written as one *run*
  file of zstd blocks with an index of each block's part and hash range. It outputs one small
  fact per run file (path, items and bytes per part, and any weight per part it was asked for).
- ``read_range`` reads back the values of one part whose key hashes fall in ``[low, high)`` from
  a list of run files, touching only the blocks whose range overlaps.

Readers take the run files from the facts (a side input), never from listing the folder: a run
file of a failed bundle or a crashed attempt is never read, and waiting for the facts is what
orders a reader after every writer. ``seal_run`` removes ``_staging/`` with the spill files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import zstandard
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from run_folder.storage import delete, join, open_read, write_atomic

KEY_BITS = 48
KEY_SPACE = 1 << KEY_BITS
_ITEM = struct.Struct("<QI")  # key hash, value length
_FOOTER = struct.Struct("<Q8s")  # index length, magic
_MAGIC = b"DPSPILL1"
# Python's own bookkeeping per value once unpickled (tuple, dict and string headers), counted
# with the pickled size against the bounds: small values (band keys) cost mostly this.
_ITEM_OVERHEAD = 160
ItemOf = Callable[[Any], tuple[str, int, Any]]  # an element -> its (part, key hash, value)


@dataclass(frozen=True)
class MemoryConfig:
    """What bounds one worker's memory, whatever the input size (docs/operations.md sizes it).

    A worker process holds at most ``buffer_bytes`` of values in all its spill writers together
    before writing the largest buffer out, and a
    join task reads back about ``task_bytes`` at once (both counted as pickled size plus a fixed
    overhead per value; unpickled records take up to about twice that) (one output shard is
    bounded by the sink's own ``max_rows_per_shard`` and ``max_text_bytes_per_shard``).
    """

    buffer_bytes: int = 32 * 1024 * 1024
    task_bytes: int = 64 * 1024 * 1024
    # Range reads skip whole blocks: ~1 MB keeps the index small and the skipping fine-grained.
    block_bytes: int = 1024 * 1024
    # Level 1: spill files are read once or twice; speed matters more than size.
    zstd_level: int = 1

    def __post_init__(self) -> None:
        for name in ("buffer_bytes", "task_bytes", "block_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"memory.{name} must be >= 1, got {getattr(self, name)}")


def id_hash(record_id: str) -> int:
    """The key hash of a record id: its leading 48 bits (the project's ids are uniform hex
    hashes); an id of another form (a user's id field) is hashed first."""
    try:
        return int(record_id[: KEY_BITS // 4], 16)
    except ValueError:
        return key_hash(record_id)


def key_hash(key: Any) -> int:
    """A uniform 48-bit hash of any shuffle key (content hashes, URLs, ids, tuples)."""
    data = key if isinstance(key, bytes) else repr(key).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=KEY_BITS // 8).digest(), "big")


def range_of(index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` equal ranges of the key space, as ``[low, high)``."""
    return index * KEY_SPACE // count, (index + 1) * KEY_SPACE // count


def task_count(spilled_bytes: int, config: MemoryConfig) -> int:
    """How many key ranges of about ``task_bytes`` each hold ``spilled_bytes`` (at least one)."""
    return max(1, math.ceil(spilled_bytes / config.task_bytes))


def range_index(hashed: int, count: int) -> int:
    """Which of ``count`` equal ranges ``hashed`` falls in (the inverse of ``range_of``)."""
    return hashed * count // KEY_SPACE


def _encode_run(items: list[tuple[str, int, bytes]], config: MemoryConfig) -> bytearray:
    """Sorted items as zstd blocks (never spanning two parts) followed by the JSON index, built
    in place (a run is ``buffer_bytes`` of values, and every copy of it costs)."""
    compressor = zstandard.ZstdCompressor(level=config.zstd_level)
    out, index = bytearray(), []
    block: list[bytes] = []
    block_bytes, first = 0, None

    def close_block(part: str, last: int) -> None:
        nonlocal block, block_bytes
        data = compressor.compress(b"".join(block))
        index.append([part, first, last, len(out), len(data), len(block) // 2])
        out.extend(data)
        block, block_bytes = [], 0

    previous_part, previous_hash = None, 0
    for part, hashed, value in items:
        if block and (part != previous_part or block_bytes >= config.block_bytes):
            close_block(previous_part, previous_hash)
        if not block:
            first = hashed
        block += [_ITEM.pack(hashed, len(value)), value]
        block_bytes += len(value) + _ITEM.size
        previous_part, previous_hash = part, hashed
    if block:
        close_block(previous_part, previous_hash)
    footer = json.dumps(index, separators=(",", ":")).encode()
    out += footer
    out += _FOOTER.pack(len(footer), _MAGIC)
    return out


def read_range(paths: Iterable[str], part: str, low: int, high: int) -> Iterator[tuple[int, Any]]:
    """``(key hash, value)`` of ``part`` with ``low <= hash < high``, from each run file in turn.

    Only the footer, the index and the blocks that overlap the range are read: a step of T
    range tasks over F run files would otherwise read T x F whole files, which grows with the
    square of the input (a run is sorted, so the overlapping blocks are one contiguous span).
    """
    decompressor = zstandard.ZstdDecompressor()
    for path in paths:
        with open_read(path) as handle:
            end = handle.seek(0, os.SEEK_END)
            handle.seek(end - _FOOTER.size)
            index_length, magic = _FOOTER.unpack(handle.read(_FOOTER.size))
            if magic != _MAGIC:
                raise ValueError(f"{path} is not a spill file (bad footer)")
            handle.seek(end - _FOOTER.size - index_length)
            blocks = [
                (offset, length)
                for block_part, first, last, offset, length, _count in json.loads(handle.read(index_length))
                if block_part == part and first < high and last >= low
            ]
            if not blocks:
                continue
            start = blocks[0][0]
            handle.seek(start)
            span = memoryview(handle.read(blocks[-1][0] + blocks[-1][1] - start))
        for offset, length in blocks:
            block = decompressor.decompress(span[offset - start:offset - start + length])
            values = memoryview(block)
            position = 0
            while position < len(block):
                hashed, size = _ITEM.unpack_from(block, position)
                position += _ITEM.size
                if low <= hashed < high:
                    yield hashed, pickle.loads(values[position:position + size])
                position += size
        del span


class _Budget:
    """The spill buffers of one worker process, held together under ``buffer_bytes``.

    A job has dozens of spill writers (each stage's rejected records, each global step, each
    sink), many fused into one step; with a bound per writer the worker's memory would grow with
    the number of stages. When the writers' buffers together reach the bound, the largest one is
    written out; its fact waits in that writer until it next emits.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writers: set[_SpillWriteFn] = set()
        self.held = 0  # bytes buffered by every writer together


_BUDGET = _Budget()


class _SpillWriteFn(beam.DoFn):
    def __init__(self, directory: str, config: MemoryConfig, item_of: ItemOf | None = None,
                 weight_of: Callable[[Any], int] | None = None):
        self._directory = directory
        self._config = config
        self._item_of = item_of
        self._weight_of = weight_of

    def start_bundle(self) -> None:
        self._forget()
        self._items: list[tuple[str, int, bytes]] = []
        self._weights: dict[str, int] = {}
        self.held = 0
        self._written: list[dict] = []
        with _BUDGET.lock:
            _BUDGET.writers.add(self)

    def teardown(self) -> None:
        self._forget()

    def _forget(self) -> None:
        """Leave the budget (a failed bundle's buffer is dropped with it)."""
        with _BUDGET.lock:
            if self in _BUDGET.writers:
                _BUDGET.writers.discard(self)
                _BUDGET.held -= self.held

    def process(self, element: Any) -> Iterator[dict]:
        part, hashed, value = element if self._item_of is None else self._item_of(element)
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with _BUDGET.lock:
            self._items.append((part, hashed, data))
            if self._weight_of is not None:
                self._weights[part] = self._weights.get(part, 0) + self._weight_of(element)
            self.held += len(data) + _ITEM_OVERHEAD
            _BUDGET.held += len(data) + _ITEM_OVERHEAD
            if _BUDGET.held >= self._config.buffer_bytes:
                max(_BUDGET.writers, key=lambda writer: writer.held).write_run()
            written, self._written = self._written, []
        yield from written

    def finish_bundle(self) -> Iterator[WindowedValue]:
        with _BUDGET.lock:
            if self._items:
                self.write_run()
            _BUDGET.writers.discard(self)
            written, self._written = self._written, []
        for fact in written:
            yield GlobalWindows.windowed_value(fact)

    def write_run(self) -> None:
        """Write the buffer as one run file (called under the budget's lock)."""
        items, self._items = self._items, []
        weights, self._weights = self._weights, {}
        _BUDGET.held -= self.held
        self.held = 0
        items.sort(key=lambda item: (item[0], item[1]))
        parts: dict[str, list[int]] = {}
        for part, _hashed, value in items:
            count = parts.setdefault(part, [0, 0])
            count[0] += 1
            count[1] += len(value) + _ITEM_OVERHEAD
        path = join(self._directory, f"run-{uuid.uuid4().hex}.spill")
        write_atomic(path, _encode_run(items, self._config))
        self._written.append({"path": path, "parts": parts, "weights": weights})


class SpillWrite(beam.PTransform):
    """``(part, key_hash, value)`` items to run files under ``directory``; one fact per file.

    ``item_of`` makes that item from each element where it is written (one step, not a map
    before it: every step costs the runner per run, whatever the data); ``weight_of`` gives
    what the facts sum per part besides items and bytes (``fact["weights"]``), e.g. text bytes.
    """

    def __init__(self, directory: str, config: MemoryConfig = MemoryConfig(), item_of: ItemOf | None = None,
                 weight_of: Callable[[Any], int] | None = None):
        super().__init__()
        self._directory = directory
        self._config = config
        self._item_of = item_of
        self._weight_of = weight_of

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        writer = _SpillWriteFn(self._directory, self._config, self._item_of, self._weight_of)
        return items | "WriteRuns" >> beam.ParDo(writer)


def part_bytes(facts: Iterable[dict], part: str) -> int:
    """Bytes of ``part`` over every run file (what a reader would load), from the facts."""
    return sum(fact["parts"].get(part, (0, 0))[1] for fact in facts)


def paths_with(facts: Iterable[dict], part: str) -> list[str]:
    """The run files holding ``part``, sorted (the order values are read in)."""
    return sorted(fact["path"] for fact in facts if part in fact["parts"])


class DeleteSpilled(beam.PTransform):
    """Once ``consumed`` is complete (every reader done), delete the run files of ``facts``:
    disk holds each step's spill only while the step runs."""

    def __init__(self, facts: beam.PCollection):
        super().__init__()
        self._facts = facts

    def expand(self, consumed: beam.PCollection) -> beam.PCollection:
        # An empty side input of ``consumed``'s: the delete waits for it to complete.
        done = consumed | "Done" >> beam.FlatMap(lambda _element: ())
        return (
            consumed.pipeline
            | "Once" >> beam.Impulse()
            | "Delete" >> beam.Map(
                lambda _impulse, facts, _done: delete(sorted(fact["path"] for fact in facts)),
                facts=beam.pvalue.AsList(self._facts),
                _done=beam.pvalue.AsList(done),
            )
        )


def default_spill_dir(directory: str) -> str:
    """``<run>/_staging/spill`` for an output folder ``<run>/<name>``: spill files live in the
    run folder (shared storage on a cluster) and go with ``_staging`` when the run is sealed."""
    parent, _name = FileSystems.split(directory.rstrip("/"))
    return join(parent, "_staging", "spill")
