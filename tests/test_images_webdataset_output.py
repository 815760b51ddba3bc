"""WebDataset output: the kept records as tars whose samples are exactly the Parquet rows; the
same input gives the same bytes; written to s3:// as to a folder."""

from __future__ import annotations

import io
import json
import tarfile

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from image_fixtures import photo, variant

from pipelines import images
from pipelines.config import from_dict
from run_folder.storage import join
from schemas.images import IMAGE_SCHEMA
from transforms.images.webdataset import read_webdataset
from transforms.images.webdataset_writer import WebDatasetSink, shard_count, shard_name, write_shard
from transforms.parquet_sink import shard_of
from transforms.stage import RunContext

SAMPLES = [
    (photo("china"), "the roof of a temple in china"),
    (photo("flower"), "a pink flower in a garden"),
    (variant("china", box=(0, 0, 320, 427)), "left half of a temple photograph"),
    (variant("flower", box=(0, 0, 320, 427)), "a close view of a flower on the left"),
    (variant("china", box=(320, 0, 640, 427)), "the right half of a temple roof"),
    (variant("flower", size=(150, 100)), "a tiny thumbnail of a flower"),  # rejected: too small
]
PER_SHARD = 2


def _input_tar(path):
    with tarfile.open(path, "w") as archive:
        for i, (data, caption) in enumerate(SAMPLES):
            for name, member in ((f"s{i}.jpg", data), (f"s{i}.txt", caption.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(member)
                archive.addfile(info, io.BytesIO(member))
    return str(path)


def _run(inputs, run_dir, decode=None):
    """The images job's stages and Parquet output (``images.build``), and the WebDataset sink on
    its kept records, as ``build`` wires it when ``output.webdataset`` is on."""
    overrides = {"nsfw": {"enabled": False}, "decode": decode or {}}
    config = from_dict(images.Config, overrides)
    with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=FnApiRunner"])) as p:
        outputs = images.build(p, inputs, RunContext(str(run_dir), "r1"), config)
        _ = outputs.final | "WebDatasetTest" >> WebDatasetSink(
            join(str(run_dir), "webdataset"), IMAGE_SCHEMA, PER_SHARD
        )


def _tar_samples(paths):
    samples = {}
    for path in paths:
        with tarfile.open(path) as archive:
            for member in archive:
                assert member.isfile() and member.mtime == 0 and member.uid == 0 and member.uname == ""
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = archive.extractfile(member).read()
    return samples


def _tars(run_dir):
    return sorted((run_dir / "webdataset").glob("*.tar"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wds")
    inputs = [_input_tar(tmp / "in.tar")]
    _run(inputs, tmp / "a")
    first = {p.name: p.read_bytes() for p in _tars(tmp / "a")}
    _run(inputs, tmp / "a")  # a rerun into the same folder
    _run(inputs, tmp / "b")  # and into another
    return tmp, first


def test_tar_samples_are_exactly_the_parquet_rows(runs):
    tmp, _ = runs
    run_dir = tmp / "a"
    rows = [r for f in sorted((run_dir / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 5  # the thumbnail was rejected by image_filter
    tars = _tars(run_dir)
    assert [p.name for p in tars] == [shard_name(i) for i in range(shard_count(len(rows), PER_SHARD))]
    samples = _tar_samples(tars)
    assert sorted(samples) == sorted(r["id"] for r in rows)
    for row in rows:
        sample = samples[row["id"]]
        assert sorted(sample) == ["jpg", "json", "txt"]
        assert sample["jpg"] == row["image"]
        assert sample["txt"].decode() == row["caption"]
        meta = json.loads(sample["json"])
        assert "image" not in meta and set(meta) == set(IMAGE_SCHEMA.names) - {"image"}
        for name in ("id", "url", "caption", "source", "source_key", "width", "height", "sha256", "phash"):
            assert meta[name] == row[name]
    # whole samples, sorted by key; a sample's shard is its id's (as the Parquet sink's shards)
    shard_keys = []
    for i, tar in enumerate(tars):
        with tarfile.open(tar) as archive:
            keys = [m.name.partition(".")[0] for m in archive]
        assert keys == sorted(keys) and all(shard_of(k, len(tars)) == i for k in keys)
        shard_keys.extend(dict.fromkeys(keys))
    assert sorted(shard_keys) == sorted(r["id"] for r in rows)


def test_the_project_reader_reads_them_back(runs):
    tmp, _ = runs
    rows = {
        r["id"]: r
        for f in sorted((tmp / "a" / "data").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    }
    read = [
        record
        for tar in _tars(tmp / "a")
        for record, drop in read_webdataset(str(tar), 1 << 24)
        if drop is None
    ]
    assert sorted((r["source_key"].removeprefix("tar:"), r["caption"]) for r in read) == sorted(
        (key, row["caption"]) for key, row in rows.items()
    )


def test_rerun_gives_identical_bytes(runs):
    tmp, first = runs
    again = {p.name: p.read_bytes() for p in _tars(tmp / "a")}
    other = {p.name: p.read_bytes() for p in _tars(tmp / "b")}
    assert first == again == other and len(first) == 3
    assert not [p for p in (tmp / "a" / "webdataset").iterdir() if p.suffix != ".tar"]  # no temporary files


def test_image_extension_follows_the_output_format(tmp_path):
    _run([_input_tar(tmp_path / "in.tar")], tmp_path / "out", decode={"output_format": "webp"})
    samples = _tar_samples(_tars(tmp_path / "out"))
    assert samples and all(sorted(s) == ["json", "txt", "webp"] for s in samples.values())
    assert all(s["webp"][:4] == b"RIFF" and s["webp"][8:12] == b"WEBP" for s in samples.values())


def _write_records(records, directory, options):
    with beam.Pipeline(options=options) as p:
        _ = p | beam.Create(records) | WebDatasetSink(directory, IMAGE_SCHEMA, PER_SHARD)


def test_written_to_s3_as_to_a_folder(tmp_path, s3_server):
    records = [
        {"id": f"{i:032x}", "image": data, "format": "jpeg", "caption": caption, "url": None}
        for i, (data, caption) in enumerate(SAMPLES)
    ]
    bucket = s3_server.create_bucket()
    _write_records(records, f"s3://{bucket}/run/webdataset", s3_server.pipeline_options())
    _write_records(records, str(tmp_path / "webdataset"), s3_server.pipeline_options())
    client = s3_server.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="run/")["Contents"])
    assert keys == [f"run/webdataset/{shard_name(i)}" for i in range(3)]
    remote = {k.rsplit("/", 1)[1]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    local = {p.name: p.read_bytes() for p in sorted((tmp_path / "webdataset").iterdir())}
    assert remote == local
    samples = _tar_samples(sorted((tmp_path / "webdataset").iterdir()))
    assert {key: (s["jpg"], s["txt"].decode()) for key, s in samples.items()} == {
        r["id"]: (r["image"], r["caption"]) for r in records
    }


def test_shard_encoding_without_beam():
    record = {"id": "ab" * 16, "image": b"\xff\xd8 not really a jpeg", "format": "jpeg", "caption": None}
    out, again = io.BytesIO(), io.BytesIO()
    rows = write_shard([record], ("id", "caption", "width"), out)
    data = out.getvalue()
    assert rows == 1 and write_shard([dict(record)], ("id", "caption", "width"), again) == 1
    assert data == again.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive}
    assert members == {
        f"{record['id']}.jpg": record["image"],
        f"{record['id']}.txt": b"",
        f"{record['id']}.json": b'{"caption":null,"id":"' + record["id"].encode() + b'","width":null}',
    }
    assert shard_count(0, 5) == 0 and shard_count(5, 5) == 1 and shard_count(6, 5) == 2
    with pytest.raises(ValueError, match="samples_per_shard"):
        WebDatasetSink("out", IMAGE_SCHEMA, 0)
