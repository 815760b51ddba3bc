"""The shared wceb pages (../shared/data/wceb/SOURCES.md) and their fixed train / held-out split.

A page trains the boilerplate classifier (benchmarks/train_extractor.py) when the first byte
of its id, the SHA-256 of its HTML, is below 0x80: about half of every dataset, the same half
on every machine. Every figure in docs/extraction.md comes from the other half.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wceb"
DATASETS = (
    "cleaneval",
    "cleanportaleval",
    "dragnet",
    "google-trends-2017",
    "readability",
    "scrapinghub",
)


def is_training_page(page_id: str) -> bool:
    return int(page_id[:2], 16) < 0x80


def load_pages(data: Path, dataset: str) -> Iterator[dict]:
    """The dataset's pages in file order: ``id``, ``html`` (str), ``ground_truth``, ..."""
    with gzip.open(data / f"{dataset}.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)
