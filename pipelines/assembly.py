"""Assembling a job from its stage classes: shared by every job in ``pipelines/``.

A job lists its stage classes in order (``transforms.registry``); each is configured by the job
config's section of its name and skipped when that section is not ``enabled``. Batch stages
(``Stage``) run through ``ApplyStage``; global steps are ``PTransform`` classes built with
``for_run(config, RunContext)``. Every stage's kept and rejected outputs are recorded in a
``StageOutputs``, the hook for stats and validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from transforms.stage import ApplyStage, RunContext, Stage

from transforms.readers.base import READ_STAGE  # the readers name the stage


@dataclass
class StageOutputs:
    """What each stage of a built job produced, in order: hooks for stats and validation."""

    kept: dict[str, beam.PCollection] = field(default_factory=dict)
    rejected: dict[str, beam.PCollection] = field(default_factory=dict)
    final: beam.PCollection | None = None
    all_rejected: beam.PCollection | None = None


def enabled_stages(stage_classes: Sequence[Any], config: Any) -> list[Any]:
    return [stage for stage in stage_classes if getattr(config, stage.name).enabled]


def stage_order(stage_classes: Sequence[Any], config: Any) -> list[str]:
    return [READ_STAGE] + [stage.name for stage in enabled_stages(stage_classes, config)]


def apply_stages(
    read: Any, stage_classes: Sequence[Any], config: Any, run: RunContext, batch_size: int
) -> StageOutputs:
    """Run the enabled stages after ``read`` (a kept/rejected outputs tuple); ``final`` is what
    the last stage kept. ``all_rejected`` is left to the job (it may strip fields first)."""
    outputs = StageOutputs()
    outputs.kept[READ_STAGE], outputs.rejected[READ_STAGE] = read.kept, read.rejected
    records = read.kept
    for stage_class in enabled_stages(stage_classes, config):
        section = getattr(config, stage_class.name)
        if issubclass(stage_class, Stage):
            step = ApplyStage(stage_class(section), batch_size)
        else:
            step = stage_class.for_run(section, run)
        out = records | step
        outputs.kept[stage_class.name], outputs.rejected[stage_class.name] = out.kept, out.rejected
        records = out.kept
    outputs.final = records
    return outputs
