"""SIGKILL a run at several points, rerun it with the same run id, and compare with a clean run.

The kill points are fractions of a clean run's wall time, so they land while reading, during
the shuffles, and while shards and the manifest are being committed.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc

pytestmark = pytest.mark.slow
KILL_AT = (0.15, 0.4, 0.65, 0.85, 0.95)


def _command(inputs, output, run_id):
    return [sys.executable, "-m", "pipelines.cli", "run", "text", "--input", *inputs,
            "--output", str(output), "--run-id", run_id]


def _data_digests(run_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run_dir / "data").glob("*"))}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash-inputs")
    warc = write_warc(folder / "articles.warc.gz", [(u, h) for u, h, _ in aeb_pages(120)])
    return [str(SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"), str(warc)]


def test_killed_runs_never_publish_and_reruns_converge(inputs, tmp_path):
    started = time.monotonic()
    subprocess.run(_command(inputs, tmp_path / "clean", "r"), check=True, capture_output=True)
    clean_seconds = time.monotonic() - started
    expected = _data_digests(tmp_path / "clean" / "r")
    assert_conserved(tmp_path / "clean" / "r")
    assert expected

    interrupted = 0
    for fraction in KILL_AT:
        out = tmp_path / f"killed-{fraction}"
        child = subprocess.Popen(_command(inputs, out, "r"), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(clean_seconds * fraction)
        os.killpg(child.pid, signal.SIGKILL)  # the whole process group: Beam workers too
        child.wait()
        run_dir = out / "r"
        if (run_dir / "_SUCCESS").exists():  # committed before the kill: then it is complete
            assert _data_digests(run_dir) == expected, f"killed at {fraction}: sealed but differs"
            continue
        interrupted += 1

        rerun = subprocess.run(_command(inputs, out, "r"), capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert (run_dir / "_SUCCESS").exists()
        assert _data_digests(run_dir) == expected, f"killed at {fraction}: rerun differs"
        assert_conserved(run_dir)
        assert not [p for p in run_dir.rglob("*") if p.name.startswith(".")], "temporary files left"
        ids = ds.dataset(run_dir / "data").to_table(columns=["id"]).column("id").to_pylist()
        assert len(ids) == len(set(ids))  # no record twice
    assert interrupted >= 2, "the kills came too late to interrupt a run"
