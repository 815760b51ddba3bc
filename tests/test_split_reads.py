"""A file read in splits gives exactly the records (ids, content, quarantine records) of the
file read whole, for every format the planner splits; damage stays where a whole read puts it."""

import gzip
import json
import zlib
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import aeb_pages

from transforms import live_progress
from transforms.readers import ReadConfig, ReadInputs, read_file
from transforms.readers.base import Skip
from transforms.readers.read_inputs import _ReadSplitFn, plan_file
from transforms.readers.split import WHOLE

CC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cc-warc-resiliparse"
CC_WARC, CLIPPED = CC / "warcfile.warc.gz", CC / "clipped.warc.gz"  # clipped: one gzip member


def _members(path):
    """The gzip members of a per-record gzipped WARC, as stored."""
    data, members, start = path.read_bytes(), [], 0
    while start < len(data):
        rest = zlib.decompressobj(31)
        rest.decompress(data[start:])
        end = len(data) - len(rest.unused_data)
        members.append(data[start:end])
        start = end
    return members


def _in_splits(path, config):
    splits = plan_file(str(path), config)
    return splits, [result for split in splits for result in read_file(str(path), config, split)]


def _assert_same_as_whole(path, split_bytes, at_least=3):
    config = ReadConfig(split_bytes=split_bytes)
    whole = list(read_file(str(path), config))
    splits, parts = _in_splits(path, config)
    assert len(splits) >= at_least, splits
    # Splits come in file order, so even the order is the whole read's.
    assert parts == whole
    assert len({record["id"] for record, _ in parts}) == len(parts)
    return splits, whole


def test_per_record_gzip_warc(tmp_path):
    splits, whole = _assert_same_as_whole(CC_WARC, 20_000)
    assert sum(drop is None for _, drop in whole) == 16
    # Each split after the first starts at a gzip member that holds a record.
    for split in splits[1:]:
        assert gzip.decompress(CC_WARC.read_bytes()[split.start : split.end])[:5] == b"WARC/"


def test_truncated_gzip_warc_keeps_its_quarantine_record(tmp_path):
    members = _members(CC_WARC)
    path = tmp_path / "truncated.warc.gz"
    path.write_bytes(b"".join(members[:40]) + members[40][: len(members[40]) // 2])
    splits, whole = _assert_same_as_whole(path, 15_000)
    quarantined = [(record, drop) for record, drop in whole if drop and drop.reason == "truncated_file"]
    assert len(quarantined) == 1 and quarantined[0][0]["source_key"] == "file"
    assert "compressed offset" in quarantined[0][1].detail


def test_corrupt_member_mid_file_ends_the_plan(tmp_path):
    members = _members(CC_WARC)
    damaged = bytearray(members[25])
    damaged[len(damaged) // 2 : len(damaged) // 2 + 16] = bytes(16)
    path = tmp_path / "corrupt.warc.gz"
    path.write_bytes(b"".join(members[:25]) + bytes(damaged) + b"".join(members[26:]))
    splits, whole = _assert_same_as_whole(path, 8_000)
    # The damaged member and everything after it are the last split's, as in a whole read.
    assert splits[-1].start <= sum(map(len, members[:25]))
    assert [drop.reason for _, drop in whole if drop and drop.reason.endswith("_file")] == ["corrupt_file"]


def test_plain_warc(tmp_path):
    path = tmp_path / "plain.warc"
    path.write_bytes(gzip.decompress(CC_WARC.read_bytes()))
    splits, _ = _assert_same_as_whole(path, 60_000)
    assert all(path.read_bytes()[s.start : s.start + 7] == b"WARC/1." for s in splits)


def test_single_member_gzip_is_one_split(tmp_path):
    path = tmp_path / "one-member.warc.gz"
    path.write_bytes(gzip.compress(gzip.decompress(CC_WARC.read_bytes())))
    assert plan_file(str(path), ReadConfig(split_bytes=10_000)) == [WHOLE]


def test_jsonl_lines_keep_their_numbers(tmp_path):
    texts = [gold for _, _, gold in aeb_pages(60)]
    lines = [json.dumps({"text": t, "url": f"https://a.test/{i}"}) for i, t in enumerate(texts)]
    lines[7], lines[30] = "{broken", ""  # a bad line and a blank line still count
    lines[41] = json.dumps({"text": "x" * 60_000})  # over max_record_bytes below
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines))  # no newline at the end
    config = ReadConfig(split_bytes=40_000, max_record_bytes=50_000)
    whole = list(read_file(str(path), config))
    splits, parts = _in_splits(path, config)
    assert len(splits) >= 3 and parts == whole
    assert {drop.reason for _, drop in whole if drop} >= {"invalid_json", "line_too_large"}
    assert whole[-1][0]["source_key"] == "line:60"


def test_splits_share_the_file_evenly(tmp_path):
    # 1,000 lines of 100 bytes over splits of at most 40,000: three of ~33,400 bytes, not two of
    # 40,000 and one of 20,000 (two workers would read 80,000 and 20,000)
    path = tmp_path / "even.jsonl"
    path.write_text("".join(json.dumps({"text": f"{i:06d}" + "x" * 81}) + "\n" for i in range(1000)))
    size = path.stat().st_size
    assert size == 100_000
    splits, parts = _in_splits(path, ReadConfig(split_bytes=40_000))
    lengths = [(split.end or size) - split.start for split in splits]
    assert len(lengths) == 3 and max(lengths) - min(lengths) <= 100 and max(lengths) <= 40_000
    assert parts == list(read_file(str(path), ReadConfig(split_bytes=40_000)))


def test_parquet_row_groups(tmp_path):
    texts = [gold for _, _, gold in aeb_pages(90)]
    path = tmp_path / "docs.parquet"
    table = pa.table({"text": texts, "url": [f"https://p.test/{i}" for i in range(90)]})
    pq.write_table(table, path, row_group_size=10)
    splits, whole = _assert_same_as_whole(path, 30_000)
    assert [record["source_key"] for record, _ in whole] == [f"row:{i}" for i in range(90)]
    assert splits[-1].records_before == sum(pq.ParquetFile(path).metadata.row_group(i).num_rows
                                            for i in range(splits[-1].start))


def test_parquet_with_wrong_schema_is_one_split(tmp_path):
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": ["x" * 1000] * 50}), path, row_group_size=5)
    assert plan_file(str(path), ReadConfig(split_bytes=1_000)) == [WHOLE]


def test_split_bytes_zero_never_splits():
    assert plan_file(str(CC_WARC), ReadConfig(split_bytes=0)) == [WHOLE]
    with pytest.raises(ValueError, match="split_bytes"):
        ReadConfig(split_bytes=-1)


@pytest.mark.slow
def test_read_inputs_spreads_splits_and_gives_the_whole_read(tmp_path):
    config = ReadConfig(split_bytes=20_000)
    whole = [(record, drop) for path in (CC_WARC, CLIPPED) for record, drop in read_file(str(path), config)]
    # Records that are no document leave on ``skipped``, counted apart from the funnel.
    expected = [(record["id"], drop.reason if drop else None) for record, drop in whole if not isinstance(drop, Skip)]
    expected_skipped = sorted(drop.reason for _record, drop in whole if isinstance(drop, Skip))
    assert expected_skipped
    assert len(plan_file(str(CC_WARC), config)) > 1 and plan_file(str(CLIPPED), config) == [WHOLE]
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        outputs = pipeline | ReadInputs([str(CC_WARC), str(CLIPPED)], config)
        kept = outputs.kept | "Kept" >> beam.Map(lambda r: (r["id"], None))
        rejected = outputs.rejected | "Rejected" >> beam.Map(
            lambda r: (r["id"], r["reject_reason"].removeprefix("read.")))
        assert_that((kept, rejected) | beam.Flatten(), equal_to(expected))
        assert_that(outputs.skipped, equal_to(expected_skipped), label="Skipped")


def test_progress_counts_each_splits_own_bytes_once(tmp_path, monkeypatch):
    """Workers read the splits of one file at the same time and in any order: each counts the
    bytes of its own split, so the progress line's bytes read add up to the file, never more."""
    monkeypatch.setenv(live_progress.ENV, str(tmp_path))
    config = ReadConfig(split_bytes=20_000)
    splits, size = plan_file(str(CC_WARC), config), CC_WARC.stat().st_size
    assert len(splits) >= 3
    board, reader = live_progress._current(), _ReadSplitFn(config)

    def bytes_read() -> int:
        return board._snapshot().get("bytes_read", 0)

    list(reader.process((str(CC_WARC), splits[-1], size)))  # the last split first
    assert bytes_read() == size - splits[-1].start
    middle = splits[1]
    records = reader.process((str(CC_WARC), middle, size))
    next(records)  # a middle split under way counts what it has read of itself
    assert size - splits[-1].start < bytes_read() <= size - splits[-1].start + (middle.end - middle.start)
    list(records)
    for split in splits:
        if split not in (middle, splits[-1]):
            list(reader.process((str(CC_WARC), split, size)))
    assert bytes_read() == size
