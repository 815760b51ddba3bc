"""Schemas of image-caption records: kept (``data/``) and rejected (``rejected/``).

Base columns are fixed here; each stage of ``transforms.images.stages.IMAGE_STAGES`` adds its
named signal columns (``image`` and its metadata from ``decode``, ``nsfw_score``...). Rejected
records carry the same columns plus the reason; their ``image`` is null unless
``output.rejected_image_bytes`` is set.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.text import REJECT_FIELDS
from transforms.images.stages import IMAGE_STAGES

SCHEMA_VERSION = "images/1"

BASE_FIELDS = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("domain", pa.string()),
    pa.field("page_url", pa.string()),  # the page an <img alt> pair was found on
    pa.field("caption", pa.string()),
    pa.field("source", pa.string()),  # the input file's URI
    pa.field("source_key", pa.string()),  # row:N, tar:<key>, <WARC-Record-ID>#img<N>
)


def _signal_fields() -> tuple[pa.Field, ...]:
    fields: dict[str, pa.Field] = {}
    for stage in IMAGE_STAGES:
        for field in stage.signal_fields:
            if field.name in fields and fields[field.name] != field:
                raise ValueError(f"signal {field.name} declared twice with different types")
            fields[field.name] = field
    return tuple(fields.values())


IMAGE_SCHEMA = pa.schema(BASE_FIELDS + _signal_fields(), metadata={"schema_version": SCHEMA_VERSION})
REJECTED_SCHEMA = pa.schema(
    BASE_FIELDS + _signal_fields() + REJECT_FIELDS, metadata={"schema_version": SCHEMA_VERSION}
)
