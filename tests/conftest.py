"""Shared fixtures. ``s3_server``: one moto S3 server on loopback for the whole session."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import HealthCheck, settings
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


# Property-based tests: a fixed seed and no per-example time limit, so CI is reproducible and
# never flaky on a busy machine. ``HYPOTHESIS_PROFILE=explore`` searches wider, unseeded.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, print_blob=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _run_files(run: str, folder: str, s3: S3Server | None) -> dict[str, bytes]:
    """The files under ``<run>/<folder>/`` (relative path -> bytes), locally or on S3."""
    if run.startswith("s3://"):
        assert s3 is not None, f"{run}: pass the S3Server to read an S3 run"
        bucket, _, prefix = run[len("s3://"):].partition("/")
        prefix = f"{prefix.rstrip('/')}/"
        client = s3.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{folder}/")
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return {k[len(prefix):]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    root = Path(run)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / folder).rglob("*")) if p.is_file()}


def _parquet(data: bytes, columns: list[str]) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), columns=columns)


def assert_conserved(run: str | Path, s3: S3Server | None = None) -> dict:
    """Nothing lost, nothing counted twice, read back from what a finished run published.

    Reads ``manifest.json`` and the files themselves (never the pipeline's own counters) and
    checks, for the text and images jobs: every funnel stage has in (+ created, for a stage that
    adds records) = kept + rejected, its reasons add up to its rejected and carry its name,
    stage i's kept is stage i+1's in, the first stage's in is the input and the last one's kept
    is the output; ``data/`` holds ``kept`` rows and ``rejected/stage=<s>/`` exactly each
    reason's count; every id is there once; the files in ``data/`` and ``rejected/`` are the
    manifest's. For a crawl run: every URL has one fetch-log row, the rows' outcomes and
    reasons match the totals and each round's counts. Returns the manifest.
    """
    run = str(run).rstrip("/")
    if run.startswith("s3://"):
        bucket, _, prefix = run[len("s3://"):].partition("/")
        manifest_bytes = s3.client().get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read()
    else:
        manifest_bytes = (Path(run) / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    if "rounds" in manifest:  # a crawl run
        totals = manifest["totals"]
        assert totals["urls"] == totals["fetched"] + totals["rejected"], totals
        assert sum(totals["reasons"].values()) == totals["rejected"], totals
        for key in ("fetched", "rejected"):
            assert sum(r[key] for r in manifest["rounds"]) == totals[key], (key, manifest["rounds"])
        rows = [_parquet(data, ["outcome", "reason", "url"]).to_pylist()
                for path, data in _run_files(run, "fetch_log", s3).items() if path.endswith(".parquet")]
        rows = [row for table in rows for row in table]
        assert len(rows) == totals["urls"] == len({row["url"] for row in rows})
        assert sum(row["outcome"] == "fetched" for row in rows) == totals["fetched"]
        assert Counter(row["reason"] for row in rows if row["outcome"] != "fetched") == Counter(totals["reasons"])
        return manifest

    funnel, c = manifest["funnel"], manifest["conservation"]
    assert funnel and funnel[0]["stage"] == "read", [row["stage"] for row in funnel]
    assert c["input"] == c["kept"] + c["rejected"], c
    created = sum(row.get("created", 0) for row in funnel)  # records a stage adds (synthetic)
    assert funnel[0]["in"] + created == c["input"] and funnel[-1]["kept"] == c["kept"], (funnel, c)
    assert sum(row["rejected"] for row in funnel) == c["rejected"], (funnel, c)
    for before, after in zip(funnel, funnel[1:]):
        assert before["kept"] == after["in"], (before, after)
    for row in funnel:
        assert row["in"] + row.get("created", 0) == row["kept"] + row["rejected"] and row["kept"] >= 0, row
        assert sum(row["reasons"].values()) == row["rejected"], row
        if "created" not in row:  # a branch (synthetic) also gives the reasons of the gates it runs
            assert all(reason.startswith(row["stage"] + ".") for reason in row["reasons"]), row

    data = {p: b for p, b in _run_files(run, "data", s3).items() if p.endswith(".parquet")}
    rejected = {p: b for p, b in _run_files(run, "rejected", s3).items() if p.endswith(".parquet")}
    listed = {f["path"] for f in manifest["files"] if f["path"].split("/")[0] in ("data", "rejected")}
    assert set(data) | set(rejected) == listed, "the files differ from the manifest's"
    ids = [i for b in data.values() for i in _parquet(b, ["id"]).column("id").to_pylist()]
    assert len(ids) == c["kept"], (len(ids), c)
    reasons: dict[str, Counter] = {row["stage"]: Counter() for row in funnel}
    for path, b in rejected.items():
        table = _parquet(b, ["id", "reject_stage", "reject_reason"]).to_pylist()
        folder_stage = path.split("/")[1].removeprefix("stage=")
        for row in table:
            assert row["reject_stage"] == folder_stage, (path, row)
            reasons.setdefault(row["reject_stage"], Counter())[row["reject_reason"]] += 1
            ids.append(row["id"])
    assert {s: dict(r) for s, r in reasons.items()} == {row["stage"]: row["reasons"] for row in funnel}
    assert len(ids) == len(set(ids)) == c["input"], "an id is missing or there twice"
    return manifest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a test marked ``slow`` (whole pipelines, servers) first, each file's tests
    kept together and in their order. ``make test`` hands files to its processes in this order
    (``--no-loadscope-reorder`` in pytest.ini): the longest start first and the many short files
    fill the end, instead of one core running a 5-minute file alone while the other is idle."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)
