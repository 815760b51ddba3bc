"""Planning the splits of one input file, so one large file is read by every worker.

A file up to ``ReadConfig.split_bytes`` is one split (``WHOLE``). A larger one is cut into the
fewest splits of at most ``split_bytes`` stored bytes, all about the same size (a 194 MiB file:
four of 48.5 MiB, not three of 64 and one of 2, which left one of two workers reading twice what
the other did), each at a point where a reader can start on its own and still give the ids of a
whole-file read:

- gzip WARC/WET (one member per record, as Common Crawl writes them): the plan inflates every
  member once, output discarded, and cuts at a member that starts with ``WARC/`` after a member
  that ended a record (``\\r\\n\\r\\n``). Walking the member chain, rather than searching for a
  gzip header near each cut, means a cut is always a real member start (an archived
  ``.warc.gz`` payload, stored verbatim in deflate's stored blocks, holds headers that a search
  would take for one), and it gives each split its decompressed offset and records before it.
  Damage in the compressed layer ends the plan: the last split runs from the last cut through
  the damage to the end, so a damaged file ends with exactly the records and quarantine record
  of a whole-file read. Inflating costs a few per cent of the job's CPU (docs/performance.md).
  A single-member gzip (a whole-file ``gzip``) has no member boundary to cut at: one split.
- plain WARC: the plan hops from record header to record header by ``Content-Length`` (a seek
  per record) and cuts at a record start; a header it cannot follow ends the plan the same way.
- plain JSONL: the plan counts newlines (``bytes.count``) and cuts at a line start, so ``line:N``
  continues. Compressed JSONL and zstd WARC (one stream) are one split.
- Parquet: from the footer alone, ranges of whole row groups; rows before come from the row
  groups' row counts. A file whose footer or schema does not read is one split, so its
  quarantine record is the one a whole-file read gives.
"""

from __future__ import annotations

import re
import zlib
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.readers.input_stream import codec_of, open_raw
from transforms.readers.parquet import parquet_columns
from transforms.readers.read_config import JSONL, PARQUET, WARC, ReadConfig
from transforms.readers.split import WHOLE, Split

_READ_SIZE = 1 << 16  # the readers' block size (input_stream)
_SCAN_SIZE = 1 << 20
_HEADER_PEEK = 1 << 16  # a WARC header longer than this ends a plain WARC's plan
_RECORD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)

# (start, offset of start in the decompressed stream, records before start), cuts after 0.
Cut = tuple[int, int, int]


def plan_splits(path: str, fmt: str, config: ReadConfig) -> list[Split]:
    """The splits of the file at ``path`` (format ``fmt``), in file order."""
    if not config.split_bytes:
        return [WHOLE]
    (match,) = FileSystems.match([path])
    size = match.metadata_list[0].size_in_bytes
    if size <= config.split_bytes:
        return [WHOLE]
    pieces = -(-size // config.split_bytes)  # the fewest splits of at most split_bytes
    with open_raw(path) as raw:
        codec = codec_of(raw)
        if fmt == WARC and codec == "gzip":
            cuts = _gzip_warc_cuts(raw, size, pieces)
        elif fmt == WARC and codec is None:
            cuts = _plain_warc_cuts(raw, size, pieces)
        elif fmt == JSONL and codec is None:
            cuts = _jsonl_cuts(raw, size, pieces)
        elif fmt == PARQUET:
            cuts = _parquet_cuts(raw, config)
        else:
            cuts = []
    if not cuts:
        return [WHOLE]
    points = [(0, 0, 0), *cuts]
    ends = [start for start, _, _ in cuts] + [None]
    row_groups = fmt == PARQUET
    return [Split(start, end, offset, before, row_groups) for (start, offset, before), end in zip(points, ends)]


class _Chunks:
    """The file's bytes from its start, a block at a time, with the offset of ``data[0]``."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.data = memoryview(b"")
        self.offset = 0

    def refill(self) -> bool:
        """Read the next block once ``data`` is used up; ``False`` at the end of the file."""
        if not self.data:
            self.data = memoryview(self._raw.read(_READ_SIZE))
        return bool(self.data)

    def advance(self, n: int) -> None:
        self.data = self.data[n:]
        self.offset += n

    def skip_nuls(self) -> bool:
        """Pass NUL padding (allowed between members); ``False`` at the end of the file."""
        while self.refill():
            if self.data[0] != 0:
                return True
            rest = bytes(self.data).lstrip(b"\0")
            self.advance(len(self.data) - len(rest))
        return False


def _inflate_member(chunks: _Chunks) -> tuple[bytes, bytes, int]:
    """Inflate one gzip member: its first 8 and last 4 decompressed bytes and its length.

    Output is discarded a megabyte at a time, so a bomb costs time, not memory. Raises
    ``zlib.error`` on corrupt data and ``EOFError`` when the file ends inside the member.
    """
    member = zlib.decompressobj(zlib.MAX_WBITS | 16)
    head, tail, length = b"", b"", 0
    while not member.eof:
        if not chunks.refill():
            raise EOFError("the file ends inside a gzip member")
        out = member.decompress(chunks.data, _SCAN_SIZE)
        rest = member.unused_data if member.eof else member.unconsumed_tail
        chunks.advance(len(chunks.data) - len(rest))
        if len(head) < 8:
            head += out[: 8 - len(head)]
        tail = (tail + out[-4:])[-4:]
        length += len(out)
    return head, tail, length


def _next_target(start: int, size: int, pieces: int, made: int) -> int:
    """Where the next cut may come: the rest of the file shared by the splits still to make (a
    cut lands at the first boundary at or after it, so each split absorbs its own overshoot)."""
    return start + -(-(size - start) // max(pieces - made, 1))


def _gzip_warc_cuts(raw: BinaryIO, size: int, pieces: int) -> list[Cut]:
    cuts: list[Cut] = []
    chunks = _Chunks(raw)
    target, stream_offset, members, previous_tail = _next_target(0, size, pieces, 0), 0, 0, b""
    # Past the last target no cut can come: the last split's members are left to its reader.
    while target < size and chunks.skip_nuls():
        start = chunks.offset
        try:
            head, tail, length = _inflate_member(chunks)
        except (zlib.error, EOFError):
            break  # damage: it belongs to the last split
        if start >= target and head.startswith(b"WARC/") and previous_tail == _RECORD_END:
            cuts.append((start, stream_offset, members))
            target = _next_target(start, size, pieces, len(cuts))
        stream_offset += length
        members += 1
        previous_tail = tail
    return cuts


def _plain_warc_cuts(raw: BinaryIO, size: int, pieces: int) -> list[Cut]:
    cuts: list[Cut] = []
    target, offset, records = _next_target(0, size, pieces, 0), 0, 0
    while target < size and offset < size:
        raw.seek(offset)
        head = raw.read(_HEADER_PEEK)
        header_end = head.find(_RECORD_END)
        found = _CONTENT_LENGTH.search(head, 0, header_end + 2) if header_end > 0 else None
        if not head.startswith(b"WARC/1.") or found is None:
            break  # a header the plan cannot follow: the rest is the last split's
        if offset >= target:
            cuts.append((offset, offset, records))
            target = _next_target(offset, size, pieces, len(cuts))
        offset += header_end + len(_RECORD_END) + int(found.group(1))
        raw.seek(offset)
        if raw.read(len(_RECORD_END)) != _RECORD_END:
            break
        offset += len(_RECORD_END)
        records += 1
    return cuts


def _jsonl_cuts(raw: BinaryIO, size: int, pieces: int) -> list[Cut]:
    cuts: list[Cut] = []
    target, chunk_start, newlines = _next_target(0, size, pieces, 0), 0, 0
    while target < size:
        chunk = raw.read(_SCAN_SIZE)
        if not chunk:
            break
        # A split starts at the first line start at or after its target.
        position = max(target - 1 - chunk_start, 0)
        while (newline := chunk.find(b"\n", position)) >= 0:
            start = chunk_start + newline + 1
            if start >= size:
                break
            cuts.append((start, start, newlines + chunk.count(b"\n", 0, newline + 1)))
            target = _next_target(start, size, pieces, len(cuts))
            position = target - 1 - chunk_start
        newlines += chunk.count(b"\n")
        chunk_start += len(chunk)
    return cuts


def _parquet_cuts(raw: BinaryIO, config: ReadConfig) -> list[Cut]:
    try:
        parquet = pq.ParquetFile(pa.PythonFile(raw, mode="r"))
        columns, problem = parquet_columns(parquet.schema_arrow, config)
        if problem:
            return []
        metadata = parquet.metadata
        groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
        sizes = [
            sum(
                group.column(c).total_compressed_size
                for c in range(group.num_columns)
                if group.column(c).path_in_schema.split(".")[0] in columns
            )
            for group in groups
        ]
    except (pa.ArrowException, OSError):
        return []  # the reader meets the same error and quarantines the file, as today
    cuts: list[Cut] = []
    pending, rows = 0, 0
    for index, group in enumerate(groups):
        if pending >= config.split_bytes:
            cuts.append((index, 0, rows))
            pending = 0
        pending += sizes[index]
        rows += group.num_rows
    return cuts
