"""A job, declared once: what ``pipelines/job_runner.py`` needs to build, run, validate, report
and publish it.

A job module (``pipelines/text.py``, ``pipelines/images.py``) is one ``Job``: its stage classes in
order, its config class (composed from those stages' own config classes by ``job_config``), how
it reads, its output schemas, its suites, its branch, its extra sinks, which stages stage report
data, and the run flags it accepts. Everything else (the two sinks, the run facts, statistics,
validation, the gate, the manifest, the report and ``_SUCCESS``) is the same for every job.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.columns import record_schemas
from transforms.parquet_sink import ParquetSinkConfig
from transforms.stage import RunContext
from transforms.stage_plan import StagePlan, plan_stages
from transforms.stats.fields import TEXT_PROFILE, Profile
from transforms.synthetic import GenerateSynthetic

# Every job by name: the module that declares it as ``JOB``.
JOB_MODULES = {"text": "pipelines.text", "images": "pipelines.images"}


def load_job(name: str) -> Job:
    """The declared job ``name`` (its module imported on first use: the images job's models
    are not loaded for a text run)."""
    if name not in JOB_MODULES:
        raise ValueError(f"unknown job {name!r}; known: {sorted(JOB_MODULES)}")
    return importlib.import_module(JOB_MODULES[name]).JOB


@dataclass(frozen=True)
class RunFlag:
    """A run option only some jobs accept (``--dedup-index``); the others refuse it."""

    name: str  # the keyword of ``run()``
    cli: str  # the command-line flag, for messages
    # ``(config, value) -> config``: the flag applied (or checked: raise ``ValueError``).
    apply: Callable[[Any, Any], Any] = lambda config, value: config
    # ``(run_dir, value, run_id) -> manifest entry``: what the flag publishes after ``_SUCCESS``.
    publish: Callable[[str, Any, str], Any] | None = None


@dataclass(frozen=True)
class ExtraSink:
    """An output beside data/ and rejected/ (WebDataset tars, token totals), written from the
    kept records when ``enabled(config)``; ``write`` returns the files it wrote (for the run
    facts, as ``Fact<label>Files``), or ``None`` when it writes only staged report data."""

    label: str
    enabled: Callable[[Any], bool]
    write: Callable[[beam.PCollection, RunContext, Any], beam.PCollection | None]


@dataclass(frozen=True)
class Job:
    """``Job(name, stages, config, ...)``: the stage classes in order and the config class
    (``job_config``); the output schemas follow from the base columns and the stages' signals."""

    name: str
    stages: tuple[type, ...]
    config: type
    # The reader, a PTransform class: ``reader(inputs, config.read)`` has ``kept`` and
    # ``rejected`` outputs (and ``skipped`` where it declares ``skipped_output``); it declares the
    # ``read`` stage's ``reasons`` and ``reason_patterns``.
    reader: type[beam.PTransform]
    base_fields: tuple[pa.Field, ...]
    schema_version: str
    # ``(job, config, severity_overrides) -> {stage: suite}``: read from this declaration.
    suites: Callable[..., dict[str, Any]]
    # The branch class (``assembly.Branch``), built when ``config.synthetic.enabled``.
    branch: type | None = None
    sink: Callable[[Any], ParquetSinkConfig] = lambda config: config.output
    stats_profile: Profile = TEXT_PROFILE
    # ``config -> (record -> record)`` applied to rejected records before they are written.
    strip_rejected: Callable[[Any], Callable[[dict], dict]] | None = None
    extra_sinks: tuple[ExtraSink, ...] = ()
    # Report sections staged by the pipeline: stage name -> loader of ``run_dir``, read when the
    # stage is enabled.
    report_data: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    flags: tuple[RunFlag, ...] = ()
    # ``(config, argparse.Namespace) -> config``: command-line flags this job applies itself.
    cli_config: Callable[[Any, Any], Any] | None = None
    # ``(inputs, config) -> n``: the local runner's worker processes when neither ``--workers``,
    # ``DATAPREP_WORKERS`` nor Beam's flags say (``pipelines.runner``).
    workers: Callable[[list[str], Any], int] = lambda inputs, config: 1

    @functools.cached_property
    def _schemas(self) -> tuple[pa.Schema, pa.Schema]:
        return record_schemas(self.base_fields, (*self.stages, GenerateSynthetic), self.schema_version)

    @property
    def schema(self) -> pa.Schema:
        """The kept records' schema: base columns, then every stage's (and the branch's) signals."""
        return self._schemas[0]

    @property
    def rejected_schema(self) -> pa.Schema:
        return self._schemas[1]

    @property
    def reads_skipped(self) -> bool:
        """Whether the reader has a ``skipped`` output (records that are no document)."""
        return self.reader.skipped_output

    def read(self, inputs: list[str], config: Any) -> beam.PTransform:
        return self.reader(inputs, config.read)

    def plan(self, config: Any) -> StagePlan:
        branch = self.branch if self.branch is not None and config.synthetic.enabled else None
        return plan_stages(self.stages, config, branch)

    def stage_order(self, config: Any) -> list[str]:
        return self.plan(config).order()

    def enabled_stages(self, config: Any) -> list[type]:
        return list(self.plan(config).stages)

    def validation_suites(self, config: Any, severity_overrides: Mapping[str, str] | None = None) -> dict:
        """The suite of every stage ``config`` runs (``suites(job, config, overrides)``)."""
        return self.suites(self, config, severity_overrides)

    def refused(self, flags: Mapping[str, Any]) -> list[str]:
        """One message per flag given a value that this job does not accept."""
        accepted = {flag.name for flag in self.flags}
        return [
            f"{'--' + name.replace('_', '-')} does not apply to the {self.name} job"
            for name, value in flags.items()
            if value not in (None, False) and name not in accepted
        ]


def job_config(
    name: str,
    doc: str,
    module: str,
    stages: Sequence[type],
    before: Sequence[tuple[str, type, Any]] = (),
    after: Sequence[tuple[str, type, Any]] = (),
    defaults: Mapping[str, Callable[[], Any]] | None = None,
    post_init: Callable[[Any], None] | None = None,
) -> type:
    """A job's frozen config class: ``before`` sections, one section per stage (named after it,
    of the stage's ``config_class``, default from ``defaults`` or the class's own), ``after``.
    ``before``/``after`` entries are ``(name, type, default factory or value)``."""
    defaults = defaults or {}
    fields: list[tuple[str, type, Any]] = []
    for section, type_, default in before:
        fields.append(_field(section, type_, default))
    for stage in stages:
        if any(f[0] == stage.name for f in fields):
            continue
        fields.append(_field(stage.name, stage.config_class, defaults.get(stage.name, stage.config_class)))
    for section, type_, default in after:
        fields.append(_field(section, type_, default))
    namespace: dict[str, Any] = {"__doc__": doc}
    if post_init is not None:
        namespace["__post_init__"] = post_init
    cls = dataclasses.make_dataclass(name, fields, frozen=True, namespace=namespace)
    cls.__module__ = module  # pickled by reference: the module binds it under ``name``
    return cls


def _field(name: str, type_: type, default: Any) -> tuple[str, type, Any]:
    if callable(default):
        return (name, type_, field(default_factory=default))
    return (name, type_, field(default=default))
