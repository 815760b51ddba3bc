"""Which kept records seed generation, within the run's budget, the same way on every rerun.

A seed is a candidate when ``hash(seed, id)`` maps below ``fraction`` and it passes the filters
(length, language). Each (candidate, task) pair gets a rank ``hash(seed, id, template)``; pairs
are taken in rank order while they fit ``max_records`` and ``max_tokens`` (prompt estimate +
the template's ``max_tokens``, an upper bound of what the pair can cost). Hash order, not input
order, so the same seeds and config pick the same pairs on any runner.

Only the ``max_records`` best-ranked pairs meet on one worker (``Top.Smallest``), each with its
seed cut to what the prompt uses, so the selection holds at most ``max_records`` small records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.stage import Record
from transforms.synthetic.backends import estimate_tokens
from transforms.synthetic.config import SyntheticConfig
from transforms.synthetic.templates import PromptTemplate

SELECTED = "selected"
SELECTION = "selection"
# Seed columns carried to generation (plus each template's input field, cut to its limit).
SEED_FIELDS = ("id", "url", "domain", "source", "lang")


def _hash64(*parts: Any) -> int:
    joined = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(joined, digest_size=8).digest(), "big")


def seed_score(seed: int, record_id: str) -> float:
    """A uniform number in [0, 1) from the sampling seed and the record id."""
    return _hash64("seed", seed, record_id) / 2**64


def pair_rank(seed: int, record_id: str, template_ref: str) -> int:
    return _hash64("pair", seed, record_id, template_ref)


def is_candidate(record: Record, config: SyntheticConfig, field: str = "text") -> bool:
    """Whether ``record`` may seed a template that reads its ``field`` (``min_chars`` to
    ``max_chars`` long; ``text`` in the text job, ``caption`` in the images job)."""
    if record.get("synthetic"):
        return False  # no generation from generated text
    if seed_score(config.seed, record["id"]) >= config.fraction:
        return False
    if config.languages and record.get("lang") not in config.languages:
        return False
    text = record.get(field)
    length = len(text) if isinstance(text, str) else 0
    return config.min_chars <= length <= config.max_chars


def candidate_pairs(record: Record, config: SyntheticConfig) -> Iterator[tuple[int, str, Record]]:
    """(rank, template name, slim seed) for each task this record can seed."""
    for template in config.active_templates():
        if not is_candidate(record, config, template.input_field):
            continue
        source = template.input_of(record)
        if source is None:
            continue
        slim = {name: record.get(name) for name in SEED_FIELDS}
        slim[template.input_field] = source
        yield pair_rank(config.seed, record["id"], template.ref), template.name, slim


def pair_cost(template: PromptTemplate, seed: Record) -> int:
    prompt = "".join(m["content"] for m in template.messages(seed[template.input_field]))
    return estimate_tokens(prompt) + template.max_tokens


def allocate(
    ranked: list[tuple[int, str, Record]], config: SyntheticConfig, candidates: int
) -> Iterator[Any]:
    """Selected (template name, seed) pairs in rank order, then one selection summary."""
    templates = config.template_map()
    spent = selected = 0
    over_tokens = 0
    for _rank, name, seed in sorted(ranked, key=lambda item: (item[0], item[1], item[2]["id"])):
        cost = pair_cost(templates[name], seed)
        if over_tokens or spent + cost > config.max_tokens:
            over_tokens += 1
            continue
        spent += cost
        selected += 1
        yield name, seed
    yield beam.pvalue.TaggedOutput(SELECTION, {
        "candidates": candidates,
        "selected": selected,
        "skipped_max_records": max(0, candidates - len(ranked)),
        "skipped_max_tokens": over_tokens,
        "token_budget_reserved": spent,
    })


class SelectSeeds(beam.PTransform):
    """Records → ``selected`` (template name, slim seed) pairs and one ``selection`` summary."""

    def __init__(self, config: SyntheticConfig):
        super().__init__()
        self._config = config

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        config = self._config
        pairs = records | "Candidates" >> beam.FlatMap(candidate_pairs, config)
        count = pairs | "CountCandidates" >> beam.combiners.Count.Globally()
        return (
            pairs
            | "BestRanked" >> beam.combiners.Top.Smallest(config.max_records, key=lambda p: (p[0], p[1]))
            | "Allocate" >> beam.FlatMap(allocate, config, beam.pvalue.AsSingleton(count))
            .with_outputs(SELECTION, main=SELECTED)
        )
