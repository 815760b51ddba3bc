import json
import re
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.readers import ReadConfig, ReadInputs, read_file
from transforms.readers.base import Skip

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CC = DATA / "cc-warc-resiliparse"
WARCIO = DATA / "warcio-examples"


def _expected(paths, config=ReadConfig()):
    """What the plain readers give, to compare the Beam transform against."""
    kept, reasons, skipped = [], [], []
    for path in paths:
        for record, drop in read_file(str(path), config):
            if drop is None:
                kept.append(record["id"])
            elif isinstance(drop, Skip):
                skipped.append(drop.reason)
            else:
                reasons.append(f"read.{drop.reason}")
    return kept, reasons, skipped


def _assert_outputs(outputs, kept_ids, reasons, skipped):
    assert_that(outputs.skipped, equal_to(skipped), label="CheckSkipped")
    assert_that(
        outputs.kept | "KeptIds" >> beam.Map(lambda r: r["id"]), equal_to(kept_ids), label="CheckKept"
    )
    assert_that(
        outputs.rejected | "Reasons" >> beam.Map(lambda r: r["reject_reason"]),
        equal_to(reasons),
        label="CheckRejected",
    )


def _jsonl(path, n=50):
    lines = [json.dumps({"text": f"doc {i}", "url": f"https://example.org/{i}"}) for i in range(n)] + [
        "{broken"
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_read_inputs_matches_the_plain_readers(tmp_path):
    docs = _jsonl(tmp_path / "docs.jsonl")
    patterns = [str(CC / "*.warc.gz"), str(WARCIO / "example*.warc*"), str(docs)]
    files = sorted(CC.glob("*.warc.gz")) + sorted(WARCIO.glob("example*.warc*")) + [docs]
    kept, reasons, skipped = _expected(files)
    assert len(kept) == 16 + 4 + 50 and Counter(skipped)["warc_request_record"] >= 17
    assert Counter(reasons)["read.truncated_file"] == 1 and Counter(reasons)["read.invalid_json"] == 1
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        outputs = pipeline | ReadInputs(patterns)
        _assert_outputs(outputs, kept, reasons, skipped)
        assert_that(
            outputs.rejected
            | beam.Filter(lambda r: r["reject_reason"] == "read.truncated_file")
            | beam.Map(
                lambda r: (r["reject_stage"], r["source_key"], r["reject_detail"].startswith(str(CC)))
            ),
            equal_to([("read", "file", True)]),
            label="CheckQuarantine",
        )


def test_pattern_matching_nothing_names_the_pattern(tmp_path):
    missing = str(tmp_path / "nothing-*.warc.gz")
    pipeline = beam.Pipeline(runner="FnApiRunner")
    with pytest.raises(ValueError, match=re.escape(f"input pattern '{missing}' matched no files")):
        _ = pipeline | ReadInputs([str(CC / "warcfile.warc.gz"), missing])


def test_colliding_base_names_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _jsonl(tmp_path / "a" / "part-0.jsonl")
    _jsonl(tmp_path / "b" / "part-0.jsonl")
    with pytest.raises(ValueError, match="base names"):
        _ = beam.Pipeline(runner="FnApiRunner") | ReadInputs([str(tmp_path / "*" / "part-0.jsonl")])


def test_overlapping_patterns_read_each_file_once(tmp_path):
    from transforms.readers.read_inputs import match_inputs

    path = str(CC / "warcfile.warc.gz")
    assert match_inputs([path, str(CC / "*.gz")]) == [str(CC / "clipped.warc.gz"), path]


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-empty list"):
        ReadInputs(str(CC / "warcfile.warc.gz"))
    with pytest.raises(ValueError, match="non-empty list"):
        ReadInputs([])
    with pytest.raises(ValueError, match="directory"):
        _ = beam.Pipeline(runner="FnApiRunner") | ReadInputs([str(CC)])


@pytest.mark.slow
def test_s3_read_gives_the_local_ids(s3_server, tmp_path):
    bucket = s3_server.create_bucket()
    docs = tmp_path / "docs.jsonl.zst"
    docs.write_bytes(zstandard.ZstdCompressor().compress(_jsonl(tmp_path / "plain.jsonl").read_bytes()))
    table = tmp_path / "table.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(3000)]}), table, row_group_size=1000)
    local = [CC / "warcfile.warc.gz", CC / "clipped.warc.gz", docs, table]
    for path in local:
        s3_server.upload(path, bucket, f"input/{path.name}")
    kept, reasons, skipped = _expected(local)

    options = s3_server.pipeline_options()
    with BeamTestPipeline(runner="FnApiRunner", options=options) as pipeline:
        outputs = pipeline | ReadInputs([f"s3://{bucket}/input/*"])
        _assert_outputs(outputs, kept, reasons, skipped)
        assert_that(
            outputs.kept | beam.Map(lambda r: r["source"].split("/")[2]) | beam.Distinct(),
            equal_to([bucket]),
            label="CheckSource",
        )

    FileSystems.set_options(options)
    remote = [r for r, _ in read_file(f"s3://{bucket}/input/warcfile.warc.gz", ReadConfig())]
    assert [r["id"] for r in remote] == [r["id"] for r, _ in read_file(str(local[0]), ReadConfig())]
    assert remote[0]["source"] == f"s3://{bucket}/input/warcfile.warc.gz"
