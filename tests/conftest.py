"""Shared fixtures. ``s3_server``: one moto S3 server on loopback for the whole session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from moto.server import ThreadedMotoServer


@dataclass(frozen=True)
class S3Server:
    """A moto S3 endpoint, with the credentials Beam and boto3 need to reach it."""

    endpoint_url: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region_name: str = "us-east-1"

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region_name,
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name when none is given) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def upload(self, local_path: str | Path, bucket: str, key: str) -> str:
        """Upload a local file and return its ``s3://`` URI."""
        self.client().upload_file(str(local_path), bucket, key)
        return f"s3://{bucket}/{key}"

    def pipeline_args(self) -> list[str]:
        """Beam's S3 options for this server (add ``--runner=FnApiRunner`` and your own)."""
        return [
            f"--s3_endpoint_url={self.endpoint_url}",
            f"--s3_access_key_id={self.access_key_id}",
            f"--s3_secret_access_key={self.secret_access_key}",
            f"--s3_region_name={self.region_name}",
        ]

    def aws_environment(self) -> dict[str, str]:
        """The standard AWS variables (plus the endpoint) that reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region_name,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
        }

    def pipeline_options(self, *extra_args: str) -> PipelineOptions:
        """In-process FnApiRunner options that reach this server."""
        return PipelineOptions(["--runner=FnApiRunner", *self.pipeline_args(), *extra_args])


@pytest.fixture(scope="session")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AEB = SHARED_DATA / "scrapinghub-aeb"

# Plain paragraphs that every heuristic quality filter should keep.
CLEAN_PROSE = """The river town woke slowly on the first cold morning of autumn. Fishermen dragged their \
boats up the muddy bank, and the baker opened his shutters to let out the smell of fresh bread.

Children walked to school in pairs, kicking at the yellow leaves that had gathered along the \
fences overnight. Their teacher waited at the gate with a thermos of tea and a list of names.

By noon the fog had lifted from the water. Traders from the valley arrived with carts of apples, \
cheese and wool, hoping to sell everything before the weather turned again.

In the evening the square filled with music. Old friends shared stories about past harvests, \
while the youngest dancers spun around the fountain until their parents called them home."""


def aeb_pages(limit: int | None = None) -> list[tuple[str, bytes, str]]:
    """(url, gzipped-off HTML bytes, gold article text) of the article benchmark's real pages."""
    import gzip
    import json

    gold = json.loads((AEB / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for sha in sorted(gold)[:limit]:
        html = gzip.decompress((AEB / "html" / f"{sha}.html.gz").read_bytes())
        pages.append((gold[sha]["url"], html, gold[sha]["articleBody"]))
    return pages


def write_warc(path: Path, pages: list[tuple[str, bytes]]) -> Path:
    """A gzipped WARC of HTTP 200 responses (warcio), as a crawler would have written it."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for url, body in pages:
            headers = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                url, "response", payload=BytesIO(body), http_headers=headers
            )
            writer.write_record(record)
    return path
