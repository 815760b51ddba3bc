"""LSH banding: a signature cut into ``bands`` bands of ``rows`` values, each band hashed to
one 64-bit key. Two documents are a candidate pair when any band key is equal, which happens
with probability ``1 - (1 - s^rows)^bands`` at Jaccard similarity ``s`` (the S-curve of
Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets", §3.4).

A key mixes the band's index with its values (``fmix64`` after each), so equal values in
different bands give different keys and one shuffle key space serves every band; with 64
bits, unrelated keys collide with probability about n^2 / 2^65 per band.
"""

from __future__ import annotations

import math

import numpy as np

from transforms.dedup_minhash.shingles import fmix64

_U64 = np.uint64


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents x bands) int64 keys of (documents x bands*rows) uint32 signatures."""
    docs = signatures.shape[0]
    values = signatures[:, : bands * rows].reshape(docs, bands, rows).astype(_U64)
    keys = np.broadcast_to(fmix64(np.arange(1, bands + 1, dtype=_U64)), (docs, bands))
    for row in range(rows):
        keys = fmix64(keys ^ (values[:, :, row] | _U64(row) << _U64(32)))
    return keys.view(np.int64)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two documents of Jaccard ``similarity`` share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def estimated_threshold(bands: int, rows: int) -> float:
    """The similarity at which a pair becomes a candidate with probability 1/2 (the S-curve's
    midpoint); ``(1/bands)^(1/rows)`` is the usual approximation of it."""
    return (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)


def approximate_threshold(bands: int, rows: int) -> float:
    return math.pow(1.0 / bands, 1.0 / rows)
