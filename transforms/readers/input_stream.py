"""One input file as a stream of decompressed bytes, through Beam's ``FileSystems``.

Local paths and ``s3://`` URIs open the same way. Compression is detected from the first bytes
(gzip, zstd), never from the name. Damage in the compressed layer becomes ``InputDamaged``
(``truncated_file`` / ``corrupt_file``) naming the file and the byte offsets reached, so each
reader can keep what it read before the damage and quarantine the rest of the file. Errors of
the storage itself (permissions, network) are not damage: they propagate, so the runner retries.

A ``Split`` opens the file at its start and ends the stream at its end: a gzip stream at the
first member boundary at or past it, a plain one at that byte. Offsets in details stay
whole-file offsets (the split carries the decompressed offset of its start), and compressed
reads stay aligned to the same 64 KiB blocks as a whole-file read, so a damaged split reports
exactly what reading the whole file reports.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import live_progress
from transforms.readers.split import WHOLE, Split

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_SIZE = 1 << 16
_ZSTD_FEED = 4096


class InputDamaged(Exception):
    """The file cannot be read past this point: ``reason`` is ``truncated_file`` or ``corrupt_file``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _StreamTruncated(EOFError):
    pass


class _Decompressing:
    """Streaming gzip (all members) or zstd (all frames) over ``source``: ``read``, ``readline``.

    Unlike ``gzip.GzipFile`` (which drops the data of the read that meets a cut) and
    python-zstandard's ``stream_reader`` (which returns a silent short read at a cut), it hands
    out every byte decoded before the damage, then raises. Output per step is bounded: zlib's by
    ``max_length``; zstd's by feeding small inputs, since a zstd call's output is unbounded and
    its worst case (run-length blocks) is ~32,000x the input.
    """

    def __init__(self, source: BinaryIO, codec: str, start: int = 0, end: int | None = None):
        self._source = source
        self._codec = codec
        self._end = end  # a gzip split ends at the first member that starts at or past this offset
        self._consumed = start  # compressed offset of the end of the input read so far
        self._input = memoryview(b"")
        self._member = None  # the decompressor of the gzip member or zstd frame being read
        self._buffer = b""
        self._pos = 0
        if codec == "zstd":
            self._zstd = zstandard.ZstdDecompressor()

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(_READ_SIZE), b""))
        if not self._fill():
            return b""
        data = self._buffer[self._pos : self._pos + size]
        self._pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        parts = []
        wanted = limit if limit >= 0 else None
        while (wanted is None or wanted > 0) and self._fill():
            stop = len(self._buffer) if wanted is None else min(len(self._buffer), self._pos + wanted)
            newline = self._buffer.find(b"\n", self._pos, stop)
            end = stop if newline < 0 else newline + 1
            parts.append(self._buffer[self._pos : end])
            if wanted is not None:
                wanted -= end - self._pos
            self._pos = end
            if newline >= 0:
                break
        return b"".join(parts)

    def _fill(self) -> bool:
        """Make unread output available; ``False`` at a clean end of the stream."""
        while self._pos >= len(self._buffer):
            if self._member is None and self._end is not None and self._offset() >= self._end:
                return False
            if not self._input:
                # Whole 64 KiB blocks of the file, as a whole-file read takes them.
                self._input = memoryview(self._source.read(_READ_SIZE - self._consumed % _READ_SIZE))
                self._consumed += len(self._input)
                if not self._input:
                    if self._member is not None:
                        raise _StreamTruncated(f"{self._codec} data ends inside a member")
                    return False
            if self._member is None and not self._start_member():
                continue
            self._buffer, self._pos = self._step(), 0
        return True

    def _offset(self) -> int:
        return self._consumed - len(self._input)

    def _start_member(self) -> bool:
        if self._codec == "gzip":
            if self._input[0] == 0:  # NUL padding between or after members is allowed
                data = bytes(self._input)
                self._input = memoryview(data)[len(data) - len(data.lstrip(b"\0")) :]
                if not self._input:
                    return False
            self._member = zlib.decompressobj(zlib.MAX_WBITS | 16)
        else:
            self._member = self._zstd.decompressobj()
        return True

    def _step(self) -> bytes:
        member = self._member
        if self._codec == "gzip":
            out = member.decompress(self._input, _READ_SIZE)
            rest = member.unused_data if member.eof else member.unconsumed_tail
            self._input = memoryview(rest)
        else:
            out = member.decompress(self._input[:_ZSTD_FEED])
            rest = self._input[_ZSTD_FEED:]
            self._input = memoryview(member.unused_data + bytes(rest)) if member.eof else rest
        if member.eof:
            self._member = None
        return out


class InputStream:
    """Decompressed bytes of one file (``read``, ``readline``, ``tell``), counting offsets.

    ``tell`` is the decompressed offset from the start of ``split`` (``base`` is that start's
    offset in the whole file); ``at_eof`` says a read came back short of data.
    ``storage_error`` holds an error the storage raised, so callers that see it come back
    through a parser (fastwarc passes stream errors on) can tell it from damage.
    """

    def __init__(self, path: str, raw: BinaryIO, inner: BinaryIO, codec: str | None, split: Split = WHOLE):
        self.path = path
        self.codec = codec
        self.split = split
        self.base = split.stream_offset
        self.at_eof = False
        self.storage_error: BaseException | None = None
        self._raw = raw
        self._inner = inner
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        data = self._guard(self._inner.read, size)
        self._account(data, size)
        self._show_progress()
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._guard(self._inner.readline, limit)
        if not data:
            self.at_eof = True
        self._offset += len(data)
        self._show_progress()
        return data

    def _show_progress(self) -> None:
        """Bytes of the split read, as stored (the raw file's position past the split's start
        when compressed: it reads ahead, so at most the split's length)."""
        split = self.split
        if self.codec is None:
            done = self._offset
        elif isinstance(position := self._compressed_offset(), int):
            done = position - split.start
        else:
            return
        live_progress.position(self.path, split.start, done if split.end is None else min(done, split.end - split.start))

    def tell(self) -> int:
        return self._offset

    def where(self, offset: int | None = None) -> str:
        """Offsets for a quarantine detail: decompressed, and compressed where that differs."""
        text = f"byte offset {self.base + (self._offset if offset is None else offset)}"
        if self.codec is not None:
            text += (
                f" of the {self.codec}-decompressed stream (compressed offset {self._compressed_offset()})"
            )
        return text

    def _account(self, data: bytes, size: int) -> None:
        if not data and size != 0:
            self.at_eof = True
        self._offset += len(data)

    def _compressed_offset(self) -> int | str:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return "unknown"

    def _guard(self, method, arg):
        try:
            return method(arg)
        except _StreamTruncated as exc:
            raise InputDamaged(
                "truncated_file", f"{self.codec} stream ends early at {self.where()}: {exc}"
            ) from exc
        except (zlib.error, zstandard.ZstdError) as exc:
            raise InputDamaged(
                "corrupt_file", f"{self.codec} stream is corrupt at {self.where()}: {exc}"
            ) from exc
        except Exception as exc:
            self.storage_error = exc
            raise


class _Bounded:
    """A plain file's bytes up to ``end``: ``read``, ``readline``."""

    def __init__(self, raw: BinaryIO, start: int, end: int):
        self._raw = raw
        self._left = end - start

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._raw.readline(self._left if limit < 0 else min(limit, self._left))
        self._left -= len(data)
        return data


def codec_of(raw: BinaryIO) -> str | None:
    """``gzip``, ``zstd`` or ``None`` (plain), from the bytes at the handle's position."""
    head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    for magic, codec in ((GZIP_MAGIC, "gzip"), (ZSTD_MAGIC, "zstd")):
        if head.startswith(magic):
            return codec
    return None


def _decompressed(raw: BinaryIO, split: Split) -> tuple[BinaryIO, str | None]:
    codec = codec_of(raw)
    if codec is not None:
        return _Decompressing(raw, codec, split.start, split.end), codec
    if split.end is not None:
        return _Bounded(raw, split.start, split.end), None
    return raw, None


def open_raw(path: str) -> BinaryIO:
    """The file's bytes as stored (seekable; what Parquet needs)."""
    handle = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return handle if hasattr(handle, "peek") else io.BufferedReader(handle, buffer_size=_READ_SIZE)


@contextmanager
def open_input(path: str, split: Split = WHOLE) -> Iterator[InputStream]:
    raw = open_raw(path)
    try:
        if split.start:
            raw.seek(split.start)
        inner, codec = _decompressed(raw, split)
        yield InputStream(path, raw, inner, codec, split)
    finally:
        raw.close()


def sniff(path: str, size: int = 16) -> bytes:
    """The first ``size`` decompressed bytes of ``path`` (fewer if damaged or short)."""
    with open_input(path) as stream:
        try:
            return stream.read(size)
        except InputDamaged:
            return b""
