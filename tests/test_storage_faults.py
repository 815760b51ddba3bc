"""S3 storage faults: 503 SlowDown, 500s, connection resets and slow answers on a share of
requests. The run completes with the same output as without faults, through botocore's bounded
retries (standard mode, ``AWS_MAX_ATTEMPTS``: the standard AWS settings), each one logged."""

import hashlib
import logging
from pathlib import Path

import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc
from fault_proxy import fault_proxy

from pipelines import text

pytestmark = pytest.mark.slow


def _data(client, bucket: str, prefix: str) -> dict[str, str]:
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/data/")["Contents"]
    return {o["Key"][len(prefix):]: hashlib.sha256(client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            .hexdigest() for o in listing}


def _local_data(run_dir: Path) -> dict[str, str]:
    return {"/" + str(f.relative_to(run_dir)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted((run_dir / "data").rglob("*")) if f.is_file()}


def test_run_through_a_faulty_s3_gives_the_same_output(tmp_path, s3_server, monkeypatch, caplog):
    bucket = s3_server.create_bucket()
    warc = write_warc(tmp_path / "articles.warc.gz", [(u, h) for u, h, _ in aeb_pages(40)])
    inputs = [s3_server.upload(p, bucket, f"in/{Path(p).name}")
              for p in (warc, SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz")]
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    # Bounded retries, from the standard AWS settings (botocore's "standard" mode backs off).
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "8")

    # The reference run reads the same S3 inputs (their URIs are in the records) and writes to
    # a local folder: the faulty S3 run must match it byte for byte.
    clean = text.run(inputs, str(tmp_path / "clean"), "r", text.Config(), [], compare_previous=False)
    with fault_proxy(s3_server.endpoint_url) as (proxy, faults):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy)
        with caplog.at_level(logging.DEBUG, logger="botocore.retries"):
            faulty = text.run(inputs, f"s3://{bucket}/faulty", "r", text.Config(), [], compare_previous=False)
    assert set(faults) == {"slow_down_503", "internal_500", "reset", "slow"} and min(faults.values()) >= 5
    retries = [r for r in caplog.records if "retry" in r.getMessage().lower()]
    assert len(retries) >= faults["slow_down_503"] + faults["internal_500"]  # each one retried, and logged
    assert faulty["conservation"] == clean["conservation"]
    client = s3_server.client()
    assert _data(client, bucket, "faulty/r") == _local_data(tmp_path / "clean" / "r")
    client.head_object(Bucket=bucket, Key="faulty/r/_SUCCESS")
    assert_conserved(f"s3://{bucket}/faulty/r", s3_server)
