"""The base columns of a text record and the columns of a rejection, in one place: the schemas
declare them and the readers build records with them. pyarrow only, so a reader can import it
without the stage registry."""

from __future__ import annotations

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
