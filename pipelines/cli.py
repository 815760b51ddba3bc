"""The ``dataprep`` command.

    dataprep run text --input PATH_OR_GLOB_OR_S3... --output DIR_OR_S3 [--config text.yaml]
                      [--run-id ID] [-- <Beam flags>]
    dataprep config text        print the default config as YAML (a starting point to edit)

Everything after ``--`` goes to Beam unchanged. Exit status: 0 on success, 1 when the run
failed (nothing published: no ``_SUCCESS``), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from datetime import datetime, timezone

from pipelines.config import dump_config, load_config

JOBS = {"text": "pipelines.text"}  # job name -> module with ``Config`` and ``run``


class _DropBeamImportNoise(logging.Filter):
    """Beam warns on import that optional GCP client libraries are absent; we use none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropBeamImportNoise())


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dataprep", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job")
    run.add_argument("job", choices=sorted(JOBS))
    run.add_argument("--input", nargs="+", required=True, help="paths, globs or s3:// URIs")
    run.add_argument("--output", required=True, help="folder or s3:// prefix; the run goes to <output>/<run-id>/")
    run.add_argument("--config", help="YAML config (defaults for anything it leaves out)")
    run.add_argument("--run-id", help="default: the UTC time, YYYYmmddTHHMMSSZ")
    run.add_argument("--dedup-index", help="folder or s3:// URI of the cross-run near-dup index "
                     "(text job): drop what earlier runs published, append this run after _SUCCESS")
    run.add_argument("-v", "--verbose", action="store_true", help="log Beam's progress")
    show = commands.add_parser("config", help="print a job's default config as YAML")
    show.add_argument("job", choices=sorted(JOBS))
    return parser


def _print_summary(manifest: dict, run_dir: str) -> None:
    print(f"run {manifest['run_id']}: {run_dir}")
    print(f"{'stage':<20}{'in':>10}{'kept':>10}{'rejected':>10}  top reasons")
    for row in manifest["funnel"]:
        top = sorted(row["reasons"].items(), key=lambda kv: -kv[1])[:3]
        reasons = ", ".join(f"{reason} {n}" for reason, n in top)
        print(f"{row['stage']:<20}{row['in']:>10}{row['kept']:>10}{row['rejected']:>10}  {reasons}")
    c = manifest["conservation"]
    print(f"input {c['input']} = kept {c['kept']} + rejected {c['rejected']}: reconciled "
          f"with {len(manifest['files'])} files in {manifest['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    own_args, beam_args = _split_beam_args(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(own_args)
    _setup_logging(getattr(args, "verbose", False))
    job = importlib.import_module(JOBS[args.job])
    if args.command == "config":
        print(dump_config(job.Config()), end="")
        return 0
    try:
        config = load_config(job.Config, args.config)
    except (OSError, ValueError) as exc:
        print(f"dataprep: bad config: {exc}", file=sys.stderr)
        return 2
    run_id = args.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    try:
        manifest = job.run(args.input, args.output, run_id, config, beam_args,
                           dedup_index=args.dedup_index)
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to report it and exit non-zero
        logging.getLogger("dataprep").debug("run failed", exc_info=True)
        print(f"dataprep: run {run_id} failed, nothing published: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    _print_summary(manifest, f"{args.output.rstrip('/')}/{run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
