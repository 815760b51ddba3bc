"""The preflight: each unusable input or output is one line naming the URI and the cause, exit 2,
before any Beam work, with nothing written (real moto S3 server on loopback, the real local disk)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from pipelines import cli, preflight

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch):
    """The CLI's logging set-up would bind a handler to this test's captured stderr, which the
    moto server's request log then writes to after the test: not what these tests are about."""
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose: None)


@pytest.fixture
def aws_env(monkeypatch, s3_server, tmp_path):
    """The standard AWS variables for the moto server, and no other source of credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def _objects(s3_server, bucket: str) -> list[str]:
    return [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def _cli(capsys, *args: str) -> tuple[int, list[str]]:
    started = time.monotonic()
    status = cli.main(["run", "text", *args])
    print(f"preflight answered in {time.monotonic() - started:.2f} s")  # shown with -s; no limit asserted
    # Only our lines: the in-process moto server logs its requests to the same stderr.
    return status, [line for line in capsys.readouterr().err.splitlines() if line.startswith("dataprep: ")]


def _one_problem(lines: list[str], uri: str, cause: str) -> None:
    problems = [line for line in lines if not line.startswith("dataprep: preflight found")]
    assert len(problems) == 1, lines
    assert problems[0].startswith(f"dataprep: {uri}: ") and cause in problems[0], problems[0]
    assert lines[-1] == "dataprep: preflight found 1 problem(s); nothing was run or written"


def test_no_credentials(aws_env, s3_server, capsys, tmp_path):
    bucket = s3_server.create_bucket()
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    status, lines = _cli(capsys, "--input", str(CC_WARC), "--output", f"s3://{bucket}/runs")
    assert status == 2
    _one_problem(lines, f"s3://{bucket}/runs", "no AWS credentials found")
    assert "AWS_ACCESS_KEY_ID" in lines[0]  # the fix
    assert _objects(s3_server, bucket) == []


def test_unknown_bucket(aws_env, s3_server, capsys):
    status, lines = _cli(capsys, "--input", str(CC_WARC), "--output", "s3://no-such-bucket-here/runs")
    assert status == 2
    _one_problem(lines, "s3://no-such-bucket-here/runs", "bucket 'no-such-bucket-here' does not exist")


def test_unreachable_endpoint(aws_env, s3_server, capsys):
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aws_env.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    status, lines = _cli(capsys, "--input", "s3://bucket/in/*.warc.gz", "--output", str(Path("/tmp") / "unused"))
    assert status == 2
    _one_problem(lines, "s3://bucket/in/*.warc.gz", f"cannot reach the S3 endpoint http://127.0.0.1:{port}")


def test_input_matching_nothing_local_and_s3(aws_env, s3_server, capsys, tmp_path):
    bucket = s3_server.create_bucket()
    s3_server.upload(CC_WARC, bucket, "crawl/a.warc.gz")
    out = tmp_path / "out"
    status, lines = _cli(capsys, "--input", str(tmp_path / "nope*.warc.gz"), "--output", str(out))
    assert status == 2
    _one_problem(lines, str(tmp_path / "nope*.warc.gz"), "the pattern matches no file")
    status, lines = _cli(capsys, "--input", f"s3://{bucket}/crawl/*.wet.gz", "--output", str(out))
    assert status == 2
    _one_problem(lines, f"s3://{bucket}/crawl/*.wet.gz", "matches no object")
    assert not out.exists() and _objects(s3_server, bucket) == ["crawl/a.warc.gz"]


def test_unwritable_local_folder(capsys, tmp_path):
    in_the_way = tmp_path / "runs"
    in_the_way.write_text("a file where the output folder should be")
    status, lines = _cli(capsys, "--input", str(CC_WARC), "--output", str(in_the_way / "today"))
    assert status == 2
    _one_problem(lines, str(in_the_way / "today"), f"cannot create the folder: {in_the_way} is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_read_only_local_folder(capsys, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    status, lines = _cli(capsys, "--input", str(CC_WARC), "--output", str(folder))
    assert status == 2
    _one_problem(lines, str(folder), "cannot write in")
    assert list(folder.iterdir()) == []


def test_every_problem_is_listed_at_once(aws_env, s3_server, capsys, tmp_path):
    status, lines = _cli(capsys, "--input", str(tmp_path / "a.warc.gz"), str(tmp_path / "b*.jsonl"),
                         "--output", "s3://no-such-bucket-here/runs")
    assert status == 2 and len(lines) == 4 and lines[-1].startswith("dataprep: preflight found 3 problem(s)")


def test_usable_locations_pass_and_the_write_probe_is_gone(aws_env, s3_server, tmp_path):
    bucket = s3_server.create_bucket()
    s3_server.upload(CC_WARC, bucket, "crawl/a.warc.gz")
    inputs = [f"s3://{bucket}/crawl/*.warc.gz", str(CC_WARC)]
    assert preflight.check(inputs, [f"s3://{bucket}/runs", str(tmp_path / "new" / "runs")], []) == []
    assert _objects(s3_server, bucket) == ["crawl/a.warc.gz"] and list(tmp_path.iterdir()) == []
    # Beam's own S3 flags are what the run will use: they count as credentials and endpoint.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"):
        aws_env.delenv(name)
    assert preflight.check(inputs, [f"s3://{bucket}/runs"], s3_server.pipeline_args()) == []
