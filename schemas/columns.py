"""The base columns of a text record and the columns of a rejection, in one place: the schemas
declare them and the readers build records with them. pyarrow only, so a reader can import it
without the stages."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

BASE_FIELDS = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("domain", pa.string()),
    pa.field("source", pa.string()),  # the input file's URI
    pa.field("source_key", pa.string()),  # where in that file: WARC-Record-ID, line:N, row:N
    pa.field("fetched_at", pa.timestamp("ms", tz="UTC")),
    pa.field("content_type", pa.string()),
    pa.field("text", pa.string()),
    pa.field("synthetic", pa.bool_()),
    pa.field("parent_id", pa.string()),
    pa.field("generator", pa.string()),
    pa.field("template", pa.string()),
)

REJECT_FIELDS = (
    pa.field("reject_stage", pa.string(), nullable=False),
    pa.field("reject_reason", pa.string(), nullable=False),
    pa.field("reject_detail", pa.string()),
)


def record_schemas(
    base_fields: tuple[pa.Field, ...], stages: Sequence[type], version: str
) -> tuple[pa.Schema, pa.Schema]:
    """A job's kept and rejected schemas: its base columns, then every signal column its
    ``stages`` declare (in stage order, each once), then, for rejected records, the reason."""
    fields: dict[str, pa.Field] = {}
    for stage in stages:
        for field in stage.signal_fields:
            if field.name in fields and fields[field.name] != field:
                raise ValueError(f"signal {field.name} declared twice with different types")
            fields[field.name] = field
    signals = tuple(fields.values())
    metadata = {"schema_version": version}
    return (
        pa.schema(base_fields + signals, metadata=metadata),
        pa.schema(base_fields + signals + REJECT_FIELDS, metadata=metadata),
    )
