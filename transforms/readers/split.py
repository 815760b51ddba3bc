"""A part of one input file that one worker reads: ``Split``; ``WHOLE`` is the whole file.

``ReadInputs`` plans splits for each large file (``split_plan``) so that one big WARC, JSONL or
Parquet file spreads over every worker. A split carries what its reader needs to give the same
records, ids and quarantine details as reading the whole file: where its part starts in the
decompressed stream, and how many records (lines, rows) come before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.readers.base import FILE_KEY


@dataclass(frozen=True)
class Split:
    # Byte offsets in the file as stored (WARC, JSONL: a gzip member or a record / line starts
    # at ``start``), or row-group indices (Parquet). ``end`` ``None``: to the end of the file.
    start: int = 0
    end: int | None = None
    # Offset of ``start`` in the decompressed stream, so reported offsets are whole-file offsets.
    stream_offset: int = 0
    # WARC records, JSONL lines or Parquet rows before ``start``: the split's first ordinal,
    # ``line:N`` or ``row:N`` continues from here.
    records_before: int = 0
    # ``start`` and ``end`` count row groups (Parquet), not bytes.
    row_groups: bool = False

    @property
    def is_last(self) -> bool:
        return self.end is None

    @property
    def quarantine_key(self) -> str:
        """``source_key`` of the record that stands for the unread rest of a damaged split.

        The last split (the whole file, when unsplit) keeps the file's key, as today. Planning
        puts any damage it can see into the last split, so only damage it cannot see (a WARC
        header fastwarc refuses, a corrupt Parquet page) lands in an earlier one, whose record
        then needs a key of its own.
        """
        return FILE_KEY if self.is_last else f"{FILE_KEY}@{self.start}"

    def progress_bytes(self, size: int) -> int:
        """The bytes of the file (``size`` in all) that this split counts for in progress: its
        byte range; for row-group splits the whole file on the last, nothing before."""
        if self.row_groups:
            return size if self.is_last else 0
        return (size if self.end is None else self.end) - self.start

    def unread_rest(self, unit: str) -> str:
        """What a damaged split's quarantine record stands for, for its detail (``unit``:
        what ``start`` and ``end`` count)."""
        if self.is_last:
            return ""
        return f"; the rest of the split ({unit} {self.start} to {self.end}) is unread, later splits are read"


WHOLE = Split()
