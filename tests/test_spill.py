"""Spill files and the spilled shuffle: every value comes back once, in its part and range."""

import json
import pickle

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.record import stable_id
from transforms.spill import (
    KEY_SPACE,
    MemoryConfig,
    SpillWrite,
    id_hash,
    paths_with,
    range_index,
    range_of,
    read_range,
)
from transforms.spilled_shuffle import SpilledCoGroupByKey, SpilledGroupByKey, SpilledRepeats, task_count
from transforms.stage import RunContext

# Tiny buffers and tasks: many run files, many blocks and many ranges even on small inputs.
TINY = MemoryConfig(buffer_bytes=4_000, task_bytes=3_000, block_bytes=500)


def _items(n):
    for i in range(n):
        record_id = stable_id("doc", str(i))
        yield (f"part{i % 3}", id_hash(record_id), {"id": record_id, "text": "x" * (i % 50), "n": i})


def test_spilled_items_come_back_once_by_part_and_range(tmp_path):
    items = list(_items(400))
    facts_file = tmp_path / "facts.json"
    with TestPipeline(runner="FnApiRunner") as p:
        facts = p | beam.Create(items) | SpillWrite(str(tmp_path / "spill"), TINY)
        _ = facts | beam.combiners.ToList() | beam.Map(lambda facts: facts_file.write_text(json.dumps(facts)))
    facts_seen = json.loads(facts_file.read_text())
    assert len(facts_seen) > 5  # the buffer bound forced several run files
    for part in ("part0", "part1", "part2"):
        expected = sorted(value["n"] for p_, _h, value in items if p_ == part)
        got = []
        for index in range(7):
            low, high = range_of(index, 7)
            for hashed, value in read_range(paths_with(facts_seen, part), part, low, high):
                assert low <= hashed < high and range_index(hashed, 7) == index
                got.append(value["n"])
        assert sorted(got) == expected  # each value once, none from another part
    assert sum(count for fact in facts_seen for count, _bytes in fact["parts"].values()) == 400


def test_a_range_read_reads_only_its_blocks(tmp_path, monkeypatch):
    """One of 8 ranges of one of 3 parts reads its blocks, the index and the footer of a run file,
    not the whole file: T range tasks over F files would otherwise read T x F files."""
    from contextlib import contextmanager

    from transforms import spill

    items = sorted(((part, hashed, pickle.dumps(value)) for part, hashed, value in _items(400)),
                   key=lambda item: item[:2])
    path = tmp_path / "run.spill"
    path.write_bytes(spill._encode_run(items, MemoryConfig(block_bytes=500)))
    read = []
    opened = spill.open_read

    class Counting:
        def __init__(self, handle):
            self._handle = handle

        def seek(self, *args):
            return self._handle.seek(*args)

        def read(self, n=-1):
            data = self._handle.read(n)
            read.append(len(data))
            return data

    @contextmanager
    def counting(p):
        with opened(p) as handle:
            yield Counting(handle)

    monkeypatch.setattr(spill, "open_read", counting)
    low, high = range_of(3, 8)
    got = sorted(value["n"] for _h, value in read_range([str(path)], "part1", low, high))
    assert got and got == sorted(v["n"] for p_, h, v in _items(400) if p_ == "part1" and low <= h < high)
    assert sum(read) < path.stat().st_size / 4  # a third of the items is part1, an eighth of those in range


def test_writers_of_one_process_share_one_buffer_bound(tmp_path):
    """Many writers fused in one step hold at most ``buffer_bytes`` together, not each."""
    from transforms import spill

    writers = [spill._SpillWriteFn(str(tmp_path / f"w{w}"), TINY) for w in range(6)]
    for writer in writers:
        writer.start_bundle()
    mid_bundle, at_finish = [], []
    for i, item in enumerate(_items(60)):
        mid_bundle += writers[i % 6].process(item)
        assert spill._BUDGET.held < TINY.buffer_bytes
    for writer in writers:
        at_finish += [windowed.value for windowed in writer.finish_bundle()]
    assert spill._BUDGET.held == 0 and not spill._BUDGET.writers
    # Ten values per writer stay under one writer's bound: only the shared bound wrote early.
    assert all(sum(n for n, _b in fact["parts"].values()) <= 10 for fact in at_finish)
    assert mid_bundle
    every_fact = mid_bundle + at_finish
    got = sorted(value["n"] for part in ("part0", "part1", "part2")
                 for _h, value in read_range(paths_with(every_fact, part), part, 0, KEY_SPACE))
    assert got == list(range(60))


def test_ranges_cover_the_key_space():
    assert range_of(0, 3)[0] == 0 and range_of(2, 3)[1] == KEY_SPACE
    assert all(range_of(i, 3)[1] == range_of(i + 1, 3)[0] for i in range(2))
    assert task_count(0, TINY) == 1 and task_count(6_001, TINY) == 3


def test_spilled_cogroup_equals_cogroup(tmp_path):
    large = [(f"k{i % 37}", {"body": "y" * 200, "i": i}) for i in range(300)]
    compact = [(f"k{i}", i) for i in range(0, 45, 2)]  # some keys only here, some only in large

    def normalise(kv):
        key, grouped = kv
        return key, sorted(v["i"] for v in grouped["large"]), sorted(grouped["compact"])

    with TestPipeline(runner="FnApiRunner") as p:
        inputs = {"large": p | "L" >> beam.Create(large), "compact": p | "C" >> beam.Create(compact)}
        expected = inputs | "Native" >> beam.CoGroupByKey() | "N1" >> beam.Map(normalise)
        spilled = (
            inputs
            | "Spilled" >> SpilledCoGroupByKey(str(tmp_path / "spill"), "large", TINY)
            | "N2" >> beam.Map(normalise)
        )
        both = (
            (expected | "TagE" >> beam.Map(lambda x: ("native", x)), spilled | "TagS" >> beam.Map(lambda x: ("spilled", x)))
            | beam.Flatten()
            | beam.combiners.ToList()
            | beam.Map(lambda pairs: sorted(x for tag, x in pairs if tag == "native")
                       == sorted(x for tag, x in pairs if tag == "spilled") and len(pairs) == 2 * 41)
        )
        assert_that(both, equal_to([True]))


def test_streamed_join_gives_each_large_value_alone_with_its_keys_compact_values(tmp_path):
    """Regrouped by key, the streamed join is ``CoGroupByKey``; one element per large value
    (a hot key's 200 values are 200 elements), and keys with compact values only come once."""
    large = [("hot", {"i": i}) for i in range(200)] + [(f"k{i % 37}", {"i": 1000 + i}) for i in range(300)]
    compact = [("hot", -1)] + [(f"k{i}", i) for i in range(0, 45, 2)]

    def regroup(elements):
        merged = {}
        for key, grouped in elements:
            assert len(grouped["large"]) <= 1
            entry = merged.setdefault(key, ([], sorted(grouped["compact"])))
            assert entry[1] == sorted(grouped["compact"])  # the same compact values each time
            entry[0].extend(v["i"] for v in grouped["large"])
        return sorted((key, sorted(values), c) for key, (values, c) in merged.items()), len(elements)

    def native(groups):
        return sorted((key, sorted(v["i"] for v in g["large"]), sorted(g["compact"])) for key, g in groups)

    with TestPipeline(runner="FnApiRunner") as p:
        inputs = {"large": p | "L" >> beam.Create(large), "compact": p | "C" >> beam.Create(compact)}
        expected = inputs | "Native" >> beam.CoGroupByKey() | "AllNative" >> beam.combiners.ToList()
        streamed = (
            inputs
            | "Streamed" >> SpilledCoGroupByKey(str(tmp_path / "spill"), "large", TINY, stream_large=True)
            | "AllStreamed" >> beam.combiners.ToList()
        )
        checked = expected | beam.Map(
            # 500 large values, and k38..k44 once each (compact values only)
            lambda groups, elements: regroup(elements) == (native(groups), 500 + 4),
            elements=beam.pvalue.AsSingleton(streamed),
        )
        assert_that(checked, equal_to([True]))


def test_streamed_join_emits_as_it_reads():
    """A task emits a large value before reading the next one: it never holds a key's values."""
    from transforms.spilled_shuffle import _JoinRangeFn

    read = []

    def spilled():
        for i in range(3):
            read.append(i)
            yield 0, ("hot", ("large", i))

    join = _JoinRangeFn(("large", "compact"), "large")
    out = join._stream({"hot": {"compact": ["keeper"]}}, spilled())
    for i in range(3):
        assert next(out) == ("hot", {"large": [i], "compact": ["keeper"]}) and read == list(range(i + 1))
    assert list(out) == []


def test_spilled_group_by_key_in_the_run_staging(tmp_path):
    run = RunContext(str(tmp_path / "run"), "r1", memory=TINY)
    pairs = [(i % 5, "v" * 100 + str(i)) for i in range(60)]
    with TestPipeline(runner="FnApiRunner") as p:
        grouped = (
            p
            | beam.Create(pairs)
            | SpilledGroupByKey(run)
            | beam.MapTuple(lambda key, values: (key, sorted(values)))
        )
        expected = [(k, sorted(v for kk, v in pairs if kk == k)) for k in range(5)]
        assert_that(grouped, equal_to(expected))
    spill = tmp_path / "run" / "_staging" / "spill"
    assert spill.is_dir() and not list(spill.glob("*.spill"))  # spilled there, deleted once read


def test_spilled_repeats_finds_exactly_the_repeated_keys(tmp_path):
    """Keys repeated within one input or across inputs, over many ranges, and no other key."""
    first = [("a", stable_id("doc", str(i))) for i in range(300)] + [("a", stable_id("doc", "7"))] * 2
    second = [("b", stable_id("doc", str(i))) for i in range(200)] + [("a", stable_id("doc", "42"))]
    with TestPipeline(runner="FnApiRunner") as p:
        streams = [(p | "First" >> beam.Create(first), lambda key: key), (p | "Second" >> beam.Create(second), tuple)]
        repeats = p | SpilledRepeats(str(tmp_path / "spill"), streams, TINY)
        assert_that(repeats, equal_to([(("a", stable_id("doc", "7")), 3), (("a", stable_id("doc", "42")), 2)]))
    assert not list((tmp_path / "spill").glob("*.spill"))  # deleted once counted
