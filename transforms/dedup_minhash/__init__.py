"""MinHash near-duplicate removal (ARCHITECTURE §4): within a run and against earlier runs.

Entry points: ``MinHashDedup`` (the stage), ``MinHashDedupConfig``, ``publish_band_table``
(after a run's ``_SUCCESS``), ``load_minhash_stats`` and ``MinHashStatsFn`` (the report data).
"""

from transforms.dedup_minhash.config import MinHashDedupConfig
from transforms.dedup_minhash.index import publish_band_table
from transforms.dedup_minhash.minhash_dedup import (
    NEAR_DUPLICATE,
    NEAR_DUPLICATE_OF_PREVIOUS_RUN,
    MinHashDedup,
    load_minhash_stats,
)
from transforms.dedup_minhash.stats import MinHashStatsFn

__all__ = [
    "NEAR_DUPLICATE",
    "NEAR_DUPLICATE_OF_PREVIOUS_RUN",
    "MinHashDedup",
    "MinHashDedupConfig",
    "MinHashStatsFn",
    "load_minhash_stats",
    "publish_band_table",
]
