"""The local runner's workers: the job's choice by default (the text job: every core once its
input is more than one read split), else --workers / DATAPREP_WORKERS (0: every core); Beam's
own flags win; other runners untouched."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from pipelines import cli, images, text
from pipelines.runner import WORKERS_VARIABLE, pipeline_options
from transforms.images.decode import DecodeConfig, DecodeWhileFetching
from transforms.worker_cores import WORKER_CORES_VARIABLE, machine_cores, worker_cores


def _workers(args, job_workers=1):
    direct = pipeline_options(args, lambda: job_workers).view_as(DirectOptions)
    return direct.direct_num_workers, direct.direct_running_mode


def test_in_process_by_default_every_core_on_request(monkeypatch):
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    assert _workers([]) == (1, "in_memory")
    assert pipeline_options([]).view_as(StandardOptions).runner == "FnApiRunner"
    monkeypatch.setenv(WORKERS_VARIABLE, "0")
    cores = len(os.sched_getaffinity(0))
    assert _workers([]) == (cores, "multi_processing" if cores > 1 else "in_memory")


def test_limits_and_beam_flags_win(monkeypatch):
    monkeypatch.setenv(WORKERS_VARIABLE, "1")
    assert _workers([]) == (1, "in_memory")
    monkeypatch.setenv(WORKERS_VARIABLE, "3")
    assert _workers([]) == (3, "multi_processing")
    assert _workers(["--direct_num_workers=1"]) == (1, "in_memory")
    assert _workers(["--direct_num_workers=2", "--direct_running_mode=multi_threading"]) == (2, "multi_threading")
    monkeypatch.setenv(WORKERS_VARIABLE, "1")
    assert _workers([], job_workers=2) == (1, "in_memory")
    assert _workers(["--direct_num_workers=1"], job_workers=2) == (1, "in_memory")
    monkeypatch.setenv(WORKERS_VARIABLE, "-1")
    with pytest.raises(ValueError, match=WORKERS_VARIABLE):
        pipeline_options([])


def test_other_runners_are_left_alone(monkeypatch):
    monkeypatch.setenv(WORKERS_VARIABLE, "4")
    options = pipeline_options(["--runner=PortableRunner", "--job_endpoint=localhost:1"])
    assert options.view_as(DirectOptions).direct_num_workers == 1


def test_cli_workers_flag_is_checked(capsys):
    assert cli.main(["run", "images", "--input", "x.csv", "--output", "out", "--workers", "-1"]) == 2
    assert "--workers must be >= 0" in capsys.readouterr().err


def test_each_local_worker_counts_its_share_of_the_cores(monkeypatch):
    """Two local workers on the machine's cores: the decode and NSFW thread pools of each count
    half of them, in the worker processes that inherit the environment."""
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    monkeypatch.delenv(WORKER_CORES_VARIABLE, raising=False)
    cores = machine_cores()
    pipeline_options(["--direct_num_workers=2"])
    assert os.environ[WORKER_CORES_VARIABLE] == str(max(1, cores // 2)) and worker_cores() == max(1, cores // 2)
    assert DecodeWhileFetching(DecodeConfig()).threads == max(1, cores // 2 - 1)
    assert DecodeWhileFetching(DecodeConfig(threads=3)).threads == 3
    pipeline_options([])
    assert WORKER_CORES_VARIABLE not in os.environ and worker_cores() == cores
    assert DecodeWhileFetching(DecodeConfig()).threads == max(1, cores - 1)


def test_the_text_job_uses_every_core_once_its_input_is_more_than_a_split(monkeypatch, tmp_path):
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_text('{"text": "a"}\n')
    large.write_text('{"text": "a page of text"}\n' * 200)
    config = text.TextConfig()
    assert text.JOB.workers([str(small)], config) == 1
    assert text.JOB.workers([str(large)], config) == 1  # 5 KB: far below one 64 MiB split
    split_1k = replace(config, read=replace(config.read, split_bytes=1_000))
    assert text.JOB.workers([str(large)], split_1k) == machine_cores()
    assert text.JOB.workers([str(small)], split_1k) == 1
    assert _workers([], text.JOB.workers([str(large)], split_1k)) == (
        machine_cores(), "multi_processing" if machine_cores() > 1 else "in_memory")
    assert images.JOB.workers([str(large)], images.Config()) == 1  # fetched by host: one worker
