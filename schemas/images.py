"""Schemas of image-caption records: kept (``data/``) and rejected (``rejected/``).

Base columns are fixed here; each stage of the job (``pipelines/images.py``) adds its named
signal columns (``image`` and its metadata from ``decode``, ``nsfw_score``...; ``Job.schema`` puts
them together). A stage that did not run leaves its columns null (``alignment_score``: the
alignment stage is off by default). Rejected records carry the same columns plus the reason; their ``image`` is null unless
``output.rejected_image_bytes`` is set.
"""

from __future__ import annotations

import pyarrow as pa

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
