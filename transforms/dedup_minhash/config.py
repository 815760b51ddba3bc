"""Settings of MinHash near-duplicate removal, with the sources of the defaults.

Shingles are FineWeb's (Penedo et al. 2024, "The FineWeb Datasets", §3.4): word 5-grams.
Banding is 25 bands of 4 rows over 100 permutations, and every candidate pair is verified by
its estimated Jaccard (>= 0.5) before it is merged: the setting of best F1 at precision >= 0.99
on the tune split of ``benchmarks/dedup_quality.py`` (docs/dedup.md, "Quality, measured";
compared: 14 x 8, 20 x 5, 25 x 4; thresholds none, 0.4-0.7). Its S-curve flags a pair of
Jaccard 0.7 as a candidate with probability 0.999 and one of 0.6 with 0.97, where FineWeb's
14 x 8 gives 0.56 and 0.21, so realistic edited copies are found; the lower curve also flags
unrelated pairs (1/2 at J 0.41), which verification then drops. ``MinHashDedupConfig(
num_perm=112, bands=14, rows=8, verify_threshold=None)`` is FineWeb's setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# datasketch >= 2.0 permutation scheme: MurmurHash3 finalizer then ``a*h + b mod 2^32``.
# Sketches of different schemes are incomparable (datasketch refuses to mix them), so the
# scheme is recorded with every band table and checked before an index is joined.
SCHEME = "affine32"
# Bump when normalisation, shingling or band hashing change: band keys of different
# versions never match, so an index built by another version must be refused.
SHINGLE_VERSION = 1

KEEPER_KEYS = ("crawled", "quality_score", "fetched_at", "text_length")


@dataclass(frozen=True)
class MinHashDedupConfig:
    enabled: bool = True
    # Word n-gram size of the shingles (FineWeb: 5).
    ngram: int = 5
    # Permutations of the signature; must equal bands * rows (tune split: 100 = 25 x 4;
    # FineWeb: 112 = 14 x 8).
    num_perm: int = 100
    bands: int = 25
    rows: int = 4
    # Seed of datasketch's permutation parameters; part of the index's identity.
    seed: int = 1
    # Estimated Jaccard a candidate pair must reach to be merged; None merges every pair
    # that shares a band (FineWeb's choice). Applies to pairs within the run. 0.5: on the tune
    # split 0.5 and 0.6 tie at the best F1 (0.4 merges hard negatives, 0.7 loses recall); the
    # lower one, since a true pair at J 0.70 estimates below 0.6 about 1.5% of the time over
    # 100 permutations (standard error 0.046) and below 0.5 almost never.
    verify_threshold: float | None = 0.5
    # With verification, a band bucket of at most this many documents of this run offers all
    # its pairs for checking, not only a star around its smallest member: a star's centre may
    # be the one member that is not similar enough to the others (a cut-off copy), which
    # would drop every pair of the bucket. Larger buckets (floods of copies) stay stars.
    verify_all_pairs_up_to: int = 16
    # The run gate fails a run that removes more than this share of one source (input file)
    # as near-duplicates within the run (``near_duplicate``; near-duplicates of earlier runs
    # are what a re-crawl expects and are not capped), among sources with at least
    # ``cap_min_records`` records entering the stage; None: no cap. 0.5 is this project's
    # choice (no published figure): a source that loses half its documents to near-duplicates
    # of each other is a mirror, a crawler trap or a wrong merge, to be looked at first.
    max_source_removal_share: float | None = 0.5
    cap_min_records: int = 100
    # Who stays in a cluster: these keys in order, then the smallest id. "crawled" (crawled
    # records before synthetic ones: a rephrase never displaces its source), "quality_score"
    # (highest first, from ``quality_field``), "fetched_at" (earliest first),
    # "text_length" (longest first). Records missing a key rank after those that have it.
    keeper_policy: tuple[str, ...] = ("crawled", "quality_score", "fetched_at")
    quality_field: str = "quality_score"
    # Bound on connected-component rounds (one large-star plus one small-star each); real
    # near-duplicate graphs converge in a handful, the bound only guards pathological chains.
    max_rounds: int = 12
    # Documents per signature batch (the permutations run on a whole batch at once).
    batch_size: int = 256
    # Report: how many of the largest clusters to list, with how many example ids each.
    largest_clusters: int = 10
    examples_per_cluster: int = 5

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {self.ngram}")
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"bands * rows must equal num_perm, got {self.bands} * {self.rows} != {self.num_perm}"
            )
        if self.verify_threshold is not None and not 0.0 < self.verify_threshold <= 1.0:
            raise ValueError(f"verify_threshold must be in (0, 1] or None, got {self.verify_threshold}")
        if self.verify_all_pairs_up_to < 2:
            raise ValueError(f"verify_all_pairs_up_to must be >= 2, got {self.verify_all_pairs_up_to}")
        share = self.max_source_removal_share
        if share is not None and not 0.0 < share <= 1.0:
            raise ValueError(f"max_source_removal_share must be in (0, 1] or None, got {share}")
        if self.cap_min_records < 1:
            raise ValueError(f"cap_min_records must be >= 1, got {self.cap_min_records}")
        unknown = [key for key in self.keeper_policy if key not in KEEPER_KEYS]
        if unknown or len(set(self.keeper_policy)) != len(self.keeper_policy):
            raise ValueError(
                f"keeper_policy: keys must be distinct, from {KEEPER_KEYS}; got {self.keeper_policy}"
            )
        if self.max_rounds < 1 or self.batch_size < 1:
            raise ValueError("max_rounds and batch_size must be >= 1")
        if self.largest_clusters < 0 or self.examples_per_cluster < 0:
            raise ValueError("largest_clusters and examples_per_cluster must be >= 0")


def band_params(config: MinHashDedupConfig) -> dict:
    """What makes band keys comparable: an index holds keys of exactly one such set.

    datasketch's version is recorded beside these (``index.py``) but not compared: the
    scheme, not the release, fixes the hash values."""
    return {
        "datasketch_scheme": SCHEME,
        "shingle_version": SHINGLE_VERSION,
        "ngram": config.ngram,
        "num_perm": config.num_perm,
        "bands": config.bands,
        "rows": config.rows,
        "seed": config.seed,
    }


def config_dict(config: MinHashDedupConfig) -> dict:
    out = asdict(config)
    out["keeper_policy"] = list(config.keeper_policy)
    return out
