"""The image-caption job end to end: real photos served on loopback, caption tables written by
the test, a WebDataset tar and a crawled WARC page; every input pair ends in data/ or rejected/
with its stage and reason, and the run is committed like the text job's."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from conftest import assert_conserved, write_warc
from crawl_sites import serve
from image_fixtures import corrupt_png, photo, placeholder_png, png_bomb, truncated, variant
from PIL import Image

from pipelines import images
from transforms.crawl.config import IMAGE_CONTENT_TYPES, CrawlConfig
from transforms.images.dedup import NearImageDedupConfig
from transforms.images.download import DownloadConfig
from transforms.images.normalise import hamming
from transforms.images.nsfw import NsfwConfig

pytestmark = pytest.mark.slow
BEAM_ARGS = ["--runner=FnApiRunner"]
FAST_CRAWL = CrawlConfig(
    content_types=IMAGE_CONTENT_TYPES,
    per_host_rate=500.0,
    per_host_concurrency=4,
    max_retries=0,
    connect_timeout_s=5.0,
    read_timeout_s=5.0,
    total_timeout_s=10.0,
)
PLACEHOLDER_URLS = 12


def _routes() -> dict:
    files = {
        "/img/china.jpg": (photo("china"), "image/jpeg"),
        "/img/flower.jpg": (photo("flower"), "image/jpeg"),
        "/img/china_left.jpg": (variant("china", box=(0, 0, 320, 427)), "image/jpeg"),
        "/img/flower_left.jpg": (variant("flower", box=(0, 0, 320, 427)), "image/jpeg"),
        "/img/china_right.jpg": (variant("china", box=(320, 0, 640, 427)), "image/jpeg"),
        "/img/china_copy.jpg": (photo("china"), "image/jpeg"),
        "/img/china_small.jpg": (variant("china", size=(320, 213), quality=70), "image/jpeg"),
        "/img/tiny.jpg": (variant("flower", size=(150, 100)), "image/jpeg"),
        "/img/corrupt.png": (corrupt_png(), "image/png"),
        "/img/truncated.jpg": (truncated(photo("flower")), "image/jpeg"),
        "/img/bomb.png": (png_bomb(), "image/png"),
        "/img/page.html": (b"<html>not an image</html>", "text/html"),
        "/robots.txt": (b"User-agent: *\nDisallow: /private/\n", "text/plain"),
        "/private/secret.jpg": (photo("flower"), "image/jpeg"),
    }
    for i in range(PLACEHOLDER_URLS):
        files[f"/missing/{i}.jpg"] = (placeholder_png(), "image/png")
    return {
        path: (lambda h, body=body, kind=kind: h.send_body(200, body, kind))
        for path, (body, kind) in files.items()
    }


# (path, caption, expected final reason or None for kept)
ROWS = [
    ("/img/china.jpg", "the roof of a temple in china", None),
    ("/img/flower.jpg", "a pink flower in a garden", None),
    ("/img/china_left.jpg", "left half of a temple photograph", None),
    ("/img/flower_left.jpg", "a close view of a flower on the left", None),
    ("/img/china_copy.jpg", "the same temple photo again on another host", "dedup_exact.duplicate"),
    ("/img/china_small.jpg", "a smaller copy of the temple photo", "dedup_near.near_duplicate"),
    ("/img/china.jpg", "the same url listed twice", "url_dedup.duplicate_url"),
    ("/img/tiny.jpg", "a tiny thumbnail of a flower", "image_filter.too_small"),
    ("/img/corrupt.png", "a picture damaged in transit", "decode.corrupt"),
    ("/img/truncated.jpg", "a photo cut off half way", "decode.corrupt"),
    ("/img/bomb.png", "a png claiming ten gigapixels", "decode.too_many_pixels"),
    ("/img/page.html", "a page that is not an image", "download.bad_content_type"),
    ("/img/nope.jpg", "an image that is not there", "download.http_404"),
    ("/private/secret.jpg", "a photo robots.txt disallows", "download.robots_disallowed"),
    ("/img/flower.jpg?x", "bus", "caption_length.too_few_words"),
    ("/img/flower.jpg?y", "untitled image 3", "caption_boilerplate.generic"),
    ("/img/flower.jpg?z", "ein rotes Haus am Fluss in der Stadt", "caption_language.language_not_allowed"),
] + [
    (f"/missing/{i}.jpg", f"a product photo of a blue kettle model {i}", "placeholder.shared_bytes")
    for i in range(PLACEHOLDER_URLS)
]


def _inputs(tmp_path, site_url):
    table = tmp_path / "pairs.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "caption"])
        for path, caption, _ in ROWS:
            writer.writerow([site_url + path, caption])
    tar = tmp_path / "shard-000.tar"
    with tarfile.open(tar, "w") as archive:
        for name, data in [
            ("s1.jpg", variant("flower", box=(320, 0, 640, 427))),
            ("s1.txt", b"the right half of a flower photo"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    page = b'<html><body><img src="/img/china_right.jpg" alt="the right half of a temple roof"></body></html>'
    warc = write_warc(tmp_path / "crawl.warc.gz", [(site_url + "/blog/post.html", page)])
    return [str(table), str(tar), str(warc)]


def _read_dir(path):
    files = sorted(path.rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("images")
    config = images.Config(download=DownloadConfig(crawl=FAST_CRAWL))
    after_join = replace(config, decode=replace(config.decode, while_fetching=False))
    with serve(_routes()) as site:
        inputs = _inputs(tmp_path, site.url)
        manifest = images.run(inputs, str(tmp_path / "out"), "r1", config, BEAM_ARGS, allow_private_addresses=True)
        images.run(inputs, str(tmp_path / "out"), "r2", after_join, BEAM_ARGS, allow_private_addresses=True)
    assert_conserved(tmp_path / "out" / "r1")
    return manifest, tmp_path / "out" / "r1", site.url


def test_every_pair_ends_with_the_expected_reason(finished_run):
    manifest, run_dir, site_url = finished_run
    kept = _read_dir(run_dir / "data")
    rejected = _read_dir(run_dir / "rejected")
    assert sorted((r["url"] or "").removeprefix(site_url) for r in kept) == sorted(
        [
            "/img/china.jpg",
            "/img/flower.jpg",
            "/img/china_left.jpg",
            "/img/flower_left.jpg",
            "/img/china_right.jpg",
            "",
        ]
    )
    got = sorted((r["caption"], r["reject_reason"]) for r in rejected)
    want = sorted((caption, reason) for _, caption, reason in ROWS if reason)
    if ("the same temple photo again on another host", "dedup_exact.duplicate") not in got:
        # Same bytes and size: the keeper is the smaller id, which may be either row.
        want = [(c, r) for c, r in want if r != "dedup_exact.duplicate"] + [
            ("the roof of a temple in china", "dedup_exact.duplicate")
        ]
        want.sort()
    assert got == want
    c = manifest["conservation"]
    assert c["input"] == len(ROWS) + 2 == c["kept"] + c["rejected"] and c["kept"] == 6
    assert (run_dir / "_SUCCESS").exists()
    assert json.loads((run_dir / "_SUCCESS").read_text())["run_id"] == "r1"


def test_kept_records_carry_image_and_metadata(finished_run):
    _, run_dir, _ = finished_run
    kept = {r["caption"]: r for r in _read_dir(run_dir / "data")}
    china = kept.get("the roof of a temple in china") or kept["the same temple photo again on another host"]
    image = Image.open(io.BytesIO(china["image"]))
    assert image.size == (256, 256) and (china["width"], china["height"]) == (256, 256)
    assert (china["original_width"], china["original_height"], china["original_format"]) == (640, 427, "JPEG")
    assert china["nsfw_score"] < 0.5 and china["http_status"] == 200 and len(china["phash"]) == 16
    warc_pair = kept["the right half of a temple roof"]
    assert warc_pair["page_url"].endswith("/blog/post.html")
    tar_pair = kept["the right half of a flower photo"]
    assert tar_pair["source_key"] == "tar:s1" and tar_pair["http_status"] is None


def test_rejected_records_explain_without_image_bytes(finished_run):
    _, run_dir, _ = finished_run
    rejected = {r["caption"]: r for r in _read_dir(run_dir / "rejected")}
    assert all(r["image"] is None for r in rejected.values())
    near = rejected["a smaller copy of the temple photo"]
    assert near["reject_stage"] == "dedup_near" and near["dup_of"]
    assert rejected["a product photo of a blue kettle model 0"]["sha256_url_count"] >= 10
    assert (run_dir / "rejected" / "stage=decode").is_dir()


def test_decoding_while_fetching_gives_the_records_of_decoding_after_the_join(finished_run):
    """The default decodes each image in the fetch threads as it arrives; the run with
    ``decode.while_fetching`` off decodes after the download's join: same rows, kept and
    rejected (corrupt, truncated, bomb included), but for when each URL was fetched."""
    _, run_dir, _ = finished_run

    def rows(run, folder):
        return sorted(({k: v for k, v in r.items() if k != "fetched_at"} for r in _read_dir(run / folder)),
                      key=lambda r: r["id"])

    for folder in ("data", "rejected"):
        assert rows(run_dir, folder) == rows(run_dir.parent / "r2", folder)
    assert len(rows(run_dir, "rejected")) == len(ROWS) + 2 - 6


def test_ssrf_guard_without_allow_private_addresses(tmp_path):
    config = images.Config(download=DownloadConfig(crawl=FAST_CRAWL), nsfw=NsfwConfig(enabled=False))
    with serve(_routes()) as site:
        table = tmp_path / "pairs.jsonl"
        table.write_text(
            json.dumps({"url": site.url + "/img/china.jpg", "caption": "the roof of a temple"}) + "\n"
        )
        manifest = images.run([str(table)], str(tmp_path / "out"), "r2", config, BEAM_ARGS)
    assert site.hits == []
    assert_conserved(tmp_path / "out" / "r2")
    (download,) = [row for row in manifest["funnel"] if row["stage"] == "download"]
    assert download["reasons"] == {"download.ssrf_blocked": 1}


def test_near_dedup_distance_is_configurable():
    assert hamming("ffff0000ffff0000", "ffff0000ffff00ff") == 8
    with pytest.raises(ValueError):
        NearImageDedupConfig(max_distance=64)


def test_cli_runs_the_images_job(tmp_path, capsys):
    from pipelines import cli

    config = tmp_path / "images.yaml"
    config.write_text(
        "download:\n  crawl:\n    allow_private_addresses: true\n    per_host_rate: 500.0\n"
        "    content_types: [image/jpeg]\nnsfw:\n  enabled: false\n"
    )
    with serve(_routes()) as site:
        table = tmp_path / "pairs.jsonl"
        table.write_text(
            json.dumps({"URL": site.url + "/img/china.jpg", "TEXT": "the roof of a temple in china"})
            + "\n"
            + json.dumps({"URL": site.url + "/img/bomb.png", "TEXT": "a png claiming ten gigapixels"})
            + "\n"
        )
        code = cli.main(
            [
                "run",
                "images",
                "--input",
                str(table),
                "--output",
                str(tmp_path / "out"),
                "--run-id",
                "cli",
                "--config",
                str(config),
            ]
        )
    assert code == 0, capsys.readouterr().err
    assert "reconciled" in capsys.readouterr().out
    assert (tmp_path / "out" / "cli" / "_SUCCESS").exists()
    manifest = assert_conserved(tmp_path / "out" / "cli")
    assert manifest["job"] == "images" and manifest["conservation"]["kept"] == 1
    assert manifest["conservation"]["rejected"] == 1  # the bomb: image/png is not allowed by this config


def test_pages_crawled_first_give_image_alt_pairs(tmp_path):
    from dataclasses import replace

    from pipelines import crawl

    routes = _routes()
    page = (
        b'<html><body><p>A post about a trip.</p><img src="../img/china.jpg" alt="the roof of a temple in china">'
        b'<img src="/img/flower.jpg" alt="DSC_0042"></body></html>'
    )
    routes["/blog/index.html"] = lambda h: h.send_body(200, page, "text/html; charset=utf-8")
    config = images.Config(download=DownloadConfig(crawl=FAST_CRAWL), nsfw=NsfwConfig(enabled=False))
    page_crawl = replace(config.crawl, allow_private_addresses=True, per_host_rate=500.0)
    with serve(routes) as site:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(site.url + "/blog/index.html\n")
        crawled = crawl.run([str(seeds)], str(tmp_path / "out" / "r3"), "crawl", page_crawl, BEAM_ARGS)
        manifest = images.run(
            crawl.warc_files(crawled), str(tmp_path / "out"), "r3", config, BEAM_ARGS, allow_private_addresses=True
        )
    kept = _read_dir(tmp_path / "out" / "r3" / "data")
    assert_conserved(tmp_path / "out" / "r3")
    assert_conserved(tmp_path / "out" / "r3" / "crawl")
    assert [(r["url"], r["page_url"]) for r in kept] == [
        (site.url + "/img/china.jpg", site.url + "/blog/index.html")
    ]
    assert manifest["conservation"]["rejected"] == 1


def test_placeholder_reached_by_redirects_is_caught(tmp_path):
    routes = _routes()
    for i in range(10):
        routes[f"/gone/{i}.jpg"] = lambda h: h.redirect("/missing/0.jpg")
    config = images.Config(download=DownloadConfig(crawl=FAST_CRAWL), nsfw=NsfwConfig(enabled=False))
    with serve(routes) as site:
        table = tmp_path / "pairs.csv"
        table.write_text(
            "url,caption\n" + "".join(f"{site.url}/gone/{i}.jpg,a blue kettle on a shelf {i}\n" for i in range(10))
        )
        manifest = images.run(
            [str(table)], str(tmp_path / "out"), "r4", config, BEAM_ARGS, allow_private_addresses=True
        )
    assert_conserved(tmp_path / "out" / "r4")
    placeholder = next(row for row in manifest["funnel"] if row["stage"] == "placeholder")
    assert placeholder["reasons"] == {"placeholder.shared_bytes": 10}
