"""Line-level dedup across the run (C4 style): lines that many documents share are boilerplate.

C4 (Raffel et al., 2020) drops every three-sentence span seen before; CCNet (Wenzek et al.,
2020) removes paragraphs that occur elsewhere in the shard. Here a line is removed from every
document holding it when more than ``max_occurrences`` documents of the run hold it: navigation,
cookie notices and share bars repeat across a site's pages, while a line that a handful of
articles legitimately quote survives. A line counts once per document (repeats inside one
document are the Gopher repetition filter's business). Blank lines are layout and never count.

Lines are compared after stripping and collapsing whitespace; the document keeps its other
lines exactly as they were. Signals: ``dup_lines_removed``, ``dup_line_chars_removed``. A
document that lost lines and is left with fewer than ``min_chars`` non-blank characters is
rejected as ``line_dedup.too_short``; documents that lost nothing are never judged here.

Beam: (line hash, id) pairs → ``Count.PerElement`` on the hashes (a combiner, lifted before the
shuffle) → hashes over the limit meet their (hash, id) pairs in a ``CoGroupByKey`` → the
(id, hash) matches meet their records in a second ``CoGroupByKey`` on id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import KEPT, REJECTED, GlobalStep, SignalRules, StageResult, rejected, split_outputs

STAGE = "line_dedup"


@dataclass(frozen=True)
class LineDedupConfig:
    # Optional, as in C4's pipeline where it is one cleaning step among several.
    enabled: bool = False
    # Lines held by more than this many documents are removed (CCNet: any repeat, i.e. 1).
    max_occurrences: int = 10
    # Non-blank characters a document must keep after removal (C4 drops pages under 3 sentences;
    # 200 characters is about two sentences).
    min_chars: int = 200

    def __post_init__(self) -> None:
        if self.max_occurrences < 1:
            raise ValueError(f"max_occurrences must be >= 1, got {self.max_occurrences}")
        if self.min_chars < 0:
            raise ValueError(f"min_chars must be >= 0, got {self.min_chars}")


def line_key(line: str) -> str | None:
    """Hash of a line with its whitespace normalised; ``None`` for a blank line."""
    normalised = " ".join(line.split())
    if not normalised:
        return None
    return hashlib.blake2b(normalised.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def line_keys(text: str | None) -> set[str]:
    return {key for line in (text or "").splitlines() if (key := line_key(line)) is not None}


def remove_lines(text: str, keys: set[str]) -> tuple[str, int, int]:
    """``text`` without the lines whose key is in ``keys``; (text, lines removed, chars removed)."""
    kept, lines, chars = [], 0, 0
    for line in text.splitlines(keepends=True):
        if line_key(line) in keys:
            lines += 1
            chars += len(line.strip())
        else:
            kept.append(line)
    return "".join(kept), lines, chars


def _frequent_pairs(line: str, grouped: dict[str, list]) -> Iterator[tuple[str, str]]:
    if grouped["frequent"]:
        for doc_id in grouped["ids"]:
            yield doc_id, line


def _rewrite(min_chars: int, lines_removed_counter, docs_counter):
    def emit(_: str, grouped: dict[str, list]) -> Iterator[Any]:
        keys = set(grouped["lines"])
        for record in grouped["record"]:
            if not keys:
                record["dup_lines_removed"] = 0
                record["dup_line_chars_removed"] = 0
                yield record
                continue
            text, lines, chars = remove_lines(record.get("text") or "", keys)
            record.update(text=text, dup_lines_removed=lines, dup_line_chars_removed=chars)
            lines_removed_counter.inc(lines)
            docs_counter.inc()
            left = sum(len(line.strip()) for line in text.splitlines())
            if left < min_chars:
                yield pvalue.TaggedOutput(
                    REJECTED,
                    rejected(record, STAGE, "too_short", f"{left} chars left after removing {lines} lines"),
                )
            else:
                yield record

    return emit


class LineDedup(GlobalStep):
    """Records with run-wide repeated lines removed on ``kept``; too short ones on ``rejected``."""

    name = STAGE
    config_class = LineDedupConfig
    reasons = ("too_short",)
    signal_rules = SignalRules(required=False)
    signal_fields = (
        pa.field("dup_lines_removed", pa.int32()),
        pa.field("dup_line_chars_removed", pa.int32()),
    )

    def expand(self, records: beam.PCollection) -> StageResult:
        limit = self.config.max_occurrences
        pairs = records | "LinePairs" >> beam.FlatMap(
            lambda r: ((key, r["id"]) for key in line_keys(r.get("text")))
        )
        frequent = (
            pairs
            | "Lines" >> beam.Keys()
            | "CountLines" >> beam.combiners.Count.PerElement()
            | "OverLimit" >> beam.Filter(lambda kv: kv[1] > limit)
        )
        removals = (
            {"ids": pairs, "frequent": frequent}
            | "JoinCounts" >> beam.CoGroupByKey()
            | "ToRemove" >> beam.FlatMapTuple(_frequent_pairs)
        )
        keyed = records | "KeyById" >> beam.Map(lambda r: (r["id"], r))
        emit = _rewrite(
            self.config.min_chars,
            beam.metrics.Metrics.counter(STAGE, "lines_removed"),
            beam.metrics.Metrics.counter(STAGE, "documents_changed"),
        )
        return split_outputs(
            {"record": keyed, "lines": removals}
            | "JoinRecords" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Rewrite" >> beam.FlatMapTuple(emit).with_outputs(REJECTED, main=KEPT)
        )
