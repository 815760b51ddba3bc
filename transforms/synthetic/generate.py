"""``GenerateSynthetic``: kept records in, LLM-generated records out, on the same contract.

Seeds are selected by ``select.SelectSeeds`` (deterministic, budgeted); each selected
(template, seed) pair becomes one request. An answer comes from the cache when it has it,
otherwise from the backend (and goes into the cache). A usable answer becomes a new record
with the base columns (``synthetic=True``, ``parent_id``, ``generator``, ``template``) and the
``synthetic_*`` signals; anything else becomes a rejected record (``reject_stage=synthetic``,
reasons below), so the run never crashes on a bad model or server.

Synthetic records have ``fetched_at=None``: exact dedup keeps the earliest fetch, so a
rephrase identical to its parent loses to the parent and is rejected as its duplicate.

Reasons (``synthetic.<reason>``): ``backend_timeout``, ``backend_unreachable``,
``malformed_response``, ``backend_error``, ``backend_refused``, ``truncated_response``,
``empty_response``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from transforms.record import stable_id
from transforms.stage import (
    KEPT,
    REJECTED,
    GlobalStep,
    Record,
    RunContext,
    StageResult,
    rejected,
    split_outputs,
)
from transforms.synthetic.backends import (
    HTTP_ERROR,
    MALFORMED,
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    Backend,
    BackendError,
    Completion,
    GenerationRequest,
    backend_from_config,
)
from transforms.synthetic.cache import GenerationCache, cache_key
from transforms.synthetic.config import SyntheticConfig
from transforms.synthetic.select import SELECTION, SelectSeeds
from transforms.synthetic.templates import QA_SCHEMA, ParseError, PromptTemplate, parse_answer

log = logging.getLogger(__name__)

STAGE = "synthetic"
# A backend's failures and an answer that parses to nothing usable (``templates.parse_answer``).
REASONS = (TIMEOUT, UNREACHABLE, MALFORMED, HTTP_ERROR, REFUSED, "truncated_response", "empty_response")

SIGNAL_FIELDS = (
    pa.field("synthetic_tokens", pa.int32()),  # completion tokens of the answer
    pa.field("synthetic_prompt_tokens", pa.int32()),
    pa.field("synthetic_seconds", pa.float32()),  # generation time when it was generated
    pa.field("synthetic_cached", pa.bool_()),  # served from the cache in this run
)


def synthetic_record(seed: Record, template: PromptTemplate, generator: str) -> Record:
    """The record a (seed, template) pair produces, before its text is known."""
    parent_id = seed["id"]
    return {
        "id": stable_id("synthetic", parent_id, template.ref, generator),
        "url": seed.get("url"),
        "domain": seed.get("domain"),
        "source": seed.get("source"),
        "source_key": f"synthetic:{template.ref}:{parent_id}",
        "fetched_at": None,
        "content_type": "text/plain",
        template.output_field: None,
        "synthetic": True,
        "parent_id": parent_id,
        "generator": generator,
        "template": template.ref,
        "synthetic_tokens": 0,
        "synthetic_prompt_tokens": 0,
        "synthetic_seconds": 0.0,
        "synthetic_cached": False,
    }


def request_for(template: PromptTemplate, seed: Record, config: SyntheticConfig) -> GenerationRequest:
    return GenerationRequest(
        messages=tuple(template.messages(seed[template.input_field])),
        max_tokens=template.max_tokens,
        temperature=template.temperature,
        seed=config.temperature_seed,
        json_schema=QA_SCHEMA if template.json_mode else None,
    )


def finish(record: Record, template: PromptTemplate, outcome: Completion | BackendError, cached: bool) -> Any:
    """The kept record, or a ``TaggedOutput`` of the rejected one with its reason."""
    if isinstance(outcome, BackendError):
        return pvalue.TaggedOutput(REJECTED, rejected(record, STAGE, outcome.reason, outcome.detail))
    record.update(
        synthetic_tokens=outcome.completion_tokens,
        synthetic_prompt_tokens=outcome.prompt_tokens,
        synthetic_seconds=round(outcome.seconds, 4),
        synthetic_cached=cached,
    )
    try:
        record[template.output_field] = parse_answer(template, outcome.text, outcome.finish_reason)
    except ParseError as exc:
        record[template.output_field] = outcome.text  # the answer as judged
        return pvalue.TaggedOutput(REJECTED, rejected(record, STAGE, exc.reason, exc.detail))
    return record


class _GenerateFn(beam.DoFn):
    def __init__(self, config: SyntheticConfig):
        self._config = config
        self._generated = beam.metrics.Metrics.counter(STAGE, "generated")
        self._cached = beam.metrics.Metrics.counter(STAGE, "cache_hits")
        self._failed = beam.metrics.Metrics.counter(STAGE, "rejected")
        self._tokens = beam.metrics.Metrics.counter(STAGE, "completion_tokens")

    def setup(self) -> None:
        self._backend: Backend = backend_from_config(self._config)
        self._cache = GenerationCache(self._config.cache_uri) if self._config.cache_uri else None
        self._templates = self._config.template_map()

    def process(self, batch: Iterable[tuple[str, Record]]) -> Iterator[Any]:
        generator = self._backend.model_id
        work = []
        for name, seed in batch:
            template = self._templates[name]
            request = request_for(template, seed, self._config)
            key = cache_key(generator, template.ref, request.messages, request.params())
            hit = self._cache.get(key) if self._cache else None
            work.append((template, seed, request, key, hit))
        misses = [item for item in work if item[4] is None]
        outcomes = iter(self._backend.generate([item[2] for item in misses])) if misses else iter(())
        for template, seed, _request, key, hit in work:
            outcome = hit if hit is not None else next(outcomes)
            if hit is None and isinstance(outcome, Completion):
                self._generated.inc()
                self._tokens.inc(outcome.completion_tokens)
                if self._cache:
                    self._cache.put(key, outcome, generator, template.ref)
            elif hit is not None:
                self._cached.inc()
            result = finish(synthetic_record(seed, template, generator), template, outcome, hit is not None)
            if isinstance(result, pvalue.TaggedOutput):
                self._failed.inc()
            yield result


class GenerateSynthetic(GlobalStep):
    """Seeds (kept records) → new synthetic records (main) and failed generations (``rejected``).

    ``selection`` (one dict: candidates, selected, skipped by budget) is available as
    ``self.selection`` after the transform is applied, for the report.
    """

    name = STAGE
    config_class = SyntheticConfig
    reasons = REASONS
    signal_fields = SIGNAL_FIELDS

    def __init__(self, config: SyntheticConfig, run: RunContext | None = None):
        if not isinstance(config, SyntheticConfig):
            raise TypeError(f"GenerateSynthetic needs a SyntheticConfig, got {type(config).__name__}")
        super().__init__(config, run)
        self.selection: beam.PCollection | None = None

    def expand(self, seeds: beam.PCollection) -> StageResult:
        selected = seeds | "Select" >> SelectSeeds(self.config)
        self.selection = selected[SELECTION]
        return split_outputs(
            selected.selected
            # Spread the selected pairs (gathered on one worker by Top) over all workers.
            | "Spread" >> beam.Reshuffle()
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.config.batch_size)
            | "Generate" >> beam.ParDo(_GenerateFn(self.config)).with_outputs(REJECTED, main=KEPT)
        )


def generate_once(config: SyntheticConfig, seeds: list[Record]) -> tuple[list[Record], list[Record], float]:
    """Without Beam: run selection and generation over ``seeds`` (tests, benchmarks, notebooks)."""
    from transforms.synthetic.select import allocate, candidate_pairs

    pairs = sorted((p for s in seeds for p in candidate_pairs(s, config)), key=lambda p: (p[0], p[1]))
    chosen = [item for item in allocate(pairs[: config.max_records], config, len(pairs))
              if not isinstance(item, pvalue.TaggedOutput)]
    fn = _GenerateFn(config)
    fn.setup()
    kept: list[Record] = []
    failed: list[Record] = []
    started = time.perf_counter()
    for start in range(0, len(chosen), config.batch_size):
        for result in fn.process(chosen[start : start + config.batch_size]):
            if isinstance(result, pvalue.TaggedOutput):
                failed.append(result.value)
            else:
                kept.append(result)
    return kept, failed, time.perf_counter() - started
