"""Portability: the text job through Beam's portable Job API gives the in-process run's files.

Beam's Python local job service takes the job over the same Job API (``PortableRunner``,
``--job_endpoint``) that Flink's and Spark's job servers serve; with the ``LOOPBACK`` environment
its SDK harness runs in the submitting process. Passing here means the pipeline is built and run
only from what the Job API carries: pickled transforms, no local state in the driver, I/O through
Beam's FileSystems.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
DATAPREP = Path(sys.executable).parent / "dataprep"
SERVICE_START_TIMEOUT = 120

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def job_endpoint(tmp_path_factory):
    """A local portable job service on a free loopback port, stopped after the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("job_service") / "job_service.log"
    with open(log, "wb") as sink:
        service = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVICE_START_TIMEOUT
        while True:
            assert service.poll() is None, f"job service exited: {log.read_text()[-3000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"job service not listening: {log.read_text()[-3000:]}"
                time.sleep(0.2)
        yield f"localhost:{port}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("inputs")
    articles = write_warc(folder / "articles.warc.gz", [(url, html) for url, html, _ in aeb_pages(20)])
    return [str(CC_WARC), str(articles)]


def dataprep_run(inputs: list[str], output: Path, run_id: str, *beam_args: str) -> dict:
    cmd = [str(DATAPREP), "run", "text", "--input", *inputs, "--output", str(output), "--run-id", run_id]
    if beam_args:
        cmd += ["--", *beam_args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return assert_conserved(output / run_id)


def digests(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in ("data", "rejected")
        for p in sorted((run_dir / folder).rglob("*.parquet"))
    }


def test_portable_runner_output_is_identical_to_the_in_process_run(job_endpoint, inputs, tmp_path):
    in_process = dataprep_run(inputs, tmp_path, "in-process")
    portable = dataprep_run(
        inputs,
        tmp_path,
        "portable",
        "--runner=PortableRunner",
        f"--job_endpoint={job_endpoint}",
        "--environment_type=LOOPBACK",
    )
    assert portable["runner"] == "PortableRunner" and in_process["runner"] == "FnApiRunner"
    assert in_process["conservation"]["kept"] > 0
    local, remote = digests(tmp_path / "in-process"), digests(tmp_path / "portable")
    assert any(path.startswith("data/") for path in local)
    assert remote == local
    assert portable["conservation"] == in_process["conservation"]
    assert portable["funnel"] == in_process["funnel"]
    assert sorted((f["path"], f["rows"], f["sha256"]) for f in portable["files"]) == sorted(
        (f["path"], f["rows"], f["sha256"]) for f in in_process["files"]
    )
