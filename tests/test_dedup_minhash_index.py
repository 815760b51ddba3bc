"""Across runs: a run rejects what earlier runs published, publishes only after its _SUCCESS,
and a failed run (or a publication cut short) leaves the index as readers saw it. Local
folders and S3 (moto's server on loopback)."""

import json
from pathlib import Path

import apache_beam as beam
import boto3
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from moto.server import ThreadedMotoServer

from run_folder.storage import join, list_files, read_bytes, write_atomic
from transforms.dedup_minhash import MinHashDedup, MinHashDedupConfig, publish_band_table
from transforms.dedup_minhash import index as band_index
from transforms.dedup_minhash.config import band_params
from transforms.dedup_minhash.index import IndexMismatch, published_files

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONFIG = MinHashDedupConfig()


def _articles() -> list[str]:
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text())
    return [gold[key]["articleBody"] for key in sorted(gold)]


ART = _articles()
DAY1 = [{"id": f"d1-{i}", "text": ART[i]} for i in range(1, 6)] + [
    {"id": "d1-1b", "text": ART[1] + "\nRelated: more stories from our newsroom"},  # within-run duplicate
]
DAY2 = [
    {"id": "d2-1", "text": "Menu | Login\n" + ART[1]},  # yesterday's d1-1, new navigation
    {"id": "d2-3", "text": ART[3][: int(len(ART[3]) * 0.9)]},  # yesterday's d1-3, cut short
    {"id": "d2-3b", "text": ART[3] + "\nAdvertisement"},  # the same again, with an ad
    {"id": "d2-6", "text": ART[6]},
    {"id": "d2-7", "text": ART[7]},
]


class _Failure(RuntimeError):
    pass


def _explode(record):
    raise _Failure("a later stage failed")


def _run(run_dir: str, index: str, records: list[dict], results: Path, fail: bool = False) -> dict:
    """One run of the stage; returns {id: (reason or "kept", dup_of)}. The real job writes
    data/, rejected/ and then _SUCCESS; here _SUCCESS alone stands for a committed run."""
    result_path = results / f"{Path(run_dir).name}.json"
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = p | beam.Create(records) | MinHashDedup(CONFIG, run_dir=run_dir, index_uri=index)
        decided = (
            out.kept | "K" >> beam.Map(lambda r: (r["id"], ("kept", r["dup_of"]))),
            out.rejected | "R" >> beam.Map(lambda r: (r["id"], (r["reject_reason"], r["dup_of"]))),
        ) | beam.Flatten()
        if fail:
            _ = out.kept | "LaterStage" >> beam.Map(_explode)
        _ = (
            decided
            | beam.combiners.ToDict()
            | beam.Map(lambda d: result_path.write_text(json.dumps(d, sort_keys=True)))
        )
    write_atomic(join(run_dir, "_SUCCESS"), json.dumps({"run_id": Path(run_dir).name}).encode())
    return {key: tuple(value) for key, value in json.loads(result_path.read_text()).items()}


def _local_snapshot(index: str) -> dict[str, bytes]:
    return {path: read_bytes(path) for path in list_files(index)}


def _across_runs(base: str, index: str, results: Path, snapshot=_local_snapshot, rerun: bool = True) -> None:
    runs = {name: join(base, "runs", name) for name in ("day1", "day2", "day3")}

    day1 = _run(runs["day1"], index, DAY1, results)
    assert day1 == {
        **{f"d1-{i}": ("kept", None) for i in range(1, 6)},
        "d1-1b": ("dedup_minhash.near_duplicate", "d1-1"),
    }
    assert list_files(index) == []  # nothing is published before the lead calls publish
    marker = publish_band_table(runs["day1"], index, "day1")
    assert marker["rows"] == 5 * CONFIG.bands and len(marker["files"]) == CONFIG.bands
    assert sorted(f["path"].split("/")[0] for f in marker["files"]) == [f"band={b:03d}" for b in range(CONFIG.bands)]

    day2 = _run(runs["day2"], index, DAY2, results)
    assert day2 == {
        "d2-1": ("dedup_minhash.near_duplicate_of_previous_run", "d1-1"),
        "d2-3": ("dedup_minhash.near_duplicate_of_previous_run", "d1-3"),
        "d2-3b": ("dedup_minhash.near_duplicate_of_previous_run", "d1-3"),
        "d2-6": ("kept", None),
        "d2-7": ("kept", None),
    }

    # Day 3 fails after the dedup stage: no _SUCCESS, no publication, the index unchanged.
    before = snapshot(index)
    with pytest.raises(Exception, match="a later stage failed"):
        _run(runs["day3"], index, [{"id": "d3-8", "text": ART[8]}], results, fail=True)
    with pytest.raises(RuntimeError, match="_SUCCESS"):
        publish_band_table(runs["day3"], index, "day3")
    assert snapshot(index) == before

    publish_band_table(runs["day2"], index, "day2")
    assert len(published_files(index, band_params(CONFIG), None)) == 2 * CONFIG.bands
    if rerun:  # a published day, run again, does not match its own publication
        assert _run(runs["day2"], index, DAY2, results) == day2


@pytest.mark.slow
def test_across_runs_on_local_folders(tmp_path):
    _across_runs(str(tmp_path / "out"), str(tmp_path / "index"), tmp_path)


@pytest.fixture()
def moto_s3(monkeypatch):
    """A moto S3 server on loopback; Beam and boto3 reach it through the standard variables."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
    }.items():
        monkeypatch.setenv(name, value)
    FileSystems.set_options(PipelineOptions([]))
    boto3.client("s3").create_bucket(Bucket="dedup")
    try:
        yield "s3://dedup"
    finally:
        server.stop()


def _s3_snapshot(index: str) -> dict[str, str]:
    bucket, prefix = index.removeprefix("s3://").split("/", 1)
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return {item["Key"]: item["ETag"] for item in listing.get("Contents", [])}


@pytest.mark.slow
def test_across_runs_with_runs_and_index_on_s3(tmp_path, moto_s3):
    # the runs and the index on S3, the rerun of a published day included
    _across_runs(f"{moto_s3}/out", f"{moto_s3}/index", tmp_path, snapshot=_s3_snapshot)
    keys = _s3_snapshot(f"{moto_s3}/index")
    assert (
        "index/_runs/day1.json" in keys and "index/band=000/run_id=day2/part-00000-of-00001.parquet" in keys
    )


@pytest.mark.slow
def test_a_publication_cut_short_stays_invisible(tmp_path, monkeypatch):
    run_dir, index = str(tmp_path / "run"), str(tmp_path / "index")
    _run(run_dir, index, DAY1, tmp_path)
    real_write = band_index.write_atomic
    calls = []

    def failing_write(path, data):
        calls.append(path)
        if len(calls) == 3:  # _index.json, one band file, then the failure
            raise OSError("connection reset")
        real_write(path, data)

    monkeypatch.setattr(band_index, "write_atomic", failing_write)
    with pytest.raises(OSError):
        publish_band_table(run_dir, index, "day1")
    assert published_files(index, band_params(CONFIG), None) == []
    monkeypatch.setattr(band_index, "write_atomic", real_write)
    publish_band_table(run_dir, index, "day1")  # retry: complete and visible
    assert len(published_files(index, band_params(CONFIG), None)) == CONFIG.bands
    other = MinHashDedupConfig(num_perm=112, bands=16, rows=7)
    with pytest.raises(IndexMismatch):
        published_files(index, band_params(other), None)
