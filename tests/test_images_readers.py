"""Image-caption readers: tables of every format and convention, WebDataset tars (with hostile
members), ``<img alt>`` pairs from crawled WARCs."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import write_warc
from image_fixtures import photo

from transforms.images.html_alt import img_alt_pairs
from transforms.images.read import ImageReadConfig, read_caption_file
from transforms.images.webdataset import unsafe_reason


def _read(path, config=ImageReadConfig()):
    return list(read_caption_file(str(path), config))


def test_laion_parquet_columns_recognised(tmp_path):
    path = tmp_path / "laion.parquet"
    pq.write_table(
        pa.table({"URL": ["http://a.test/1.jpg", None], "TEXT": ["a red bus", "x"], "similarity": [0.3, 0.4]}),
        path,
    )
    (first, keep), (second, drop) = _read(path)
    assert keep is None and first["url"] == "http://a.test/1.jpg" and first["caption"] == "a red bus"
    assert drop.reason == "missing_url"
    assert first["id"] != second["id"] and first["source_key"] == "row:0"


def test_cc3m_csv_and_tsv_and_jsonl(tmp_path):
    (tmp_path / "cc3m.csv").write_text('url,caption\nhttp://a.test/1.jpg,"a dog, running"\n')
    (tmp_path / "pairs.tsv").write_text("caption\turl\na cat on a mat\thttp://a.test/2.jpg\n")
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"url": "http://a.test/3.jpg", "text": "a tree"}) + "\n")
    assert _read(tmp_path / "cc3m.csv")[0][0]["caption"] == "a dog, running"
    assert _read(tmp_path / "pairs.tsv")[0][0]["url"] == "http://a.test/2.jpg"
    assert _read(tmp_path / "pairs.jsonl")[0][0]["caption"] == "a tree"


def test_configured_columns_and_missing_columns(tmp_path):
    (tmp_path / "custom.csv").write_text("link,alt\nhttp://a.test/1.jpg,a boat at sea\n")
    config = ImageReadConfig(url_column="link", caption_column="alt")
    assert _read(tmp_path / "custom.csv", config)[0][0]["caption"] == "a boat at sea"
    ((record, drop),) = _read(tmp_path / "custom.csv")
    assert drop.reason == "missing_columns" and record["source_key"] == "file"


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_webdataset_samples_and_hostile_members(tmp_path):
    path = tmp_path / "shard-000.tar"
    _tar(
        path,
        [
            ("s1.jpg", photo("china"), "file"),
            ("s1.txt", b"a temple in china", "file"),
            ("s2.jpg", photo("flower"), "file"),
            ("s2.json", json.dumps({"caption": "a flower", "url": "http://a.test/f.jpg"}).encode(), "file"),
            ("../evil.jpg", b"x", "file"),
            ("/abs.jpg", b"x", "file"),
            ("link.jpg", b"", "sym"),
            ("s3.txt", b"caption without image", "file"),
        ],
    )
    results = {r["source_key"]: (r, d) for r, d in _read(path)}
    assert results["tar:s1"][1] is None and results["tar:s1"][0]["body"] == photo("china")
    assert results["tar:s1"][0]["caption"] == "a temple in china"
    assert results["tar:s2"][0]["url"] == "http://a.test/f.jpg" and results["tar:s2"][0]["caption"] == "a flower"
    assert results["tar:../evil"][1].reason == "unsafe_tar_member"
    assert results["tar:/abs"][1].reason == "unsafe_tar_member"
    assert results["tar:link"][1].reason == "unsafe_tar_member"
    assert results["tar:s3"][1].reason == "missing_image"


def test_unsafe_reason_names_each_case():
    def info(name, kind=tarfile.REGTYPE):
        member = tarfile.TarInfo(name)
        member.type = kind
        return member

    assert "climbs" in unsafe_reason(info("a/../../b.jpg"))
    assert "absolute" in unsafe_reason(info("/b.jpg"))
    assert "link" in unsafe_reason(info("b.jpg", tarfile.LNKTYPE))
    assert unsafe_reason(info("dir/b.jpg")) is None


def test_truncated_tar_keeps_read_samples_and_quarantines(tmp_path):
    path = tmp_path / "cut.tar"
    _tar(
        path,
        [("s1.jpg", photo("china"), "file"), ("s1.txt", b"a temple", "file"), ("s2.jpg", photo("flower"), "file")],
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100_000])
    results = _read(path)
    assert results[-1][1].reason == "corrupt_file"


def test_img_alt_pairs_resolved_against_page():
    html = (
        b'<html><head><base href="/gallery/"></head><body><img src="a.jpg" alt=" A  red bus ">'
        b'<img src="/b.png"><img src="data:image/png;base64,xx" alt="inline">'
        b'<img src="http://other.test/c.jpg" alt="a cat"></body></html>'
    )
    assert img_alt_pairs(html, "http://site.test/page.html") == [
        ("http://site.test/gallery/a.jpg", "A red bus"),
        ("http://other.test/c.jpg", "a cat"),
    ]


def test_warc_pages_give_pairs_with_page_url(tmp_path):
    page = b'<html><body><p>text</p><img src="img/1.jpg" alt="a lighthouse at dusk"></body></html>'
    path = write_warc(tmp_path / "crawl.warc.gz", [("http://site.test/post/1", page)])
    ((record, drop),) = _read(path)
    assert drop is None
    assert record["url"] == "http://site.test/post/img/1.jpg"
    assert record["page_url"] == "http://site.test/post/1" and record["caption"] == "a lighthouse at dusk"


def test_gzipped_csv_and_broken_jsonl(tmp_path):
    import gzip

    (tmp_path / "pairs.csv.gz").write_bytes(gzip.compress(b'url,caption\nhttp://a.test/1.jpg,"two\nlines"\n'))
    ((record, drop),) = _read(tmp_path / "pairs.csv.gz")
    assert drop is None and record["caption"] == "two\nlines"
    (tmp_path / "bad.jsonl").write_text('{"url": "http://a.test/1.jpg", "caption": "a red bus"}\n{oops\n')
    (first, keep), (_, quarantine) = _read(tmp_path / "bad.jsonl")
    assert keep is None and quarantine.reason == "corrupt_file" and "line 2" in quarantine.detail
