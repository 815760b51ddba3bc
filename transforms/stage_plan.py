"""Which stages a job runs for a config, in order, and where its branch joins: worked out once.

The job runner builds the pipeline from it, the progress line and the manifest's funnel take
their order from it, and the validation suites walk it, so all of them agree on where a branch
(synthetic data) joins. A branch class says where it joins (``joins``): before the first global
step (the text job's synthetic records, so that dedup judges old and new records together) or
after the last stage (the images job's caption rewrites, which share their parent's image on
purpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transforms.readers.base import READ_STAGE
from transforms.stage import Stage

BEFORE_GLOBAL_STEPS, AFTER_LAST_STAGE = "before_global_steps", "after_last_stage"


@dataclass(frozen=True)
class StagePlan:
    """The enabled stage classes in order, and the branch (its stage name) with its position."""

    stages: tuple[type, ...]
    branch: str | None = None
    # Index into ``stages`` before which the branch joins (``len(stages)``: after the last).
    join_at: int | None = None

    def order(self) -> list[str]:
        """Stage names as the funnel lists them: ``read``, the stages, the branch where it joins."""
        names = [stage.name for stage in self.stages]
        if self.branch is not None:
            names.insert(self.join_at, self.branch)
        return [READ_STAGE, *names]


def enabled_stages(stage_classes: Sequence[type], config: Any) -> tuple[type, ...]:
    """The stages whose config section (named after the stage) is ``enabled``."""
    return tuple(stage for stage in stage_classes if getattr(config, stage.name).enabled)


def join_position(stages: Sequence[type], joins: str) -> int:
    if joins == AFTER_LAST_STAGE:
        return len(stages)
    if joins == BEFORE_GLOBAL_STEPS:
        return next((i for i, stage in enumerate(stages) if not issubclass(stage, Stage)), len(stages))
    raise ValueError(f"a branch joins {BEFORE_GLOBAL_STEPS} or {AFTER_LAST_STAGE}, not {joins!r}")


def plan_stages(stage_classes: Sequence[type], config: Any, branch: Any = None) -> StagePlan:
    """The plan of a job's ``stage_classes`` for ``config``; ``branch`` (a class with ``name``
    and ``joins``) joins when given."""
    stages = enabled_stages(stage_classes, config)
    if branch is None:
        return StagePlan(stages)
    return StagePlan(stages, branch.name, join_position(stages, branch.joins))
