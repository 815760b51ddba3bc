"""``dataprep retract`` on published runs, local and S3: listed records leave data/ and
rejected/, everything else stays, conservation holds across manifest versions, the Airflow gate
passes the amended partition, a SIGKILL leaves a whole version, and a rerun changes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import aeb_pages, assert_conserved, write_warc

from pipelines import text
from pipelines.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_partition", REPO / "infra/airflow/dags/check_partition.py")
check_partition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_partition)

STAGES = ("takedown", "url_filter", "consent", "license", "extract", "language", "gopher_quality",
          "dedup_exact", "dedup_minhash")
RUN_ID = "dt=2026-12-01"

pytestmark = pytest.mark.slow


def _config() -> text.Config:
    config = text.Config()
    off = {s.name: dataclasses.replace(getattr(config, s.name), enabled=False)
           for s in text.STAGES if s.name not in STAGES}
    # small shards, so that a retraction rewrites some and leaves others alone
    return dataclasses.replace(config, **off, output=dataclasses.replace(config.output, max_rows_per_shard=8))


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    pages = aeb_pages(30)
    warc = write_warc(folder / "pages.warc.gz", [(url, html) for url, html, _ in pages])
    index = folder / "index"
    text.run([str(warc)], str(folder / "out"), RUN_ID, _config(), [], dedup_index=str(index))
    assert_conserved(folder / "out" / RUN_ID)
    return folder / "out" / RUN_ID, index


@pytest.fixture
def run(published, tmp_path):
    run_dir, index = published
    shutil.copytree(run_dir, tmp_path / RUN_ID)
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / RUN_ID, tmp_path / "index"


def rows(run_dir: Path, folder: str) -> dict[str, dict]:
    table = ds.dataset(run_dir / folder, partitioning="hive" if folder == "rejected" else None).to_table(
        columns=["id", "url"])
    return {r["id"]: r for r in table.to_pylist()}


def digests(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def blocklist_for(run_dir: Path, path: Path) -> set[str]:
    """Two kept ids, one rejected URL and a kept record's domain: the ids they name. The kept ones
    come from the largest data shard, which keeps rows, so the retraction rewrites a data shard
    rather than deleting it, whatever ids this run's paths gave (they follow the input's path)."""
    kept, rejected = rows(run_dir, "data"), rows(run_dir, "rejected")
    largest = max(sorted((run_dir / "data").glob("*.parquet")), key=lambda f: pq.read_metadata(f).num_rows)
    shard_ids = sorted(pq.read_table(largest, columns=["id"]).column("id").to_pylist())
    by_domain = kept[shard_ids[2]]["url"].split("/")[2]
    rejected_one = next(r for r in rejected.values() if r["url"])
    path.write_text(f"id {shard_ids[0]} GDPR erasure request 17\nid {shard_ids[1]}\n"
                    f"url {rejected_one['url']} DMCA\ndomain {by_domain} publisher opt-out\n")
    named = {shard_ids[0], shard_ids[1], rejected_one["id"]}
    named |= {i for i, r in {**kept, **rejected}.items() if r["url"] and r["url"].split("/")[2].endswith(by_domain)}
    assert set(shard_ids) - named, "the largest shard must keep rows for the kill tests"
    return named


def gate_problems(run_dir: str) -> list[str]:
    return check_partition.check(run_dir)[1]


def test_retract_removes_listed_records_and_reseals_the_run(run, tmp_path, capsys):
    run_dir, index = run
    before_kept, before_rejected = rows(run_dir, "data"), rows(run_dir, "rejected")
    v1 = json.loads((run_dir / "manifest.json").read_text())
    named = blocklist_for(run_dir, tmp_path / "takedown.txt")
    assert cli(["retract", str(run_dir), "--blocklist", str(tmp_path / "takedown.txt"),
                "--dedup-index", str(index)]) == 0
    summary = json.loads(capsys.readouterr().out)
    kept, rejected = rows(run_dir, "data"), rows(run_dir, "rejected")
    assert set(kept) == set(before_kept) - named and set(rejected) == set(before_rejected) - named
    v2 = json.loads((run_dir / "manifest.json").read_text())
    assert v2["version"] == 2 and json.loads((run_dir / "manifests/v1.json").read_text()) == v1
    (retraction,) = v2["retractions"]
    assert {r["id"] for r in retraction["removed"]} == named
    assert any("GDPR erasure request 17" in r["why"] for r in retraction["removed"])
    c1, c2 = v1["conservation"], v2["conservation"]
    assert c1["input"] == c2["input"] == c2["kept"] + c2["rejected"] + c2["retracted"]
    assert (c2["kept"], c2["rejected"]) == (len(kept), len(rejected)) and c2["retracted"] == len(named)
    assert gate_problems(str(run_dir)) == []
    assert summary["band_rows_dropped"]["index"] > 0
    band_ids = set(ds.dataset(index, partitioning="hive").to_table(columns=["id"]).column("id").to_pylist())
    assert band_ids and not band_ids & named
    before = digests(run_dir), digests(index)
    assert cli(["retract", str(run_dir), "--blocklist", str(tmp_path / "takedown.txt"),
                "--dedup-index", str(index)]) == 0
    assert (digests(run_dir), digests(index)) == before  # the second identical retract: no change


def _retract_killed(run_dir: Path, blocklist: Path, when: str) -> subprocess.CompletedProcess:
    """``dataprep retract`` in a process that SIGKILLs itself right after writing the first file
    whose path ``when`` selects (``staged``: a shard under _retract/; ``commit``: one in data/)."""
    code = f"""
import os, signal, sys
import transforms.consent.retraction as retraction
original = retraction.write_atomic
def write_then_die(path, data):
    original(path, data)
    staged = "/_retract/v" in path and path.endswith(".parquet")
    if (staged if {when!r} == "staged" else "/_retract/" not in path and "/data/" in path):
        os.kill(os.getpid(), signal.SIGKILL)
retraction.write_atomic = write_then_die
from pipelines.cli import main
sys.exit(main(["retract", {str(run_dir)!r}, "--blocklist", {str(blocklist)!r}]))
"""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_sigkill_while_staging_leaves_the_previous_version_whole(run, tmp_path):
    run_dir, _ = run
    named = blocklist_for(run_dir, tmp_path / "takedown.txt")
    before = digests(run_dir)
    killed = _retract_killed(run_dir, tmp_path / "takedown.txt", "staged")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    after = {p: d for p, d in digests(run_dir).items() if not p.startswith("_retract/")}
    assert after == before and gate_problems(str(run_dir)) == []
    assert cli(["retract", str(run_dir), "--blocklist", str(tmp_path / "takedown.txt")]) == 0
    assert not set(rows(run_dir, "data")) & named and gate_problems(str(run_dir)) == []
    assert not (run_dir / "_retract").exists()


def test_sigkill_after_the_commit_point_is_finished_by_the_next_retract(run, tmp_path):
    run_dir, _ = run
    named = blocklist_for(run_dir, tmp_path / "takedown.txt")
    killed = _retract_killed(run_dir, tmp_path / "takedown.txt", "commit")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    # half replaced: never readable as published
    assert not (run_dir / "_SUCCESS").exists() and gate_problems(str(run_dir))
    assert cli(["retract", str(run_dir), "--blocklist", str(tmp_path / "takedown.txt")]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["version"] == 2 and len(manifest["retractions"]) == 1
    assert not set(rows(run_dir, "data")) & named and gate_problems(str(run_dir)) == []


def test_retract_on_s3(run, tmp_path, s3_server, monkeypatch):
    """The published run uploaded to S3 (moto on loopback), band table included, amended there,
    gated there, and left unchanged by the same retract again."""
    run_dir, _ = run
    named = blocklist_for(run_dir, tmp_path / "takedown.txt")
    bucket = s3_server.create_bucket()
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            s3_server.upload(path, bucket, f"out/{RUN_ID}/{path.relative_to(run_dir)}")
    blocklist = s3_server.upload(tmp_path / "takedown.txt", bucket, "takedown.txt")
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    s3_run = f"s3://{bucket}/out/{RUN_ID}"
    assert cli(["retract", s3_run, "--blocklist", blocklist]) == 0
    assert gate_problems(s3_run) == []
    manifest = assert_s3_manifest(s3_server, bucket)
    client = s3_server.client()
    ids = set()
    for info in manifest["files"]:
        body = client.get_object(Bucket=bucket, Key=f"out/{RUN_ID}/{info['path']}")["Body"].read()
        ids |= set(pq.read_table(io.BytesIO(body), columns=["id"]).column("id").to_pylist())
    assert not ids & named and len(ids) == manifest["conservation"]["input"] - len(named)
    objects = _s3_digests(client, bucket, f"out/{RUN_ID}/")
    assert not any("/_retract/" in key for key in objects) and f"out/{RUN_ID}/manifests/v1.json" in objects
    band_ids = set()
    for key in (k for k in objects if "/_dedup_bands/" in k and k.endswith(".parquet")):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        band_ids |= set(pq.read_table(io.BytesIO(body), columns=["id"]).column("id").to_pylist())
    assert band_ids and not band_ids & named
    assert cli(["retract", s3_run, "--blocklist", blocklist]) == 0
    assert _s3_digests(client, bucket, f"out/{RUN_ID}/") == objects  # the same retract again: no change


def _s3_digests(client, bucket: str, prefix: str) -> dict[str, str]:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    return {key: hashlib.sha256(client.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
            for key in keys}


def assert_s3_manifest(s3_server, bucket: str) -> dict:
    body = s3_server.client().get_object(Bucket=bucket, Key=f"out/{RUN_ID}/manifest.json")["Body"].read()
    return json.loads(body)


def test_unpublished_runs_and_unreadable_blocklists_are_refused(run, tmp_path, capsys):
    run_dir, _ = run
    (tmp_path / "bad.txt").write_text("example.com\n")
    assert cli(["retract", str(run_dir), "--blocklist", str(tmp_path / "bad.txt")]) == 2
    (tmp_path / "ok.txt").write_text("domain example.com\n")
    (run_dir / "_SUCCESS").unlink()
    assert cli(["retract", str(run_dir), "--blocklist", str(tmp_path / "ok.txt")]) == 1
    assert "only a published run" in capsys.readouterr().out

