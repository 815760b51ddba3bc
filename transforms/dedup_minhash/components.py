"""Connected components of the candidate graph, computed with Beam: large-star / small-star.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014): the edge set is
rewritten by alternating two steps, each one ``GroupByKey`` over edges, until every component
is a star around its smallest node (O(log^2 n) rounds; a handful on near-duplicate graphs).
No worker ever holds more than one node's neighbourhood.

- large-star at node u: link every larger neighbour to the smallest of u and its neighbours.
- small-star at node u: link u and its smaller neighbours to the smallest of them.

A step reports how many neighbourhoods it rewrote; a round (large + small) whose steps
rewrote nothing leaves the edges as they are, so every later round is skipped: its gate
sends the edges straight to the output and its ``GroupByKey`` receives nothing. Rounds are
bounded by ``max_rounds``; if the bound is hit, each node is labelled with the smallest node
it is linked to, which may split a component (fewer removals, never a wrong merge) and is
reported as ``converged: false``.

Edges are (smaller, larger) node pairs. The output: ``labels``, (node, label) for every node
on an edge, the label being its component's smallest node; ``rounds``, the facts
``("round", number, "large" | "small", neighbourhoods rewritten)``, one per step and bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

Edge = tuple[str, str]

log = logging.getLogger(__name__)

DONE = "done"
CHANGES = "changes"


def large_star(node: str, neighbours: Iterable[str]) -> tuple[list[Edge], bool]:
    """New edges from ``node``'s neighbourhood, and whether they differ from the old ones."""
    neighbours = set(neighbours)
    smallest = min(neighbours | {node})
    larger = [v for v in neighbours if v > node]
    return [(smallest, v) for v in larger], bool(larger) and smallest != node


def small_star(node: str, smaller: Iterable[str]) -> tuple[list[Edge], bool]:
    """New edges from ``node`` and its smaller neighbours, and whether they changed."""
    smaller = set(smaller)
    if not smaller:
        return [], False
    smallest = min(smaller)
    return [(smallest, v) for v in (smaller | {node}) if v != smallest], len(smaller) > 1


def components_local(edges: Iterable[Edge]) -> dict[str, str]:
    """Union-find reference (one process): node -> smallest node of its component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


class _Gate(beam.DoFn):
    """Route edges around a round once the previous round changed nothing; into it, each edge
    both ways (large-star groups every node's neighbours)."""

    def start_bundle(self) -> None:
        self._open: bool | None = None

    def process(self, edge: Edge, changes_before: Iterable[tuple]) -> Iterator[object]:
        if self._open is None:  # the side input is the same for the whole bundle
            self._open = any(fact[3] for fact in changes_before)
        if self._open:
            yield from _both_directions(edge)
        else:
            yield pvalue.TaggedOutput(DONE, edge)


class _StarStep(beam.DoFn):
    """One large- or small-star step; counts rewritten neighbourhoods once per bundle, as
    the fact ``("round", number, step, count)`` on the ``changes`` output."""

    def __init__(self, step: str, number: int):
        self._step = step
        self._number = number
        self._rewrite = large_star if step == "large" else small_star

    def start_bundle(self) -> None:
        self._changed = 0

    def process(self, kv: tuple[str, Iterable[str]]) -> Iterator[Edge]:
        edges, changed = self._rewrite(*kv)
        self._changed += changed
        if self._step == "large":  # keyed for the small-star step that follows: by the larger node
            yield from (_by_larger(edge) for edge in edges)
        else:
            yield from edges

    def finish_bundle(self) -> Iterator[object]:
        fact = ("round", self._number, self._step, self._changed)
        yield pvalue.TaggedOutput(CHANGES, GlobalWindows.windowed_value(fact))


def _both_directions(edge: Edge) -> Iterator[Edge]:
    yield edge
    yield (edge[1], edge[0])


def _by_larger(edge: Edge) -> Edge:
    return (edge[1], edge[0])


def _logged(fact: tuple) -> tuple:
    if fact[3]:
        log.info("dedup_minhash components round %d: %s-star rewrote %d neighbourhoods", *fact[1:])
    return fact


class ConnectedComponents(beam.PTransform):
    """Edges -> {"labels": (node, label), "rounds": round facts} (see the module doc)."""

    def __init__(self, max_rounds: int):
        super().__init__()
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
        self._max_rounds = max_rounds

    def expand(self, edges: beam.PCollection) -> dict[str, beam.PCollection]:
        done, changes = [], []
        # Round 1 always runs: it is gated by one fake "changed" fact.
        changes_before = edges.pipeline | "Start" >> beam.Create([("round", 0, "start", 1)])
        for number in range(1, self._max_rounds + 1):
            prefix = f"Round{number:02d}"
            gated = edges | f"{prefix}Gate" >> beam.ParDo(
                _Gate(), changes_before=pvalue.AsIter(changes_before)
            ).with_outputs(DONE, main="active")
            done.append(gated[DONE])
            large = (
                gated.active
                | f"{prefix}LargeGroup" >> beam.GroupByKey()
                | f"{prefix}LargeStar"
                >> beam.ParDo(_StarStep("large", number)).with_outputs(CHANGES, main="edges")
            )
            small = (
                large.edges
                | f"{prefix}SmallGroup" >> beam.GroupByKey()
                | f"{prefix}SmallStar"
                >> beam.ParDo(_StarStep("small", number)).with_outputs(CHANGES, main="edges")
            )
            changes_before = (large[CHANGES], small[CHANGES]) | f"{prefix}Changes" >> beam.Flatten()
            changes.append(changes_before)
            edges = small.edges
        labels = (
            (*done, edges)
            | "AllEdges" >> beam.Flatten()
            | "Endpoints" >> beam.FlatMap(_both_directions)
            | "WithSelf" >> beam.FlatMap(lambda e: [(e[0], e[0]), e])
            | "SmallestLinked" >> beam.CombinePerKey(min)
        )
        rounds = changes | "Rounds" >> beam.Flatten() | "LogRounds" >> beam.Map(_logged)
        return {"labels": labels, "rounds": rounds}
