"""What every reader yields: ``(record, None)`` to keep, ``(record, Drop)`` to reject.

Readers are plain generators over one file, so tests call them without Beam; ``ReadInputs``
turns drops into ``read.<reason>`` rejections, and a ``Skip`` (a record that is no document,
such as a WARC request) into a count of skipped records by type, outside the funnel. A record's id is ``stable_id(base name of the
file, source_key)``: the same bytes give the same ids whether read locally or from ``s3://``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from schemas.columns import BASE_FIELDS
from transforms.readers.read_config import ReadConfig
from transforms.record import registered_domain, stable_id
from transforms.stage import Drop, Record


@dataclass(frozen=True)
class Skip(Drop):
    """A record that is not a document (WARC request, warcinfo, metadata, revisit): counted apart
    by ``reason``, its type, never an input of the funnel nor a rejected document."""


ReadResult = tuple[Record, Drop | None]

READ_STAGE = "read"
# ``source_key`` of the one quarantine record a damaged or unreadable file gets.
FILE_KEY = "file"


def base_name(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def new_record(
    path: str,
    source_key: str,
    *,
    url: str | None = None,
    fetched_at: datetime | None = None,
    content_type: str | None = None,
    text: str | None = None,
) -> Record:
    """A record with every base column (``schemas.columns``) set."""
    record: Record = dict.fromkeys(field.name for field in BASE_FIELDS)
    record.update(
        id=stable_id(base_name(path), source_key),
        url=url,
        domain=registered_domain(url),
        source=path,
        source_key=source_key,
        fetched_at=fetched_at,
        content_type=content_type,
        text=text,
        synthetic=False,
    )
    return record


def file_quarantine(path: str, reason: str, detail: str, key: str = FILE_KEY) -> ReadResult:
    """The one rejection that stands for the unread rest of a file (or all of it); ``key`` is a
    split's own key when the damage is in a split other than the file's last."""
    return new_record(path, key), Drop(reason, f"{path}: {detail}")


def record_from_fields(
    path: str, position: str, fields: dict[str, Any], config: ReadConfig, where: str
) -> ReadResult:
    """A record from the configured fields of one JSON object or Parquet row.

    ``source_key`` is ``position`` (``line:N``, ``row:N``), or the value of ``config.id_field``
    when one is set: the dataset's own key, which then must be present (and is trusted to be
    unique within its file; nothing here holds every key of a file in memory to check).
    """
    source_key = position
    if config.id_field:
        key = fields.get(config.id_field)
        if key is None or key == "":
            return new_record(path, position), Drop("missing_id", f"{where}: no {config.id_field!r}")
        source_key = str(key)
    url = fields.get(config.url_field) if config.url_field else None
    record = new_record(
        path,
        source_key,
        url=url if isinstance(url, str) and url else None,
        fetched_at=to_utc(fields.get(config.fetched_at_field)) if config.fetched_at_field else None,
        content_type="text/plain",
    )
    text = fields.get(config.text_field)
    if not isinstance(text, str):
        found = "absent" if text is None else f"a {type(text).__name__}, not a string"
        return record, Drop("missing_text", f"{where}: {config.text_field!r} is {found}")
    # A character takes at most 4 bytes in UTF-8: only long texts need encoding to measure.
    if (
        len(text) * 4 > config.max_record_bytes
        and len(text.encode("utf-8", "surrogatepass")) > config.max_record_bytes
    ):
        return record, Drop(
            "record_too_large", f"{where}: text over max_record_bytes {config.max_record_bytes}"
        )
    record["text"] = text
    return record, None


def to_utc(value: Any) -> datetime | None:
    """A timestamp as an aware UTC datetime: datetimes (naive ones taken as UTC), ISO 8601
    strings, Unix seconds. Anything else is ``None``: a bad timestamp is no reason to drop text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
