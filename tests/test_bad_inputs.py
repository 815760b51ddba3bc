"""Every case of the bad-input catalogue (``bad_inputs.CASES``) through the real jobs.

The text and images cases each share one run (a Beam run costs seconds); the 50 MB documents
and decompression bombs run in a ``dataprep run text`` subprocess whose peak memory is
measured; the clear-error cases run the command and read its message. Each case must end as
its catalogue entry says, every run must publish (``_SUCCESS``) and reconcile from its own
files (``assert_conserved``).
"""

from __future__ import annotations

import json
import posixpath
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from bad_inputs import CASES, MB, BadInput
from conftest import assert_conserved

from pipelines import images, text
from transforms.images.nsfw import NsfwConfig

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "pipelines.cli"]
# Peak RSS of the whole `dataprep run text` process (Beam in-process) over three 50 MB documents
# and 2 GiB of decompression bombs; observed ~750 MiB, 520 MiB on a one-line input (docs/reliability.md).
MAX_RSS_BYTES = 1.5 * 1024 * MB


@dataclass
class FinishedRun:
    run_dir: Path
    files: dict[str, list[Path]]  # case name -> its input files
    kept: list[dict]
    rejected: list[dict]
    peak_rss: int = 0


def _rows(folder: Path, columns: list[str]) -> list[dict]:
    return [row for f in sorted(folder.rglob("*.parquet")) for row in pq.read_table(f, columns=columns).to_pylist()]


def _write_cases(folder: Path, job: str) -> dict[str, list[Path]]:
    return {case.name: case.write(folder) for case in CASES if case.job == job}


def _finished(run_dir: Path, files: dict[str, list[Path]], peak_rss: int = 0) -> FinishedRun:
    columns = ["id", "source", "source_key", "reject_stage", "reject_reason", "reject_detail"]
    return FinishedRun(run_dir, files, _rows(run_dir / "data", ["id", "source"]),
                       _rows(run_dir / "rejected", columns), peak_rss)


def _inputs(files: dict[str, list[Path]]) -> list[str]:
    return [str(path) for paths in files.values() for path in paths]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> FinishedRun:
    folder = tmp_path_factory.mktemp("bad-text")
    files = _write_cases(folder, "text")
    text.run(_inputs(files), str(folder / "out"), "bad", text.Config(), [], compare_previous=False)
    return _finished(folder / "out" / "bad", files)


@pytest.fixture(scope="module")
def images_run(tmp_path_factory) -> FinishedRun:
    folder = tmp_path_factory.mktemp("bad-images")
    files = _write_cases(folder, "images")
    config = images.Config(nsfw=NsfwConfig(enabled=False))
    images.run(_inputs(files), str(folder / "out"), "bad", config, ["--runner=FnApiRunner"])
    return _finished(folder / "out" / "bad", files)


# Runs the command as a child of a fresh interpreter, so the peak RSS it reports is this run's alone.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:])\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
)


@pytest.fixture(scope="module")
def text_large_run(tmp_path_factory) -> FinishedRun:
    folder = tmp_path_factory.mktemp("bad-large")
    files = _write_cases(folder, "text_large")
    command = CLI + ["run", "text", "--input", *_inputs(files), "--output", str(folder / "out"),
                     "--run-id", "large", "--no-drift"]
    measured = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True)
    code, peak_rss = map(int, measured.stdout.split()[-2:])
    assert code == 0, measured.stderr[-3000:]
    return _finished(folder / "out" / "large", files, peak_rss)


def _check_records(case: BadInput, run: FinishedRun) -> None:
    names = {path.name for path in run.files[case.name]}
    rejected = [r for r in run.rejected if posixpath.basename(r["source"]) in names]
    kept = [r for r in run.kept if posixpath.basename(r["source"]) in names]
    got = Counter(r["reject_reason"] for r in rejected if r["reject_stage"] in case.stages)
    assert dict(got) == case.rejected, [(r["reject_reason"], r["reject_detail"][:160]) for r in rejected]
    assert len(kept) + sum(r["reject_stage"] != "read" for r in rejected) == case.passes_read
    for record in rejected:
        if record["source_key"] == "file":  # a file-level quarantine names the file
            assert posixpath.basename(record["source"]) in record["reject_detail"], record


def _check_clear_error(case: BadInput, tmp_path: Path) -> None:
    inputs = [str(p) for p in case.write(tmp_path)]
    done = subprocess.run(CLI + ["run", "text", "--input", *inputs, "--output", str(tmp_path / "out"),
                                 "--run-id", "r"], capture_output=True, text=True)
    # exit 2 when the preflight (before any Beam work) finds it, 1 when the run does
    assert done.returncode in (1, 2), (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    message = next((line for line in lines if case.error in line), lines[-1])
    assert case.error in message and all(path in message for path in inputs), message
    ends = "nothing was run or written" if done.returncode == 2 else "nothing published"
    assert ends in lines[-1], lines[-1]
    assert not (tmp_path / "out" / "r" / "_SUCCESS").exists()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_ends_as_catalogued(case: BadInput, request, tmp_path):
    if case.job == "cli":
        _check_clear_error(case, tmp_path)
    else:
        _check_records(case, request.getfixturevalue(f"{case.job}_run"))


@pytest.mark.parametrize("job", ["text", "images", "text_large"])
def test_runs_over_bad_inputs_publish_and_reconcile(job, request):
    run = request.getfixturevalue(f"{job}_run")
    assert (run.run_dir / "_SUCCESS").exists()
    manifest = assert_conserved(run.run_dir)
    # Every rejection of the run belongs to a catalogued file: nothing came from elsewhere.
    names = {path.name for paths in run.files.values() for path in paths}
    assert {posixpath.basename(r["source"]) for r in run.rejected} <= names
    assert manifest["conservation"]["input"] == len(run.kept) + len(run.rejected)


def test_memory_stays_bounded_on_50mb_documents_and_bombs(text_large_run):
    jsonl = next(p for p in text_large_run.files["documents_50mb"] if p.suffix == ".jsonl")
    assert jsonl.stat().st_size > 50 * MB  # the others are as big once decompressed
    assert 0 < text_large_run.peak_rss < MAX_RSS_BYTES, f"peak RSS {text_large_run.peak_rss / MB:.0f} MB"


def test_conservation_check_catches_a_lost_and_a_doubled_record(text_run, tmp_path):
    lost = tmp_path / "lost"
    shutil.copytree(text_run.run_dir, lost)
    victim = next((lost / "rejected" / "stage=read").glob("*.parquet"))
    table = pq.read_table(victim)
    pq.write_table(table.slice(1), victim)
    with pytest.raises(AssertionError):
        assert_conserved(lost)

    doubled = tmp_path / "doubled"
    shutil.copytree(text_run.run_dir, doubled)
    manifest = json.loads((doubled / "manifest.json").read_text())
    manifest["funnel"][1]["in"] += 1
    (doubled / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AssertionError):
        assert_conserved(doubled)
