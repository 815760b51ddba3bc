"""``dataprep trace``: where a record went, by id or url, locally and on S3 (moto)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc
from test_report import run_text

from pipelines.report import REPORT_HTML, add_report_arguments, report_command
from pipelines.trace import add_trace_arguments, format_trace, trace, trace_command

pytestmark = pytest.mark.slow

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trace-inputs")
    pages = aeb_pages(20)
    # Exact copies of three pages, and near-duplicates of three others (a note added to the
    # first paragraphs, as a republished page has).
    edited = [(f"{u}?edited", h.replace(b"</p>", b" (This story has been updated.)</p>", 3)) for u, h, _ in pages[3:6]]
    warc = write_warc(folder / "pages.warc.gz",
                      [(u, h) for u, h, _ in pages] + [(f"{u}?copy", h) for u, h, _ in pages[:3]] + edited)
    out = tmp_path_factory.mktemp("trace-out")
    run_text([str(CC_WARC), str(warc)], str(out), "t1")
    assert_conserved(out / "t1")
    return out / "t1"


def _rows(run_dir: Path, folder: str, expression=None) -> list[dict]:
    dataset = ds.dataset(run_dir / folder, partitioning="hive" if folder == "rejected" else None)
    return dataset.to_table(filter=expression).to_pylist()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_trace_arguments(parser)
    return parser.parse_args(list(argv))


def test_kept_record_passed_every_stage(run_dir):
    row = _rows(run_dir, "data")[0]
    result = trace(str(run_dir), row["id"])
    (match,) = result["matches"]
    assert match["outcome"] == "kept" and match["passed"] == result["stages"]
    assert match["file"].startswith("data/") and match["url"] == row["url"]
    assert match["signals"]["language"]["lang"] == "en"
    assert "dedup_exact" in match["signals"]


def test_duplicate_found_by_url_names_its_keeper(run_dir):
    (copy,) = _rows(run_dir, "rejected", ds.field("reject_stage") == "dedup_exact")[:1]
    result = trace(str(run_dir), copy["url"])
    (match,) = result["matches"]
    assert match["outcome"] == "rejected" and match["stage"] == "dedup_exact"
    assert match["reason"] == "dedup_exact.duplicate" and match["passed"][-1] == "pii"
    assert match["keeper"]["id"] == copy["dup_of"] and match["keeper"]["outcome"] == "kept"
    assert match["keeper"]["url"].removesuffix("?copy") == copy["url"].removesuffix("?copy")
    assert "dedup_minhash" not in match["signals"]  # it never got there
    text = format_trace(result)
    assert "REJECTED at dedup_exact" in text and f"keeper   {copy['dup_of']}" in text


def test_near_duplicate_shows_its_keeper_and_estimated_jaccard(run_dir):
    rows = _rows(run_dir, "rejected", ds.field("reject_stage") == "dedup_minhash")
    assert rows, "the edited pages must reach dedup_minhash as near-duplicates"
    copy = rows[0]
    result = trace(str(run_dir), copy["id"])
    (match,) = result["matches"]
    assert match["reason"] == "dedup_minhash.near_duplicate" and 0.5 <= copy["minhash_jaccard"] <= 1.0
    assert match["keeper"]["id"] == copy["dup_of"] and match["keeper"]["outcome"] == "kept"
    assert match["keeper"]["estimated_jaccard"] == copy["minhash_jaccard"]
    assert match["signals"]["dedup_minhash"]["minhash_jaccard"] == copy["minhash_jaccard"]
    text = format_trace(result)
    assert f"evidence estimated Jaccard {copy['minhash_jaccard']:.2f} with the keeper" in text
    assert f"cluster {copy['minhash_cluster_id']} of {copy['minhash_cluster_size']} documents" in text


def test_language_rejection_shows_the_signal_that_decided(run_dir):
    row = _rows(run_dir, "rejected", ds.field("reject_reason") == "language.language_not_allowed")[0]
    (match,) = trace(str(run_dir), row["id"])["matches"]
    assert match["passed"] == ["read", "takedown", "url_filter", "consent", "license", "extract"]
    assert match["signals"]["language"]["lang"] != "en"
    assert set(match["signals"]) <= {"takedown", "url_filter", "consent", "license", "extract", "language"}


def test_command_exit_status_and_json(run_dir, capsys):
    row = _rows(run_dir, "data")[0]
    assert trace_command(_args(str(run_dir), row["id"], "--json")) == 0
    assert json.loads(capsys.readouterr().out)["matches"][0]["id"] == row["id"]
    assert trace_command(_args(str(run_dir), "no-such-record")) == 1
    assert "0 record(s) match" in capsys.readouterr().out
    assert trace_command(_args(str(run_dir.parent / "missing"), row["id"])) == 1


def test_trace_and_report_on_s3(run_dir, s3_server, monkeypatch):
    bucket = s3_server.create_bucket()
    for path in run_dir.rglob("*"):
        if path.is_file():
            s3_server.upload(path, bucket, f"runs/{path.relative_to(run_dir.parent)}")
    for key, value in s3_server.aws_environment().items():
        monkeypatch.setenv(key, value)
    uri = f"s3://{bucket}/runs/{run_dir.name}"
    copy = _rows(run_dir, "rejected", ds.field("reject_stage") == "dedup_exact")[0]
    (match,) = trace(uri, copy["url"])["matches"]
    assert match["keeper"]["id"] == copy["dup_of"] and match["keeper"]["outcome"] == "kept"

    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert report_command(parser.parse_args([uri])) == 0
    html = s3_server.client().get_object(Bucket=bucket, Key=f"runs/{run_dir.name}/{REPORT_HTML}")["Body"].read()
    assert b'id="funnel"' in html


def test_trace_on_an_images_run(tmp_path):
    """An images run: a duplicate image is traced to its keeper, signals are grouped by the
    images stages that declare them, the caption is shown, never the image bytes."""
    from image_fixtures import variant
    from test_images_pipeline import BEAM_ARGS
    from test_images_validation import _tar

    from pipelines import images
    from transforms.readers.base import base_name
    from transforms.record import stable_id

    photo = variant("flower", box=(320, 0, 640, 427))
    tar = _tar(tmp_path / "shard.tar", {
        "s1": (photo, "the right half of a flower photo"),
        "s2": (photo, "the same flower photo under another caption"),
    })
    config = images.Config()  # without the models (NSFW, caption language): they add nothing here
    config = replace(config, nsfw=replace(config.nsfw, enabled=False),
                     caption_language=replace(config.caption_language, enabled=False))
    images.run([tar], str(tmp_path / "out"), "i1", config, BEAM_ARGS)
    run = tmp_path / "out" / "i1"
    assert_conserved(run)
    first, second = (stable_id(base_name(tar), f"tar:{key}") for key in ("s1", "s2"))
    result = trace(str(run), second)
    (match,) = result["matches"]
    (kept,) = trace(str(run), first)["matches"]
    duplicate, keeper = (match, kept) if match["outcome"] == "rejected" else (kept, match)
    assert duplicate["reason"] == "dedup_exact.duplicate" and duplicate["keeper"]["outcome"] == "kept"
    assert {duplicate["keeper"]["id"], duplicate["id"]} == {first, second}
    assert keeper["passed"] == result["stages"] and "decode" in keeper["passed"]
    assert "width" in keeper["signals"]["decode"] and "caption_words" in keeper["signals"]["caption_length"]
    assert "other" not in keeper["signals"] or "image" not in keeper["signals"]["other"]
    assert keeper["text"].startswith(("the right half", "the same flower"))
    assert "REJECTED at dedup_exact: dedup_exact.duplicate" in format_trace(trace(str(run), duplicate["id"]))
