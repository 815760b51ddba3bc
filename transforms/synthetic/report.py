"""The synthetic section of a run's report: share, acceptance per template, tokens, time.

A mergeable combiner over tiny facts from four places: what generation produced, what it
rejected, what survived every gate (the final kept records) and what the gates rejected
downstream. ``SyntheticReport`` writes the merged summary to
``<run_dir>/_staging/synthetic.json``; the driver reads it (``load_synthetic_stats``) into the
manifest header before ``seal_run`` clears ``_staging``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from run_folder.staged import load_staged, write_staged
from transforms.stage import Record

STAGED = "synthetic"  # its report data, ``_staging/synthetic.json`` (``run_folder.staged``)

Fact = tuple[str, Any]


def generated_facts(record: Record) -> Iterator[Fact]:
    template = record["template"]
    yield ("attempted", template), 1
    yield ("tokens", template), int(record.get("synthetic_tokens") or 0)
    yield ("prompt_tokens", template), int(record.get("synthetic_prompt_tokens") or 0)
    if record.get("synthetic_cached"):
        yield ("cached", template), 1
    else:
        yield ("generated", template), 1
        yield ("ms", template), int(1000 * float(record.get("synthetic_seconds") or 0.0))


def failed_facts(record: Record) -> Iterator[Fact]:
    yield ("attempted", record["template"]), 1
    yield ("failed", record["template"], record["reject_reason"]), 1


def final_facts(record: Record) -> Iterator[Fact]:
    yield ("final",), 1
    if record.get("synthetic"):
        yield ("accepted", record["template"]), 1


def downstream_facts(record: Record) -> Iterator[Fact]:
    """Synthetic records a gate or dedup rejected (generation failures are ``failed_facts``)."""
    if record.get("synthetic") and not str(record.get("reject_reason")).startswith("synthetic."):
        yield ("gated", record["template"], record["reject_reason"]), 1


class SyntheticStatsFn(beam.CombineFn):
    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, acc: Counter, fact: tuple[tuple, int]) -> Counter:
        acc[fact[0]] += fact[1]
        return acc

    def merge_accumulators(self, accs: Iterable[Counter]) -> Counter:
        merged: Counter = Counter()
        for acc in accs:
            merged.update(acc)
        return merged

    def extract_output(self, acc: Counter) -> dict[str, Any]:
        return summarise(acc)


def summarise(acc: Counter) -> dict[str, Any]:
    templates: dict[str, dict[str, Any]] = {}
    for key, n in acc.items():
        if len(key) < 2:
            continue
        kind, template = key[0], key[1]
        row = templates.setdefault(template, {
            "attempted": 0, "generated": 0, "cached": 0, "accepted": 0, "tokens": 0,
            "prompt_tokens": 0, "generation_seconds": 0.0, "rejected": {},
        })
        if kind in ("failed", "gated"):
            row["rejected"][key[2]] = row["rejected"].get(key[2], 0) + n
        elif kind == "ms":
            row["generation_seconds"] = round(row["generation_seconds"] + n / 1000, 3)
        else:
            row[kind] += n
    for row in templates.values():
        row["acceptance_rate"] = round(row["accepted"] / row["attempted"], 4) if row["attempted"] else None
        row["rejected"] = dict(sorted(row["rejected"].items()))
        seconds = row["generation_seconds"]
        row["tokens_per_second"] = round(row["tokens"] / seconds, 2) if seconds else None
    final = acc[("final",)]
    accepted = sum(row["accepted"] for row in templates.values())
    return {
        "final_records": final,
        "synthetic_records": accepted,
        "share": round(accepted / final, 4) if final else 0.0,
        "templates": dict(sorted(templates.items())),
    }


class SyntheticReport(beam.PTransform):
    """``{"generated", "failed", "final", "rejected"}`` PCollections (+ optional ``selection``)
    → one summary written to ``<run_dir>/_staging/synthetic.json``."""

    def __init__(self, run_dir: str):
        super().__init__()
        self._run_dir = run_dir

    def expand(self, parts: dict[str, beam.PCollection]) -> beam.PCollection:
        facts = [
            parts["generated"] | "GeneratedFacts" >> beam.FlatMap(generated_facts),
            parts["failed"] | "FailedFacts" >> beam.FlatMap(failed_facts),
            parts["final"] | "FinalFacts" >> beam.FlatMap(final_facts),
            parts["rejected"] | "GatedFacts" >> beam.FlatMap(downstream_facts),
        ]
        summary = facts | "AllFacts" >> beam.Flatten() | "Merge" >> beam.CombineGlobally(SyntheticStatsFn())
        if "selection" in parts:
            selection = beam.pvalue.AsList(parts["selection"])
            summary = summary | "WithSelection" >> beam.Map(
                lambda s, sel: {**s, "selection": sel[0] if sel else None}, selection
            )
        return summary | "Write" >> beam.Map(write_staged, self._run_dir, STAGED)


def load_synthetic_stats(run_dir: str) -> dict[str, Any]:
    return load_staged(run_dir, STAGED)
