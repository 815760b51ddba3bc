"""Schemas of text records: kept (``data/``) and rejected (``rejected/``).

The base columns are fixed (``schemas.columns``, shared with the readers that build records);
each stage adds its named signal columns (declared on the stage class in ``transforms``), so the
schema of a code version is fixed and a column's meaning lives beside the code that computes it.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.columns import BASE_FIELDS, REJECT_FIELDS
from transforms.registry import TEXT_STAGES
from transforms.synthetic import GenerateSynthetic

SCHEMA_VERSION = "text/1"



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
