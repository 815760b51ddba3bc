"""The image-caption job on two worker processes (``--workers 2``) loses nothing and decides
alike: with memory bounds far below the input, every spill writer of a worker shares the one
buffer bound with the others (writing another writer's buffer) and every spilled join runs as
several key ranges, split over both processes; the run must conserve its records and end each
pair where the one-process run does."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.parquet as pq
from conftest import assert_conserved
from crawl_sites import serve
from test_images_pipeline import BEAM_ARGS, FAST_CRAWL, ROWS, _inputs, _routes

from pipelines import images
from transforms.images.download import DownloadConfig
from transforms.images.nsfw import NsfwConfig
from transforms.spill import MemoryConfig

TWO_PROCESSES = [*BEAM_ARGS, "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
# A few records per spill buffer and per join task (the text job's tiny-bounds test sizes).
TINY = MemoryConfig(buffer_bytes=20_000, task_bytes=30_000, block_bytes=4_000)


def _outcomes(run_dir):
    """Each pair's fate by id: kept with its image hash, or its stage and reason."""
    kept = pq.read_table(run_dir / "data", columns=["id", "sha256"]).to_pylist()
    rejected = pq.read_table(run_dir / "rejected", columns=["id", "reject_reason"]).to_pylist()
    return {r["id"]: ("kept", r["sha256"]) for r in kept} | {r["id"]: r["reject_reason"] for r in rejected}


def test_two_processes_conserve_and_decide_as_one(tmp_path):
    # NSFW off: its model loads once per process and decides nothing these photos test.
    config = replace(
        images.Config(download=DownloadConfig(crawl=FAST_CRAWL), nsfw=NsfwConfig(enabled=False)), memory=TINY
    )
    with serve(_routes()) as site:
        inputs = _inputs(tmp_path, site.url)
        one = images.run(inputs, str(tmp_path / "out"), "one", config, [*BEAM_ARGS, "--direct_num_workers=1"],
                         allow_private_addresses=True)
        two = images.run(inputs, str(tmp_path / "out"), "two", config, TWO_PROCESSES, allow_private_addresses=True)
    assert_conserved(tmp_path / "out" / "two")
    assert two["conservation"]["input"] == len(ROWS) + 2
    assert two["funnel"] == one["funnel"]
    assert _outcomes(tmp_path / "out" / "two") == _outcomes(tmp_path / "out" / "one")
