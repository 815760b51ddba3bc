"""Caption rewriting in the images job, switched on from the command line: real photos on
loopback, an OpenAI-compatible server on loopback whose rewrites are known, so that each outcome
can be asserted: a rewrite that passes the caption gates is published with its parent's image,
one that repeats its parent caption is dropped as such, one too short is dropped by the
caption length gate; every created record is accounted for."""

from __future__ import annotations

import csv
import json

import pyarrow.dataset as ds
import pytest
from conftest import assert_conserved
from crawl_sites import serve
from image_fixtures import photo, variant
from synthetic_servers import FakeServer

from pipelines import cli

pytestmark = pytest.mark.slow

ROWS = {
    "/img/china.jpg": ("the roof of a temple in china", "The roof of a temple in China."),
    "/img/flower.jpg": ("a pink flower in a garden", "A pink flower blooming in a sunny garden bed."),
    "/img/flower_left.jpg": ("a close view of a flower on the left", "Pink flower."),
}


def _routes() -> dict:
    files = {
        "/img/china.jpg": photo("china"),
        "/img/flower.jpg": photo("flower"),
        "/img/flower_left.jpg": variant("flower", box=(0, 0, 320, 427)),
    }
    return {path: (lambda h, body=body: h.send_body(200, body, "image/jpeg")) for path, body in files.items()}


def _rewrite(body: dict) -> str:
    caption = body["messages"][1]["content"].split("Caption: ", 1)[1].strip()
    return next(new for old, new in ROWS.values() if old == caption)


def test_images_job_rewrites_captions_from_the_command_line(tmp_path):
    config = tmp_path / "images.yaml"
    with serve(_routes()) as site, FakeServer() as server:
        server.respond = _rewrite
        table = tmp_path / "pairs.csv"
        with open(table, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["url", "caption"])
            for path, (caption, _) in ROWS.items():
                writer.writerow([site.url + path, caption])
        config.write_text(json.dumps({
            "download": {"crawl": {"per_host_rate": 500.0, "max_retries": 0}},
            "synthetic": {"backend": "openai", "server_url": server.base_url, "server_model": "fake",
                          "retries": 0, "cache_uri": str(tmp_path / "cache")},
        }))
        code = cli.main(["run", "images", "--input", str(table), "--output", str(tmp_path / "out"),
                         "--run-id", "r1", "--config", str(config), "--synthetic", "caption",
                         "--allow-private-addresses"])
        assert code == 0
        assert len(server.requests) == 3
    run_dir = tmp_path / "out" / "r1"
    manifest = assert_conserved(run_dir)
    data = ds.dataset(run_dir / "data", format="parquet").to_table().to_pylist()
    rejected = ds.dataset(run_dir / "rejected", format="parquet").to_table().to_pylist()
    crawled = {r["id"]: r for r in data if not r["synthetic"]}
    assert sorted(r["caption"] for r in crawled.values()) == sorted(old for old, _ in ROWS.values())

    (rewrite,) = [r for r in data if r["synthetic"]]
    parent = crawled[rewrite["parent_id"]]
    assert rewrite["caption"] == "A pink flower blooming in a sunny garden bed."
    assert rewrite["template"] == "caption@v1" and rewrite["generator"] == "openai/fake"
    assert rewrite["image"] == parent["image"] and rewrite["sha256"] == parent["sha256"]
    assert rewrite["id"] != parent["id"] and rewrite["caption_lang"] == "en"

    dropped = {r["caption"]: r for r in rejected if r["synthetic"]}
    assert dropped["The roof of a temple in China."]["reject_reason"] == "caption_dedup.same_as_parent"
    assert dropped["Pink flower."]["reject_reason"] == "caption_length.too_few_words"
    assert all(r["reject_stage"] == "synthetic" for r in dropped.values())

    c = manifest["conservation"]
    assert c["read"] == 3 and c["created"] == 3 and c["input"] == 6 == c["kept"] + c["rejected"]
    funnel = manifest["funnel"]
    assert funnel[-1]["stage"] == "synthetic" and funnel[-1]["created"] == 3
    assert funnel[-1]["kept"] == funnel[-1]["in"] + 3 - 2 == len(data)
    stats = manifest["synthetic"]["templates"]["caption@v1"]
    assert stats["attempted"] == 3 and stats["accepted"] == 1 and stats["acceptance_rate"] == round(1 / 3, 4)
    assert json.loads((run_dir / "validation" / "synthetic.json").read_text())["success"]
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert report["synthetic"]["templates"]["caption@v1"]["accepted"] == 1
    assert "caption_dedup.same_as_parent" in (run_dir / "report" / "index.html").read_text()
