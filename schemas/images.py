"""Schemas of image-caption records: kept (``data/``) and rejected (``rejected/``).

Base columns are fixed here; each stage of ``transforms.images.stages.IMAGE_STAGES`` adds its
named signal columns (``image`` and its metadata from ``decode``, ``nsfw_score``...). A stage
that did not run leaves its columns null (``alignment_score``: the alignment stage is off by
default). Rejected records carry the same columns plus the reason; their ``image`` is null unless
``output.rejected_image_bytes`` is set.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.text import REJECT_FIELDS
from transforms.images.stages import IMAGE_STAGES
from transforms.synthetic import GenerateSynthetic

SCHEMA_VERSION = "images/1"

BASE_FIELDS = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("domain", pa.string()),
    pa.field("page_url", pa.string()),  # the page an <img alt> pair was found on
    pa.field("caption", pa.string()),
    pa.field("source", pa.string()),  # the input file's URI
    pa.field("source_key", pa.string()),  # row:N, tar:<key>, <WARC-Record-ID>#img<N>
    # Provenance, as in the text job: a rewritten caption (``--synthetic caption``) is a record
    # of its own with its parent's image.
    pa.field("synthetic", pa.bool_()),
    pa.field("parent_id", pa.string()),
    pa.field("generator", pa.string()),
    pa.field("template", pa.string()),
)


def _signal_fields() -> tuple[pa.Field, ...]:
    fields: dict[str, pa.Field] = {}
    for stage in (*IMAGE_STAGES, GenerateSynthetic):
        for field in stage.signal_fields:
            if field.name in fields and fields[field.name] != field:
                raise ValueError(f"signal {field.name} declared twice with different types")
            fields[field.name] = field
    return tuple(fields.values())


IMAGE_SCHEMA = pa.schema(BASE_FIELDS + _signal_fields(), metadata={"schema_version": SCHEMA_VERSION})
REJECTED_SCHEMA = pa.schema(
    BASE_FIELDS + _signal_fields() + REJECT_FIELDS, metadata={"schema_version": SCHEMA_VERSION}
)
