"""Stats as mergeable summaries: fixed bins, bounded counts, deterministic samples and clusters.

Every summary must give the same result however records are split into bundles and in whatever
order partial results merge, since runners choose both. Values in these tests are multiples of
1/64 so that float sums are exact in any order.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from pipelines import text
from transforms.stats import (
    COUNT_BINS,
    FRACTION_BINS,
    KEPT,
    REJECTED,
    STATS_FILE,
    CollectStats,
    StatsPlan,
    add_to_stats,
    empty_stats,
    field_stat,
    load_stats,
    merge_stats,
    stats_document,
)
from transforms.summaries import (
    add_item,
    add_smallest,
    add_value,
    finish_top_counts,
    histogram,
    linear_bins,
    merge_histograms,
    merge_smallest,
    merge_top_counts,
    top_counts,
)

STAGES = ["read", "language", "gopher_quality", "dedup_exact"]
REASONS = {"read": ["read.warc_request_record"], "language": ["language.language_not_allowed",
                                                              "language.low_language_score"],
           "gopher_quality": ["gopher_quality.min_words"], "dedup_exact": ["dedup_exact.duplicate"]}


def _splits(items: list, rng: random.Random) -> list[list]:
    """``items`` shuffled and cut into 1..6 bundles of random sizes."""
    items = items[:]
    rng.shuffle(items)
    cuts = sorted(rng.sample(range(1, len(items)), min(len(items) - 1, rng.randint(0, 5))))
    return [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)])]


def test_fraction_bins_keep_one_in_range_and_count_outliers_apart():
    bins = FRACTION_BINS
    assert bins.slot(0.0) == 1 and bins.slot(0.049) == 1 and bins.slot(0.05) == 2
    assert bins.slot(1.0) == len(bins.edges) - 1  # the last bin is closed
    assert bins.slot(-0.01) == 0 and bins.slot(1.01) == len(bins.edges)
    assert len(bins.labels()) == len(bins.edges) + 1
    assert bins.labels()[1] == "0–0.05" and bins.labels()[-1] == ">1"


def test_count_bins_are_1_2_5_log_scale():
    labels = COUNT_BINS.labels()
    assert labels[:8] == ["<0", "0", "1", "2–4", "5–9", "10–19", "20–49", "50–99"]
    assert COUNT_BINS.slot(0) == 1 and COUNT_BINS.slot(4) == 3 and COUNT_BINS.slot(5) == 4
    assert COUNT_BINS.slot(10**12) == len(COUNT_BINS.edges)
    with pytest.raises(ValueError):
        linear_bins(1, 1, 1)


def test_histograms_merge_to_the_single_pass_result():
    rng = random.Random(1)
    values = [rng.randrange(-8, 80) / 64 for _ in range(500)] + [None, float("nan"), "x"]
    single = histogram(FRACTION_BINS)
    for value in values:
        add_value(single, FRACTION_BINS, value)
    assert single["missing"] == 3 and sum(single["counts"]) == 500
    for _ in range(5):
        parts = []
        for bundle in _splits(values, rng):
            hist = histogram(FRACTION_BINS)
            for value in bundle:
                add_value(hist, FRACTION_BINS, value)
            parts.append(hist)
        rng.shuffle(parts)
        assert merge_histograms(parts) == single
    with pytest.raises(ValueError):
        merge_histograms([histogram(FRACTION_BINS), histogram(COUNT_BINS)])


def test_top_counts_are_exact_within_capacity_and_bounded_beyond():
    rng = random.Random(2)
    items = [f"d{int(rng.paretovariate(1.2))}" for _ in range(3000)]
    truth: dict[str, int] = {}
    for item in items:
        truth[item] = truth.get(item, 0) + 1
    bundles = _splits(items, rng)

    def summarise(capacity: int) -> dict:
        parts = []
        for bundle in bundles:
            top = top_counts()
            for item in bundle:
                add_item(top, item, capacity)
            parts.append(top)
        rng.shuffle(parts)
        return finish_top_counts(merge_top_counts(parts, capacity), capacity)

    bounded = summarise(10)
    assert bounded["total"] == len(items) and len(bounded["counts"]) <= 10 and bounded["error"] > 0
    for item, estimate in bounded["counts"].items():
        assert estimate <= truth[item] <= estimate + bounded["error"]
    assert all(item in bounded["counts"] for item, n in truth.items() if n > bounded["error"])
    exact = summarise(len(truth))
    assert exact["counts"] == dict(sorted(truth.items(), key=lambda kv: (-kv[1], kv[0]))) and exact["error"] == 0


def test_k_smallest_do_not_depend_on_order_or_bundles():
    rng = random.Random(3)
    keys = [f"{rng.getrandbits(64):016x}" for _ in range(300)]
    expected = sorted(keys)[:5]
    for _ in range(5):
        parts = []
        for bundle in _splits(keys, rng):
            items: list = []
            for key in bundle:
                add_smallest(items, key, {"id": key}, 5)
            parts.append(items)
        rng.shuffle(parts)
        assert [key for key, _ in merge_smallest(parts, 5)] == expected


def _record(rng: random.Random, stage: str, side: str, n: int) -> dict:
    record = {
        "id": f"{rng.getrandbits(64):016x}",
        "url": f"https://site{n % 7}.example/{n}",
        "domain": f"site{n % 7}.example",
        "source": "input.warc.gz",
        "text": "word " * rng.randrange(0, 300) if stage != "read" else None,
        "lang": rng.choice(["en", "de", "fr"]) if stage != "read" else None,
        "lang_score": rng.randrange(0, 65) / 64 if stage != "read" else None,
        "gopher_word_count": rng.randrange(0, 2000) if stage in ("gopher_quality", "dedup_exact") else None,
        "gopher_mean_word_length": rng.randrange(0, 1300) / 64 if stage in ("gopher_quality", "dedup_exact") else None,
    }
    if side == REJECTED:
        reason = rng.choice(REASONS[stage])
        record.update(reject_stage=stage, reject_reason=reason, reject_detail=f"detail {n}")
    return record


def _observations(seed: int, n: int = 400, clusters: int = 12) -> list[tuple[str, str, dict]]:
    """Random records at random stages, and dedup clusters: one keeper (kept) per cluster, the
    other members rejected with ``dup_of`` naming it, all carrying the cluster's size."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stage, side = rng.choice(STAGES[:-1]), rng.choice([KEPT, REJECTED])
        out.append((stage, side, _record(rng, stage, side, i)))
    for c in range(clusters):
        size = rng.choice([1, 2, 3, 5, 8])
        keeper = {**_record(rng, "dedup_exact", KEPT, c), "dup_cluster_size": size, "dup_of": None}
        out.append(("dedup_exact", KEPT, keeper))
        for m in range(size - 1):
            member = _record(rng, "dedup_exact", REJECTED, 1000 * c + m)
            member.update(dup_cluster_size=size, dup_of=keeper["id"], reject_detail=f"dup_of={keeper['id']}")
            out.append(("dedup_exact", REJECTED, member))
    return out


def _document(observations, plan: StatsPlan, rng: random.Random | None = None) -> dict:
    if rng is None:
        acc = empty_stats()
        for stage, side, record in observations:
            add_to_stats(acc, plan, stage, side, record)
        return stats_document(acc, plan)
    parts = []
    for bundle in _splits(observations, rng):
        acc = empty_stats()
        for stage, side, record in bundle:
            add_to_stats(acc, plan, stage, side, record)
        parts.append(acc)
    rng.shuffle(parts)
    while len(parts) > 1:  # a random merge tree
        i = rng.randrange(len(parts) - 1)
        parts[i:i + 2] = [merge_stats(parts[i:i + 2], plan)]
    return stats_document(parts[0], plan)


def _json(document: dict) -> dict:
    return json.loads(json.dumps(document))


def test_stats_merge_in_any_bundles_and_order_to_the_single_pass_result():
    plan = StatsPlan.for_stages(STAGES, text.STAGES, sample_size=3, top_clusters=4, cluster_members=2)
    observations = _observations(4)
    single = _json(_document(observations, plan))
    rng = random.Random(5)
    for _ in range(6):
        assert _json(_document(observations, plan, rng)) == single


def test_stats_document_counts_reasons_fields_and_samples():
    plan = StatsPlan.for_stages(STAGES, text.STAGES, sample_size=3)
    observations = _observations(6)
    doc = _document(observations, plan)
    for stage in STAGES:
        for side in (KEPT, REJECTED):
            records = [r for s, d, r in observations if s == stage and d == side]
            profile = doc["profiles"][stage][side]
            assert profile["n"] == len(records)
            reasons = {}
            for r in records:
                if "reject_reason" in r:
                    reasons[r["reject_reason"]] = reasons.get(r["reject_reason"], 0) + 1
            assert profile["reasons"] == dict(sorted(reasons.items()))
    # Signals join the profile at the stage that declares them, and stay from then on.
    assert "lang" not in doc["profiles"]["read"][KEPT]["counts"]
    assert "lang" in doc["profiles"]["language"][KEPT]["counts"]
    assert "gopher_word_count" in doc["profiles"]["dedup_exact"][KEPT]["hist"]
    assert doc["fields"]["gopher_mean_word_length"]["bins"]["edges"][-1] == 20
    assert doc["fields"]["lang"] == {"kind": "counts", "capacity": 100, "stage": "language"}
    assert "dup_of" not in doc["fields"]
    assert doc["final"] == doc["profiles"]["dedup_exact"][KEPT]
    for reason, samples in doc["samples"]["by_reason"].items():
        ids = sorted(r["id"] for _, _, r in observations if r.get("reject_reason") == reason)
        assert [s["id"] for s in samples] == ids[:3]
        assert all(s["reason"] == reason and s["detail"] for s in samples)


def test_largest_clusters_with_their_keepers_and_members():
    plan = StatsPlan.for_stages(STAGES, text.STAGES, top_clusters=3, cluster_members=2)
    observations = _observations(7, 100, clusters=20)
    doc = _document(observations, plan)
    keepers = {r["id"]: r for s, d, r in observations if s == "dedup_exact" and d == KEPT}
    members: dict[str, list] = {}
    for stage, side, r in observations:
        if stage == "dedup_exact" and side == REJECTED:
            members.setdefault(r["dup_of"], []).append(r["id"])
    expected = sorted((k for k, r in keepers.items() if r["dup_cluster_size"] > 1),
                      key=lambda k: (-keepers[k]["dup_cluster_size"], k))[:3]
    top = doc["clusters"]["dedup_exact"]["top"]
    assert doc["clusters"]["dedup_exact"]["size_field"] == "dup_cluster_size"
    assert [c["keeper"]["id"] for c in top] == expected
    for cluster in top:
        keeper = cluster["keeper"]
        assert cluster["size"] == keepers[keeper["id"]]["dup_cluster_size"] and keeper["url"]
        assert [m["id"] for m in cluster["members"]] == sorted(members[keeper["id"]])[:2]
    rng = random.Random(9)
    assert all(_json(_document(observations, plan, rng)) == _json(doc) for _ in range(4))


def test_declared_types_choose_bins():
    assert field_stat(pa.field("x_frac", pa.float32())).bins == FRACTION_BINS
    assert field_stat(pa.field("x_count", pa.int32())).bins == COUNT_BINS
    assert field_stat(pa.field("flag", pa.bool_())).bins is None
    assert field_stat(pa.field("dup_of", pa.string())) is None
    assert field_stat(pa.field("when", pa.timestamp("ms"))) is None
    assert field_stat(pa.field("gopher_mean_word_length", pa.float32())).bins.edges[-1] == 20
    with pytest.raises(ValueError):
        StatsPlan.for_stages(STAGES, text.STAGES, sample_size=0)


def test_collect_stats_in_beam_matches_the_pure_merge(tmp_path):
    plan = StatsPlan.for_stages(STAGES, text.STAGES, sample_size=4)
    observations = _observations(8, 300)
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        outputs = SimpleNamespace(kept={}, rejected={}, final=None)
        for stage in STAGES:
            for side, target in ((KEPT, outputs.kept), (REJECTED, outputs.rejected)):
                records = [r for s, d, r in observations if s == stage and d == side]
                target[stage] = pipeline | f"Create[{stage}.{side}]" >> beam.Create(records)
        _ = pipeline | "Stats" >> CollectStats(outputs, str(tmp_path), text.STAGES, sample_size=4)
    written = load_stats(str(tmp_path / STATS_FILE))
    assert written == _json(_document(observations, plan))
    assert written["stages"] == STAGES


def test_collect_stats_writes_empty_profiles_for_empty_stages(tmp_path):
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        empty = pipeline | "Empty" >> beam.Create([])
        outputs = SimpleNamespace(kept={"read": empty, "language": empty}, rejected={"read": empty, "language": empty})
        _ = pipeline | "Stats" >> CollectStats(outputs, str(tmp_path), text.STAGES)
    written = load_stats(str(tmp_path / STATS_FILE))
    assert written["profiles"]["language"][KEPT]["n"] == 0 and written["samples"]["by_reason"] == {}
    assert written["final"]["n"] == 0
