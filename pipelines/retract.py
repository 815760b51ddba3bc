"""``dataprep retract RUN_DIR --blocklist FILE [--dedup-index URI]``: remove the records a
takedown blocklist names from a published run (``transforms/consent/retraction.py``), then
their rows from the near-dedup band tables. Exit 0 with a JSON summary; 1 when the run cannot
be amended; 2 on a blocklist that cannot be read.
"""

from __future__ import annotations

import argparse
import json

from transforms.consent.blocklist import BlocklistError, load_blocklist
from transforms.consent.retract_index import drop_retracted_bands
from transforms.consent.retraction import RetractError, retract, retracted_ids
from transforms.run_commit import MANIFEST
from transforms.storage import join, read_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a published run: <output>/<run-id> (folder or s3://)")
    parser.add_argument("--blocklist", required=True, help="takedown list: '<kind> <value> [why]' lines")
    parser.add_argument("--dedup-index", help="the cross-run near-dup index the run was published to")
    parser.add_argument("--phash-max-distance", type=int, default=0,
                        help="bits within which a listed pHash matches (default 0: exactly)")


def main(args: argparse.Namespace) -> int:
    try:
        blocklist = load_blocklist(args.blocklist, args.phash_max_distance)
    except (BlocklistError, OSError) as exc:
        print(f"dataprep retract: {exc}")
        return 2
    try:
        result = retract(args.run_dir, blocklist, args.blocklist)
    except RetractError as exc:
        print(f"dataprep retract: {exc}")
        return 1
    run_dir = args.run_dir.rstrip("/")
    manifest = json.loads(read_bytes(join(run_dir, MANIFEST)))
    bands = drop_retracted_bands(run_dir, manifest["run_id"], retracted_ids(manifest), args.dedup_index)
    print(json.dumps({"run_dir": run_dir, "version": result.version, "removed": len(result.removed),
                      "rewritten": result.rewritten, "rolled_forward": result.rolled_forward,
                      "band_rows_dropped": bands}, sort_keys=True))
    return 0
