"""The local runner's worker defaults: every core, limited by --workers / DATAPREP_WORKERS, Beam's
own flags win; other runners untouched."""

from __future__ import annotations

import os

import pytest
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from pipelines import cli
from pipelines.runner import WORKERS_VARIABLE, pipeline_options


def _workers(args):
    direct = pipeline_options(args).view_as(DirectOptions)
    return direct.direct_num_workers, direct.direct_running_mode


def test_every_core_by_default_in_processes(monkeypatch):
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    cores = len(os.sched_getaffinity(0))
    mode = "multi_processing" if cores > 1 else "in_memory"
    assert _workers([]) == (cores, mode)
    assert pipeline_options([]).view_as(StandardOptions).runner == "FnApiRunner"


def test_limits_and_beam_flags_win(monkeypatch):
    monkeypatch.setenv(WORKERS_VARIABLE, "1")
    assert _workers([]) == (1, "in_memory")
    monkeypatch.setenv(WORKERS_VARIABLE, "3")
    assert _workers([]) == (3, "multi_processing")
    assert _workers(["--direct_num_workers=1"]) == (1, "in_memory")
    assert _workers(["--direct_num_workers=2", "--direct_running_mode=multi_threading"]) == (2, "multi_threading")
    monkeypatch.setenv(WORKERS_VARIABLE, "0")
    with pytest.raises(ValueError, match=WORKERS_VARIABLE):
        pipeline_options([])


def test_other_runners_are_left_alone(monkeypatch):
    monkeypatch.setenv(WORKERS_VARIABLE, "4")
    options = pipeline_options(["--runner=PortableRunner", "--job_endpoint=localhost:1"])
    assert options.view_as(DirectOptions).direct_num_workers == 1


def test_cli_workers_flag_is_checked(capsys):
    assert cli.main(["run", "images", "--input", "x.csv", "--output", "out", "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
