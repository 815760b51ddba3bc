"""Benchmark decontamination: documents that share a long word n-gram with an evaluation set.

GPT-3 (Brown et al., 2020, appendix C) and datatrove's ``NGramsDecontFilter`` drop training
documents that share a 13-gram with a benchmark; so does this step, by default. Words are
``dedup_exact.normalise``'d text (NFKC, lower case, punctuation runs to one space) split on
spaces, so "Hello, World" and "hello world" match. Benchmark texts shorter than ``ngram`` words
give no n-gram and cannot match (GPT-3 did the same); ``stats`` counts them.

How (a join, not an in-memory set of the corpus): each benchmark file is read inside the
pipeline and yields (n-gram hash, benchmark) pairs, made distinct. Each document yields its
distinct n-gram hashes as (hash, id). A ``CoGroupByKey`` on the hash pairs them; hashes no
benchmark holds are dropped right there. The (id, benchmark) matches are counted per id and
joined back to the records on id. Hashes are 64-bit blake2b of the n-gram's words: a false
match needs a collision among the benchmark's n-grams, ~n²/2⁶⁵.

Output: ``contaminated_by`` (sorted benchmark names, empty when clean) and
``contaminated_ngrams`` (distinct matching n-grams) on every record. ``action="drop"`` rejects
contaminated records as ``decontaminate.<benchmark>`` (the first name in order when several
match; ``reject_detail`` lists all); ``action="flag"`` keeps them with the signals set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from run_folder.staged import load_staged, write_staged
from transforms.dedup_exact import normalise
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import match_inputs, read_file
from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import (
    KEPT,
    REJECTED,
    GlobalStep,
    RunContext,
    SignalRules,
    StageResult,
    rejected,
    split_outputs,
)

STAGE = "decontaminate"
STAGED = "decontaminate"  # its report data, ``_staging/decontaminate.json`` (``run_folder.staged``)
ACTIONS = ("drop", "flag")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class DecontaminateConfig:
    # Off by default: it needs evaluation sets.
    enabled: bool = False
    # Benchmark name (snake_case, it becomes the reject reason) -> JSONL/Parquet files or globs,
    # local or s3://.
    benchmarks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # GPT-3 and datatrove: 13 words.
    ngram: int = 13
    action: str = "drop"
    # JSONL key / Parquet column of the benchmark texts.
    text_field: str = "text"

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {self.ngram}")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        benchmarks = {}
        for name, uris in self.benchmarks.items():
            if not _NAME.match(name):
                raise ValueError(f"benchmark name must be snake_case, got {name!r}")
            uris = (uris,) if isinstance(uris, str) else tuple(uris)
            if not uris:
                raise ValueError(f"benchmark {name} has no files")
            benchmarks[name] = uris
        if self.enabled and not benchmarks:
            raise ValueError("decontaminate is enabled but no benchmarks are given")
        object.__setattr__(self, "benchmarks", benchmarks)


def ngram_hashes(text: str | None, n: int) -> set[int]:
    """Distinct 64-bit hashes of the word n-grams of ``text`` (none when shorter than ``n``)."""
    words = normalise(text or "").split()
    return {
        int.from_bytes(
            hashlib.blake2b(
                " ".join(words[i : i + n]).encode("utf-8", "surrogatepass"), digest_size=8
            ).digest(),
            "big",
        )
        for i in range(len(words) - n + 1)
    }


class _BenchmarkNgramsFn(beam.DoFn):
    """(benchmark, file) -> (hash, benchmark) per n-gram; ``stats`` gets per-file counts."""

    def __init__(self, n: int, read_config: ReadConfig):
        self._n = n
        self._read_config = read_config

    def process(self, item: tuple[str, str]) -> Iterator[Any]:
        name, path = item
        texts = too_short = 0
        for record, drop in read_file(path, self._read_config):
            if drop is not None:
                raise ValueError(f"benchmark {name}: {path} is unreadable: {drop.reason} {drop.detail}")
            hashes = ngram_hashes(record.get("text"), self._n)
            texts += 1
            too_short += not hashes
            for value in hashes:
                yield value, name
        yield pvalue.TaggedOutput("stats", (name, (texts, too_short)))


def _sum_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    first = second = 0
    for a, b in pairs:
        first, second = first + a, second + b
    return first, second


def _matches(_: int, grouped: dict[str, list]) -> Iterator[tuple[str, str]]:
    benchmarks = set(grouped["benchmark"])
    if not benchmarks:
        return
    for doc_id in set(grouped["doc"]):
        for name in benchmarks:
            yield doc_id, name


def _apply(action: str):
    def emit(doc_id: str, grouped: dict[str, list]) -> Iterator[Any]:
        matches = grouped["matches"]
        names = sorted({name for name, _ in matches})
        count = sum(c for _, c in matches)
        for record in grouped["record"]:
            record["contaminated_by"] = names
            record["contaminated_ngrams"] = count
            if names and action == "drop":
                detail = ", ".join(f"{name}: {c}" for name, c in sorted(matches))
                yield pvalue.TaggedOutput(REJECTED, rejected(record, STAGE, names[0], detail))
            else:
                yield record

    return emit


class Decontaminate(GlobalStep):
    """Kept records on ``kept``; contaminated ones on ``rejected`` (``action="drop"``)."""

    name = STAGE
    config_class = DecontaminateConfig
    reasons = ()
    # The name of the benchmark a record overlaps (``benchmarks`` in the config).
    reason_patterns = (r"[a-z0-9_]+",)
    signal_rules = SignalRules(required=False)
    signal_fields = (
        pa.field("contaminated_by", pa.list_(pa.string())),
        pa.field("contaminated_ngrams", pa.int32()),
    )

    def __init__(self, config: DecontaminateConfig, run_dir: str | None = None, run: RunContext | None = None):
        if not config.benchmarks:
            raise ValueError("Decontaminate needs at least one benchmark")
        super().__init__(config, run)
        self.run_dir = run_dir
        self.stats: beam.PCollection | None = None

    @classmethod
    def for_run(cls, config: DecontaminateConfig, run: RunContext) -> Decontaminate:
        return cls(config, run.run_dir, run)

    def expand(self, records: beam.PCollection) -> StageResult:
        n = self.config.ngram
        files = [
            (name, path)
            for name, patterns in sorted(self.config.benchmarks.items())
            for path in match_inputs(list(patterns))
        ]
        read_config = ReadConfig(text_field=self.config.text_field, url_field=None)
        bench = (
            records.pipeline
            | "BenchmarkFiles" >> beam.Create(files)
            | "Reshuffle" >> beam.Reshuffle()
            | "BenchmarkNgrams"
            >> beam.ParDo(_BenchmarkNgramsFn(n, read_config)).with_outputs("stats", main="ngrams")
        )
        bench_ngrams = bench.ngrams | "DistinctBenchmarkNgrams" >> beam.Distinct()
        doc_ngrams = records | "DocNgrams" >> beam.FlatMap(
            lambda r: ((value, r["id"]) for value in ngram_hashes(r.get("text"), n))
        )
        matches = (
            {"benchmark": bench_ngrams, "doc": doc_ngrams}
            | "JoinNgrams" >> beam.CoGroupByKey()
            | "Matches" >> beam.FlatMapTuple(_matches)
            | "CountMatches" >> beam.combiners.Count.PerElement()
            | "ById" >> beam.MapTuple(lambda pair, count: (pair[0], (pair[1], count)))
        )
        keyed = records | "KeyById" >> beam.Map(lambda r: (r["id"], r))
        out = (
            {"record": keyed, "matches": matches}
            | "JoinRecords" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Decide" >> beam.FlatMapTuple(_apply(self.config.action)).with_outputs(REJECTED, main=KEPT)
        )
        self.stats = (
            bench.stats
            | "BenchmarkStats" >> beam.CombinePerKey(_sum_pairs)
            | "StatsDict" >> beam.combiners.ToDict()
            | "Named"
            >> beam.Map(
                lambda d: {name: {"texts": t, "shorter_than_ngram": s} for name, (t, s) in sorted(d.items())}
            )
        )
        if self.run_dir is not None:
            _ = self.stats | "WriteStats" >> beam.Map(write_staged, self.run_dir, STAGED)
        return split_outputs(out)


def load_decontaminate_stats(run_dir: str) -> dict[str, Any]:
    """Texts and too-short texts per benchmark (read it before ``seal_run`` clears ``_staging``)."""
    return load_staged(run_dir, STAGED)
