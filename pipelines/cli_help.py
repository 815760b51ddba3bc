"""What ``dataprep --help`` and each ``dataprep COMMAND --help`` say first: a purpose and an example.

The examples run as written after ``make demo`` (which writes ``out/sample/python-docs.warc.gz`` and
the run ``out/runs/demo``), from the repository root.
"""

from __future__ import annotations

import argparse

PURPOSE = "Turn web text and image-caption pairs into clean, deduplicated, validated training data."

EPILOG = """examples (after `make demo`):
  dataprep run text --input out/sample/python-docs.warc.gz --output out/runs
  dataprep report out/runs/demo

Everything after `--` goes to Beam unchanged. Exit status: 0 success; 1 the run failed (nothing
published); 2 bad usage or a failed preflight (nothing written); 3 published, but a distribution
drifted past the alarm threshold. DATAPREP_PROGRESS_SECONDS sets how often a run not on a terminal
logs a progress line (default 60)."""

COMMANDS = {
    "run": ("run a job: read, filter, deduplicate, validate, publish with a report",
            "dataprep run text --input out/sample/python-docs.warc.gz --output out/runs\n"
            "  dataprep run text --input 's3://bucket/crawl/*.warc.gz' --output s3://bucket/runs"),
    "crawl": ("fetch URLs politely into WARC files and a fetch log",
              "printf 'http://127.0.0.1:8000/\\n' > urls.txt && dataprep crawl --urls urls.txt --output out/crawl"),
    "report": ("re-render the data-quality report of a finished run",
               "dataprep report out/runs/demo"),
    "trace": ("where a record went: kept, or rejected where and why, with its signals",
              "dataprep trace out/runs/demo \"$(.venv/bin/python -c \"import pyarrow.parquet as pq; "
              "print(pq.read_table('out/runs/demo/data')['url'][0])\")\""),
    "retract": ("remove the records a takedown blocklist names from a published run, atomically",
                "dataprep retract out/runs/demo --blocklist takedown.txt"),
    "train-quality": ("train a fastText quality classifier from positive and negative documents",
                      "dataprep train-quality --positive good.jsonl --negative bad.jsonl --output quality.bin"),
    "config": ("print a job's default config as YAML, a starting point to edit",
               "dataprep config text > text.yaml"),
}


def add_command(commands: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """The sub-parser of ``name`` with its purpose as help and description and its example as epilog."""
    purpose, example = COMMANDS[name]
    return commands.add_parser(name, help=purpose, description=f"{purpose[0].upper()}{purpose[1:]}.",
                               epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
