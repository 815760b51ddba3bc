"""Beam's S3 filesystem shares one boto3 client per process and settings (run_folder/s3_clients.py):
the same settings reuse it, other settings (a changed ``AWS_*`` variable) get their own."""

import pytest
from apache_beam.io.aws import s3io
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from run_folder import storage

OPTIONS = PipelineOptions([])  # as a job's: no S3 flags, the AWS_* variables decide


def _client():
    return s3io.S3IO(options=OPTIONS).client.client


@pytest.fixture
def job_options():
    FileSystems.set_options(OPTIONS)
    yield
    FileSystems.set_options(None)


def test_one_boto3_client_per_settings(s3_server, monkeypatch, job_options):
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.create_bucket()
    storage.write_atomic(f"s3://{bucket}/a", b"first")
    assert storage.read_bytes(f"s3://{bucket}/a") == b"first"
    assert _client() is _client()
    assert _client().meta.endpoint_url == s3_server.endpoint_url

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")  # no request is made
    assert _client().meta.endpoint_url == "http://127.0.0.1:1"  # a new client, not the cached one

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    assert storage.read_bytes(f"s3://{bucket}/a") == b"first"
