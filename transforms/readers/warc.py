"""WARC and WET files with FastWARC: ``response``, ``resource`` and ``conversion`` records.

Kept: ``response`` (2xx HTTP payload, decoded, as ``body``; ``content_type`` is the HTTP
Content-Type header as sent, charset included; the response headers that carry consent and
licence signals as ``http_headers``, read by the consent and licence stages), ``resource``
(``body``, WARC Content-Type) and ``conversion`` (WET: UTF-8 ``text``). Records that are no
document (``request``, ``warcinfo``, ``metadata``, ``revisit``) are skipped (``Skip``, counted by
type outside the funnel); ``continuation`` and unknown types, which may carry a document's
bytes, are rejected. ``source_key`` is the WARC-Record-ID; a repeated id (seen in real WET samples)
gets ``#2``, ``#3``... so ids stay unique; a record without one gets ``record:<ordinal>``.

A ``Split`` reads the records of its gzip members (or its byte range of a plain WARC); ordinals
continue from the records before it and offsets in details are whole-file offsets, so a record
gets the id it gets when the whole file is read. A ``WARC-Record-ID`` repeated in two different
splits is not seen as a repeat (``#2``): the two records share an id, which the read stage's
id-uniqueness expectation reports (Common Crawl's ids are UUIDs; ``read.split_bytes: 0`` reads
such files whole).

FastWARC (2.0) stops silently on a truncated gzip member and on a record cut short, so this
reader decompresses itself (``input_stream``: truncation raises there) and checks every record's
payload length against its Content-Length; HTTP transfer and content encodings are decoded here,
after that check, with the record size limit applied to the decoded bytes too.
"""

from __future__ import annotations

import io
import itertools
import re
import zlib
from collections.abc import Iterator
from datetime import datetime

import brotli  # a dependency of fastwarc
import zstandard
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from transforms.consent.signals import HTTP_HEADERS, kept_headers
from transforms.readers.base import ReadResult, Skip, file_quarantine, new_record, to_utc
from transforms.readers.input_stream import GZIP_MAGIC, InputDamaged, InputStream, open_input
from transforms.readers.read_config import ReadConfig
from transforms.readers.split import WHOLE, Split
from transforms.stage import Drop

_SKIPPED_TYPES = {
    int(WarcRecordType.request): "warc_request_record",
    int(WarcRecordType.metadata): "warc_metadata_record",
    int(WarcRecordType.warcinfo): "warcinfo_record",
    int(WarcRecordType.revisit): "warc_revisit_record",
}
_TYPE_REASONS = {
    int(WarcRecordType.continuation): "warc_continuation_record",
    int(WarcRecordType.unknown): "warc_unknown_record",
}
_RESPONSE = int(WarcRecordType.response)
_CONVERSION = int(WarcRecordType.conversion)
_HEX = re.compile(rb"[0-9a-fA-F]+")


class _Undecodable(Exception):
    pass


class _TooLarge(Exception):
    pass


class _RecordDamaged(InputDamaged):
    """Damage found by checking one record, whose detail already says where."""


def read_warc(path: str, config: ReadConfig, split: Split = WHOLE) -> Iterator[ReadResult]:
    """Every record of the WARC/WET file at ``path`` (of ``split``), then one quarantine record
    if it is damaged."""
    try:
        with open_input(path, split) as stream:
            yield from _read_records(path, stream, config, split.records_before)
    except InputDamaged as exc:
        yield file_quarantine(path, exc.reason, exc.detail + split.unread_rest("bytes"), split.quarantine_key)


def _read_records(path: str, stream: InputStream, config: ReadConfig, first_ordinal: int) -> Iterator[ReadResult]:
    records = ArchiveIterator(stream, parse_http=True, auto_decode="none", stream_detect=False)
    seen_ids: dict[str, int] = {}
    where = "before the first WARC record"
    for ordinal in itertools.count(first_ordinal):
        try:
            warc_record = next(records, None)
            if warc_record is None:
                return
            where = f"in the WARC record at byte offset {_offset(warc_record, stream)}"
            result = _convert(path, warc_record, stream, config, seen_ids, ordinal)
            where = f"after the WARC record at byte offset {_offset(warc_record, stream)}"
        except _RecordDamaged:
            raise
        except InputDamaged as exc:
            raise InputDamaged(exc.reason, f"{exc.detail}, {where}") from exc
        except BaseException as exc:
            if stream.storage_error is not None or not _is_parse_failure(exc):
                raise
            raise InputDamaged(
                "corrupt_file", f"unparseable WARC data {where} (read up to {stream.where()}): {exc}"
            ) from exc
        yield result


def _offset(warc_record: WarcRecord, stream: InputStream) -> int:
    """The record's offset in the whole decompressed file."""
    return stream.base + warc_record.stream_pos


def _is_parse_failure(exc: BaseException) -> bool:
    # FastWARC raises OSError on bad headers; a Rust panic surfaces as pyo3's PanicException,
    # a BaseException, which must not take a worker down for one malformed file.
    return isinstance(exc, OSError) or type(exc).__name__ == "PanicException"


def _convert(
    path: str,
    warc_record: WarcRecord,
    stream: InputStream,
    config: ReadConfig,
    seen_ids: dict[str, int],
    ordinal: int,
) -> ReadResult:
    headers = warc_record.headers
    block_length = _block_length(warc_record, stream)
    record_type = int(warc_record.record_type)
    is_http = record_type == _RESPONSE and warc_record.is_http
    content_type = (warc_record.http_headers if is_http else headers).get("Content-Type")
    record = new_record(
        path,
        _source_key(headers.get("WARC-Record-ID"), seen_ids, ordinal),
        url=_target_uri(headers.get("WARC-Target-URI")),
        fetched_at=_record_date(warc_record),
        content_type=content_type.strip() if content_type else None,
    )

    drop = _type_drop(warc_record, record_type, is_http)
    payload_length = warc_record.content_length
    if drop is None and payload_length > config.max_record_bytes:
        drop = Drop(
            "record_too_large",
            f"{payload_length} payload bytes > max_record_bytes {config.max_record_bytes}",
        )
    if drop is not None:
        _check_complete(warc_record, stream, warc_record.consume(), block_length)
        return record, drop

    payload = warc_record.reader.read()
    _check_complete(warc_record, stream, len(payload), block_length)
    if record_type == _CONVERSION:
        try:
            record["text"] = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return record, Drop("invalid_utf8", f"{exc.reason} at payload byte {exc.start}")
        return record, None
    if is_http:
        try:
            payload = _decode_http(payload, warc_record.http_headers, config.max_record_bytes)
        except _Undecodable as exc:
            return record, Drop("http_decoding_error", str(exc))
        except _TooLarge as exc:
            return record, Drop("record_too_large", str(exc))
        record[HTTP_HEADERS] = kept_headers(warc_record.http_headers.astuples())
    record["body"] = payload
    return record, None


def _type_drop(warc_record: WarcRecord, record_type: int, is_http: bool) -> Drop | None:
    skipped = _SKIPPED_TYPES.get(record_type)
    if skipped is not None:
        return Skip(skipped)
    reason = _TYPE_REASONS.get(record_type)
    if reason is not None:
        return Drop(reason)
    if is_http:
        status = warc_record.http_headers.status_code
        if status is None:
            return Drop("http_status_invalid", warc_record.http_headers.status_line or "")
        if not 200 <= status < 300:
            return Drop(f"http_status_{status}", warc_record.http_headers.status_line or "")
    return None


def _block_length(warc_record: WarcRecord, stream: InputStream) -> int:
    value = warc_record.headers.get("Content-Length")
    if value is not None and value.strip().isdigit():
        return int(value)
    # FastWARC folds LF-only header lines into one header value rather than failing.
    folded = any("\n" in v for v in warc_record.headers.values())
    reason = "truncated_file" if stream.at_eof and not folded else "corrupt_file"
    hint = "; header lines must end in CRLF" if folded else ""
    raise _RecordDamaged(
        reason,
        f"WARC record at byte offset {_offset(warc_record, stream)} has no valid Content-Length{hint} "
        f"(read up to {stream.where()})",
    )


def _check_complete(warc_record: WarcRecord, stream: InputStream, got: int, block_length: int) -> None:
    short = got < warc_record.content_length
    if not short and not (stream.at_eof and stream.tell() < warc_record.stream_pos + block_length):
        return
    raise _RecordDamaged(
        "truncated_file" if stream.at_eof else "corrupt_file",
        f"WARC record at byte offset {_offset(warc_record, stream)} ends early "
        f"({got} of {warc_record.content_length} payload bytes; stream ends at {stream.where()})",
    )


def _source_key(record_id: str | None, seen_ids: dict[str, int], ordinal: int) -> str:
    if not record_id:
        return f"record:{ordinal}"
    count = seen_ids.get(record_id, 0) + 1
    seen_ids[record_id] = count
    return record_id if count == 1 else f"{record_id}#{count}"


def _target_uri(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    # WARC 1.0's grammar put the URI in angle brackets; some writers still do.
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value or None


def _record_date(warc_record: WarcRecord) -> datetime | None:
    try:
        return to_utc(warc_record.record_date)
    except (OSError, ValueError):
        return None


def _decode_http(payload: bytes, http_headers, limit: int) -> bytes:
    """Undo HTTP transfer and content encodings (codings applied in the order listed)."""
    if "chunked" in (http_headers.get("Transfer-Encoding") or "").lower():
        payload = _dechunk(payload)
    codings = [c.strip().lower() for c in (http_headers.get("Content-Encoding") or "").split(",")]
    for coding in reversed([c for c in codings if c]):
        payload = _decompress(payload, coding, limit)
    if len(payload) > limit:
        raise _TooLarge(f"decoded payload over max_record_bytes {limit}")
    return payload


def _dechunk(data: bytes) -> bytes:
    pieces = []
    pos = 0
    while True:
        eol = data.find(b"\n", pos)
        size_field = data[pos : eol if eol >= 0 else len(data)].split(b";", 1)[0].strip()
        if eol < 0 or not _HEX.fullmatch(size_field):
            if pos == 0:
                # Many writers store the de-chunked body but keep the header (warcio reads
                # such payloads as they are, too).
                return data
            raise _Undecodable(f"bad chunk size line at payload byte {pos}")
        size = int(size_field, 16)
        if size == 0:
            return b"".join(pieces)
        start = eol + 1
        # A chunk cut short: the capture itself was truncated; keep what arrived.
        pieces.append(data[start : start + size])
        pos = start + size
        if pos >= len(data):
            return b"".join(pieces)
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1


def _decompress(data: bytes, coding: str, limit: int) -> bytes:
    try:
        if coding in ("gzip", "x-gzip"):
            if not data.startswith(GZIP_MAGIC):
                return data  # stored decoded, header kept
            return _bounded(zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data, limit + 1), limit)
        if coding == "deflate":
            # "deflate" is zlib-wrapped by the spec, raw deflate from many servers.
            zlib_wrapped = len(data) > 1 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            wbits = zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS
            return _bounded(zlib.decompressobj(wbits).decompress(data, limit + 1), limit)
        if coding == "br":
            return _bounded(brotli.Decompressor().process(data, output_buffer_limit=limit + 1), limit)
        if coding == "zstd":
            return _bounded(
                zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read(limit + 1), limit
            )
    except (zlib.error, brotli.error, zstandard.ZstdError) as exc:
        raise _Undecodable(f"Content-Encoding {coding}: {exc}") from exc
    # identity, and the junk servers send ("utf-8", "none"): the bytes are the body.
    return data


def _bounded(data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        raise _TooLarge(f"decoded payload over max_record_bytes {limit}")
    return data
