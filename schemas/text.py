"""Schemas of text records: kept (``data/``) and rejected (``rejected/``).

The base columns are fixed (``schemas.columns``, shared with the readers that build records);
each stage of the job (``pipelines/text.py``) adds its named signal columns (declared on the
stage class in ``transforms``; ``Job.schema`` puts them together), so the schema of a code
version is fixed and a column's meaning lives beside the code that computes it.
"""

from __future__ import annotations

from schemas.columns import BASE_FIELDS

__all__ = ["BASE_FIELDS", "SCHEMA_VERSION"]

SCHEMA_VERSION = "text/1"
