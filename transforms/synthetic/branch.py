"""``SyntheticBranch``: generation plus the same per-record gates the crawled records passed.

A Beam graph cannot loop back, so synthetic records do not re-enter the chain they were seeded
from: the branch applies the job's own ``Stage`` instances (language, quality, harm, PII: every
per-record stage except those that need a fetched page) to them, and the job flattens the
survivors into the main stream before the global steps (dedup), which therefore judge crawled
and synthetic records together.

Outputs (a dict of PCollections):
- ``kept``: synthetic records that passed every gate (flatten them into the main stream);
- ``rejected``: every synthetic record rejected here, all with ``reject_stage=synthetic`` (the
  run's funnel is a chain: this step's rejections are its own), the reason saying by whom:
  generation (``synthetic.*``) or a gate (``language.*``, ``gopher_quality.*``, ...);
- ``born``: every synthetic record created (generated or failed): the run's input grows by
  these, for conservation (input = kept + rejected);
- ``generated``, ``failed``, ``selection``: for ``SyntheticReport``.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam

from run_folder.facts import FactsOf, created_fact
from transforms.stage import ApplyStage, RunContext, Stage
from transforms.stage_plan import BEFORE_GLOBAL_STEPS
from transforms.synthetic.config import SyntheticConfig
from transforms.synthetic.generate import STAGE, GenerateSynthetic
from transforms.synthetic.report import SyntheticReport

# Stages that work on the fetched page, not on text: synthetic records skip them.
NOT_GATES = frozenset({"url_filter", "consent", "license", "extract"})


def _rejected_here(record: dict) -> dict:
    """A gate's rejection inside the branch: the branch's stage, the gate's reason."""
    return {**record, "reject_stage": STAGE}


def gates_of(stages: Sequence[Stage]) -> list[Stage]:
    return [stage for stage in stages if stage.name not in NOT_GATES]


class SyntheticBranch(beam.PTransform):
    def __init__(self, config: SyntheticConfig, run: RunContext | None, stages: Sequence[Stage],
                 batch_size: int = 256, complete: beam.PTransform | None = None):
        """``complete``, when given, runs on the generated records before the gates (the images
        job joins each rewritten caption to its parent's image there)."""
        super().__init__()
        self._config = config
        self._run = run
        self._gates = gates_of(stages)
        self._batch_size = batch_size
        self._complete = complete

    def expand(self, seeds: beam.PCollection) -> dict[str, beam.PCollection]:
        generate = GenerateSynthetic(self._config, self._run)
        generated = seeds | "Generate" >> generate
        records = generated.kept
        if self._complete is not None:
            records = records | "Complete" >> self._complete
        rejected = [generated.rejected]
        for stage in self._gates:
            out = records | f"Gate_{stage.name}" >> ApplyStage(stage, self._batch_size)
            rejected.append(out.rejected | f"Relabel_{stage.name}" >> beam.Map(_rejected_here))
            records = out.kept
        return {
            "kept": records,
            "rejected": rejected | "AllRejected" >> beam.Flatten(),
            "born": (generated.kept, generated.rejected) | "Born" >> beam.Flatten(),
            "generated": generated.kept,
            "failed": generated.rejected,
            "selection": generate.selection,
        }


class SyntheticJoin:
    """The synthetic branch as the text job's branch (``pipelines.assembly.Branch``): seeded
    by the records that passed every per-record stage, gated by those same stages, joined
    before the global steps (dedup judges crawled and synthetic records together). ``parts``
    keeps the branch's outputs for the run facts and the report."""

    name = STAGE
    joins = BEFORE_GLOBAL_STEPS

    def __init__(self, config: SyntheticConfig, run: RunContext | None, batch_size: int):
        self._config, self._run, self._batch_size = config, run, batch_size
        self.parts: dict[str, beam.PCollection] = {}

    def __call__(self, records: beam.PCollection, gates: list[Stage]) -> tuple[beam.PCollection, beam.PCollection]:
        self.parts = records | "Synthetic" >> SyntheticBranch(self._config, self._run, gates, self._batch_size)
        merged = (records, self.parts["kept"]) | "WithSynthetic" >> beam.Flatten()
        return merged, self.parts["rejected"]


def account_for(parts: dict[str, beam.PCollection], final: beam.PCollection,
                rejected: Sequence[beam.PCollection], run_dir: str) -> FactsOf:
    """A joined branch's report section (``SyntheticReport`` over the job's ``final`` and every
    stage's ``rejected`` records); returns its run facts: every record it created, for conservation.
    Only synthetic rejections are flattened (a few), never every rejected record."""
    rejected = [
        stage_rejected | f"SyntheticRejected{i}" >> beam.Filter(lambda r: bool(r.get("synthetic")))
        for i, stage_rejected in enumerate(rejected)
    ] | "AllSyntheticRejected" >> beam.Flatten()
    _ = {
        "generated": parts["generated"], "failed": parts["failed"], "final": final, "rejected": rejected,
        "selection": parts["selection"],
    } | "SyntheticReport" >> SyntheticReport(run_dir)
    return parts["born"], created_fact(STAGE)


def preflight(config: SyntheticConfig) -> None:
    """On the driver, before the pipeline: a clear error now if the backend cannot answer
    (model file or llama-cpp-python missing, server unreachable), rather than every record
    rejected as ``backend_unreachable`` at the end of a long run."""
    from transforms.synthetic.backends import backend_from_config

    if config.enabled:
        backend_from_config(config).check()
