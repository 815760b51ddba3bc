import hashlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from transforms.parquet_sink import ParquetSinkConfig, ShardedParquetSink, shard_of
from transforms.record import stable_id
from transforms.spill import MemoryConfig

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("text", pa.string())])
CONFIG = ParquetSinkConfig(max_rows_per_shard=40, row_group_rows=16)


def _records(n):
    return [{"id": stable_id("doc", str(i)), "text": f"text {i}", "extra": i} for i in range(n)]


def _write(directory, records, partition_of=None, check_infos=None, memory=MemoryConfig()):
    with TestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create(records)
            | ShardedParquetSink(str(directory), SCHEMA, CONFIG, partition_of=partition_of, memory=memory)
        )
        if check_infos:
            assert_that(out, check_infos)


def test_shards_are_sorted_by_id_and_assigned_from_id(tmp_path):
    records = _records(100)
    _write(tmp_path, records)
    files = sorted(tmp_path.glob("*.parquet"))
    assert [f.name for f in files] == [f"part-0000{i}-of-00003.parquet" for i in range(3)]
    seen = []
    for shard, path in enumerate(files):
        table = pq.read_table(path)
        assert table.schema.names == ["id", "text"]  # extra keys are not written
        ids = table.column("id").to_pylist()
        assert ids == sorted(ids)
        assert all(shard_of(i, 3) == shard for i in ids)
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
        seen += ids
    assert sorted(seen) == sorted(r["id"] for r in records)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_same_input_gives_byte_identical_files_in_any_order(tmp_path):
    records = _records(100)
    _write(tmp_path / "a", records)
    _write(tmp_path / "b", list(reversed(records)))
    digest = lambda d: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.glob("*.parquet")}  # noqa: E731
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_partitions_and_file_infos(tmp_path):
    def check(infos):
        assert sorted(i["partition"] for i in infos) == ["stage=0", "stage=1"]
        for info in infos:
            data = open(info["path"], "rb").read()
            assert info["bytes"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
            assert info["rows"] == 15 == pq.read_metadata(info["path"]).num_rows

    _write(tmp_path, _records(30), partition_of=lambda r: f"stage={r['extra'] % 2}", check_infos=check)
    assert sorted(p.parent.name for p in tmp_path.glob("*/*.parquet")) == ["stage=0", "stage=1"]


def test_a_shard_streamed_in_chunks_is_the_shard_written_whole(tmp_path):
    """With ``task_bytes`` far below a shard, each shard is read and encoded in ~30 chunks; the
    file is still the one ``pq.write_table`` gives for the whole shard, row groups included."""
    records = _records(100)
    _write(tmp_path, records, memory=MemoryConfig(task_bytes=300))
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) == 3
    for shard, path in enumerate(files):
        rows = sorted(({"id": r["id"], "text": r["text"]} for r in records if shard_of(r["id"], 3) == shard),
                      key=lambda r: r["id"])
        whole = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), whole, compression="zstd",
                       compression_level=CONFIG.zstd_level, row_group_size=CONFIG.row_group_rows)
        assert path.read_bytes() == whole.getvalue().to_pybytes()
        metadata = pq.read_metadata(path)
        groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        assert groups[:-1] == [16] * (len(groups) - 1) and sum(groups) == len(rows)
