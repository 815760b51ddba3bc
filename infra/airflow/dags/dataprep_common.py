"""The shape shared by the daily dataprep DAGs: run → validate → check_dedup_index → publish.

One DAG run is one day's partition, keyed by the run's logical date ``ds`` (for a scheduled or
backfill run of a ``CronDataIntervalTimetable`` that is the start of its data interval): the input
comes from a template rendered with the run's context (``s3://bucket/raw/{{ ds }}/*.warc.gz``),
the output is ``<output>/dt=<ds>/`` with run id ``dt=<ds>``; nothing reads the wall clock.
Rerunning a date rewrites that partition: ``dataprep run`` with the same run id removes the old
markers first and the files of the earlier attempt at commit.

- ``run``: ``dataprep run <job>`` in the dataprep venv (a subprocess, so Airflow's workers need
  none of the pipeline's dependencies). Retried with exponential backoff; fails at once on bad
  usage (exit 2, including a job this dataprep does not have) and on failures of the data
  (failed validation, conservation, index mismatch). A drift alarm (exit 3: committed, but a
  distribution moved against the previous run) is left to the gate.
- ``validate``: the gate, ``check_partition.py`` under the dataprep venv's interpreter: the
  partition as stored, its validation results and its drift alarms (param ``accept_drift`` lets
  a reviewed date through). A failed check fails the DAG run, removes the date from the dedup
  index and then ``_SUCCESS``, and publishes nothing.
- ``check_dedup_index``: with an index configured, ``run`` passed ``--dedup-index`` (the day is
  deduplicated against the days published before it, and dataprep appends its band table after
  its own ``_SUCCESS``); this confirms the entry after the gate, or logs why there is none.
- ``publish``: an event on the job's Asset, with the partition key ``ds`` and the partition's
  facts (URI, manifest sha256, counts) as extra, for downstream DAGs to schedule on.

Settings are read from the environment of the Airflow processes (the DAG processor and the
workers must see the same values); the per-run ones are DAG params that a manual run or a
backfill may override (``--conf``):

    DATAPREP_BIN                  the dataprep command (default: ``dataprep`` on PATH)
    DATAPREP_PYTHON               its interpreter (default: ``python`` beside DATAPREP_BIN)
    DATAPREP_<JOB>_OUTPUT         output root: the partitions go to <root>/dt=YYYY-MM-DD/
    DATAPREP_<JOB>_DEDUP_INDEX    cross-run dedup index (unset: not updated)
    DATAPREP_<JOB>_INPUT_TEMPLATE param input_template: inputs, space-separated, Jinja-templated
    DATAPREP_<JOB>_CONFIG         param config: YAML config for ``dataprep run --config``
    DATAPREP_<JOB>_BEAM_ARGS      param beam_args: Beam flags, Jinja-templated (see infra/runners/)
    (param accept_drift)          false: a drift alarm fails the gate
    DATAPREP_START_DATE           first logical date the scheduler knows (default 2024-01-01)
    DATAPREP_TASK_RETRIES         retries of each task (default 3; backoff 5, 10, 20 minutes)

Parsing this module imports Airflow's SDK and the standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

CHECK_SCRIPT = Path(__file__).with_name("check_partition.py")
GATE_FAILED = 3  # check_partition.py's exit status when the partition fails the gate
USAGE_ERROR = 2  # dataprep: bad usage, or a job this dataprep does not have
DRIFT_ALARM = 3  # dataprep: published, but a distribution drifted against the previous run
# Failures of ``dataprep run`` (exit 1) that a retry would only repeat: the data, not the weather.
FINAL_ERRORS = ("ValidationFailed", "ConservationError", "IndexMismatch")
LOG_TAIL_LINES = 40

# Backoff 5, 10, 20 minutes: rides out a flaky object store or a preempted cluster.
RETRIES = int(os.environ.get("DATAPREP_TASK_RETRIES", "3"))
RUN_RETRIES = {
    "retries": RETRIES,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
}
# The gate's own I/O may flake; a failed check is final (AirflowFailException skips retries).
GATE_RETRIES = {
    "retries": min(RETRIES, 2),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
}

_SECRET_FLAG = re.compile(r"(secret|password|token|session|access_key)", re.IGNORECASE)


@dataclass(frozen=True)
class Deployment:
    """What the Airflow deployment fixes for a job: commands, where partitions go, the index."""

    job: str
    dataprep_bin: str
    dataprep_python: str | None
    output: str | None
    dedup_index: str | None

    @classmethod
    def from_env(cls, job: str) -> Deployment:
        prefix = f"DATAPREP_{job.upper()}_"
        return cls(
            job=job,
            dataprep_bin=os.environ.get("DATAPREP_BIN") or "dataprep",
            dataprep_python=os.environ.get("DATAPREP_PYTHON") or None,
            output=(os.environ.get(prefix + "OUTPUT") or "").rstrip("/") or None,
            dedup_index=os.environ.get(prefix + "DEDUP_INDEX") or None,
        )

    def asset(self) -> Asset:
        """The job's output as an Asset: the URI of the output root, one partition per event."""
        if self.output is None:
            uri = f"x-dataprep://{self.job}"  # unconfigured: the DAG still parses, ``run`` refuses
        elif "://" in self.output:
            uri = self.output
        else:
            uri = Path(self.output).absolute().as_uri()
        return Asset(
            name=f"dataprep_{self.job}",
            uri=uri,
            group="dataprep",
            extra={"partitioning": "dt=YYYY-MM-DD", "job": self.job},
        )


def partition_of(context: Any) -> str:
    """``dt=<ds>``: the partition, and run id, of this DAG run."""
    if context.get("logical_date") is None:
        raise AirflowFailException(
            "this DAG run has no logical date, so no partition: trigger it with one "
            "(airflow dags trigger --logical-date YYYY-MM-DD) or use airflow backfill create"
        )
    return f"dt={context['ds']}"


def _rendered_args(template: str, context: Any) -> list[str]:
    """A space-separated, Jinja-templated setting (``{{ ds }}``...) rendered with the run's context."""
    return shlex.split(context["task"].render_template(template, context))


def _redacted(cmd: list[str]) -> str:
    return shlex.join(
        arg.split("=", 1)[0] + "=***"
        if arg.startswith("--") and "=" in arg and _SECRET_FLAG.search(arg.split("=", 1)[0])
        else arg
        for arg in cmd
    )


def _which(command: str) -> str:
    found = shutil.which(command)
    if found is None:
        raise AirflowFailException(
            f"{command!r} not found: set DATAPREP_BIN to the dataprep command of the pipeline's venv"
        )
    return found


def _python_of(deployment: Deployment) -> str:
    if deployment.dataprep_python:
        return _which(deployment.dataprep_python)
    beside = Path(_which(deployment.dataprep_bin)).parent / "python"
    if not beside.exists():
        raise AirflowFailException(f"no python beside {deployment.dataprep_bin}: set DATAPREP_PYTHON")
    return str(beside)


def _stream(cmd: list[str]) -> tuple[int, list[str]]:
    """Run ``cmd``, its output into the task log as it comes; return the status and the last lines."""
    log.info("running: %s", _redacted(cmd))
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            log.info("%s", line)
            tail.append(line)
    return proc.returncode, list(tail)


@task(**RUN_RETRIES, execution_timeout=timedelta(hours=12))
def run(job: str) -> dict[str, Any]:
    """``dataprep run <job>`` into ``<output>/dt=<ds>/``: the partition is rewritten whole."""
    deployment = Deployment.from_env(job)
    context = get_current_context()
    partition = partition_of(context)
    if deployment.output is None:
        raise AirflowFailException(f"DATAPREP_{deployment.job.upper()}_OUTPUT is not set: no output root")
    params = context["params"]
    inputs = _rendered_args(params["input_template"], context)
    if not inputs:
        raise AirflowFailException(
            f"no input: set DATAPREP_{deployment.job.upper()}_INPUT_TEMPLATE or the input_template param"
        )
    log.info(
        "partition %s: logical date %s, data interval %s to %s",
        partition,
        context["logical_date"],
        context.get("data_interval_start"),
        context.get("data_interval_end"),
    )
    cmd = [
        _which(deployment.dataprep_bin),
        "run",
        deployment.job,
        "--input",
        *inputs,
        "--output",
        deployment.output,
        "--run-id",
        partition,
    ]
    if params.get("config"):
        cmd += ["--config", params["config"]]
    if deployment.dedup_index:
        cmd += ["--dedup-index", deployment.dedup_index]
    beam_args = _rendered_args(params.get("beam_args") or "", context)
    if beam_args:
        cmd += ["--", *beam_args]
    status, tail = _stream(cmd)
    last = tail[-1] if tail else ""
    if status == USAGE_ERROR:
        raise AirflowFailException(f"dataprep refused the command (exit {status}): {last}")
    if status == 1 and any(f"nothing published: {error}:" in line for line in tail for error in FINAL_ERRORS):
        raise AirflowFailException(
            f"dataprep run {deployment.job} failed on its data, a retry cannot help: "
            + " | ".join(line for line in tail if "nothing published" in line)
        )
    if status == DRIFT_ALARM:
        log.warning(
            "dataprep committed %s with drift alarms: the gate decides (param accept_drift)", partition
        )
    elif status != 0:
        raise RuntimeError(f"dataprep run {deployment.job} failed (exit {status}): {' | '.join(tail[-3:])}")
    return {"partition": partition, "run_dir": f"{deployment.output}/{partition}", "inputs": inputs}


@task(**GATE_RETRIES)
def validate(job: str) -> dict[str, Any]:
    """The gate: the partition of this logical date, checked as it is in storage.

    It finds the partition from the logical date alone, not from ``run``'s result, so it can be
    rerun by itself (clear ``validate`` and what follows) after a run that committed.
    """
    deployment = Deployment.from_env(job)
    context = get_current_context()
    partition = partition_of(context)
    if deployment.output is None:
        raise AirflowFailException(f"DATAPREP_{job.upper()}_OUTPUT is not set: no output root")
    run_dir = f"{deployment.output}/{partition}"
    cmd = [_python_of(deployment), str(CHECK_SCRIPT), run_dir, "--retract-on-failure"]
    if context["params"].get("accept_drift"):
        cmd.append("--accept-drift")
    if deployment.dedup_index:
        cmd += ["--dedup-index", deployment.dedup_index]
    beam_args = _rendered_args(context["params"].get("beam_args") or "", context)
    if beam_args:
        cmd += ["--", *beam_args]
    status, tail = _stream(cmd)
    if status == GATE_FAILED:
        problems = [line.removeprefix("gate: ") for line in tail if line.startswith("gate: ")]
        raise AirflowFailException(
            f"{run_dir} failed the gate, _SUCCESS and its dedup index entry removed, "
            "nothing published: " + "; ".join(problems)
        )
    if status != 0:
        raise RuntimeError(f"the gate could not check {run_dir} (exit {status})")
    facts = json.loads(next(line for line in reversed(tail) if line.startswith("{")))
    return {**facts, "partition": partition}


@task
def check_dedup_index(job: str, facts: dict[str, Any]) -> str:
    """The date's entry in the cross-run dedup index, confirmed after the gate passed.

    ``dataprep run --dedup-index`` appends the run's band table to the index right after its own
    ``_SUCCESS`` (a failed gate then removes it again); a partition that staged a band table but
    is missing from the index fails here, before the Asset event tells anyone it is published.
    """
    deployment = Deployment.from_env(job)
    partition = facts["partition"]
    if not deployment.dedup_index:
        setting = f"DATAPREP_{job.upper()}_DEDUP_INDEX"
        message = f"no dedup index configured ({setting}): index not updated for {partition}"
    elif facts["dedup_index_marker"]:
        message = f"{partition} is in dedup index {deployment.dedup_index}: {facts['dedup_index_marker']}"
    elif facts["dedup_bands"]:
        raise AirflowFailException(
            f"{partition} staged a band table, but dedup index {deployment.dedup_index} "
            "does not list it: rerun the date"
        )
    else:
        message = f"{partition} staged no band table (no MinHash stage in this job): index not updated"
    log.info(message)
    return message


def _publish(asset: Asset):
    @task(task_id="publish", outlets=[asset])
    def publish(facts: dict[str, Any], _indexed: str) -> dict[str, Any]:
        """One Asset event for the partition: its key is ``ds``, its extra the partition's facts."""
        event = get_current_context()["outlet_events"][asset]
        event.add_partitions(facts["partition"].removeprefix("dt="))
        event.extra.update(
            {
                "uri": facts["run_dir"],
                "run_id": facts["run_id"],
                "manifest_sha256": facts["manifest_sha256"],
                "conservation": facts["conservation"],
                "report": facts["report"],
                "drift_alarms": facts["drift_alarms"],
            }
        )
        return facts

    return publish


def daily_dag(job: str, dag_id: str, doc_md: str) -> DAG:
    """The daily DAG of ``dataprep run <job>``; settings as the module docstring lists."""
    prefix = f"DATAPREP_{job.upper()}_"
    params = {
        "input_template": Param(
            os.environ.get(prefix + "INPUT_TEMPLATE", ""),
            type="string",
            description="inputs, space-separated; Jinja, e.g. s3://bucket/raw/{{ ds }}/*.warc.gz",
        ),
        "config": Param(
            os.environ.get(prefix + "CONFIG", ""),
            type="string",
            description="YAML config for dataprep run --config (empty: defaults)",
        ),
        "beam_args": Param(
            os.environ.get(prefix + "BEAM_ARGS", ""),
            type="string",
            description="Beam flags after --, Jinja, e.g. a runner profile from infra/runners/",
        ),
        "accept_drift": Param(
            False,
            type="boolean",
            description="publish despite drift alarms (after a person looked at the report)",
        ),
    }
    start = pendulum.parse(os.environ.get("DATAPREP_START_DATE", "2024-01-01"), tz="UTC")
    with DAG(
        dag_id=dag_id,
        # A data-interval timetable: the run for day D starts after D ends and has logical date D.
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=start,
        catchup=False,
        # One date at a time: each run deduplicates against the index of the dates before it.
        max_active_runs=1,
        params=params,
        tags=["dataprep", job],
        doc_md=doc_md,
    ) as dag:
        facts = validate(job)
        run(job) >> facts  # the gate reads storage, not run's result: it can be rerun alone
        indexed = check_dedup_index(job, facts)
        _publish(Deployment.from_env(job).asset())(facts, indexed)
    return dag
