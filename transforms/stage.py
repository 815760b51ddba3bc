"""The stage contract: every step that may drop a record is a ``Stage``.

A stage sees records in batches (so model-backed stages can vectorise), writes its signals
onto each record, and answers per record either ``None`` (keep) or a ``Drop`` naming a
stable reason. ``ApplyStage`` is the Beam wrapper: kept records on the main output,
rejected ones (the record as it was plus ``reject_stage``, ``reject_reason``,
``reject_detail``) on the ``rejected`` output. Nothing leaves a stage any other way: an
exception inside a stage becomes a ``<stage>.error`` rejection of the record that raised.
"""

from __future__ import annotations

import logging
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

from run_folder.storage import join
from transforms import live_progress
from transforms.spill import MemoryConfig

Record = dict[str, Any]

# The two outputs of every stage and step, and the two sides of its statistics and suites.
KEPT = "kept"
REJECTED = "rejected"
MAX_DETAIL_CHARS = 500
# What a stage is to its job: a per-record filter (score, then decide), a per-record
# transform (rewrites or annotates; may still drop what it cannot handle), or a global step
# (sees the whole run: quotas, decontamination), or a dedup step (a global step whose rejected
# records are duplicates, each naming its keeper in ``dup_of``; the statistics list its clusters).
FILTER, TRANSFORM, GLOBAL, DEDUP = "filter", "transform", "global", "dedup"
# Common signal ranges (``SignalRules.ranges``): a share, a count, a positive count.
FRACTION = (0.0, 1.0)
COUNT = (0, None)
POSITIVE = (1, None)
# The reason every ``Stage`` may give (``run_stage``): the record raised.
ERROR_REASON = "error"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drop:
    """Why a stage drops a record. ``reason`` is short snake_case; the wrapper namespaces it."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class RunContext:
    """What a global step (a PTransform stage such as dedup) may need to know about its run:
    where it is, and where and within which bounds record bodies spill (``transforms.spill``)."""

    run_dir: str
    run_id: str
    dedup_index: str | None = None
    memory: MemoryConfig = field(default_factory=MemoryConfig)

    @property
    def spill_dir(self) -> str:
        return join(self.run_dir, "_staging", "spill")


def spill_dir_of(run: RunContext | None) -> str:
    """The run's spill folder; a fresh local folder for a step built outside a run (tests)."""
    return run.spill_dir if run is not None else tempfile.mkdtemp(prefix="dataprep-spill-")


@dataclass(frozen=True)
class SignalRules:
    """What a stage guarantees about its signal columns on the records it keeps; the
    validation suites (``schemas/*_suites.py``) check it."""

    # Signals that kept records may leave empty; every other signal must be set.
    nullable: tuple[str, ...] = ()
    # Signals that must be empty on kept records (set only on the records the stage rejects).
    must_be_null: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    value_sets: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # False: the signals are type-checked only, not part of the column contract, and a
    # missing value is a warning (stages whose signals are not always written).
    required: bool = True


@dataclass
class StageResult:
    """The two outputs of every stage and global step: what it kept and what it rejected."""

    kept: beam.PCollection
    rejected: beam.PCollection


class StageContract:
    """What a stage declares on its class, read by the job runner, suites, stats and trace:
    its ``name``, the ``signal_fields`` it adds (``schemas/`` composes the output schema from
    them), the closed set of ``reasons`` it may give (without the ``<stage>.`` prefix; part
    of the output schema), ``reason_patterns`` for reasons that carry a value
    (``http_404``), what its signals guarantee (``signal_rules``) and its ``role`` (a dedup
    step also its ``cluster_size_field``, where it records its clusters' sizes)."""

    name: ClassVar[str]
    signal_fields: ClassVar[tuple[pa.Field, ...]] = ()
    reasons: ClassVar[tuple[str, ...]]
    reason_patterns: ClassVar[tuple[str, ...]] = ()
    signal_rules: ClassVar[SignalRules] = SignalRules()
    role: ClassVar[str]
    cluster_size_field: ClassVar[str | None] = None
    # The class of its section of the job config (a frozen dataclass with ``enabled``).
    config_class: ClassVar[type]
    # Whether ``<stage>.error`` is possible (a stage run through ``ApplyStage``).
    may_error: ClassVar[bool]


class Stage(StageContract, ABC):
    """One per-record step of a pipeline, run in batches by ``ApplyStage``. Built from its
    section of the job config; by default ``cls(config)`` keeps it as ``self.config`` (the
    ``config_class`` defaults when none is given)."""

    role = TRANSFORM
    may_error = True

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.config_class()

    def setup(self) -> None:
        """Load models or tables; called once per worker, never per record."""

    @abstractmethod
    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        """Write signals onto ``records`` in place; return one ``Drop`` or ``None`` per record."""


class Filter(Stage):
    """Score, then decide: ``score`` computes signals once, ``decide`` applies thresholds.

    Keeping the two apart lets users re-threshold a finished run from the stored signals.
    """

    role = FILTER

    @abstractmethod
    def score(self, record: Record) -> Record:
        """Signals of one record, keyed by the names in ``signal_fields``."""

    def score_batch(self, records: list[Record]) -> list[Record]:
        """Override where a library vectorises over a batch (fastText, scikit-learn, ONNX)."""
        return [self.score(record) for record in records]

    @abstractmethod
    def decide(self, record: Record) -> Drop | None:
        """Keep (``None``) or drop, from the signals already on the record."""

    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        for record, signals in zip(records, self.score_batch(records), strict=True):
            record.update(signals)
        return [self.decide(record) for record in records]


def rejected(record: Record, stage: str, reason: str, detail: str = "") -> Record:
    """The rejected form of ``record``: the record as it was, plus where and why it left."""
    return {
        **record,
        "reject_stage": stage,
        "reject_reason": f"{stage}.{reason}",
        "reject_detail": detail[:MAX_DETAIL_CHARS],
    }


def run_stage(stage: Stage, records: list[Record]) -> Iterator[tuple[Record, Drop | None]]:
    """Run ``stage`` on a batch; a batch that raises is retried record by record so that
    only the records that really fail are rejected, as ``<stage>.error``."""
    try:
        drops = stage.process_batch(records)
    except Exception:  # noqa: BLE001 - isolated below, record by record
        log.warning("stage %s failed on a batch of %d; retrying one by one", stage.name, len(records))
        for record in records:
            try:
                (drop,) = stage.process_batch([record])
            except Exception as exc:  # noqa: BLE001 - becomes a rejection with the reason
                drop = Drop("error", f"{type(exc).__name__}: {exc}")
            yield record, drop
        return
    yield from zip(records, drops, strict=True)


class _StageFn(beam.DoFn):
    """A stage over batches of ``batch_size`` records formed within each bundle (batching here,
    not in a ``BatchElements`` before it, saves a step per stage: each costs the runner per
    run, whatever the data)."""

    def __init__(self, stage: Stage, batch_size: int):
        self._stage = stage
        self._batch_size = batch_size
        name = stage.name
        self._kept = beam.metrics.Metrics.counter(name, "kept")
        self._dropped = beam.metrics.Metrics.counter(name, "rejected")

    def setup(self) -> None:
        self._stage.setup()

    def start_bundle(self) -> None:
        self._buffer: list[Record] = []

    def process(self, record: Record) -> Iterable[Any]:
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            batch, self._buffer = self._buffer, []
            yield from self._apply(batch)

    def finish_bundle(self) -> Iterator[Any]:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            for output in self._apply(batch):
                if isinstance(output, pvalue.TaggedOutput):
                    yield pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
                else:
                    yield GlobalWindows.windowed_value(output)

    def _apply(self, batch: list[Record]) -> Iterator[Any]:
        kept = 0
        for record, drop in run_stage(self._stage, batch):
            if drop is None:
                self._kept.inc()
                kept += 1
                yield record
            else:
                self._dropped.inc()
                yield pvalue.TaggedOutput(
                    REJECTED, rejected(record, self._stage.name, drop.reason, drop.detail)
                )
        live_progress.add(f"{self._stage.name}/{KEPT}", kept)
        live_progress.add(f"{self._stage.name}/{REJECTED}", len(batch) - kept)


class ApplyStage(beam.PTransform):
    """Run a ``Stage`` over a PCollection of records, in batches; a ``StageResult``."""

    def __init__(self, stage: Stage, batch_size: int = 256):
        super().__init__(label=stage.name)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._stage = stage
        self._batch_size = batch_size

    def expand(self, records: beam.PCollection) -> StageResult:
        stage = _StageFn(self._stage, self._batch_size)
        return split_outputs(records | "Apply" >> beam.ParDo(stage).with_outputs(REJECTED, main=KEPT))


def split_outputs(outputs: pvalue.DoOutputsTuple) -> StageResult:
    """A ``ParDo``'s ``kept`` (main) and ``rejected`` outputs as a ``StageResult``."""
    return StageResult(outputs[KEPT], outputs[REJECTED])


class GlobalStep(StageContract, beam.PTransform):
    """A step that sees the whole run (dedup, quotas): a ``PTransform`` whose ``expand``
    returns a ``StageResult``. The job builds it with ``for_run(config, RunContext)``; the
    default passes both on, a step that needs more of its run overrides it."""

    role = GLOBAL
    may_error = False

    def __init__(self, config: Any = None, run: RunContext | None = None):
        super().__init__(label=self.name)
        self.config = config if config is not None else self.config_class()
        self._run = run

    @classmethod
    def for_run(cls, config: Any, run: RunContext) -> GlobalStep:
        return cls(config, run)

    @classmethod
    def for_job(cls, job_config: Any, run: RunContext) -> GlobalStep:
        """Built from the job's whole config: its own section, unless the step also works with
        a later stage's settings (the images download decodes as it fetches)."""
        return cls.for_run(getattr(job_config, cls.name), run)

    @abstractmethod
    def expand(self, records: beam.PCollection) -> StageResult:
        """Kept and rejected records; each record leaves on exactly one of them."""
