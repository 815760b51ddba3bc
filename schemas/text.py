"""Schemas of text records: kept (``data/``) and rejected (``rejected/``).

The base columns are fixed here; each stage adds its named signal columns (declared on the
stage class in ``transforms``), so the schema of a code version is fixed and a column's
meaning lives beside the code that computes it.
"""

from __future__ import annotations

import pyarrow as pa

from transforms.registry import TEXT_STAGES
from transforms.synthetic import GenerateSynthetic

SCHEMA_VERSION = "text/1"

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


def _signal_fields() -> tuple[pa.Field, ...]:
    fields: dict[str, pa.Field] = {}
    for stage in (*TEXT_STAGES, GenerateSynthetic):
        for field in stage.signal_fields:
            if field.name in fields and fields[field.name] != field:
                raise ValueError(f"signal {field.name} declared twice with different types")
            fields[field.name] = field
    return tuple(fields.values())


TEXT_SCHEMA = pa.schema(BASE_FIELDS + _signal_fields(), metadata={"schema_version": SCHEMA_VERSION})
REJECTED_SCHEMA = pa.schema(
    BASE_FIELDS + _signal_fields() + REJECT_FIELDS, metadata={"schema_version": SCHEMA_VERSION}
)
