"""Run facts as data: one mergeable combiner gathers counts and written files of a run.

Every record leaves a tiny fact (``read``, ``kept``, or ``rejected`` with its stage and
reason; ``created`` with its stage for a record born in the run, e.g. synthetic; ``skipped``
with its type for a read record that is no document, e.g. a WARC request) and every
written file its info; ``RunFactsFn`` merges them on any runner (combiner
lifting keeps the shuffle small) into one dict that the driver reads after the pipeline to
check conservation and write the manifest. Beam counters are for live monitoring only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import apache_beam as beam

from run_folder.staged import load_staged, write_staged

RUN_FACTS = "run_facts"  # staged as ``_staging/run_facts.json``
Record = dict[str, Any]  # as transforms.stage.Record: the run layer imports no stage

def merge_fields(merged: dict[str, Any], accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Merge fact accumulators into ``merged`` key by key: counters and numbers add up, lists
    of files concatenate (the run facts' and a crawl round's combiners)."""
    for acc in accs:
        for key, value in acc.items():
            if isinstance(value, Counter):
                merged[key].update(value)
            elif isinstance(value, list):
                merged[key].extend(value)
            else:
                merged[key] += value
    return merged


Fact = tuple[str, Any]


def read_fact(_record: Record) -> Fact:
    return ("count", "read")


def kept_fact(_record: Record) -> Fact:
    return ("count", "kept")


def created_fact(stage: str) -> Callable[[Record], Fact]:
    """The fact of a record that ``stage`` created: the run's input grows by it."""
    return lambda _record: ("created", stage)


def skipped_fact(record_type: str) -> Fact:
    """A read record that is no document: counted by type, outside the funnel."""
    return ("skipped", record_type)


def rejected_fact(record: Record) -> Fact:
    return ("rejected", (record["reject_stage"], record["reject_reason"]))


def file_fact(info: dict) -> Fact:
    return ("file", info)


class RunFactsFn(beam.CombineFn):
    def create_accumulator(self) -> dict[str, Any]:
        return {"count": Counter(), "created": Counter(), "skipped": Counter(), "rejected": Counter(), "file": []}

    def add_input(self, acc: dict[str, Any], fact: Fact) -> dict[str, Any]:
        kind, value = fact
        if kind == "file":
            acc["file"].append(value)
        else:
            acc[kind][value] += 1
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        return merge_fields(self.create_accumulator(), accs)

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return {
            "read": acc["count"]["read"],
            "kept": acc["count"]["kept"],
            "created": dict(sorted(acc["created"].items())),
            "skipped": dict(sorted(acc["skipped"].items())),
            "rejected": [
                {"stage": stage, "reason": reason, "count": n}
                for (stage, reason), n in sorted(acc["rejected"].items())
            ],
            "files": sorted(acc["file"], key=lambda info: info["path"]),
        }


class _PartialFactsFn(RunFactsFn):
    """One fact stream to its accumulator, merged later with the other streams'."""

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return acc


class _MergeFactsFn(RunFactsFn):
    def add_input(self, acc: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
        return self.merge_accumulators([acc, partial])


class WriteRunFacts(beam.PTransform):
    """Merge all facts and write them to ``<run_dir>/_staging/run_facts.json``.

    Applied to a tuple of fact streams (a list would be flattened by Beam first), each is combined where it is produced and only the
    partial counts meet: a Flatten of the streams themselves would be a barrier that the
    in-process runner fills with one fact per record."""

    def __init__(self, run_dir: str):
        super().__init__()
        self._run_dir = run_dir

    def expand(self, facts: Sequence[beam.PCollection]) -> beam.PCollection:
        partials = [
            stream | f"Partial{i}" >> beam.CombineGlobally(_PartialFactsFn()) for i, stream in enumerate(facts)
        ]
        return (
            partials
            | "AllPartials" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(_MergeFactsFn())
            | "Write" >> beam.Map(write_staged, self._run_dir, RUN_FACTS)
        )


def load_run_facts(run_dir: str) -> dict[str, Any]:
    return load_staged(run_dir, RUN_FACTS)
