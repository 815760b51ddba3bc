"""Run facts as data: one mergeable combiner gathers counts and written files of a run.

Every record leaves a tiny fact (``read``, ``kept``, or ``rejected`` with its stage and
reason; ``created`` with its stage for a record born in the run, e.g. synthetic; ``skipped``
with its type for a read record that is no document, e.g. a WARC request) and every
written file its info; each stream's facts are summed per bundle where the stream is produced
and ``RunFactsFn`` merges the partial sums on any runner into one dict that the driver reads
after the pipeline to check conservation and write the manifest. Beam counters are for live monitoring only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

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


class _BundleFactsFn(beam.DoFn):
    """One stream's facts summed within each bundle: one accumulator per bundle leaves it, so
    the streams can meet in a Flatten (which the in-process runner fills before it is read)
    without one fact per record, in one step per stream (a ``CombineGlobally`` is a dozen)."""

    def __init__(self, fact_of: Callable[[Any], Fact]):
        self._fact_of = fact_of
        self._combine = RunFactsFn()

    def start_bundle(self) -> None:
        self._acc = self._combine.create_accumulator()

    def process(self, element: Any) -> None:
        self._combine.add_input(self._acc, self._fact_of(element))

    def finish_bundle(self) -> Iterator[WindowedValue]:
        yield GlobalWindows.windowed_value(self._acc)


class _MergeFactsFn(RunFactsFn):
    def add_input(self, acc: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
        return self.merge_accumulators([acc, partial])


FactsOf = tuple[beam.PCollection, Callable[[Any], Fact]]  # a stream and the fact of each element


class WriteRunFacts(beam.PTransform):
    """``pipeline | WriteRunFacts(run_dir, streams)``: merge the facts of every ``(stream,
    fact_of)`` and write them to ``<run_dir>/_staging/run_facts.json``. Each stream is summed
    where it is produced and only the partial sums meet."""

    def __init__(self, run_dir: str, streams: Sequence[FactsOf]):
        super().__init__()
        self._run_dir = run_dir
        self._streams = tuple(streams)

    def expand(self, _pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        partials = [stream | f"Partial{i}" >> beam.ParDo(_BundleFactsFn(fact_of))
                    for i, (stream, fact_of) in enumerate(self._streams)]
        return (
            partials
            | "AllPartials" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(_MergeFactsFn())
            | "Write" >> beam.Map(write_staged, self._run_dir, RUN_FACTS)
        )


def load_run_facts(run_dir: str) -> dict[str, Any]:
    return load_staged(run_dir, RUN_FACTS)
