"""Facts of one crawl round, gathered by a mergeable combiner and written as one small JSON.

Each step emits tiny facts (``("count", name)``, ``("row", (outcome, reason, bytes))``,
``("file", info)``); ``RoundFactsFn`` merges them on any runner and the driver reads the
result after the round to check conservation, plan the next round and write the manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from run_folder.facts import merge_fields
from run_folder.staged import load_staged, write_staged

Fact = tuple[str, Any]


def count(name: str) -> Any:
    return lambda _element: ("count", name)


def row_fact(row: dict[str, Any]) -> Fact:
    return ("row", (row["outcome"], row.get("reason"), row.get("bytes") or 0))


def file_fact(info: dict[str, Any]) -> Fact:
    return ("file", info)


class RoundFactsFn(beam.CombineFn):
    def create_accumulator(self) -> dict[str, Any]:
        return {"count": Counter(), "reasons": Counter(), "bytes": 0, "files": []}

    def add_input(self, acc: dict[str, Any], fact: Fact) -> dict[str, Any]:
        kind, value = fact
        if kind == "count":
            acc["count"][value] += 1
        elif kind == "row":
            outcome, reason, size = value
            acc["count"][outcome] += 1
            if reason:
                acc["reasons"][reason] += 1
            acc["bytes"] += size
        else:
            acc["files"].append(value)
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        return merge_fields(self.create_accumulator(), accs)

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return {
            "count": dict(sorted(acc["count"].items())),
            "reasons": dict(sorted(acc["reasons"].items())),
            "bytes": acc["bytes"],
            "files": sorted(acc["files"], key=lambda f: f["path"]),
        }


def staged_name(round_index: int) -> str:
    """The round's facts are staged as ``_staging/round-<r>.json`` (``run_folder.staged``)."""
    return f"round-{round_index}"


class WriteRoundFacts(beam.PTransform):
    def __init__(self, run_dir: str, round_index: int):
        super().__init__()
        self._run_dir, self._name = run_dir, staged_name(round_index)

    def expand(self, facts: beam.PCollection) -> beam.PCollection:
        return (
            facts
            | "Merge" >> beam.CombineGlobally(RoundFactsFn())
            | "Write" >> beam.Map(write_staged, self._run_dir, self._name)
        )


def load_round_facts(run_dir: str, round_index: int) -> dict[str, Any]:
    return load_staged(run_dir, staged_name(round_index))
