"""Candidate pairs of near-duplicates: the edges a band bucket gives, and their verification by
estimated Jaccard (step 2 of ``MinHashDedup``, ``transforms/dedup_minhash/minhash_dedup.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

from transforms.dedup_minhash.keeper import is_previous
from transforms.dedup_minhash.signatures import estimated_jaccard
from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import RunContext

# The tagged output of a step's per-bundle facts (documents signed, pairs checked and passed).
FACTS = "facts"


def bucket_edges(bucket: tuple[int, Iterable[str]], all_pairs_up_to: int = 0) -> Iterator[tuple[str, str]]:
    """Candidate edges (smaller, larger) of one band bucket: its smallest node to each other
    member (a star), or every pair when the bucket has no earlier-run document and at most
    ``all_pairs_up_to`` members (for verification, see ``MinHashDedupConfig``). Of earlier-run
    documents only the smallest joins (the others add nothing to this run's decisions);
    buckets without a document of this run give nothing."""
    _, nodes = bucket
    current: set[str] = set()
    previous = None
    for node in nodes:
        if is_previous(node):
            previous = node if previous is None or node < previous else previous
        else:
            current.add(node)
    if not current:
        return
    members = sorted(current)
    if previous is None and len(members) <= all_pairs_up_to:
        yield from itertools.combinations(members, 2)
        return
    center = previous if previous is not None else members.pop(0)
    for member in members:
        yield center, member


def _half_verified(kv: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, bytes]]]:
    node, grouped = kv
    if not grouped["signature"]:
        return
    signature = grouped["signature"][0]
    for other in set(grouped["edges"]):
        yield other, (node, signature)


class _VerifiedFn(beam.DoFn):
    """Candidate pairs of one member whose estimated Jaccard reaches ``threshold``; counts the
    distinct pairs checked and passed once per bundle, as ``("verify", checked, passed)``."""

    def __init__(self, threshold: float):
        self._threshold = threshold

    def start_bundle(self) -> None:
        self._checked = self._passed = 0

    def process(self, kv: tuple[str, dict[str, list]]) -> Iterator[Any]:
        node, grouped = kv
        if not grouped["signature"]:
            return
        mine = np.frombuffer(grouped["signature"][0], dtype=np.uint32)
        seen = set()
        for center, theirs in grouped["halves"]:
            if center not in seen:
                seen.add(center)
                self._checked += 1
                if estimated_jaccard(mine, np.frombuffer(theirs, dtype=np.uint32)) >= self._threshold:
                    self._passed += 1
                    yield center, node

    def finish_bundle(self) -> Iterator[Any]:
        fact = ("verify", self._checked, self._passed)
        yield pvalue.TaggedOutput(FACTS, GlobalWindows.windowed_value(fact))


class VerifyEdges(beam.PTransform):
    """Keep candidate pairs whose estimated Jaccard reaches ``threshold``; pairs with an
    earlier run's document (whose signature is not kept) pass unchecked. Sets ``self.facts``
    (pairs checked and passed) when applied."""

    def __init__(self, threshold: float, signatures: beam.PCollection, run: RunContext | None):
        super().__init__()
        self._threshold = threshold
        self._signatures = signatures
        self._run = run
        self.facts: beam.PCollection | None = None

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        split = edges | "SplitPrevious" >> beam.Partition(lambda edge, _: int(is_previous(edge[0])), 2)
        halves = (
            {"signature": self._signatures, "edges": split[0]}
            | "JoinCenter" >> SpilledCoGroupByKey.for_run(self._run, "signature")
            | "HalfVerified" >> beam.FlatMap(_half_verified)
        )
        verified = (
            {"signature": self._signatures, "halves": halves}
            | "JoinMember" >> SpilledCoGroupByKey.for_run(self._run, "signature")
            | "Verified" >> beam.ParDo(_VerifiedFn(self._threshold)).with_outputs(FACTS, main="edges")
        )
        self.facts = verified[FACTS]
        return (verified.edges, split[1]) | "WithPrevious" >> beam.Flatten()
