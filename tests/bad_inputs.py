"""The bad-input catalogue: every kind of damaged, hostile or oversized input we guard against,
what each one is made of, which job reads it and how it must end.

Each ``BadInput`` writes its file(s) into a folder (big files are generated here, never
committed) and says how its records must leave the run: ``rejected`` is the exact count of each
rejection reason (``<stage>.<reason>``) among the case's records at the stages it names (other
stages, such as the quality filters a surviving record meets later, are not its business);
``passes_read`` is how many of its records get past the reader (those before the damage, the
good rows of a mixed file). A file-level quarantine (``source_key`` ``file``) must name the file
in its detail. ``job`` says which run reads it:

- ``text`` / ``images``: one in-process run of ``pipelines.text`` / ``pipelines.images`` over
  every case of that job together;
- ``text_large``: one ``dataprep run text`` subprocess over the 50 MB documents and the
  decompression bombs, whose peak memory is measured;
- ``cli``: ``dataprep run text`` on the case's inputs must exit 1 with ``error`` (and the path)
  in its message, publishing nothing.

``tests/test_bad_inputs.py`` runs them; ``docs/reliability.md`` lists them with their outcomes.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from conftest import CLEAN_PROSE, aeb_pages
from image_fixtures import corrupt_png, photo, png_bomb, truncated

MB = 1024 * 1024


@dataclass(frozen=True)
class BadInput:
    name: str
    job: str  # "text", "images", "text_large" or "cli"
    write: Callable[[Path], list[Path]]  # writes the case's files into a folder, returns them
    rejected: dict[str, int] = field(default_factory=dict)
    passes_read: int = 0
    error: str = ""  # job "cli": the message the command must print

    @property
    def stages(self) -> set[str]:
        return {"read"} | {reason.split(".", 1)[0] for reason in self.rejected}


# --- building blocks --------------------------------------------------------------------------


def _noise(n: int, seed: int) -> bytes:
    """``n`` bytes of incompressible printable ASCII (no newline), so a cut lands where we say."""
    rng = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return bytes(rng.choice(alphabet) for _ in range(n))


def _articles(n: int, skip: int = 0) -> list[str]:
    return [gold for _, _, gold in aeb_pages(skip + n)[skip:]]


def _jsonl(texts: list[str]) -> bytes:
    return b"".join(json.dumps({"text": t}).encode() + b"\n" for t in texts)


def warc_record(warc_type: str, block: bytes, uri: str | None = None, record_id: str = "",
                content_type: str = "application/http; msgtype=response", headers: str = "") -> bytes:
    """One WARC record as bytes, headers as given (``headers`` adds raw header lines)."""
    lines = [f"WARC-Type: {warc_type}", f"WARC-Record-ID: <urn:uuid:{record_id or uri}>",
             "WARC-Date: 2024-05-01T12:00:00Z"]
    if uri:
        lines.append(f"WARC-Target-URI: {uri}")
    lines += [f"Content-Type: {content_type}", f"Content-Length: {len(block)}"]
    head = "".join(line + "\r\n" for line in lines) + headers
    return b"WARC/1.0\r\n" + head.encode() + b"\r\n" + block + b"\r\n\r\n"


def http_response(body: bytes, content_type: str = "text/html; charset=utf-8", *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def page(uri: str, body: bytes, content_type: str = "text/html; charset=utf-8", *headers: str) -> bytes:
    return warc_record("response", http_response(body, content_type, *headers), uri)


def _html(text: str) -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return f"<html><head><title>t</title></head><body><article>{paragraphs}</article></body></html>".encode()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _parquet(folder: Path, name: str, table: pa.Table) -> Path:
    path = folder / name
    pq.write_table(table, path)
    return path


def _tar(folder: Path, name: str, members: list[tuple[str, bytes | None, str]], mode: str = "w") -> Path:
    """A tar of ``(name, data, kind)``; kind ``file``, ``sym``, ``hard`` or ``fifo``."""
    path = folder / name
    with tarfile.open(path, mode) as archive:
        for member, data, kind in members:
            info = tarfile.TarInfo(member)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, "etc/passwd"
                archive.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in pieces: a bomb's payload is never built in memory."""

    def __init__(self, size: int):
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._left)
        buffer[:n] = bytes(n)
        self._left -= n
        return n


def _gzip_stream(parts, level: int = 6) -> bytes:
    """One gzip member of the concatenated ``parts`` (bytes or ``(byte, count)`` runs)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    out = []
    for part in parts:
        if isinstance(part, tuple):
            byte, count = part
            chunk = byte * (16 * MB)
            while count > 0:
                out.append(compressor.compress(chunk[: min(count, len(chunk))]))
                count -= len(chunk)
        else:
            out.append(compressor.compress(part))
    out.append(compressor.flush())
    return b"".join(out)


def _zstd_stream(parts) -> bytes:
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        for part in parts:
            if isinstance(part, tuple):
                byte, count = part
                chunk = byte * (16 * MB)
                while count > 0:
                    writer.write(chunk[: min(count, len(chunk))])
                    count -= len(chunk)
            else:
                writer.write(part)
    return out.getvalue()


# --- text job ---------------------------------------------------------------------------------


def truncated_gzip(folder: Path) -> list[Path]:
    """A gzipped WARC (one member per record) and a gzipped JSONL, both cut inside a member."""
    pages = aeb_pages(2)
    members = [gzip.compress(page(url, html)) for url, html, _ in pages]
    last = gzip.compress(page("https://cut.test/big", _html(_noise(300_000, 1).decode())))
    warc = _write(folder, "truncated_gzip.warc.gz", b"".join(members) + last[: len(last) // 2])
    head = gzip.compress(_jsonl(_articles(20, skip=2)))
    tail = gzip.compress(b'{"text": "' + _noise(300_000, 2) + b'"}\n')
    jsonl = _write(folder, "truncated_gzip.jsonl.gz", head + tail[: len(tail) // 2])
    return [warc, jsonl]


def truncated_zstd(folder: Path) -> list[Path]:
    """A zstd JSONL of two frames, cut inside the second."""
    compressor = zstandard.ZstdCompressor()
    head = compressor.compress(_jsonl(_articles(20, skip=22)))
    tail = compressor.compress(b'{"text": "' + _noise(300_000, 3) + b'"}\n')
    return [_write(folder, "truncated_zstd.jsonl.zst", head + tail[: len(tail) // 2])]


def corrupt_gzip(folder: Path) -> list[Path]:
    """A gzipped JSONL whose second member has 64 bytes zeroed in the middle of its deflate data."""
    head = gzip.compress(_jsonl(_articles(10, skip=42)))
    tail = bytearray(gzip.compress(b'{"text": "' + _noise(300_000, 4) + b'"}\n'))
    tail[len(tail) // 2 : len(tail) // 2 + 64] = bytes(64)
    return [_write(folder, "corrupt_gzip.jsonl.gz", head + bytes(tail))]


def invalid_utf8(folder: Path) -> list[Path]:
    """Bad bytes in JSONL lines and in a WET conversion record; a page in Latin-1 declared UTF-8."""
    jsonl = _write(folder, "invalid_utf8.jsonl", b"".join([
        b'{"text": "caf\xe9 au lait"}\n',  # Latin-1 byte
        b'{"text": "overlong \xc0\xaf slash"}\n',  # overlong encoding
        b'{"text": "lone \\udc80 surrogate"}\n',  # a JSON escape no UTF-8 writer accepts
        b'{"text": "cut \xe2\x82"}\n',  # a sequence cut short
    ]))
    wet = _write(folder, "invalid_utf8.warc.wet", warc_record(
        "conversion", CLEAN_PROSE.encode()[:200] + b"\xff\xfe broken", "https://wet.test/a",
        content_type="text/plain"))
    latin1 = ("caf\xe9 na\xefve d\xe9j\xe0 vu " * 400).encode("latin-1")
    warc = _write(folder, "invalid_utf8.warc", page("https://enc.test/latin1", b"<p>" + latin1 + b"</p>"))
    return [jsonl, wet, warc]


def nul_filled(folder: Path) -> list[Path]:
    """Files of nothing but NUL bytes, under each format's name, and a page whose body is NULs."""
    nuls = bytes(MB)
    return [
        _write(folder, "nul_filled.warc", nuls),
        _write(folder, "nul_filled.warc.gz", nuls),
        _write(folder, "nul_filled.jsonl", nuls),
        _write(folder, "nul_filled.parquet", nuls),
        _write(folder, "nul_filled_body.warc", page("https://nul.test/body", bytes(100_000))),
    ]


def binary_bodies(folder: Path) -> list[Path]:
    """Random bytes served as HTML, an image served as such, and a random file of no known format."""
    noise = random.Random(5).randbytes(200_000)
    warc = _write(folder, "binary_bodies.warc", page("https://bin.test/random", noise)
                  + page("https://bin.test/photo", photo("flower"), "image/jpeg"))
    return [warc, _write(folder, "binary_bodies.bin", noise)]


def deeply_nested(folder: Path) -> list[Path]:
    """100,000 nested elements in a page, and JSON nested 100,000 deep in a JSONL line."""
    depth = 100_000
    html = b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"
    warc = _write(folder, "deeply_nested.warc", page("https://deep.test/divs", html))
    jsonl = _write(folder, "deeply_nested.jsonl", b"[" * depth + b"]" * depth + b"\n"
                   + b'{"text": "x", "meta": ' + b"[" * depth + b"]" * depth + b"}\n")
    return [warc, jsonl]


def warc_broken_headers(folder: Path) -> list[Path]:
    """One file per header fault; the last has a good record before the broken one."""
    body = http_response(b"<p>hello</p>")
    good = page("https://hdr.test/good", _html(CLEAN_PROSE))

    def without(name: str, record: bytes) -> bytes:
        return b"\r\n".join(line for line in record.split(b"\r\n") if not line.startswith(name.encode()))

    faults = {
        "no_length": without("Content-Length", warc_record("response", body, "https://hdr.test/a")),
        "bad_length": warc_record("response", body, "https://hdr.test/b").replace(
            f"Content-Length: {len(body)}".encode(), b"Content-Length: twelve"),
        "lf_only": warc_record("response", body, "https://hdr.test/c").replace(b"\r\n", b"\n"),
        "bad_version": warc_record("response", body, "https://hdr.test/d").replace(b"WARC/1.0", b"WARC/9.9"),
        "after_good": good + without("Content-Length", warc_record("response", body, "https://hdr.test/e")),
    }
    return [_write(folder, f"warc_broken_headers_{name}.warc", data) for name, data in faults.items()]


def parquet_wrong_schema(folder: Path) -> list[Path]:
    """No text column; a text column of integers; a file cut short."""
    good = _parquet(folder, "parquet_wrong_schema_cut.parquet", pa.table({"text": _articles(5, skip=52)}))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    return [
        _parquet(folder, "parquet_wrong_schema_no_text.parquet", pa.table({"body": ["a", "b"]})),
        _parquet(folder, "parquet_wrong_schema_int_text.parquet", pa.table({"text": [1, 2, 3]})),
        good,
    ]


def jsonl_bad_lines(folder: Path) -> list[Path]:
    """Broken JSON, non-objects, missing and non-string text, blank lines, and one good line."""
    lines = [
        json.dumps({"text": _articles(1, skip=57)[0]}),
        '{"text": "no closing brace"',
        '["an", "array"]',
        '"a string"',
        '{"title": "no text"}',
        '{"text": 42}',
        '{"text": null}',
        "",
        "   ",
    ]
    return [_write(folder, "jsonl_bad_lines.jsonl", ("\n".join(lines) + "\n").encode())]


def http_encoding_bombs(folder: Path) -> list[Path]:
    """Pages whose Content-Encoding inflates 256 MiB from ~250 KB, and one that is not what it says."""
    gz = _gzip_stream([(b" ", 256 * MB)], level=9)
    zs = _zstd_stream([(b" ", 256 * MB)])
    warc = _write(folder, "http_encoding_bombs.warc.gz", b"".join(gzip.compress(r) for r in (
        page("https://bomb.test/gzip", gz, "text/html", "Content-Encoding: gzip"),
        page("https://bomb.test/zstd", zs, "text/html", "Content-Encoding: zstd"),
        page("https://bomb.test/liar", b"\x1f\x8bnot gzip at all", "text/html", "Content-Encoding: gzip"),
    )))
    return [warc]


# --- text job, measured in a subprocess ----------------------------------------------------------


def documents_50mb(folder: Path) -> list[Path]:
    """A 50 MB page, a 50 MB JSONL line and a 50 MB Parquet text cell."""
    words = b"lorem ipsum dolor sit amet " * (50 * MB // 27)
    warc = _write(folder, "documents_50mb.warc.gz", gzip.compress(
        page("https://big.test/page", b"<html><body><p>" + words + b"</p></body></html>"), 1))
    jsonl = _write(folder, "documents_50mb.jsonl", b'{"text": "' + words + b'"}\n'
                   + json.dumps({"text": CLEAN_PROSE}).encode() + b"\n")
    parquet = _parquet(folder, "documents_50mb.parquet", pa.table({"text": [words.decode(), CLEAN_PROSE + " x"]}))
    return [warc, jsonl, parquet]


def decompression_bombs(folder: Path) -> list[Path]:
    """JSONL that inflates to 1 GiB in one line, gzip and zstd (~1 MB and ~30 KB on disk)."""
    line = [b'{"text": "', (b"a", 1024 * MB), b'"}\n']
    return [_write(folder, "bomb.jsonl.gz", _gzip_stream(line, level=1)),
            _write(folder, "bomb.jsonl.zst", _zstd_stream(line))]


# --- images job -------------------------------------------------------------------------------


def tar_unsafe_members(folder: Path) -> list[Path]:
    """Members that would escape a folder if unpacked, beside one good sample."""
    return [_tar(folder, "tar_unsafe_members.tar", [
        ("good.jpg", photo("china"), "file"),
        ("good.txt", b"the roof of a temple in china", "file"),
        ("../evil.jpg", b"x", "file"),
        ("a/../../climb.jpg", b"x", "file"),
        ("/etc/abs.jpg", b"x", "file"),
        ("link.jpg", None, "sym"),
        ("hard.jpg", None, "hard"),
        ("pipe.jpg", None, "fifo"),
    ])]


def broken_images(folder: Path) -> list[Path]:
    """Truncated, damaged, non-image, empty and bomb images, and a sample with no image."""
    samples = {
        "truncated_jpeg": (truncated(photo("flower")), "jpg"),
        "corrupt_png": (corrupt_png(), "png"),
        "html_as_image": (b"<html><body>not an image</body></html>", "jpg"),
        "nul_image": (bytes(50_000), "jpg"),
        "empty_image": (b"", "png"),
        "png_bomb": (png_bomb(), "png"),
    }
    members = []
    for n, (key, (data, ext)) in enumerate(samples.items()):
        members += [(f"{key}.{ext}", data, "file"),
                    (f"{key}.txt", f"a photograph of a garden with red flowers number {n}".encode(), "file")]
    members.append(("no_image.txt", b"a caption without any image at all", "file"))
    return [_tar(folder, "broken_images.tar", members)]


def truncated_tar(folder: Path) -> list[Path]:
    path = _tar(folder, "truncated_tar.tar", [
        ("s1.jpg", photo("china"), "file"), ("s1.txt", b"a temple roof in china", "file"),
        ("s2.jpg", photo("flower"), "file"), ("s2.txt", b"a red flower in a garden", "file"),
    ])
    data = path.read_bytes()
    path.write_bytes(data[: len(photo("china")) + 3000])
    return [path]


def tar_member_bomb(folder: Path) -> list[Path]:
    """A gzipped tar whose one member inflates to 256 MiB (~250 KB on disk)."""
    path = folder / "tar_member_bomb.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        info = tarfile.TarInfo("bomb.png")
        info.size = 256 * MB
        archive.addfile(info, _Zeros(info.size))
        info = tarfile.TarInfo("bomb.txt")
        caption = b"a picture that is far too large"
        info.size = len(caption)
        archive.addfile(info, io.BytesIO(caption))
    return [path]


def caption_tables(folder: Path) -> list[Path]:
    """Caption tables without usable columns or URLs, broken mid-file, cut short, or not tables."""
    parquet = _parquet(folder, "caption_tables_cut.parquet",
                       pa.table({"url": [f"http://x.test/{i}.jpg" for i in range(50)],
                                 "caption": ["a photo"] * 50}))
    data = parquet.read_bytes()
    parquet.write_bytes(data[: len(data) // 2])
    csv_gz = gzip.compress(b"url,caption\n,a caption without a url\nhttp://x.test/c.jpg," + _noise(300_000, 6))
    return [
        _write(folder, "caption_tables_no_columns.csv", b"link,alt\nhttp://x.test/a.jpg,a photo\n"),
        _write(folder, "caption_tables_no_url.csv", b"url,caption\n,a photo without a url\n ,another one\n"),
        _write(folder, "caption_tables_bad_line.jsonl",
               b'{"url": "", "caption": "no url here"}\n{"url": "http://x.test/b.jpg", "cap\n'),
        _write(folder, "caption_tables_cut.csv.gz", csv_gz[: len(csv_gz) // 2]),
        parquet,
        _write(folder, "caption_tables_broken.warc", warc_record(
            "response", http_response(b"<img src=a.jpg alt='x'>"), "https://w.test/").replace(b"\r\n", b"\n")),
        _write(folder, "caption_tables_unknown.xlsx", b"PK\x03\x04 not a caption table"),
    ]


# --- clear errors -----------------------------------------------------------------------------


def no_such_file(folder: Path) -> list[Path]:
    return [folder / "no_such_input*.warc.gz"]


def directory_input(folder: Path) -> list[Path]:
    (folder / "a_folder").mkdir()
    return [folder / "a_folder"]


def colliding_names(folder: Path) -> list[Path]:
    paths = []
    for sub in ("day1", "day2"):
        (folder / sub).mkdir()
        paths.append(_write(folder / sub, "colliding.jsonl", _jsonl(["a"])))
    return paths


CASES: tuple[BadInput, ...] = (
    BadInput("truncated_gzip", "text", truncated_gzip, {"read.truncated_file": 2}, passes_read=22),
    BadInput("truncated_zstd", "text", truncated_zstd, {"read.truncated_file": 1}, passes_read=20),
    BadInput("corrupt_gzip", "text", corrupt_gzip, {"read.corrupt_file": 1}, passes_read=10),
    BadInput("invalid_utf8", "text", invalid_utf8, {"read.invalid_utf8": 5, "extract.bad_encoding": 1},
             passes_read=1),
    BadInput("nul_filled", "text", nul_filled,
             {"read.corrupt_file": 3, "read.invalid_json": 1, "extract.binary_content": 1}, passes_read=1),
    BadInput("binary_bodies", "text", binary_bodies,
             {"read.unsupported_format": 1, "extract.binary_content": 1, "extract.unsupported_content_type": 1},
             passes_read=2),
    BadInput("deeply_nested", "text", deeply_nested, {"read.invalid_json": 2, "extract.too_deep": 1},
             passes_read=1),
    BadInput("warc_broken_headers", "text", warc_broken_headers, {"read.corrupt_file": 5}, passes_read=1),
    BadInput("parquet_wrong_schema", "text", parquet_wrong_schema,
             {"read.wrong_schema": 2, "read.corrupt_file": 1}),
    BadInput("jsonl_bad_lines", "text", jsonl_bad_lines,
             {"read.invalid_json": 3, "read.missing_text": 3}, passes_read=1),
    BadInput("http_encoding_bombs", "text", http_encoding_bombs,
             {"read.record_too_large": 2, "read.http_decoding_error": 1}),
    BadInput("documents_50mb", "text_large", documents_50mb,
             {"read.record_too_large": 2, "read.line_too_large": 1}, passes_read=2),
    BadInput("decompression_bombs", "text_large", decompression_bombs, {"read.line_too_large": 2}),
    BadInput("tar_unsafe_members", "images", tar_unsafe_members, {"read.unsafe_tar_member": 6}, passes_read=1),
    BadInput("broken_images", "images", broken_images,
             {"read.missing_image": 1, "decode.corrupt": 2, "decode.not_an_image": 3, "decode.too_many_pixels": 1},
             passes_read=6),
    # The sample being read when the tar ends is rejected as missing its image, before the
    # file's own quarantine record.
    BadInput("truncated_tar", "images", truncated_tar, {"read.corrupt_file": 1, "read.missing_image": 1},
             passes_read=1),
    BadInput("tar_member_bomb", "images", tar_member_bomb, {"read.unsafe_tar_member": 1}),
    BadInput("caption_tables", "images", caption_tables,
             {"read.missing_columns": 1, "read.missing_url": 4, "read.corrupt_file": 3,
              "read.truncated_file": 1, "read.unsupported_format": 1}),
    BadInput("no_such_file", "cli", no_such_file, error="the pattern matches no file"),  # the preflight's
    BadInput("directory_input", "cli", directory_input, error="is a folder, not a file or pattern"),
    BadInput("colliding_names", "cli", colliding_names, error="must have distinct base names"),
)
