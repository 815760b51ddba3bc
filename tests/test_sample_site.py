import pytest
from warcio.archiveiterator import ArchiveIterator

from benchmarks.sample_site import crawl_to_warc, pydoc_page_allowed, serve_directory, serve_python_docs

pytestmark = pytest.mark.slow


def _records(path):
    with open(path, "rb") as stream:
        return [(record.rec_type, record.rec_headers, record.http_headers, record.content_stream().read())
                for record in ArchiveIterator(stream)]


def _response_paths(records):
    return [headers["WARC-Target-URI"].split("/", 3)[3] for kind, headers, _, _ in records if kind == "response"]


def test_pydoc_crawl_writes_a_real_looking_warc(tmp_path):
    with serve_python_docs() as base_url:
        fetched = crawl_to_warc(base_url, tmp_path / "a.warc.gz", 20, page_allowed=pydoc_page_allowed)
        crawl_to_warc(base_url, tmp_path / "b.warc.gz", 20, page_allowed=pydoc_page_allowed)
    records = _records(tmp_path / "a.warc.gz")
    responses = [r for r in records if r[0] == "response"]
    requests = [r for r in records if r[0] == "request"]
    assert records[0][0] == "warcinfo"
    assert len(responses) == 20 == len(fetched)
    for _, _, http, body in responses:
        assert http.get_statuscode() == "200"
        assert http.get_header("Content-Type").startswith("text/html")
        assert b"<html" in body.lower()
    assert len(requests) == 20
    assert requests[0][2].protocol == "GET"
    assert {r[1]["WARC-Concurrent-To"] for r in requests} == {r[1]["WARC-Record-ID"] for r in responses}
    assert all(h["WARC-Target-URI"].startswith(base_url) for _, h, _, _ in responses)
    assert _response_paths(records) == _response_paths(_records(tmp_path / "b.warc.gz"))


def test_directory_crawl_stays_on_host_and_is_breadth_first(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        '<a href="b.html#top">b</a> <a href="a.html">a</a> <a href="http://example.com/x">out</a>'
    )
    (site / "a.html").write_text('<a href="c.html">c</a>')
    (site / "b.html").write_text('<a href="index.html">home</a> <a href="missing.html">gone</a>')
    (site / "c.html").write_text("leaf")
    with serve_directory(site) as base_url:
        fetched = crawl_to_warc(base_url + "index.html", tmp_path / "site.warc.gz", max_pages=10)
    assert [url.removeprefix(base_url) for url in fetched] == [
        "index.html", "a.html", "b.html", "c.html", "missing.html"
    ]
    statuses = [http.get_statuscode() for kind, _, http, _ in _records(tmp_path / "site.warc.gz")
                if kind == "response"]
    assert statuses == ["200", "200", "200", "200", "404"]


def test_max_pages_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="max_pages"):
        crawl_to_warc("http://127.0.0.1:9/", tmp_path / "x.warc.gz", max_pages=0)


def test_the_demo_funnel_counts_pages_and_lists_the_other_records_apart(tmp_path):
    """``make demo`` at a fifteenth of its size: the funnel starts from the pages crawled; the
    WARC's request records and its warcinfo are skipped, listed apart, not rejected."""
    from conftest import assert_conserved

    from pipelines import text
    from pipelines.report import load_report

    with serve_python_docs() as base_url:
        crawl_to_warc(base_url, tmp_path / "docs.warc.gz", 20, page_allowed=pydoc_page_allowed)
    manifest = text.run([str(tmp_path / "docs.warc.gz")], str(tmp_path / "runs"), "demo", text.Config(), [])
    assert manifest["funnel"][0]["in"] == manifest["conservation"]["input"] == 20
    assert manifest["skipped"] == {"warc_request_record": 20, "warcinfo_record": 1}
    assert manifest["conservation"]["skipped"] == 21
    assert not any(reason.endswith("_record") for row in manifest["funnel"] for reason in row["reasons"])
    assert load_report(str(tmp_path / "runs" / "demo"))["skipped"] == manifest["skipped"]
    assert_conserved(tmp_path / "runs" / "demo")
