"""The daily DAGs' gate (``infra/airflow/dags/check_partition.py``) on a local run folder committed
by a real text run: what it passes, what it fails and retracts. The DAGs themselves, under Airflow
(which run the gate as a task), are in ``test_airflow_dags.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA, assert_conserved

from pipelines import text

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "infra" / "airflow" / "dags"
CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"

pytestmark = pytest.mark.slow

spec = importlib.util.spec_from_file_location("check_partition", DAGS / "check_partition.py")
check_partition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_partition)


@pytest.fixture(scope="module")
def committed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gate")
    text.run([str(CC_WARC)], str(out), "dt=2024-01-01", text.Config(), [])
    assert_conserved(out / "dt=2024-01-01")
    return out / "dt=2024-01-01"


@pytest.fixture
def run_dir(committed_run, tmp_path):
    copy = tmp_path / committed_run.name
    shutil.copytree(committed_run, copy)
    return copy


def gate_script(run_dir: Path, *flags: str) -> tuple[int, dict]:
    """The gate as the DAGs run it: the script, in its own process."""
    result = subprocess.run(
        [sys.executable, str(DAGS / "check_partition.py"), str(run_dir), *flags],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode in (0, check_partition.GATE_FAILED), result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def gate(run_dir: Path, *flags: str) -> tuple[int, dict]:
    """The script's ``main``, in this process: the same checks without a Beam import each time
    (the script itself is run above and by the DAG tests)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = check_partition.main([str(run_dir), *flags])
    assert status in (0, check_partition.GATE_FAILED)
    return status, json.loads(printed.getvalue().strip().splitlines()[-1])


def test_gate_passes_a_committed_run(run_dir):
    status, facts = gate_script(run_dir)
    assert status == 0 and facts["problems"] == []
    assert facts["run_id"] == "dt=2024-01-01" and facts["conservation"]["input"] > 0
    manifest = (run_dir / "manifest.json").read_bytes()
    assert facts["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert gate(run_dir) == (status, facts)


def test_gate_fails_and_retracts_success_on_a_damaged_partition(run_dir):
    data_file = next((run_dir / "data").glob("*.parquet"))
    data_file.write_bytes(data_file.read_bytes() + b"x")
    (run_dir / "data" / "part-00099-of-00100.parquet").write_bytes(b"left by another attempt")
    status, facts = gate(run_dir, "--retract-on-failure")
    assert status == check_partition.GATE_FAILED
    assert any("bytes, the manifest says" in p for p in facts["problems"])
    assert any(
        "part-00099-of-00100.parquet is in storage but not in the manifest" in p for p in facts["problems"]
    )
    assert facts["retracted"] == [str(run_dir / "_SUCCESS")] and not (run_dir / "_SUCCESS").exists()


def test_gate_failure_removes_the_run_from_the_dedup_index_first(run_dir, tmp_path):
    index = tmp_path / "index"
    (index / "_runs").mkdir(parents=True)
    marker = index / "_runs" / f"{run_dir.name}.json"
    marker.write_text("{}")
    assert gate(run_dir, "--dedup-index", str(index))[1]["dedup_index_marker"] == str(marker)
    next((run_dir / "data").glob("*.parquet")).unlink()
    status, facts = gate(run_dir, "--dedup-index", str(index), "--retract-on-failure")
    assert status == check_partition.GATE_FAILED
    assert facts["retracted"] == [str(marker), str(run_dir / "_SUCCESS")]
    assert not marker.exists() and not (run_dir / "_SUCCESS").exists()


def test_gate_fails_without_success_or_with_another_manifest(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["conservation"]["kept"] += 1
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    status, facts = gate(run_dir)
    assert status == check_partition.GATE_FAILED
    assert "_SUCCESS seals another manifest than the one in storage" in facts["problems"]
    assert any(p.startswith("input ") for p in facts["problems"])
    (run_dir / "_SUCCESS").unlink()
    assert gate(run_dir)[1]["problems"] == ["no _SUCCESS: the run did not commit"]


def ge_result(severity: str | None, success: bool) -> dict:
    config = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "text"}}
    if severity:
        config["severity"] = severity
    return {"success": success, "results": [{"success": success, "expectation_config": config}]}


@pytest.mark.parametrize(("severity", "fails"), [(None, True), ("critical", True), ("warning", False)])
def test_gate_reads_validation_results_by_severity(run_dir, severity, fails):
    validation = run_dir / "validation"  # the run's own results are there already, all passed
    validation.mkdir(exist_ok=True)
    (validation / "zz_failed.json").write_text(json.dumps(ge_result(severity, success=False)))
    (validation / "zz_passed.json").write_text(json.dumps(ge_result(None, success=True)))
    status, facts = gate(run_dir)
    assert {"zz_failed.json", "zz_passed.json"} <= set(facts["validation"])
    assert (status == check_partition.GATE_FAILED) is fails
    if fails:
        assert facts["problems"] == [
            'validation/zz_failed.json: expect_column_values_to_not_be_null {"column": "text"}'
        ]


def test_gate_fails_on_drift_alarms_unless_accepted(run_dir):
    (run_dir / "report").mkdir(exist_ok=True)
    report = run_dir / "report" / "report.json"
    original = json.loads(report.read_text()) if report.exists() else {}
    alarm = "funnel: JS distance 0.548 (noise 0.178)"
    report.write_text(json.dumps({**original, "drift": {"alarms": [alarm]}}))
    status, facts = gate(run_dir)
    assert status == check_partition.GATE_FAILED and facts["problems"] == [f"drift alarm: {alarm}"]
    status, facts = gate(run_dir, "--accept-drift")
    assert status == 0 and facts["drift_alarms"] == [f"drift alarm: {alarm}"]


def test_gate_refuses_a_validation_file_it_cannot_read(run_dir):
    (run_dir / "validation").mkdir(exist_ok=True)
    (run_dir / "validation" / "odd.json").write_text("[1, 2]")
    status, facts = gate(run_dir)
    assert status == check_partition.GATE_FAILED and "cannot pass" in facts["problems"][0]
