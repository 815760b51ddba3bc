"""The ``dataprep`` command line (purposes and examples: ``pipelines/cli_help.py``).

    dataprep run text (--input PATH_OR_GLOB_OR_S3... | --urls URL_LIST...) --output DIR_OR_S3
                      [--config text.yaml] [--run-id ID] [--dedup-index DIR_OR_S3] [--workers N]
                      [-- <Beam flags>]
    dataprep crawl --urls URL_LIST... --output DIR_OR_S3 [--retry-failed RUN_DIR] [-- <Beam flags>]
    dataprep train-quality --positive URI... --negative URI... --output MODEL_URI
    dataprep report RUN_DIR     re-render a finished run's data-quality report
    dataprep trace RUN_DIR ID_OR_URL   where a record went, why, with its signals
    dataprep retract RUN_DIR --blocklist FILE   remove listed records from a published run
    dataprep config text        print the default config as YAML (a starting point to edit)

Everything after ``--`` goes to Beam unchanged. Before any Beam work every input and output is
checked once (``pipelines/preflight.py``). Exit status: 0 on success, 1 when the run failed
(nothing published: no ``_SUCCESS``), 2 on bad usage or a failed preflight, 3 when the run was
published but a distribution drifted past the alarm threshold against the previous run.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class _DropBeamImportNoise(logging.Filter):
    """Beam warns on import that optional GCP client libraries are absent; we use none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


# Before the first Beam import, so its import-time warning never reaches the terminal.
logging.getLogger().addFilter(_DropBeamImportNoise())

from pipelines import crawl, job_runner, preflight, retract, train_quality  # noqa: E402
from pipelines.cli_help import EPILOG, PURPOSE, add_command  # noqa: E402
from pipelines.config import dump_config, load_config  # noqa: E402
from pipelines.job import JOB_MODULES, Job, load_job  # noqa: E402
from pipelines.report import (  # noqa: E402
    DRIFT_EXIT,
    add_drift_arguments,
    add_report_arguments,
    drift_alarms,
    load_report,
    print_drift,
    report_command,
)
from pipelines.trace import add_trace_arguments, trace_command  # noqa: E402
from run_folder.storage import join  # noqa: E402
from transforms.synthetic import add_synthetic_options, with_synthetic_options  # noqa: E402
from transforms.worker_cores import machine_cores  # noqa: E402


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", force=True)


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dataprep", description=PURPOSE, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = add_command(commands, "run")
    run.add_argument("job", choices=sorted(JOB_MODULES))
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", help="paths, globs or s3:// URIs")
    source.add_argument("--urls", nargs="+", help="URL lists to crawl first (text, CSV, JSONL, "
                        "Parquet; local or s3://); the crawl lands in <output>/<run-id>/crawl/")
    run.add_argument("--output", required=True, help="folder or s3:// prefix; the run goes to <output>/<run-id>/")
    run.add_argument("--config", help="YAML config (defaults for anything it leaves out)")
    run.add_argument("--run-id", help="default: the UTC time, YYYYmmddTHHMMSSZ")
    run.add_argument("--dedup-index", help="folder or s3:// URI of the cross-run near-dup index "
                     "(text job): drop what earlier runs published, append this run after _SUCCESS")
    run.add_argument("-v", "--verbose", action="store_true", help="log Beam's progress")
    run.add_argument("--workers", type=int, help="worker processes of the local runner (default: "
                     "DATAPREP_WORKERS, else the job's choice: text, one per core once the input "
                     "is over one read split; images, 1: in-process; 0: one per core)")
    add_synthetic_options(run)
    add_drift_arguments(run)
    crawl.add_crawl_options(run)
    crawl.add_arguments(add_command(commands, "crawl"))
    add_report_arguments(add_command(commands, "report"))
    add_trace_arguments(add_command(commands, "trace"))
    retract.add_arguments(add_command(commands, "retract"))
    train_quality.add_arguments(add_command(commands, "train-quality"))
    show = add_command(commands, "config")
    show.add_argument("job", choices=sorted(JOB_MODULES))
    return parser


def _crawl_first(args: argparse.Namespace, config: object, run_id: str, beam_args: list[str]) -> list[str]:
    """Crawl ``--urls`` into ``<output>/<run-id>/crawl/``; the WARC shards become the inputs."""
    crawl_config = crawl.config_from_args(args, config.crawl)
    manifest = crawl.run(args.urls, join(args.output, run_id), "crawl", crawl_config, beam_args)
    warcs = crawl.warc_files(manifest)
    if not warcs:
        raise RuntimeError(f"the crawl of {args.urls} fetched nothing: see its fetch log")
    print(f"crawled {manifest['totals']['fetched']} of {manifest['totals']['urls']} URLs")
    return warcs


def _print_summary(manifest: dict, run_dir: str) -> None:
    print(f"run {manifest['run_id']}: {run_dir}")
    print(f"{'stage':<20}{'in':>10}{'kept':>10}{'rejected':>10}  top reasons")
    for row in manifest["funnel"]:
        top = sorted(row["reasons"].items(), key=lambda kv: -kv[1])[:3]
        reasons = ", ".join(f"{reason} {n}" for reason, n in top)
        print(f"{row['stage']:<20}{row['in']:>10}{row['kept']:>10}{row['rejected']:>10}  {reasons}")
    c = manifest["conservation"]
    print(f"input {c['input']} documents = kept {c['kept']} + rejected {c['rejected']}: reconciled "
          f"with {len(manifest['files'])} files in {manifest['seconds']} s")
    skipped = manifest.get("skipped", {})
    if skipped:
        kinds = ", ".join(f"{kind} {n}" for kind, n in skipped.items())
        print(f"skipped {sum(skipped.values())} records that are not documents: {kinds}")


def _preflight(inputs: list[str], outputs: list[str], beam_args: list[str]) -> int:
    """2 (after one line per problem) when an input or output cannot be used, else 0."""
    problems = preflight.check(inputs, outputs, beam_args)
    for problem in problems:
        print(f"dataprep: {problem.line()}", file=sys.stderr)
    if problems:
        print(f"dataprep: preflight found {len(problems)} problem(s); nothing was run or written", file=sys.stderr)
    return 2 if problems else 0


def _refused_flags(job: Job, config: Any, args: argparse.Namespace) -> list[str]:
    """A flag that does nothing for this job is refused, never silently ignored: the job's own
    run flags (``--dedup-index``), and crawl settings where nothing is crawled."""
    refused = job.refused({"dedup_index": args.dedup_index})
    if not args.urls and job.cli_config is None:  # the crawl settings act only on ``--urls``
        given = crawl.config_from_args(args, config.crawl)
        changed = [f.name for f in dataclasses.fields(given) if getattr(given, f.name) != getattr(config.crawl, f.name)]
        if changed:
            refused.append(f"crawl settings ({', '.join(changed)}) apply to the {job.name} job only with --urls")
    return refused


def main(argv: list[str] | None = None) -> int:
    own_args, beam_args = _split_beam_args(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(own_args)
    _setup_logging(getattr(args, "verbose", False))
    if args.command == "crawl":
        return _preflight(args.urls or [], [args.output], beam_args) or crawl.main(args, beam_args)
    if args.command == "report":
        return report_command(args)
    if args.command == "trace":
        return trace_command(args)
    if args.command == "retract":
        return retract.main(args, beam_args)
    if args.command == "train-quality":
        return train_quality.main(args, beam_args)
    job = load_job(args.job)
    if args.command == "config":
        print(dump_config(job.config()), end="")
        return 0
    try:
        config = load_config(job.config, args.config)
        config = with_synthetic_options(config, args)  # --synthetic TASKS, --synthetic-max-records N
        if job.cli_config is not None:  # the images job downloads through the crawler
            config = job.cli_config(config, args)
    except (OSError, ValueError) as exc:
        print(f"dataprep: bad config: {exc}", file=sys.stderr)
        return 2
    refused = _refused_flags(job, config, args)
    for problem in refused:
        print(f"dataprep: {problem}; nothing was run", file=sys.stderr)
    if refused:
        return 2
    if args.workers is not None:
        if args.workers < 0:
            print(f"dataprep: --workers must be >= 0 (0: one per core), got {args.workers}", file=sys.stderr)
            return 2
        workers = args.workers or machine_cores()
        beam_args = [f"--direct_num_workers={workers}", *beam_args]  # Beam's own flag, if given, wins
    outputs = [args.output] + ([args.dedup_index] if args.dedup_index else [])
    if _preflight(args.input or args.urls, outputs, beam_args):
        return 2
    run_id = args.run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        inputs = args.input or _crawl_first(args, config, run_id, beam_args)
        manifest = job_runner.run(job, inputs, args.output, run_id, config, beam_args,
                                  dedup_index=args.dedup_index, previous_run=args.previous,
                                  drift_threshold=args.drift_threshold, compare_previous=not args.no_drift)
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to report it and exit non-zero
        logging.getLogger("dataprep").debug("run failed", exc_info=True)
        print(f"dataprep: run {run_id} failed, nothing published: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    run_dir = join(args.output, run_id)
    _print_summary(manifest, run_dir)
    report = load_report(run_dir)
    print(f"report: {join(run_dir, 'report/index.html')}")
    print_drift(report)
    return DRIFT_EXIT if drift_alarms(report) else 0


if __name__ == "__main__":
    sys.exit(main())
