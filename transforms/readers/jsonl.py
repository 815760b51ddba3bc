"""JSON Lines files (plain, gzip or zstd): one JSON object per line, ``source_key`` ``line:N``.

Lines are numbered from 1 and read with a bound, so a line over ``max_record_bytes`` is skipped
as it streams past, never held. Blank lines are not records and are passed over. A JSON escape
of a lone surrogate (``"\\ud800"``) decodes to a string no UTF-8 writer accepts, so it counts as
``invalid_utf8`` like a line of bad bytes. A ``Split`` (plain files only) is a byte range that
starts at a line start; its line numbers continue from the lines before it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from transforms.readers.base import ReadResult, file_quarantine, new_record, record_from_fields
from transforms.readers.input_stream import InputDamaged, InputStream, open_input
from transforms.readers.read_config import ReadConfig
from transforms.readers.split import WHOLE, Split
from transforms.stage import Drop

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_jsonl(path: str, config: ReadConfig, split: Split = WHOLE) -> Iterator[ReadResult]:
    """Every line of the JSONL file at ``path`` (of ``split``), then one quarantine record if it
    is damaged."""
    try:
        with open_input(path, split) as stream:
            yield from _read_lines(path, stream, config, split.records_before)
    except InputDamaged as exc:
        yield file_quarantine(path, exc.reason, exc.detail + split.unread_rest("bytes"), split.quarantine_key)


def _read_lines(path: str, stream: InputStream, config: ReadConfig, number: int) -> Iterator[ReadResult]:
    limit = config.max_record_bytes
    while True:
        try:
            line = stream.readline(limit + 1)
            too_large = len(line) > limit and not line.endswith(b"\n")
            if too_large:
                _skip_rest_of_line(stream, limit)
        except InputDamaged as exc:
            raise InputDamaged(exc.reason, f"{exc.detail}, after line {number}") from exc
        if not line:
            return
        number += 1
        if too_large:
            yield (
                new_record(path, f"line:{number}"),
                Drop("line_too_large", f"line {number}: over max_record_bytes {limit}"),
            )
        elif line.strip():
            yield _parse(path, line, number, config)


def _skip_rest_of_line(stream: InputStream, limit: int) -> None:
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk or chunk.endswith(b"\n"):
            return


def _parse(path: str, line: bytes, number: int, config: ReadConfig) -> ReadResult:
    where = f"line {number}"
    position = f"line:{number}"
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return new_record(path, position), Drop("invalid_utf8", f"{where}: {exc.reason} at byte {exc.start}")
    try:
        fields = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return new_record(path, position), Drop("invalid_json", f"{where}: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return new_record(path, position), Drop("invalid_json", f"{where}: nested too deeply")
    if not isinstance(fields, dict):
        return new_record(path, position), Drop(
            "invalid_json", f"{where}: a JSON {type(fields).__name__}, not an object"
        )
    record, drop = record_from_fields(path, position, fields, config, where)
    if drop is None and _SURROGATE_ESCAPE.search(line):
        try:
            record["text"].encode("utf-8")
        except UnicodeEncodeError as exc:
            record["text"] = None
            return record, Drop(
                "invalid_utf8", f"{where}: lone surrogate escape in {config.text_field!r} at {exc.start}"
            )
    return record, drop
