"""The daily DAGs' validation gate: check one committed partition before anything is published.

Runs under the dataprep venv's interpreter, not Airflow's: it reads the partition through Beam's
FileSystems (``run_folder.storage``), with the same storage settings as the pipeline (the standard
AWS variables for ``s3://``)::

    python check_partition.py <run_dir> [--dedup-index URI] [--accept-drift] [--retract-on-failure]
                              [-- <Beam flags of the run>]

Checks, on what is in storage now:
- ``_SUCCESS`` is there and seals the ``manifest.json`` that is there (its sha256);
- conservation: input = kept + rejected (+ retracted, after ``dataprep retract``), and the files
  hold exactly those rows;
- every file the manifest lists exists with its size, and ``data/`` and ``rejected/`` hold no file
  that the manifest does not list (a reader of ``data/`` would read it);
- every ``validation/*.json`` (Great Expectations results) has no failed critical expectation;
- ``report/report.json``, when the job writes one, raised no drift alarm against the previous
  run (unless ``--accept-drift``: an operator looked at the alarm and accepts the date).

Prints the partition's facts as one JSON line, with whether the cross-run dedup index lists the
run. Exit 0: passed; 3: the gate failed (with ``--retract-on-failure`` the run's marker in the
dedup index and then ``_SUCCESS`` are removed: the index reads as it did before the run, and
nothing downstream takes the partition as complete); any other status: the check itself could
not run (worth a retry).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from typing import Any

# Before Beam's import, which logs that optional GCP clients are absent: the task log shows ours.
logging.basicConfig(level=logging.ERROR)

from apache_beam.io.filesystems import FileSystems  # noqa: E402

from pipelines.runner import pipeline_options  # noqa: E402
from run_folder.layout import DATA, MANIFEST, REJECTED_DIR, SUCCESS  # noqa: E402
from run_folder.storage import delete, exists, join, read_bytes  # noqa: E402
from transforms.dedup_minhash.index import RUNS_DIR, STAGED_DIR, STAGED_MANIFEST  # noqa: E402

GATE_FAILED = 3
VALIDATION_DIR = "validation"
REPORT = "report/report.json"


def sizes_under(directory: str) -> dict[str, int]:
    """Relative path -> size of every file under ``directory`` (empty when there is none)."""
    try:
        (result,) = FileSystems.match([join(directory, "**")])
    except Exception:  # noqa: BLE001 - Beam raises when nothing matches
        return {}
    prefix = directory.rstrip("/") + "/"
    return {m.path[len(prefix) :]: m.size_in_bytes for m in result.metadata_list}


def critical_failures(name: str, result: Any) -> list[str]:
    """Failed critical expectations of one validation file (GE's default severity is critical)."""
    if isinstance(result, dict) and isinstance(result.get("results"), list):
        failed = []
        for row in result["results"]:
            if row.get("success", False):
                continue
            expectation = row.get("expectation_config") or {}
            severity = expectation.get("severity") or (expectation.get("meta") or {}).get("severity")
            if (severity or "critical") == "critical":
                failed.append(
                    f"{name}: {expectation.get('type', 'expectation')} "
                    f"{json.dumps(expectation.get('kwargs', {}), sort_keys=True)}"
                )
        return failed
    if isinstance(result, dict) and isinstance(result.get("success"), bool):
        return [] if result["success"] else [f"{name}: validation did not succeed"]
    return [f"{name}: not a validation result the gate can read, so it cannot pass"]


def check_files(run_dir: str, manifest: dict[str, Any]) -> list[str]:
    problems = []
    listed = {info["path"]: info for info in manifest.get("files", [])}
    present = {
        f"{d}/{rel}": size
        for d in (DATA, REJECTED_DIR)
        for rel, size in sizes_under(join(run_dir, d)).items()
    }
    for path, info in sorted(listed.items()):
        if path not in present:
            problems.append(f"{path} is in the manifest but not in storage")
        elif present[path] != info["bytes"]:
            problems.append(f"{path} holds {present[path]} bytes, the manifest says {info['bytes']}")
    problems += [
        f"{path} is in storage but not in the manifest" for path in sorted(set(present) - set(listed))
    ]
    return problems


def check_conservation(manifest: dict[str, Any]) -> list[str]:
    c = manifest["conservation"]
    problems = []
    # ``retracted``: records a later ``dataprep retract`` removed from both folders.
    retracted = c.get("retracted", 0)
    if c["input"] != c["kept"] + c["rejected"] + retracted:
        problems.append(f"input {c['input']} != kept {c['kept']} + rejected {c['rejected']} + retracted {retracted}")
    for kind, counted in ((DATA, c["kept"]), (REJECTED_DIR, c["rejected"])):
        rows = sum(f["rows"] for f in manifest.get("files", []) if f["path"].startswith(kind + "/"))
        if rows != counted:
            problems.append(f"{kind}/ files hold {rows} rows, the run counted {counted}")
    return problems


def check_validation(run_dir: str) -> tuple[list[str], list[str]]:
    names = sorted(name for name in sizes_under(join(run_dir, VALIDATION_DIR)) if name.endswith(".json"))
    problems = []
    for name in names:
        try:
            result = json.loads(read_bytes(join(run_dir, VALIDATION_DIR, name)))
        except ValueError as exc:
            problems.append(f"{VALIDATION_DIR}/{name}: not JSON ({exc})")
            continue
        problems += critical_failures(f"{VALIDATION_DIR}/{name}", result)
    return names, problems


def check_drift(run_dir: str) -> list[str]:
    """The report's drift alarms against the previous published run (none without a report)."""
    if not exists(join(run_dir, REPORT)):
        return []
    report = json.loads(read_bytes(join(run_dir, REPORT)))
    return [f"drift alarm: {alarm}" for alarm in (report.get("drift") or {}).get("alarms", [])]


def check(run_dir: str) -> tuple[dict[str, Any], list[str]]:
    """The partition's facts and the reasons it fails the gate (none: it passes)."""
    facts: dict[str, Any] = {"run_dir": run_dir}
    if not exists(join(run_dir, SUCCESS)):
        return facts, [f"no {SUCCESS}: the run did not commit"]
    manifest_bytes = read_bytes(join(run_dir, MANIFEST))
    manifest = json.loads(manifest_bytes)
    seal = json.loads(read_bytes(join(run_dir, SUCCESS)) or b"{}")
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    facts.update(
        run_id=manifest.get("run_id"),
        manifest_sha256=manifest_sha256,
        conservation=manifest.get("conservation"),
        files=len(manifest.get("files", [])),
        data_bytes=sum(f["bytes"] for f in manifest.get("files", []) if f["path"].startswith(DATA + "/")),
        report=REPORT if exists(join(run_dir, REPORT)) else None,
        dedup_bands=exists(join(run_dir, STAGED_DIR, STAGED_MANIFEST)),
    )
    problems = []
    if seal.get("manifest_sha256") != manifest_sha256:
        problems.append(f"{SUCCESS} seals another manifest than the one in storage")
    expected_run_id = run_dir.rstrip("/").rsplit("/", 1)[-1]
    if manifest.get("run_id") != expected_run_id:
        problems.append(f"manifest is of run {manifest.get('run_id')!r}, not {expected_run_id!r}")
    problems += check_conservation(manifest)
    problems += check_files(run_dir, manifest)
    facts["validation"], validation_problems = check_validation(run_dir)
    facts["drift_alarms"] = check_drift(run_dir)
    return facts, problems + validation_problems


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, beam_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="the partition: <output>/dt=YYYY-MM-DD")
    parser.add_argument("--dedup-index", help="the cross-run dedup index the run published to")
    parser.add_argument("--accept-drift", action="store_true", help="drift alarms do not fail the gate")
    parser.add_argument(
        "--retract-on-failure",
        action="store_true",
        help=f"remove the run from the dedup index, then {SUCCESS}, when the gate fails",
    )
    args = parser.parse_args(own)
    # Storage settings as the run had them (the --s3_* flags, if any; else the AWS variables).
    pipeline_options(beam_args)
    run_dir = args.run_dir.rstrip("/")
    facts, problems = check(run_dir)
    if not args.accept_drift:
        problems += facts.get("drift_alarms", [])
    facts["problems"] = problems
    marker = (
        join(args.dedup_index, RUNS_DIR, run_dir.rsplit("/", 1)[-1] + ".json") if args.dedup_index else None
    )
    facts["dedup_index_marker"] = marker if marker and exists(marker) else None
    if problems and args.retract_on_failure:
        retract = [p for p in (facts["dedup_index_marker"], join(run_dir, SUCCESS)) if p and exists(p)]
        for path in retract:  # one at a time, in this order: the index first
            delete([path])
        facts["retracted"] = retract
    for problem in problems:
        print(f"gate: {problem}", file=sys.stderr)
    print(json.dumps(facts, sort_keys=True))
    return GATE_FAILED if problems else 0


if __name__ == "__main__":
    sys.exit(main())
