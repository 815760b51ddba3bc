import gzip

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from fastwarc.warc import ArchiveIterator, WarcRecordType

from benchmarks.extraction_quality import (
    DEFAULT_DATA,
    load_gold,
    load_pages,
    load_published,
    page_tp_fp_fn,
    score,
)
from transforms.extract import Extract, ExtractConfig
from transforms.stage import ApplyStage

AEB = DEFAULT_DATA
CC_WARC = AEB.parent / "cc-warc-resiliparse" / "warcfile.warc.gz"
UTF8_HTML = "text/html; charset=utf-8"
# Real article pages of the benchmark: a WSJ feature, and the first pages in file order.
SAMPLE_PAGES = 8


def _stage(**overrides) -> Extract:
    stage = Extract(ExtractConfig(**overrides))
    stage.setup()
    return stage


def _run(stage: Extract, body: bytes | None, content_type: str | None = UTF8_HTML, **fields):
    record = {"id": "r", "content_type": content_type, "text": None, "body": body, **fields}
    (drop,) = stage.process_batch([record])
    return record, drop


@pytest.fixture(scope="module")
def gold():
    return load_gold(AEB)


@pytest.fixture(scope="module")
def pages():
    return dict(list(load_pages(AEB).items())[:SAMPLE_PAGES])


def test_scorer_matches_the_benchmarks_published_figures(gold):
    # SOURCES.md: trafilatura 2.0.0 scores F1 0.958 and jusText 0.804 with evaluate.py.
    assert score(gold, load_published(AEB, "trafilatura"))["f1"] == pytest.approx(0.958, abs=0.001)
    assert score(gold, load_published(AEB, "justext"))["f1"] == pytest.approx(0.804, abs=0.001)


def test_shingle_counts_are_normalised_per_page():
    # Gold shingles (a b c d), (b c d e); predicted (a b c d): one hit, one miss.
    assert page_tp_fp_fn("a b c d e", "a b c d") == (0.5, 0.0, 0.5)
    assert page_tp_fp_fn("a, b!", "a b") == (1.0, 0.0, 0.0)  # fewer words than a shingle
    assert page_tp_fp_fn("", "") == (0.0, 0.0, 0.0)
    gold = {"p1": "a b c d e", "p2": "x y z w", "p3": "one two three four"}
    pred = {"p1": "a b c d", "p2": "x y z w q", "p3": None}
    # p2 adds one wrong shingle; p3 predicts nothing: it counts for recall, not for precision.
    result = score(gold, pred)
    assert result["precision"] == pytest.approx((1.0 + 0.5) / 2)
    assert result["recall"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)


@pytest.mark.parametrize(
    ("extractor", "classifier"),
    [("resiliparse", False), ("resiliparse", True), ("trafilatura", False)],
)
def test_real_pages_give_their_article_text(extractor, classifier, gold, pages):
    stage = _stage(extractor=extractor, resiliparse_classifier=classifier)
    records = [
        {"id": k, "body": b, "content_type": UTF8_HTML, "text": None} for k, b in pages.items()
    ]
    assert stage.process_batch(records) == [None] * len(records)
    for record in records:
        tp, _, fn = page_tp_fp_fn(gold[record["id"]], record["text"])
        assert tp / (tp + fn) > 0.7, record["id"]  # recall of the gold article's shingles
        assert record["extractor"] == extractor
        assert record["encoding"] == "utf-8"
        assert record["html_bytes"] == len(pages[record["id"]])
        assert record["text_chars"] == len(record["text"])
    predicted = {r["id"]: r["text"] for r in records}
    assert score({k: gold[k] for k in predicted}, predicted)["f1"] > 0.8


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_common_crawl_pages_decode_from_their_declared_or_detected_charset(extractor):
    with CC_WARC.open("rb") as stream:
        records = [
            {
                "id": r.record_id,
                "body": r.reader.read(),
                "content_type": r.http_headers.get("Content-Type"),
                "text": None,
            }
            for r in ArchiveIterator(stream, record_types=WarcRecordType.response)
        ]
    drops = _stage(extractor=extractor).process_batch(records)
    # Every page decodes; the default's boilerplate classifier may find no main text on one
    # (a breadcrumb-only spam page): that is empty_text, after decoding.
    assert len(records) == 16 and all(d is None or d.reason == "empty_text" for d in drops)
    encodings = {r["content_type"]: r["encoding"] for r in records}
    assert encodings["text/html; charset=windows-1251"] == "cp1251"
    assert encodings["text/html; charset=gb2312"] == "gbk"  # WHATWG: gb2312 is read as GBK
    assert {r["encoding"] for r in records} == {"utf-8", "cp1251", "gbk", "cp1252"}
    assert all(r["replacement_char_ratio"] == 0 for r in records)
    texts = "\n".join(r["text"] for r in records)
    assert "узкоспециализированное предприятие" in texts and "\ufeff" not in texts


def test_signals_fit_the_declared_schema(pages):
    stage = _stage()
    records = [
        {"id": k, "body": b, "content_type": UTF8_HTML, "text": None} for k, b in pages.items()
    ]
    records.append({"id": "t", "content_type": "text/plain", "text": "already text"})
    stage.process_batch(records)
    schema = pa.schema(Extract.signal_fields)
    table = pa.Table.from_pylist([{f.name: r[f.name] for f in schema} for r in records], schema)
    assert table.num_rows == len(records)


def test_binary_body_is_binary_content():
    compressed = next(iter(sorted((AEB / "html").glob("*.html.gz")))).read_bytes()
    record, drop = _run(_stage(), compressed)
    assert drop.reason == "binary_content"
    assert record["text"] is None and "body" not in record


def test_body_over_the_limit_is_too_large(pages):
    body = next(iter(pages.values()))
    record, drop = _run(_stage(max_body_bytes=len(body) - 1), body)
    assert drop.reason == "too_large"
    assert record["html_bytes"] == len(body)
    assert "body" not in record


def test_invalid_utf8_is_decoded_with_replacement_characters():
    prose = "Le café est servi chaud dans la grande salle du restaurant. " * 20
    body = f"<html><body><p>{prose}</p></body></html>".encode().replace(
        b"caf\xc3\xa9", b"caf\xe9", 1
    )
    record, drop = _run(_stage(), body)
    assert drop is None
    assert "caf\ufffd est" in record["text"] and "café" in record["text"]
    assert 0 < record["replacement_char_ratio"] < 0.01


@pytest.mark.parametrize("classifier", [False, True])
def test_mostly_garbage_bytes_are_bad_encoding(classifier):
    garbage = bytes((0x80 + (i * 37) % 0x40) for i in range(4000))  # UTF-8 continuation bytes only
    html = b"<html><body><p>" + garbage + b"</p></body></html>"
    # The classifier drops that paragraph: the share is read from all of the page's text.
    record, drop = _run(_stage(resiliparse_classifier=classifier), html)
    assert drop.reason == "bad_encoding"
    assert record["replacement_char_ratio"] > 0.5
    assert "body" not in record


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "expected"),
    [
        ("<p>Déjà vu</p>".encode("cp1252"), "text/html; charset=ISO-8859-1", "cp1252", "Déjà vu"),
        (
            '<html><head><meta charset="windows-1251"></head><body><p>Привет, мир</p>'.encode(
                "cp1251"
            ),
            "text/html",
            "cp1251",
            "Привет, мир",
        ),
        ("\ufeff<p>Текст UTF-16</p>".encode("utf-16-le"), "text/html", "utf-16-le", "Текст UTF-16"),
        ("<p>Ошибка</p>".encode(), "text/html; charset=no-such-charset", "utf-8", "Ошибка"),
    ],
)
def test_charset_comes_from_bom_header_meta_or_detection(body, content_type, encoding, expected):
    record, drop = _run(_stage(), body, content_type)
    assert drop is None
    assert record["encoding"] == encoding
    assert record["text"] == expected


def test_plain_text_is_decoded_not_parsed():
    record, drop = _run(_stage(), b"a <b>literal</b> tag\n", "text/plain; charset=utf-8")
    assert drop is None
    assert record["text"] == "a <b>literal</b> tag"
    assert record["extractor"] == "plain"


def test_other_content_types_are_unsupported():
    _, drop = _run(_stage(), b"%PDF-1.7 text-looking header", "application/pdf")
    assert drop.reason == "unsupported_content_type" and drop.detail == "application/pdf"


@pytest.mark.parametrize(
    "body", [b"", b"<html><head><script>var x = 1;</script></head><body></body></html>"]
)
def test_no_text_is_empty_text(body):
    record, drop = _run(_stage(), body)
    assert drop.reason == "empty_text"
    assert record["text_chars"] == 0


def test_text_records_pass_through_untouched():
    text = "  Already extracted\n\ntext from a WET file  "
    record = {"id": "w", "content_type": "text/plain", "text": text}
    assert _stage().process_batch([record]) == [None]
    assert record["text"] == text
    assert record["extractor"] == "none"
    assert record["text_chars"] == len(text)
    assert record["html_bytes"] is None and record["encoding"] is None


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
@pytest.mark.parametrize(
    "html",
    [
        "<html><body>" + "<div>" * 100_000 + "deep" + "</div>" * 100_000 + "</body></html>",
        "<html><body>" + "<ul><li>item" * 50_000,
    ],
    ids=["div", "ul"],
)
def test_deeply_nested_html_is_too_deep(extractor, html):
    record, drop = _run(_stage(extractor=extractor), html.encode())
    assert drop.reason == "too_deep"
    assert "body" not in record


def test_nesting_under_the_limit_is_extracted():
    words = "words that make up the single paragraph at the bottom of the page"
    html = "<html><body>" + "<div>" * 400 + f"<p>{words}</p>" + "</div>" * 400
    record, drop = _run(_stage(resiliparse_main_content=False), html.encode())
    assert drop is None and record["text"] == words


def test_parser_errors_are_parse_error():
    stage = _stage(extractor="trafilatura")

    def broken(*args, **kwargs):
        raise ValueError("parser gave up")

    stage._trafilatura_extract = broken
    record, drop = _run(stage, b"<html><body><p>text</p></body></html>")
    assert drop.reason == "parse_error" and "parser gave up" in drop.detail
    assert "body" not in record


def test_config_is_validated():
    with pytest.raises(ValueError, match="extractor"):
        ExtractConfig(extractor="beautifulsoup")
    with pytest.raises(ValueError, match="max_binary_ratio"):
        ExtractConfig(max_binary_ratio=2.0)


def test_body_never_reaches_either_output_of_the_beam_stage():
    page = gzip.decompress(next(iter(sorted((AEB / "html").glob("*.html.gz")))).read_bytes())
    records = [
        {"id": "page", "body": page, "content_type": UTF8_HTML, "text": None},
        {
            "id": "png",
            "body": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10,
            "content_type": None,
            "text": None,
        },
        {"id": "jsonl", "content_type": "text/plain", "text": "from a JSONL file"},
    ]
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        out = pipeline | beam.Create(records) | ApplyStage(Extract(ExtractConfig()))
        kept = out.kept | "KeptKeys" >> beam.Map(lambda r: (r["id"], "body" in r, bool(r["text"])))
        rejected = out.rejected | "RejectedKeys" >> beam.Map(
            lambda r: (r["id"], "body" in r, r["reject_reason"])
        )
        assert_that(kept, equal_to([("page", False, True), ("jsonl", False, True)]), label="Kept")
        assert_that(
            rejected, equal_to([("png", False, "extract.binary_content")]), label="Rejected"
        )
