"""``dataprep retract RUN_DIR --blocklist FILE [--dedup-index URI] [-- <Beam flags>]``: remove the records a
takedown blocklist names from a published run (``transforms/consent/retraction.py``), and
their rows from the near-dedup band tables. Exit 0 with a JSON summary; 1 when the run cannot
be amended; 2 on a blocklist that cannot be read.
"""

from __future__ import annotations

import argparse
import json

from pipelines.runner import pipeline_options
from transforms.consent.blocklist import BlocklistError, load_blocklist
from transforms.consent.retraction import RetractError, retract


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a published run: <output>/<run-id> (folder or s3://)")
    parser.add_argument("--blocklist", required=True, help="takedown list: '<kind> <value> [why]' lines")
    parser.add_argument("--dedup-index", help="the cross-run near-dup index the run was published to")
    parser.add_argument("--phash-max-distance", type=int, default=0,
                        help="bits within which a listed pHash matches (default 0: exactly)")


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    pipeline_options(beam_args)  # storage settings as the run had them (--s3_* flags, or AWS variables)
    try:
        blocklist = load_blocklist(args.blocklist, args.phash_max_distance)
    except (BlocklistError, OSError) as exc:
        print(f"dataprep retract: {exc}")
        return 2
    try:
        result = retract(args.run_dir, blocklist, args.blocklist, args.dedup_index)
    except RetractError as exc:
        print(f"dataprep retract: {exc}")
        return 1
    print(json.dumps({"run_dir": args.run_dir.rstrip("/"), "version": result.version,
                      "removed": len(result.removed), "rewritten": result.rewritten,
                      "rolled_forward": result.rolled_forward, "band_rows_dropped": result.band_rows_dropped},
                     sort_keys=True))
    return 0
