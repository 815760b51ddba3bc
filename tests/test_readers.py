import gzip
import json
import random
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.archiveiterator import ArchiveIterator as WarcioIterator

from transforms.readers.base import Skip
from transforms.readers.jsonl import read_jsonl
from transforms.readers.parquet import read_parquet
from transforms.readers.read_config import JSONL, PARQUET, WARC, ReadConfig
from transforms.readers.read_inputs import read_file
from transforms.readers.warc import read_warc
from transforms.record import stable_id

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CC_WARC = DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
CLIPPED = DATA / "cc-warc-resiliparse" / "clipped.warc.gz"
WARCIO = DATA / "warcio-examples"
WET_SAMPLE = DATA / "ccnet-wet-sample" / "sample.warc.txt"

BASE_FIELDS = {
    "id",
    "url",
    "domain",
    "source",
    "source_key",
    "fetched_at",
    "content_type",
    "text",
    "synthetic",
    "parent_id",
    "generator",
    "template",
}


def _read(reader, path, config=ReadConfig()):
    return list(reader(str(path), config))


def _reasons(results):
    """Kept, rejected by reason, and skipped (no document: ``Skip``) by type."""
    return Counter("kept" if drop is None else f"skipped:{drop.reason}" if isinstance(drop, Skip) else drop.reason
                   for _, drop in results)


def _kept(results):
    return [record for record, drop in results if drop is None]


def _warcio_payloads(path):
    """Ground truth from the other WARC library: record count and decoded payloads by record id."""
    count, payloads = 0, {}
    with open(path, "rb") as handle:
        for record in WarcioIterator(handle):
            count += 1
            if record.rec_type in ("response", "resource"):
                payloads[record.rec_headers.get_header("WARC-Record-ID")] = record.content_stream().read()
    return count, payloads


def _warc(*records):
    return b"".join(records)


def _warc_record(warc_type, block, *, record_id, uri=None, content_type="application/http; msgtype=response"):
    headers = [("WARC-Type", warc_type), ("WARC-Record-ID", record_id), ("WARC-Date", "2024-05-01T12:00:00Z")]
    if uri:
        headers.append(("WARC-Target-URI", uri))
    headers += [("Content-Type", content_type), ("Content-Length", str(len(block)))]
    head = "".join(f"{key}: {value}\r\n" for key, value in headers)
    return b"WARC/1.0\r\n" + head.encode() + b"\r\n" + block + b"\r\n\r\n"


def _http(status, body, *headers):
    lines = [f"HTTP/1.1 {status} Whatever", "Content-Type: text/html; charset=utf-8", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- WARC -------------------------------------------------------------------------------------


def test_cc_warc_keeps_exactly_the_16_responses():
    results = _read(read_warc, CC_WARC)
    assert _reasons(results) == {
        "kept": 16,
        "skipped:warcinfo_record": 1,
        "skipped:warc_request_record": 17,
        "skipped:warc_metadata_record": 16,
    }
    count, payloads = _warcio_payloads(CC_WARC)
    assert len(results) == count == 50
    for record in _kept(results):
        assert set(record) >= BASE_FIELDS
        assert record["body"] == payloads[record["source_key"]]
        assert record["source"] == str(CC_WARC)
        assert record["url"].startswith("http") and record["domain"]
        assert record["content_type"].startswith("text/html")
        assert record["fetched_at"].tzinfo is not None
        assert record["fetched_at"].utcoffset().total_seconds() == 0
        assert record["text"] is None and record["synthetic"] is False
    first = _kept(results)[0]
    assert first["url"] == "http://003338.cn/l41/481397.html"
    assert first["fetched_at"] == datetime(2020, 8, 8, 17, 27, 41, tzinfo=UTC)
    assert first["source_key"] == "<urn:uuid:c4c112a5-3503-4483-abf8-51a0dd86dd53>"
    assert first["id"] == stable_id("warcfile.warc.gz", first["source_key"])


def test_ids_are_stable_and_unique():
    first = [record["id"] for record, _ in _read(read_warc, CC_WARC)]
    second = [record["id"] for record, _ in _read(read_warc, CC_WARC)]
    assert first == second
    assert len(set(first)) == len(first) == 50


def test_clipped_gzip_gives_one_truncated_file_record():
    # clipped.warc.gz holds one response record, cut inside its gzip member: nothing complete
    # precedes the damage, so nothing is kept and the file is one quarantine record.
    results = _read(read_warc, CLIPPED)
    assert _reasons(results) == {"truncated_file": 1}
    record, drop = results[0]
    assert record["id"] == stable_id("clipped.warc.gz", "file") and record["source_key"] == "file"
    assert str(CLIPPED) in drop.detail
    assert "byte offset 75657" in drop.detail and "compressed offset 18184" in drop.detail


def test_truncated_warc_keeps_records_before_the_cut(tmp_path):
    full = _read(read_warc, CC_WARC)
    cut = tmp_path / "warcfile.warc.gz"
    cut.write_bytes(CC_WARC.read_bytes()[:70_000])
    results = _read(read_warc, cut)
    assert results[-1][1].reason == "truncated_file"
    assert "compressed offset 70000" in results[-1][1].detail
    before = results[:-1]
    assert 0 < len(_kept(before)) < 16
    assert [r["id"] for r, _ in before] == [r["id"] for r, _ in full[: len(before)]]


def test_warc_cut_mid_record_uncompressed(tmp_path):
    raw = gzip.decompress(CC_WARC.read_bytes())
    cut = tmp_path / "cut.warc"
    cut.write_bytes(raw[:42_775])  # inside the 2nd response's payload (it starts at 39,775)
    results = _read(read_warc, cut)
    assert _reasons(results) == {
        "skipped:warcinfo_record": 1,
        "skipped:warc_request_record": 2,
        "kept": 1,
        "skipped:warc_metadata_record": 1,
        "truncated_file": 1,
    }
    assert "WARC record at byte offset 39775 ends early" in results[-1][1].detail


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "example.warc",
            {"skipped:warcinfo_record": 2, "kept": 1, "skipped:warc_request_record": 2, "skipped:warc_revisit_record": 1},
        ),
        (
            "example.warc.gz",
            {"skipped:warcinfo_record": 2, "kept": 1, "skipped:warc_request_record": 2, "skipped:warc_revisit_record": 1},
        ),
        ("example-iana.org-chunked.warc", {"skipped:warcinfo_record": 1, "kept": 1, "skipped:warc_request_record": 1}),
        ("example-resource.warc.gz", {"skipped:warcinfo_record": 2, "kept": 1}),
        ("post-test.warc.gz", {"kept": 3, "skipped:warc_request_record": 3}),
        ("example-digest.warc", {"skipped:warc_request_record": 4}),
    ],
)
def test_warcio_examples_decode_like_warcio(name, expected):
    path = WARCIO / name
    results = _read(read_warc, path)
    assert _reasons(results) == expected
    count, payloads = _warcio_payloads(path)
    assert len(results) == count
    for record in _kept(results):
        # gzip Content-Encoding (example.warc) and chunked transfer (iana) come out decoded.
        assert record["body"] == payloads[record["source_key"]]


def test_resource_record_takes_the_warc_content_type():
    (record,) = _kept(_read(read_warc, WARCIO / "example-resource.warc.gz"))
    assert record["content_type"] == "text/html; charset=utf-8"
    assert record["url"] == "http://example.com/" and record["body"].startswith(b"<!DOCTYPE html>")


def test_gzip_content_encoding_is_decoded():
    (record,) = _kept(_read(read_warc, WARCIO / "example.warc"))
    assert record["body"].startswith(b"<!doctype html>") and len(record["body"]) == 1270


def test_arc_file_is_not_read_as_warc():
    results = list(read_file(str(WARCIO / "example.arc.gz"), ReadConfig()))
    assert _reasons(results) == {"unsupported_format": 1}
    assert "filedesc://" in results[0][1].detail


def test_non_2xx_and_invalid_status_are_rejected(tmp_path):
    path = tmp_path / "status.warc"
    path.write_bytes(
        _warc(
            _warc_record("response", _http(200, b"<p>ok</p>"), record_id="<urn:a>", uri="http://a.example/"),
            _warc_record(
                "response", _http(404, b"<p>gone</p>"), record_id="<urn:b>", uri="http://b.example/"
            ),
            _warc_record(
                "response", _http(301, b"", "Location: /x"), record_id="<urn:c>", uri="http://c.example/"
            ),
            _warc_record(
                "response", _http(206, b"<p>part</p>"), record_id="<urn:d>", uri="http://d.example/"
            ),
        )
    )
    results = _read(read_warc, path)
    assert _reasons(results) == {"kept": 2, "http_status_404": 1, "http_status_301": 1}
    assert results[1][1].detail.startswith("HTTP/1.1 404")
    assert results[1][0]["url"] == "http://b.example/"


def test_http_encodings_and_decoding_errors(tmp_path):
    html = b"<html><body>" + b"hello " * 2000 + b"</body></html>"
    deflated = zlib.compress(html)
    raw_deflate = zlib.compressobj(wbits=-15)
    raw_deflated = raw_deflate.compress(html) + raw_deflate.flush()
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(html[i : i + 1000]), html[i : i + 1000]) for i in range(0, len(html), 1000)
    )
    path = tmp_path / "enc.warc"
    path.write_bytes(
        _warc(
            _warc_record("response", _http(200, deflated, "Content-Encoding: deflate"), record_id="<urn:1>"),
            _warc_record(
                "response", _http(200, raw_deflated, "Content-Encoding: deflate"), record_id="<urn:2>"
            ),
            _warc_record(
                "response",
                _http(200, chunked + b"0\r\n\r\n", "Transfer-Encoding: chunked"),
                record_id="<urn:3>",
            ),
            _warc_record(
                "response", _http(200, gzip.compress(chunked), "Content-Encoding: gzip"), record_id="<urn:4>"
            ),
            _warc_record("response", _http(200, html, "Content-Encoding: gzip"), record_id="<urn:5>"),
            _warc_record(
                "response", _http(200, b"\x1f\x8bnot gzip", "Content-Encoding: gzip"), record_id="<urn:6>"
            ),
            _warc_record(
                "response",
                _http(200, gzip.compress(b"x" * 50_000), "Content-Encoding: gzip"),
                record_id="<urn:7>",
            ),
        )
    )
    results = _read(read_warc, path, ReadConfig(max_record_bytes=20_000))
    bodies = [record.get("body") for record, _ in results]
    assert bodies[:3] == [html, html, html]
    assert bodies[3] == chunked  # gzip decoded; the chunks were the content itself
    assert bodies[4] == html  # stored decoded with the header kept
    assert results[5][1].reason == "http_decoding_error"
    assert results[6][1].reason == "record_too_large"  # 50 kB once decoded: a bomb guard


def test_record_too_large():
    results = _read(read_warc, CC_WARC, ReadConfig(max_record_bytes=20_000))
    counts = _reasons(results)
    assert counts["kept"] + counts["record_too_large"] == 16
    assert counts["record_too_large"] == 8  # payloads of 23-108 kB
    assert len(results) == 50
    assert all(len(r["body"]) <= 20_000 for r in _kept(results))


def _rebuilt_wet(sample: bytes) -> tuple[bytes, list[bytes]]:
    """The cc_net sample rewritten as valid WARC: CRLF header lines, Content-Length in bytes."""
    records, blocks = [], []
    for part in sample.split(b"WARC/1.0\n")[1:]:
        head, _, body = part.partition(b"\n\n")
        block = body.rstrip(b"\n") + b"\n"
        lines = [line for line in head.split(b"\n") if not line.startswith(b"Content-Length")]
        lines.append(b"Content-Length: %d" % len(block))
        record = b"WARC/1.0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + block + b"\r\n\r\n"
        records.append(gzip.compress(record))  # one gzip member per record, like Common Crawl
        blocks.append(block)
    return b"".join(records), blocks


def test_wet_sample_as_shipped_is_malformed():
    # LF line endings and Content-Length counted in characters, not bytes: no WARC parser can
    # frame it (warcio fails too), so it is one corrupt_file record, found by sniffing "WARC/".
    results = list(read_file(str(WET_SAMPLE), ReadConfig()))
    assert _reasons(results) == {"corrupt_file": 1}
    assert "CRLF" in results[0][1].detail


def test_wet_conversion_records(tmp_path):
    data, blocks = _rebuilt_wet(WET_SAMPLE.read_bytes())
    path = tmp_path / "sample.warc.wet.gz"
    path.write_bytes(data)
    results = _read(read_warc, path)
    assert _reasons(results) == {"skipped:warcinfo_record": 1, "kept": 3}
    kept = _kept(results)
    assert [r["text"].split("\n")[0] for r in kept] == [
        "Famous Mark Twain Quotes",
        "馬克·吐溫名言",
        "Цитаты знаменитого Марка Твена",
    ]
    assert [r["text"].encode() for r in kept] == blocks[1:]
    assert [r["content_type"] for r in kept] == ["text/plain"] * 3
    assert kept[1]["url"] == "http://sample_chinese.zh"
    # The sample gives two records the same WARC-Record-ID; ids must still be unique.
    assert kept[1]["source_key"] == kept[0]["source_key"] + "#2"
    assert len({r["id"] for r, _ in results}) == 4


def test_damaged_warcs_never_raise(tmp_path):
    raw = CC_WARC.read_bytes()
    plain = gzip.decompress(raw)
    rng = random.Random(20240501)
    for i in range(60):
        data = bytearray(raw if i % 2 else plain)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        path = tmp_path / f"fuzz{i}.warc"
        path.write_bytes(bytes(data))
        results = _read(read_warc, path)
        damage = [drop.reason for _, drop in results if drop and drop.reason.endswith("_file")]
        assert len(damage) <= 1 and (not damage or results[-1][1].reason == damage[0])


# --- JSONL ------------------------------------------------------------------------------------


def _jsonl_lines():
    return [
        b'{"text": "first document", "url": "https://news.example.co.uk/a"}\n',
        b"{not json\n",
        b'{"text": "bad \xff byte"}\n',
        b'{"title": "no text"}\n',
        b'{"text": 42}\n',
        b'["an", "array"]\n',
        b"\n",
        b'{"text": "' + b"x" * 500 + b'"}\n',
        b'{"text": "lone \\ud800 surrogate"}\n',
        b'{"text": "pair \\ud83d\\ude00 ok"}\n',
        b'{"text": "last line without newline"}',
    ]


def test_jsonl_drop_reasons_name_the_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"".join(_jsonl_lines()))
    results = _read(read_jsonl, path, ReadConfig(max_record_bytes=200))
    reasons = [drop.reason if drop else "kept" for _, drop in results]
    assert reasons == [
        "kept",
        "invalid_json",
        "invalid_utf8",
        "missing_text",
        "missing_text",
        "invalid_json",
        "line_too_large",
        "invalid_utf8",
        "kept",
        "kept",
    ]
    keys = [record["source_key"] for record, _ in results]
    assert keys == [
        "line:1",
        "line:2",
        "line:3",
        "line:4",
        "line:5",
        "line:6",
        "line:8",
        "line:9",
        "line:10",
        "line:11",
    ]
    for (_, drop), key in zip(results, keys, strict=True):
        assert drop is None or drop.detail.startswith(key.replace(":", " "))
    first = results[0][0]
    assert first["text"] == "first document" and first["domain"] == "example.co.uk"
    assert first["id"] == stable_id("docs.jsonl", "line:1")
    assert results[8][0]["text"] == "pair \U0001f600 ok"


def test_jsonl_oversized_line_is_skipped_as_it_streams(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"text": "' + b"y" * 3_000_000 + b'"}\n{"text": "after"}\n')
    results = _read(read_jsonl, path, ReadConfig(max_record_bytes=1000))
    assert [drop.reason if drop else record["text"] for record, drop in results] == [
        "line_too_large",
        "after",
    ]


def test_jsonl_configured_fields(tmp_path):
    path = tmp_path / "custom.jsonl"
    rows = [
        {"content": "a", "doc_id": "d-1", "link": "http://x.org/1", "ts": "2024-03-01T10:00:00Z"},
        {"content": "b", "doc_id": 7, "ts": 1700000000},
        {"content": "c", "ts": "not a date"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = ReadConfig(text_field="content", id_field="doc_id", url_field="link", fetched_at_field="ts")
    results = _read(read_jsonl, path, config)
    assert [drop.reason if drop else "kept" for _, drop in results] == ["kept", "kept", "missing_id"]
    first, second = results[0][0], results[1][0]
    assert first["source_key"] == "d-1" and first["id"] == stable_id("custom.jsonl", "d-1")
    assert first["url"] == "http://x.org/1" and first["domain"] == "x.org"
    assert first["fetched_at"] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert second["source_key"] == "7" and second["url"] is None
    assert second["fetched_at"] == datetime.fromtimestamp(1700000000, tz=UTC)
    assert results[2][0]["source_key"] == "line:3"


def _many_lines(n=20_000):
    return b"".join(
        json.dumps({"text": f"document number {i} " + "w" * (i % 97)}).encode() + b"\n" for i in range(n)
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".json"])
def test_jsonl_compressions_read_alike(tmp_path, suffix):
    data = _many_lines()
    compress = {".jsonl.gz": gzip.compress, ".jsonl.zst": zstandard.ZstdCompressor().compress}.get(
        suffix, bytes
    )
    path = tmp_path / f"docs{suffix}"
    path.write_bytes(compress(data))
    results = _read(read_jsonl, path)
    assert len(results) == 20_000 and _reasons(results) == {"kept": 20_000}
    assert results[-1][0]["text"].startswith("document number 19999 ")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_truncated_compressed_jsonl_keeps_complete_lines(tmp_path, codec):
    data = _many_lines()
    if codec == "gzip":
        blob = gzip.compress(data)
        cut = blob[: len(blob) // 2]
        decoded = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(cut)
    else:
        blob = zstandard.ZstdCompressor().compress(data)
        cut = blob[: len(blob) // 2]
        decoded = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    path = tmp_path / "docs.jsonl.gz"
    path.write_bytes(cut)
    results = _read(read_jsonl, path)
    complete_lines = decoded.count(b"\n")
    assert _reasons(results) == {"kept": complete_lines, "truncated_file": 1}
    record, drop = results[-1]
    assert record["id"] == stable_id("docs.jsonl.gz", "file")
    assert str(path) in drop.detail and f"after line {complete_lines}" in drop.detail
    assert f"compressed offset {len(cut)}" in drop.detail


def test_corrupt_gzip_is_corrupt_file(tmp_path):
    data = _many_lines()
    blob = bytearray(gzip.compress(data))
    middle = len(blob) // 2
    blob[middle : middle + 64] = bytes(64)
    path = tmp_path / "docs.jsonl.gz"
    path.write_bytes(bytes(blob))
    results = _read(read_jsonl, path)
    assert results[-1][1].reason == "corrupt_file"
    assert [d.reason for _, d in results if d and d.reason.endswith("_file")] == ["corrupt_file"]
    # Deflate damage shows only at the member's CRC check, so lines decoded from the damaged
    # part before it are read (as garbage); everything before the damage is kept intact.
    intact = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(bytes(blob[:middle])).count(b"\n")
    assert [r["text"] for r in _kept(results)[:intact]] == [
        json.loads(x)["text"] for x in data.splitlines()[:intact]
    ]


# --- Parquet ----------------------------------------------------------------------------------


def _write_parquet(path, table, row_group_size=1000):
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_parquet_streams_row_groups(tmp_path):
    n = 2500
    table = pa.table(
        {
            "text": [f"row {i}" if i != 7 else None for i in range(n)],
            "url": [f"https://site{i % 3}.example.com/{i}" for i in range(n)],
            "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * n, pa.timestamp("ms", tz="UTC")),
            "other": list(range(n)),
        }
    )
    path = _write_parquet(tmp_path / "part-0.parquet", table)
    config = ReadConfig(fetched_at_field="ts", parquet_batch_rows=300)
    results = _read(read_parquet, path, config)
    assert _reasons(results) == {"kept": n - 1, "missing_text": 1}
    assert results[7][0]["source_key"] == "row:7" and results[7][1].detail.startswith("row 7")
    last = results[-1][0]
    assert last["text"] == "row 2499" and last["source_key"] == "row:2499"
    assert last["domain"] == "example.com" and last["fetched_at"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert "other" not in last
    assert [r["id"] for r, _ in results] == [r["id"] for r, _ in _read(read_parquet, path, config)]
    assert len({r["id"] for r, _ in results}) == n


def test_parquet_wrong_schema_names_the_columns(tmp_path):
    path = _write_parquet(tmp_path / "wrong.parquet", pa.table({"body": ["x"], "url": ["u"]}))
    results = _read(read_parquet, path)
    assert _reasons(results) == {"wrong_schema": 1}
    record, drop = results[0]
    assert record["id"] == stable_id("wrong.parquet", "file")
    assert str(path) in drop.detail and "'text'" in drop.detail and "['body', 'url']" in drop.detail


def test_parquet_text_column_must_hold_strings(tmp_path):
    path = _write_parquet(tmp_path / "ints.parquet", pa.table({"text": [1, 2]}))
    assert _reasons(_read(read_parquet, path)) == {"wrong_schema": 1}


def test_parquet_id_column(tmp_path):
    path = _write_parquet(tmp_path / "ids.parquet", pa.table({"text": ["a", "b"], "key": ["k1", None]}))
    results = _read(read_parquet, path, ReadConfig(id_field="key"))
    assert results[0][0]["source_key"] == "k1" and results[1][1].reason == "missing_id"
    assert _reasons(_read(read_parquet, path, ReadConfig(id_field="nope"))) == {"wrong_schema": 1}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_unreadable_parquet_is_corrupt_file(tmp_path, damage):
    good = _write_parquet(tmp_path / "good.parquet", pa.table({"text": ["a"] * 5000}))
    blob = {"garbage": b"PAR1 but not really" * 10, "truncated": good.read_bytes()[:-100], "empty": b""}[
        damage
    ]
    path = tmp_path / "bad.parquet"
    path.write_bytes(blob)
    results = _read(read_parquet, path)
    assert _reasons(results) == {"corrupt_file": 1}
    assert str(path) in results[0][1].detail


# --- format choice and config -----------------------------------------------------------------


def test_unknown_extensions_are_sniffed(tmp_path):
    jsonl = tmp_path / "docs.txt"
    jsonl.write_bytes(gzip.compress(b'{"text": "hi"}\n'))
    parquet = _write_parquet(tmp_path / "table.bin", pa.table({"text": ["hi"]}))
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"\x00\x01 nothing we read")
    assert _reasons(read_file(str(jsonl), ReadConfig())) == {"kept": 1}
    assert _reasons(read_file(str(parquet), ReadConfig())) == {"kept": 1}
    assert _reasons(read_file(str(junk), ReadConfig())) == {"unsupported_format": 1}


def test_read_config():
    config = ReadConfig()
    assert config.max_record_bytes == 10 * 1024 * 1024
    assert config.format_of("s3://b/CC-MAIN-1.warc.wet.gz") == WARC
    assert config.format_of("/x/part.JSONL.ZST") == JSONL
    assert config.format_of("part-0.parquet") == PARQUET
    assert config.format_of("notes.txt") is None
    assert ReadConfig(formats=[[".txt", "jsonl"]]).format_of("a.txt") == JSONL
    with pytest.raises(ValueError, match="max_record_bytes"):
        ReadConfig(max_record_bytes=0)
    with pytest.raises(ValueError, match="unknown format"):
        ReadConfig(formats=((".x", "csv"),))
