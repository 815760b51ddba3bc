"""Image dedup (exact, near via pHash bands) and the placeholder combiner, in Beam."""

from __future__ import annotations

import random

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from transforms.images.dedup import ExactImageDedup, NearImageDedup, band_keys, blocks, near_pairs
from transforms.images.placeholder import DistinctUrlCount, Placeholder, PlaceholderConfig


def test_blocks_cover_64_bits_and_pigeonhole_holds():
    spans = blocks(10)
    assert len(spans) == 11 and sum(w for _, w in spans) == 64
    rng = random.Random(7)
    for _ in range(2000):
        a = rng.getrandbits(64)
        b = a
        for bit in rng.sample(range(64), rng.randint(0, 10)):
            b ^= 1 << bit
        ka, kb = band_keys(f"{a:016x}", spans), band_keys(f"{b:016x}", spans)
        assert any(x == y for x, y in zip(ka, kb, strict=True))


def test_near_pairs_points_worse_to_better():
    members = [
        ("a", "ffffffffffffffff", (-100, 0)),
        ("b", "fffffffffffffff0", (-400, 0)),
        ("c", "0000000000000000", (-1, 0)),
    ]
    assert list(near_pairs(members, 10, 100)) == [("a", ((-400, 0), "b"))]


def test_near_pairs_give_each_worse_member_its_best_neighbour():
    """Against the pairwise definition, on clusters of near copies (few bits flipped) and
    strangers; a window smaller than the group compares only neighbours in hash order."""
    rng = random.Random(11)
    members = []
    for cluster in range(6):
        base = rng.getrandbits(64)
        for copy in range(rng.randint(1, 25)):
            value = base
            for bit in rng.sample(range(64), rng.randint(0, 12)):
                value ^= 1 << bit
            members.append((f"c{cluster}-{copy}", f"{value:016x}", (-rng.randint(1, 5), -rng.randint(1, 9))))
    for window in (1000, 7):
        ordered = sorted(members, key=lambda m: (m[1], m[0]))
        want: dict[str, tuple] = {}
        for i, (id_a, hash_a, rank_a) in enumerate(ordered):
            for id_b, hash_b, rank_b in ordered[i + 1 : i + window]:
                if (int(hash_a, 16) ^ int(hash_b, 16)).bit_count() <= 10:
                    (better, worse) = sorted([((rank_a, id_a), id_a), ((rank_b, id_b), id_b)])
                    want[worse[1]] = min(want.get(worse[1], better[0]), better[0])
        got = list(near_pairs(members, 10, window))
        assert len(got) == len({worse for worse, _ in got}) and dict(got) == want and want


def _rec(id_, sha, phash, w=100, h=100, url=None):
    return {
        "id": id_,
        "sha256": sha,
        "phash": phash,
        "original_width": w,
        "original_height": h,
        "original_bytes": w * h,
        "url": url or f"http://x.test/{id_}",
    }


def _run(transform, records):
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | transform
        kept = out.kept | "KeptIds" >> beam.Map(lambda r: r["id"])
        rejected = out.rejected | "RejIds" >> beam.Map(
            lambda r: (r["id"], r["reject_reason"], r["dup_of"] if "dup_of" in r else None)
        )
        return kept, rejected, p


def test_exact_dedup_keeps_largest():
    records = [_rec("a", "s1", "0" * 16, 100, 100), _rec("b", "s1", "0" * 16, 200, 200), _rec("c", "s2", "f" * 16)]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | ExactImageDedup()
        assert_that(out.kept | beam.Map(lambda r: r["id"]), equal_to(["b", "c"]), label="kept")
        assert_that(
            out.rejected | beam.Map(lambda r: (r["id"], r["reject_reason"], r["dup_of"])),
            equal_to([("a", "dedup_exact.duplicate", "b")]),
            label="rejected",
        )


def test_near_dedup_within_distance_only():
    records = [
        _rec("big", "s1", "ffff0000ffff0000", 400, 400),
        _rec("small", "s2", "ffff0000ffff00ff", 100, 100),  # 8 bits away: near duplicate
        # 12 bits from big, 4 from small (and smaller than it): dropped by the documented chain rule
        _rec("other", "s3", "ffff0000ffff0fff", 50, 50),
        _rec("far", "s4", "0000ffff0000ffff", 100, 100),
    ]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | NearImageDedup()
        assert_that(out.kept | beam.Map(lambda r: r["id"]), equal_to(["big", "far"]), label="kept")
        assert_that(
            out.rejected | beam.Map(lambda r: (r["id"], r["dup_of"])),
            equal_to([("small", "big"), ("other", "small")]),
            label="rejected",
        )


def test_distinct_url_count_caps():
    fn = DistinctUrlCount(3)
    acc = fn.create_accumulator()
    for url in ["a", "a", "b"]:
        acc = fn.add_input(acc, url)
    other = fn.add_input(fn.add_input(fn.create_accumulator(), "c"), "d")
    assert fn.extract_output(acc) == 2 and fn.extract_output(fn.merge_accumulators([acc, other])) == 3


def test_placeholder_rejects_bytes_served_for_many_urls():
    records = [_rec(f"p{i}", "placeholder", "0" * 16) for i in range(5)] + [
        _rec("x", "s1", "0" * 16),
        _rec("y", "s1", "0" * 16),
    ]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | Placeholder(PlaceholderConfig(min_urls=3))
        assert_that(
            out.kept | beam.Map(lambda r: (r["id"], r["sha256_url_count"])),
            equal_to([("x", 2), ("y", 2)]),
            label="kept",
        )
        assert_that(
            out.rejected | beam.Map(lambda r: r["reject_reason"]),
            equal_to(["placeholder.shared_bytes"] * 5),
            label="rejected",
        )
