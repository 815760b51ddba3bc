"""Assembling a job from its stage classes: shared by every job in ``pipelines/``.

A job lists its stage classes in order (``Job.stages``, ``pipelines/text.py``); each is configured by the job
config's section of its name and skipped when that section is not ``enabled``
(``transforms.stage_plan``). Batch stages (``Stage``) run through ``ApplyStage``; global steps
(``GlobalStep``) are built with ``for_job(config, RunContext)``. Every stage's kept and
rejected outputs are recorded in a ``StageOutputs``, the hook for stats and validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import apache_beam as beam

from transforms.readers.base import READ_STAGE
from transforms.stage import ApplyStage, RunContext, Stage
from transforms.stage_plan import StagePlan


@dataclass
class StageOutputs:
    """What each stage of a built job produced, in order: hooks for stats and validation."""

    kept: dict[str, beam.PCollection] = field(default_factory=dict)
    rejected: dict[str, beam.PCollection] = field(default_factory=dict)
    final: beam.PCollection | None = None
    # Every stage's rejected records, one PCollection each: never flattened into one, which
    # the in-process runner would fill with all of them before anything reads it.
    all_rejected: tuple[beam.PCollection, ...] = ()


class Branch(Protocol):
    """A step that adds records to the stream (synthetic data). It joins where ``joins`` says
    (``transforms.stage_plan``) and gets the per-record stages that ran so far, to gate its own
    records with them (Beam graphs cannot loop back)."""

    name: str
    joins: str

    def __call__(self, records: beam.PCollection, gates: list[Stage]) -> tuple[beam.PCollection, beam.PCollection]:
        """``(records and the branch's new kept records, the branch's rejected records)``."""


def apply_stages(
    read: Any, plan: StagePlan, config: Any, run: RunContext, batch_size: int, branch: Branch | None = None
) -> StageOutputs:
    """Run the planned stages after ``read`` (a kept/rejected pair); ``final`` is what the last
    stage kept. ``all_rejected`` is left to the job (it may strip fields first). ``branch``,
    when the plan has one, joins at ``plan.join_at`` and is recorded as a stage of its name."""
    outputs = StageOutputs()
    outputs.kept[READ_STAGE], outputs.rejected[READ_STAGE] = read.kept, read.rejected
    records = read.kept
    gates: list[Stage] = []
    for position, stage_class in enumerate([*plan.stages, None]):
        if position == plan.join_at and branch is not None:
            records, rejected = branch(records, list(gates))
            outputs.kept[branch.name], outputs.rejected[branch.name] = records, rejected
        if stage_class is None:
            break
        section = getattr(config, stage_class.name)
        if issubclass(stage_class, Stage):
            stage = stage_class(section)
            gates.append(stage)
            step = ApplyStage(stage, batch_size)
        else:
            step = stage_class.for_job(config, run)
        out = records | step
        outputs.kept[stage_class.name], outputs.rejected[stage_class.name] = out.kept, out.rejected
        records = out.kept
    outputs.final = records
    return outputs
