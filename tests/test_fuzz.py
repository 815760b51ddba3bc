"""Property-based tests (hypothesis): the parsers and every stage on arbitrary input.

Parsers (WARC/WET, JSONL, Parquet, caption tables, WebDataset tars, HTML alt pairs, URL
normalisation, image decoding) never raise on any bytes: each input ends as records or one
quarantine record with a stable reason. Every batch stage of both jobs keeps or rejects any
record with a snake_case reason, never by raising (``<stage>.error`` would be the wrapper
catching a bug), and its signals stay in their documented ranges: fractions and ratios in
[0, 1], counts >= 0, no NaN. Seeded and without deadlines (the ``ci`` profile in conftest).
"""

from __future__ import annotations

import atexit
import gzip
import io
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bad_inputs import http_response, warc_record
from conftest import CLEAN_PROSE, SHARED_DATA
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls
from image_fixtures import photo
from PIL import Image

from pipelines import images, text
from transforms.crawl.url_norm import InvalidUrl, normalize_url
from transforms.images.decode import Decode, DecodeConfig, normalise_bytes
from transforms.images.html_alt import img_alt_pairs
from transforms.images.normalise import ImageRejected
from transforms.images.record import BODY, new_image_record
from transforms.images.tables import read_delimited_table, read_jsonl_table
from transforms.images.webdataset import read_webdataset
from transforms.readers.base import FILE_KEY, new_record
from transforms.readers.input_stream import GZIP_MAGIC, ZSTD_MAGIC
from transforms.readers.jsonl import read_jsonl
from transforms.readers.parquet import read_parquet
from transforms.readers.read_config import ReadConfig
from transforms.readers.warc import read_warc
from transforms.stage import Drop, Stage

REASON = re.compile(r"^[a-z0-9_]+$")
CC_WARC_HEAD = gzip.decompress((SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz").read_bytes())[:40_000]
SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-"))  # hypothesis and function-scoped fixtures do not mix
atexit.register(shutil.rmtree, SCRATCH, True)
# Text as readers hand it on: any Unicode but lone surrogates (readers reject those).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=600)
PROSE_WORDS = CLEAN_PROSE.split(" ")
PROSE = st.lists(st.sampled_from(PROSE_WORDS + ["\n", "\n\n", "...", "#", "{", "}", "lorem ipsum", "•"]),
                 max_size=300).map(" ".join)
DOCUMENT = st.one_of(TEXT, PROSE, st.just(""), st.just(CLEAN_PROSE))


def _file(name: str, data: bytes) -> str:
    path = SCRATCH / name
    path.write_bytes(data)
    return str(path)


def _check_results(results: list, *, file_level_last: bool = True) -> None:
    """Reasons are stable names, ids unique, and a file-level quarantine comes once, last."""
    for _record, drop in results:
        assert drop is None or (isinstance(drop, Drop) and REASON.match(drop.reason)), drop
    ids = [record["id"] for record, _ in results]
    assert len(ids) == len(set(ids))
    quarantines = [i for i, (record, drop) in enumerate(results) if drop and record["source_key"] == FILE_KEY]
    assert len(quarantines) <= 1
    if quarantines and file_level_last:
        assert quarantines[0] == len(results) - 1


# --- WARC / WET -------------------------------------------------------------------------------


@given(st.binary(max_size=4096), st.booleans())
def test_warc_reader_on_arbitrary_bytes(data, gzipped):
    payload = gzip.compress(data) if gzipped else data
    _check_results(list(read_warc(_file("any.warc", payload), ReadConfig())))


@given(st.data())
def test_warc_reader_on_damaged_real_warc(data):
    raw = bytearray(CC_WARC_HEAD)
    for _ in range(data.draw(st.integers(0, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    blob = bytes(raw[:cut])
    if data.draw(st.booleans()):
        whole = gzip.compress(bytes(raw))
        blob = whole[: data.draw(st.integers(0, len(whole)))]
    _check_results(list(read_warc(_file("damaged.warc.gz", blob), ReadConfig())))


WARC_RECORDS = st.lists(
    st.tuples(st.sampled_from(["response", "resource", "request", "metadata", "conversion"]),
              st.binary(max_size=2000)),
    min_size=1, max_size=5,
)


@given(WARC_RECORDS, st.booleans())
def test_well_formed_warcs_read_back_every_record(records, gzipped):
    blobs = []
    for i, (kind, body) in enumerate(records):
        block = http_response(body) if kind == "response" else body
        content_type = {"response": "application/http; msgtype=response", "conversion": "text/plain"}.get(
            kind, "text/html")
        record = warc_record(kind, block, f"https://fuzz.test/{i}", content_type=content_type)
        blobs.append(gzip.compress(record) if gzipped else record)
    results = list(read_warc(_file("generated.warc", b"".join(blobs)), ReadConfig()))
    _check_results(results)
    assert len(results) == len(records)  # one result per record, none lost, none invented
    for (kind, body), (record, drop) in zip(records, results, strict=True):
        assert record["url"].startswith("https://fuzz.test/")
        if kind in ("request", "metadata"):
            assert drop.reason == f"warc_{kind}_record"
        elif kind == "conversion":
            assert (drop is None and record["text"].encode() == body) or drop.reason == "invalid_utf8"
        else:
            assert drop is None and record["body"] == body


# --- JSONL and Parquet --------------------------------------------------------------------------

LINE = st.one_of(
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
    st.dictionaries(st.sampled_from(["text", "url", "id", "x"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=100)), max_size=4)
    .map(lambda d: json.dumps(d).encode()),
)


@given(st.lists(LINE, max_size=20), st.sampled_from(["", "gzip"]))
def test_jsonl_reader_gives_one_result_per_line(lines, codec):
    data = b"\n".join(lines) + b"\n"
    # Compression is told by the first bytes: plain lines that start like gzip or zstd are not.
    assume(codec or not data.startswith((GZIP_MAGIC, ZSTD_MAGIC)))
    results = list(read_jsonl(_file("any.jsonl", gzip.compress(data) if codec else data),
                               ReadConfig(max_record_bytes=200)))
    _check_results(results)
    assert len(results) == sum(1 for line in lines if line.strip())
    for record, drop in results:
        if drop is None:
            assert isinstance(record["text"], str)
            record["text"].encode("utf-8")  # never a string no UTF-8 writer takes


@given(st.lists(st.one_of(st.none(), TEXT), max_size=30), st.integers(1, 8))
def test_parquet_reader_gives_one_result_per_row(texts, batch_rows):
    path = SCRATCH / "rows.parquet"
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path)
    results = list(read_parquet(str(path), ReadConfig(parquet_batch_rows=batch_rows)))
    _check_results(results)
    assert [r["text"] if d is None else None for r, d in results] == texts
    assert [d.reason for _, d in results if d] == ["missing_text"] * texts.count(None)


@given(st.binary(max_size=3000))
def test_parquet_reader_on_arbitrary_bytes(data):
    _check_results(list(read_parquet(_file("any.parquet", b"PAR1" + data), ReadConfig())))


# --- caption tables, tars, HTML alt pairs ------------------------------------------------------


@given(st.binary(max_size=2000), st.sampled_from(["csv", "tsv", "jsonl"]))
def test_caption_table_readers_on_arbitrary_bytes(data, kind):
    path = _file(f"table.{kind}", data)
    if kind == "jsonl":
        results = list(read_jsonl_table(path, None, None))
    else:
        results = list(read_delimited_table(path, "," if kind == "csv" else "\t", None, None))
    _check_results(results)
    assert all(drop is not None or record["url"] for record, drop in results)


@given(st.binary(max_size=4000), st.integers(0, 3))
def test_webdataset_reader_on_arbitrary_and_cut_tars(data, variant):
    if variant:  # a real tar, then cut or with bytes overwritten
        out = io.BytesIO()
        with __import__("tarfile").open(fileobj=out, mode="w") as archive:
            for name, body in (("a.txt", b"a caption"), ("a.jpg", data), ("../b.jpg", b"x")):
                info = __import__("tarfile").TarInfo(name)
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
        whole = out.getvalue()
        data = whole[: len(whole) * variant // 4] if variant < 3 else whole[:100] + data + whole[100:]
    results = list(read_webdataset(_file("shard.tar", data), 10 * 1024 * 1024))
    _check_results(results)


HTML = st.lists(
    st.one_of(
        st.sampled_from(["<img", " src=", " alt=", ">", "<base href=", "'", '"', "<p>", "</p>", "<!--",
                         "http://", "//", "../", "data:", "javascript:", "%", "#", "\x00", "\ufffd"]),
        TEXT,
    ),
    max_size=40,
).map("".join)


@given(st.one_of(HTML.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=500)),
       st.one_of(urls(), st.just("http://a.test/dir/page.html")))
def test_img_alt_pairs_are_absolute_urls_with_alt_text(body, page_url):
    for url, alt in img_alt_pairs(body, page_url):
        assert url.startswith(("http://", "https://")) and alt == " ".join(alt.split()) and alt


# --- URL normalisation --------------------------------------------------------------------------


@given(st.one_of(urls(), TEXT, st.from_regex(r"\Ahttps?://[a-zA-Z0-9.\-\[\]:%@]{0,30}(/[^#]{0,30})?\Z")))
def test_normalize_url_is_idempotent_or_refuses(url):
    try:
        once = normalize_url(url)
    except InvalidUrl as exc:
        assert REASON.match(exc.reason)
        return
    assert once.startswith(("http://", "https://")) and "#" not in once
    assert normalize_url(once) == once


# --- image decoding -----------------------------------------------------------------------------

# (format, mode) pairs Pillow writes and reads back: what image hosts serve. Not ("BMP", "P"):
# Pillow 12.3 cannot read its own palette BMP of a new image ("image file is truncated").
WRITABLE = [("PNG", m) for m in ("RGB", "RGBA", "L", "LA", "P", "1")] + [("JPEG", m) for m in ("RGB", "L", "CMYK")] + [
    ("GIF", "P"), ("GIF", "L"), ("WEBP", "RGB"), ("WEBP", "RGBA"), ("BMP", "RGB"), ("BMP", "1"),
    ("TIFF", "RGB"), ("TIFF", "CMYK"), ("TIFF", "RGBA")]
IMAGE = st.builds(
    lambda w, h, fmt_mode, color: _encoded(Image.new(fmt_mode[1], (w, h), color), fmt_mode[0]),
    st.integers(1, 80), st.integers(1, 80), st.sampled_from(WRITABLE), st.integers(0, 255),
)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@given(IMAGE)
def test_any_real_image_decodes_to_the_configured_square(data):
    columns = normalise_bytes(data, DecodeConfig())
    assert (columns["width"], columns["height"]) == (256, 256) and columns["original_bytes"] == len(data)
    assert Image.open(io.BytesIO(columns["image"])).size == (256, 256)


@given(st.data())
def test_damaged_images_decode_or_are_rejected_with_a_reason(data):
    raw = bytearray(data.draw(st.one_of(st.just(photo("flower")), IMAGE)))
    for _ in range(data.draw(st.integers(0, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(raw[: data.draw(st.integers(0, len(raw)))]) if data.draw(st.booleans()) else bytes(raw)
    try:
        normalise_bytes(blob, DecodeConfig())
    except ImageRejected as exc:
        assert exc.reason in ("too_large", "too_many_pixels", "unsupported_format", "not_an_image", "corrupt")


# --- every batch stage: keep or reject with a reason, signals in range ------------------------

# Off by default: it needs a CLIP checkpoint the user provides (transforms/images/alignment.py).
NEEDS_A_MODEL = {"alignment"}
TEXT_BATCH_STAGES = [s for s in text.STAGES if issubclass(s, Stage)]
IMAGE_BATCH_STAGES = [s for s in images.STAGES if issubclass(s, Stage) and s.name not in NEEDS_A_MODEL]
_STAGES: dict[str, Stage] = {}


def _stage(stage_class, config) -> Stage:
    if stage_class.name not in _STAGES:
        section = getattr(config, stage_class.name)
        if stage_class.name == "llm_guard":  # no server: refused at once, not after backoffs
            section = replace(section, retries=0)
        stage = stage_class(section)
        stage.setup()
        _STAGES[stage_class.name] = stage
    return _STAGES[stage_class.name]


def _in_range(name: str, value, arrow_type: pa.DataType) -> bool:
    if value is None:
        return True
    if pa.types.is_floating(arrow_type):
        if not math.isfinite(value):
            return False
        if name == "aspect_ratio":
            return value >= 1.0
        if name.endswith(("_frac", "_ratio", "_score")):
            return 0.0 <= value <= 1.0
        return value >= 0.0
    if pa.types.is_integer(arrow_type):
        return value >= 0
    if pa.types.is_boolean(arrow_type):
        return isinstance(value, bool)
    if pa.types.is_string(arrow_type):
        return isinstance(value, str)
    return True


def _check_stage(stage: Stage, records: list[dict]) -> None:
    drops = stage.process_batch(records)  # raising here would be a <stage>.error rejection
    assert len(drops) == len(records)
    for record, drop in zip(records, drops, strict=True):
        assert drop is None or (isinstance(drop, Drop) and REASON.match(drop.reason) and drop.reason != "error")
        for field in stage.signal_fields:
            assert _in_range(field.name, record.get(field.name), field.type), (field.name, record.get(field.name))
        if record.get("text_chars") is not None and record.get("text") is not None:
            assert record["text_chars"] == len(record["text"])
        if record.get("c4_lines_after") is not None:
            assert record["c4_lines_after"] <= record["c4_lines_before"]


def _text_record(i: int, text_value: str, url: str | None, lang: str | None, body: bytes | None, ctype: str):
    record = new_record(f"/fuzz/{i}.warc", f"record:{i}", url=url, content_type=ctype, text=text_value)
    if body is not None:
        record.update(body=body, text=None)
    record["lang"] = lang
    return record


TEXT_RECORDS = st.lists(
    st.tuples(DOCUMENT, st.one_of(st.none(), urls(), TEXT), st.sampled_from([None, "en", "de", "zh", "und"]),
              st.one_of(st.none(), st.binary(max_size=800), HTML.map(lambda s: s.encode("utf-8"))),
              st.sampled_from(["text/html; charset=utf-8", "text/plain", "text/html; charset=latin-1",
                               "application/pdf", "", "text/html; charset=bogus"])),
    min_size=1, max_size=4,
)


@pytest.mark.parametrize("stage_class", TEXT_BATCH_STAGES, ids=lambda s: s.name)
@given(rows=TEXT_RECORDS)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_text_stage_keeps_or_rejects_with_signals_in_range(stage_class, rows):
    stage = _stage(stage_class, text.Config())
    records = [_text_record(i, *row) for i, row in enumerate(rows)]
    if stage_class.name not in ("consent", "license", "extract"):  # after extraction: text, no body
        for record in records:
            record.pop("body", None)
            record["text"] = record["text"] if record["text"] is not None else ""
    _check_stage(stage, records)


IMAGE_RECORDS = st.lists(
    st.tuples(st.one_of(st.none(), TEXT, PROSE), st.one_of(st.none(), urls()),
              st.one_of(IMAGE, st.binary(max_size=300))),
    min_size=1, max_size=3,
)


@pytest.mark.parametrize("stage_class", IMAGE_BATCH_STAGES, ids=lambda s: s.name)
@given(rows=IMAGE_RECORDS)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_image_stage_keeps_or_rejects_with_signals_in_range(stage_class, rows):
    stage = _stage(stage_class, images.Config())
    records = []
    for i, (caption, url, data) in enumerate(rows):
        record = new_image_record(f"/fuzz/{i}.tar", f"tar:{i}", url=url, caption=caption)
        record[BODY] = data
        records.append(record)
    if stage_class.name != "decode":  # later stages see decoded images only
        drops = Decode(DecodeConfig()).process_batch(records)
        records = [r for r, d in zip(records, drops, strict=True) if d is None]
        assume(records)
    _check_stage(stage, records)


# --- atheris: coverage-guided, over the WARC reader and the HTML paths ---------------------------

ATHERIS_TARGET = Path(__file__).parent / "fuzz" / "fuzz_warc_html.py"


def test_atheris_finds_no_crash_in_warc_and_html(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    html = b'<html><body><p>Hello <b>world</b></p><img src="x.jpg" alt="a cat"><div><div>x</div></div></body></html>'
    seeds = {
        "cc_head.warc": CC_WARC_HEAD[:6000],
        "page.warc": warc_record("response", http_response(html), "http://a.test/"),
        "wet.warc": warc_record("conversion", CLEAN_PROSE[:300].encode(), "http://a.test/w", content_type="text/plain"),
        "page.html": html,
    }
    seeds["page.warc.gz"] = gzip.compress(seeds["page.warc"])
    for name, data in seeds.items():
        (corpus / name).write_bytes(data)
    fuzz = shlex.join([sys.executable, str(ATHERIS_TARGET), "-runs=2000", "-seed=20241122", "-max_len=16384",
                       f"-artifact_prefix={tmp_path}/", str(corpus)])
    # Linux keeps a process's peak RSS (ru_maxrss, what libFuzzer's 2 GB -rss_limit_mb reads)
    # across fork and exec: started from this test worker, which may hold 2 GB of models by
    # now, the fuzzer would begin over its limit. A shell forks it afresh (`; exit` keeps sh
    # from exec'ing it in its own place).
    done = subprocess.run(["/bin/sh", "-c", f"{fuzz}; exit $?"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Done 2000 runs" in done.stderr
