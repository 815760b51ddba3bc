"""``SpilledCoGroupByKey``: a ``CoGroupByKey`` whose one large input travels through spill files.

A global step joins record bodies (large, one per record) with compact facts about them (a
cluster's keeper, a URL's fetch outcome, a decision per id). Through the runner's shuffle the
bodies would sit in memory on the in-process runner; here only the compact inputs are
shuffled, and the large one goes through ``transforms.spill``:

1. The large input's ``(key, value)`` pairs are spilled, each under the hash of its key.
2. The key space is cut into as many equal ranges as ``MemoryConfig.task_bytes`` needs for the
   spilled bytes (known from the spill facts once every writer is done).
3. Each range is one task: its compact values (grouped by the runner, keyed by range) and its
   spilled values (read back from the run files) are grouped by key in memory, and emitted as
   ``(key, {input name: [values]})``, exactly what ``CoGroupByKey`` emits, every key once.

With ``stream_large`` (one large input), a task holds only its range's compact values: each
large value is emitted as it is read, alone in its list beside its key's compact values, so a
key repeats once per large value. That is the join a step needs when it decides each record
from facts about its key (a keeper, a count, a decision per id), and it keeps memory flat
however many values share a key: a page copied a million times over a crawl is a million
single-record elements, never one group (a range is cut by bytes, but one key cannot be).

The output elements stream into the next step; nothing downstream needs to change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from transforms.spill import (
    DeleteSpilled,
    MemoryConfig,
    SpillWrite,
    key_hash,
    part_bytes,
    paths_with,
    range_index,
    range_of,
    read_range,
    task_count,
)
from transforms.stage import RunContext, spill_dir_of

_PART = ""  # one part: the key space is split by hash ranges alone


class _JoinRangeFn(beam.DoFn):
    def __init__(self, names: tuple[str, ...], streamed: str | None):
        self._names = names
        self._streamed = streamed

    def process(self, task: tuple[int, dict[str, list]], count: int, facts: list[dict]) -> Iterator[Any]:
        index, grouped = task
        # Only the inputs a key has values from: a join of many inputs (validation's one per
        # stage) would otherwise hold an empty list per input and key for the whole range.
        groups: dict[Any, dict[str, list]] = {}
        for key, value in grouped["compact"]:
            name, inner = value
            groups.setdefault(key, {}).setdefault(name, []).append(inner)
        low, high = range_of(index, count)
        spilled = read_range(paths_with(facts, _PART), _PART, low, high)
        if self._streamed is not None:
            yield from self._stream(groups, spilled)
            return
        for _hashed, (key, (name, value)) in spilled:
            groups.setdefault(key, {}).setdefault(name, []).append(value)
        for key, by_name in groups.items():
            yield key, {name: by_name.get(name, []) for name in self._names}

    def _stream(self, groups: dict[Any, dict[str, list]], spilled: Iterator[Any]) -> Iterator[Any]:
        """Each large value as it is read, with its key's compact values; then the keys that
        have compact values only, once each (as ``CoGroupByKey`` would emit them)."""
        unseen = set(groups)
        for _hashed, (key, (_name, value)) in spilled:
            unseen.discard(key)
            by_name = groups.get(key, {})
            yield key, {name: [value] if name == self._streamed else by_name.get(name, []) for name in self._names}
        for key in unseen:
            by_name = groups[key]
            yield key, {name: by_name.get(name, []) for name in self._names}


class SpilledCoGroupByKey(beam.PTransform):
    """``{name: PCollection of (key, value)} | SpilledCoGroupByKey(directory, large=names)``.

    ``large`` names the inputs that are spilled (record bodies, fetched images); the others
    must be compact (a few small values per key), since they go through the runner's shuffle.
    ``stream_large``: each value of the one large input on its own (the module's docstring).
    """

    def __init__(self, directory: str, large: str | tuple[str, ...], config: MemoryConfig = MemoryConfig(),
                 stream_large: bool = False):
        super().__init__()
        self._directory = directory
        self._large = (large,) if isinstance(large, str) else tuple(large)
        self._config = config
        if stream_large and len(self._large) != 1:
            raise ValueError(f"stream_large needs exactly one large input, got {list(self._large)}")
        self._streamed = self._large[0] if stream_large else None

    @classmethod
    def for_run(cls, run: RunContext | None, large: str | tuple[str, ...],
                stream_large: bool = False) -> SpilledCoGroupByKey:
        """Spilling into ``run``'s staging within its memory bounds (a temporary folder without)."""
        return cls(spill_dir_of(run), large, run.memory if run is not None else MemoryConfig(), stream_large)

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        missing = [name for name in self._large if name not in inputs]
        if missing:
            raise ValueError(f"large inputs {missing} are not among {sorted(inputs)}")
        names = tuple(inputs)
        pipeline = next(iter(inputs.values())).pipeline
        # Each large input is spilled where it is produced: a Flatten of them first would be a
        # barrier that the in-process runner fills with every value before anything reads it.
        facts = [
            inputs[name]
            | f"Spill{name}" >> SpillWrite(
                self._directory, self._config, lambda kv, name=name: (_PART, key_hash(kv[0]), (kv[0], (name, kv[1])))
            )
            for name in self._large
        ] | "AllSpillFacts" >> beam.Flatten()
        config = self._config
        count = pipeline | "Once" >> beam.Impulse() | "TaskCount" >> beam.Map(
            lambda _impulse, all_facts: task_count(part_bytes(all_facts, _PART), config),
            all_facts=pvalue.AsList(facts),
        )
        compact = [
            pcoll | f"Tag{name}" >> beam.Map(lambda kv, name=name: (kv[0], (name, kv[1])))
            for name, pcoll in inputs.items()
            if name not in self._large
        ]
        by_range = (
            (compact or [pipeline | "NoCompact" >> beam.Create([])])
            | "Compact" >> beam.Flatten()
            | "ByRange" >> beam.Map(
                lambda kv, n: (range_index(key_hash(kv[0]), n), kv), n=pvalue.AsSingleton(count)
            )
        )
        every_range = count | "Ranges" >> beam.FlatMap(lambda n: [(i, None) for i in range(n)])
        joined = (
            {"compact": by_range, "range": every_range}
            | "GroupRanges" >> beam.CoGroupByKey()
            | "JoinRanges" >> beam.ParDo(
                _JoinRangeFn(names, self._streamed),
                count=pvalue.AsSingleton(count),
                facts=pvalue.AsList(facts),
            )
        )
        _ = joined | "DeleteSpilled" >> DeleteSpilled(facts)
        return joined


class SpilledGroupByKey(beam.PTransform):
    """``GroupByKey`` of large values through spill files: ``(key, [values])`` per key."""

    def __init__(self, run: RunContext | None):
        super().__init__()
        self._run = run

    def expand(self, pairs: beam.PCollection) -> beam.PCollection:
        return (
            {"values": pairs}
            | "Group" >> SpilledCoGroupByKey.for_run(self._run, "values")
            | "Values" >> beam.MapTuple(lambda key, grouped: (key, grouped["values"]))
        )


def _keyed_item(key_of: Callable[[Any], Any]) -> Callable[[Any], tuple[str, int, Any]]:
    def item(element: Any) -> tuple[str, int, Any]:
        key = key_of(element)
        return _PART, key_hash(key), key
    return item


def _repeated_in_range(task: tuple[int, int], facts: list[dict]) -> Iterator[tuple[Any, int]]:
    low, high = range_of(*task)
    seen = Counter(key for _hashed, key in read_range(paths_with(facts, _PART), _PART, low, high))
    yield from ((key, n) for key, n in seen.items() if n > 1)


class SpilledRepeats(beam.PTransform):
    """``pipeline | SpilledRepeats(directory, [(pcoll, key_of), ...])``: ``(key, count)`` of
    every key that occurs more than once over the keys of every stream's elements (a check that
    ids are unique), holding one key range at a time instead of every key."""

    def __init__(self, directory: str, streams: Sequence[tuple[beam.PCollection, Callable[[Any], Any]]],
                 config: MemoryConfig = MemoryConfig()):
        super().__init__()
        self._directory = directory
        self._streams = tuple(streams)
        self._config = config

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        facts = [
            pcoll | f"Spill{i}" >> SpillWrite(self._directory, self._config, _keyed_item(key_of))
            for i, (pcoll, key_of) in enumerate(self._streams)
        ] | "AllSpillFacts" >> beam.Flatten()
        config = self._config

        def ranges(_impulse: bytes, all_facts: list[dict]) -> list[tuple[int, int]]:
            count = task_count(part_bytes(all_facts, _PART), config)
            return [(index, count) for index in range(count)]

        repeats = (
            pbegin
            | "Once" >> beam.Impulse()
            | "Ranges" >> beam.FlatMap(ranges, all_facts=pvalue.AsList(facts))
            | "OneTaskEach" >> beam.Reshuffle()
            | "CountRanges" >> beam.FlatMap(_repeated_in_range, facts=pvalue.AsList(facts))
        )
        _ = repeats | "DeleteSpilled" >> DeleteSpilled(facts)
        return repeats
