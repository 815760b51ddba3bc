"""Give a global step's kept and rejected PCollections the ``kept`` / ``rejected`` shape of
``ApplyStage`` (a ``DoOutputsTuple``), which ``pipelines/text.py`` reads from every step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from transforms.stage import KEPT, REJECTED, Record


def _route(record: Record) -> Iterator[Any]:
    # ``stage.rejected`` sets reject_reason; records on the main path never carry it.
    if "reject_reason" in record:
        yield pvalue.TaggedOutput(REJECTED, record)
    else:
        yield record


class SplitRejected(beam.PTransform):
    """(kept, rejected) or one PCollection of both -> ``DoOutputsTuple`` with kept and rejected."""

    def expand(self, pcolls: Any) -> pvalue.DoOutputsTuple:
        both = pcolls | "Merge" >> beam.Flatten() if isinstance(pcolls, tuple) else pcolls
        return both | "Route" >> beam.FlatMap(_route).with_outputs(REJECTED, main=KEPT)
