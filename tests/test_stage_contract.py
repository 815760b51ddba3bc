"""Every stage declares its whole contract on its class, and emits only the reasons it declares.

Two ways of catching an undeclared reason: the reason literals in each stage's module (every
``Drop("...")`` and ``rejected(record, stage, "...")``), and the reasons the text job's
per-record stages give on real pages (the shared Common Crawl WARC and the article benchmark).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections import Counter
from dataclasses import fields
from typing import Any

import pytest
from conftest import SHARED_DATA, aeb_pages, write_warc

from pipelines import images, text
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import read_file
from transforms.stage import DEDUP, ERROR_REASON, FILTER, GLOBAL, TRANSFORM, GlobalStep, Stage, run_stage
from transforms.synthetic import GenerateSynthetic

ALL_STAGES = sorted({*text.STAGES, *images.STAGES, GenerateSynthetic}, key=lambda cls: cls.__name__)
SNAKE = re.compile(r"^[a-z0-9_]+$")


def allows(stage_class: type, reason: str) -> bool:
    """Whether ``reason`` (without the stage prefix) is one ``stage_class`` declares."""
    if reason == ERROR_REASON:
        return stage_class.may_error
    return reason in stage_class.reasons or any(re.fullmatch(p, reason) for p in stage_class.reason_patterns)


@pytest.mark.parametrize("stage_class", ALL_STAGES, ids=lambda cls: cls.__name__)
def test_every_stage_declares_its_contract(stage_class):
    assert all(SNAKE.match(reason) for reason in stage_class.reasons), stage_class.reasons
    assert len(set(stage_class.reasons)) == len(stage_class.reasons)
    signals = {f.name for f in stage_class.signal_fields}
    roles = (GLOBAL, DEDUP) if issubclass(stage_class, GlobalStep) else (FILTER, TRANSFORM)
    assert stage_class.role in roles, (stage_class.role, roles)
    if stage_class.role == DEDUP:  # its duplicates name their keeper; the statistics list its clusters
        assert "dup_of" in signals and "dup_of" in stage_class.signal_rules.must_be_null
        assert stage_class.cluster_size_field in (None, *signals)
    else:
        assert stage_class.cluster_size_field is None
    assert issubclass(stage_class, Stage | GlobalStep)
    rules = stage_class.signal_rules
    named = {*rules.nullable, *rules.must_be_null, *rules.ranges, *rules.value_sets}
    assert named <= signals, f"{stage_class.name}: rules for signals it does not add: {named - signals}"


@pytest.mark.parametrize("job", [text.JOB, images.JOB], ids=lambda job: job.name)
def test_the_job_config_is_composed_from_its_stages_config_classes(job):
    sections = {f.name: f.type for f in fields(job.config)}
    for stage_class in job.stages:
        assert sections[stage_class.name] is stage_class.config_class
        assert isinstance(getattr(job.config(), stage_class.name), stage_class.config_class)


def _reason_literals(stage_class: Any) -> set[str]:
    """Reasons written as literals in the stage's module (or in ``stage_class``, a module):
    ``Drop("x", ...)``, ``rejected(record, stage, "x", ...)`` and ``file_quarantine(path, "x", ...)``."""
    module = stage_class if inspect.ismodule(stage_class) else inspect.getmodule(stage_class)
    tree = ast.parse(inspect.getsource(module))
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        position = {"Drop": 0, "rejected": 2, "file_quarantine": 1}.get(node.func.id)
        if position is not None and len(node.args) > position:
            arg = node.args[position]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


@pytest.mark.parametrize("stage_class", ALL_STAGES, ids=lambda cls: cls.__name__)
def test_reason_literals_in_a_stage_module_are_declared(stage_class):
    module = inspect.getmodule(stage_class)
    classes = [cls for cls in ALL_STAGES if inspect.getmodule(cls) is module]
    undeclared = {r for r in _reason_literals(stage_class) if not any(allows(cls, r) for cls in classes)}
    assert not undeclared, f"{module.__name__} emits reasons no stage of it declares: {sorted(undeclared)}"


# Every module with a reader of each job: the reasons they write are ``read.*`` reasons.
READER_MODULES = {
    text.JOB.reader: ["transforms.readers.base", "transforms.readers.jsonl", "transforms.readers.parquet",
                      "transforms.readers.warc", "transforms.readers.read_inputs"],
    images.JOB.reader: ["transforms.images.read", "transforms.images.tables", "transforms.images.webdataset"],
}


@pytest.mark.parametrize("reader", list(READER_MODULES), ids=lambda cls: cls.__name__)
def test_reason_literals_of_a_jobs_readers_are_declared_by_its_reader(reader):
    assert all(SNAKE.match(reason) for reason in reader.reasons), reader.reasons
    literals = {r for name in READER_MODULES[reader] for r in _reason_literals(importlib.import_module(name))}
    assert literals, "the scan finds the readers' reasons"
    undeclared = {r for r in literals if r not in reader.reasons
                  and not any(re.fullmatch(p, r) for p in reader.reason_patterns)}
    assert not undeclared, f"{reader.__name__}'s readers give reasons it does not declare: {sorted(undeclared)}"


def test_a_reason_missing_from_the_declaration_is_caught(monkeypatch):
    from transforms.filters.gopher_quality import GopherQualityFilter

    assert "word_count" in _reason_literals(GopherQualityFilter)
    monkeypatch.setattr(GopherQualityFilter, "reasons", tuple(r for r in GopherQualityFilter.reasons
                                                              if r != "word_count"))
    assert not allows(GopherQualityFilter, "word_count")


@pytest.fixture(scope="module")
def real_records(tmp_path_factory):
    """The shared Common Crawl WARC and 30 real article pages, as the text job reads them."""
    warc = write_warc(tmp_path_factory.mktemp("pages") / "articles.warc.gz",
                      [(url, html) for url, html, _ in aeb_pages(30)])
    config = ReadConfig()
    paths = [str(SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"), str(warc)]
    return [record for path in paths for record, drop in read_file(path, config) if drop is None]


def test_per_record_stages_emit_only_declared_reasons_on_real_pages(real_records):
    config = text.Config()
    records, emitted = list(real_records), Counter()
    for stage_class in text.JOB.plan(config).stages:
        if not issubclass(stage_class, Stage):
            continue
        stage = stage_class(getattr(config, stage_class.name))
        stage.setup()
        kept = []
        for record, drop in run_stage(stage, records):
            if drop is None:
                kept.append(record)
            else:
                emitted[(stage_class, drop.reason)] += 1
        records = kept
    undeclared = sorted(f"{cls.name}.{reason}" for cls, reason in emitted if not allows(cls, reason))
    assert not undeclared, f"reasons emitted but not declared: {undeclared}"
    # The pages exercise the contract: several stages reject some of them.
    assert len({cls for cls, _ in emitted}) >= 3, emitted
