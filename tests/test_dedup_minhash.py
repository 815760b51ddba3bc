"""MinHashDedup in Beam on real article texts with known near-duplicates, on both local runners,
and on the Clough & Stevenson plagiarism corpus (unrelated answers are never merged)."""

import csv
import itertools
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.dedup_minhash import MinHashDedup, MinHashDedupConfig, load_minhash_stats
from transforms.dedup_minhash.bands import band_keys
from transforms.dedup_minhash.components import ConnectedComponents, components_local
from transforms.dedup_minhash.shingles import shingle_hashes
from transforms.dedup_minhash.signatures import MinHasher, estimated_jaccard

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLOUGH = DATA / "clough-plagiarism"
IN_PROCESS = ["--runner=FnApiRunner"]
TWO_PROCESSES = [*IN_PROCESS, "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _articles() -> list[str]:
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text())
    return [gold[key]["articleBody"] for key in sorted(gold)]


def _day(day: int) -> datetime:
    return datetime(2024, 3, day, tzinfo=UTC)


def _corpus() -> list[dict]:
    """Three near-duplicate clusters of real articles, edited as the web edits pages, plus
    eight unrelated articles."""
    art = _articles()
    paragraphs = art[1].split("\n\n")
    reordered = "\n\n".join(paragraphs[1:] + paragraphs[:1])
    records = [
        # Cluster A: the original, one with ads and a changed footer, one cut short.
        {"id": "a0", "text": art[2], "quality_score": 0.5, "fetched_at": _day(3)},
        {
            "id": "a1",
            "text": art[2].replace("\n\n", "\n\nADVERTISEMENT - Subscribe for $1 a week\n\n", 3)
            + "\n\n© 2024 Example Media. All rights reserved. Privacy | Terms",
            "quality_score": 0.9,
            "fetched_at": _day(5),
        },  # highest quality: the keeper
        {"id": "a2", "text": art[2][: int(len(art[2]) * 0.85)], "quality_score": 0.5, "fetched_at": _day(1)},
        # Cluster B: paragraphs reordered, and a copy with dates changed; no quality scores.
        {"id": "b0", "text": art[1], "fetched_at": _day(9)},
        {"id": "b1", "text": reordered, "fetched_at": _day(2)},  # earliest fetch: the keeper
        {"id": "b2", "text": art[1].replace("2019", "2020").replace("November", "December")},
        # Cluster C: same fetch time, same quality: the smallest id stays.
        {"id": "c1", "text": "Home | News | Sport\n" + art[4], "fetched_at": _day(4)},
        {"id": "c0", "text": art[4] + "\nShare this article on Facebook", "fetched_at": _day(4)},
        {"id": "empty", "text": ""},
    ]
    records += [{"id": f"u{i}", "text": art[i]} for i in range(5, 13)]
    return records


EXPECTED_KEPT = [("a1", "a1", 3), ("b1", "b1", 3), ("c0", "c0", 2), ("empty", "empty", 1)] + [
    (f"u{i}", f"u{i}", 1) for i in range(5, 13)
]
EXPECTED_REJECTED = [
    ("a0", "a1", 3, "dedup_minhash.near_duplicate"),
    ("a2", "a1", 3, "dedup_minhash.near_duplicate"),
    ("b0", "b1", 3, "dedup_minhash.near_duplicate"),
    ("b2", "b1", 3, "dedup_minhash.near_duplicate"),
    ("c1", "c0", 2, "dedup_minhash.near_duplicate"),
]


def _check_outputs(out, kept=EXPECTED_KEPT, rejected=EXPECTED_REJECTED):
    assert_that(
        out.kept
        | "Kept" >> beam.Map(lambda r: (r["id"], r["minhash_cluster_id"], r["minhash_cluster_size"])),
        equal_to(kept),
        label="kept",
    )
    assert_that(
        out.rejected
        | "Rejected"
        >> beam.Map(lambda r: (r["id"], r["dup_of"], r["minhash_cluster_size"], r["reject_reason"])),
        equal_to(rejected),
        label="rejected",
    )
    assert_that(
        out.kept | "KeptDupOf" >> beam.Map(lambda r: (r["dup_of"], r["minhash_jaccard"])) | beam.Distinct(),
        equal_to([(None, None)]),
        label="kept_dup_of",
    )


@pytest.mark.slow
@pytest.mark.parametrize("args", [IN_PROCESS, TWO_PROCESSES], ids=["in_process", "two_processes"])
def test_near_duplicates_are_removed_with_the_keeper_policy(tmp_path, args):
    run_dir = str(tmp_path / "run")
    with TestPipeline(runner="FnApiRunner", options=PipelineOptions(args)) as p:
        out = p | beam.Create(_corpus()) | MinHashDedup(MinHashDedupConfig(), run_dir=run_dir)
        _check_outputs(out)
    stats = load_minhash_stats(run_dir)
    assert stats["documents"] == 17 and stats["documents_without_shingles"] == 1
    assert stats["verification"]["threshold"] == 0.5
    assert 5 <= stats["verification"]["pairs_passed"] <= stats["verification"]["pairs_checked"]
    assert stats["clusters"] == 3 and stats["removed_near_duplicate"] == 5
    assert stats["cluster_size_histogram"] == {"2": 1, "3": 2}
    assert stats["largest_clusters"][0] == {
        "cluster_id": "a1",
        "size": 3,
        "with_previous_run": False,
        "example_ids": ["a1", "a2", "a0"],  # in keeper order
    }
    assert stats["components"]["converged"] and stats["estimated_threshold"] == 0.4066


@pytest.mark.slow
def test_each_removal_carries_its_estimated_jaccard_with_the_keeper():
    records = _corpus()
    config = MinHashDedupConfig()
    hashes, offsets = shingle_hashes([r["text"] for r in records], config.ngram)
    signature = dict(zip([r["id"] for r in records], MinHasher(config.num_perm, config.seed).signatures(hashes, offsets),
                         strict=True))
    expected = [(doc, keeper, estimated_jaccard(signature[doc], signature[keeper]))
                for doc, keeper, _size, _reason in EXPECTED_REJECTED]
    assert all(0.0 < j <= 1.0 for _, _, j in expected), expected
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | MinHashDedup(config)
        evidence = out.rejected | beam.Map(lambda r: (r["id"], r["dup_of"], r["minhash_jaccard"]))
        assert_that(evidence, equal_to(expected), label="evidence")
        details = out.rejected | beam.Map(lambda r: f"jaccard={r['minhash_jaccard']:.2f}" in r["reject_detail"])
        assert_that(details | beam.Distinct(), equal_to([True]), label="detail")


@pytest.mark.slow
def test_verification_drops_candidates_below_the_estimated_jaccard():
    art = _articles()
    records = [
        {"id": "x0", "text": art[2]},
        {"id": "x1", "text": art[2].upper().replace(".", "!")},  # same after normalisation
        {"id": "x2", "text": art[2][: int(len(art[2]) * 0.85)]},  # a candidate, but ~0.85 similar
    ]
    config = MinHashDedupConfig(verify_threshold=0.95)
    hashes, offsets = shingle_hashes([r["text"] for r in records], config.ngram)
    signatures = MinHasher(config.num_perm, config.seed).signatures(hashes, offsets)
    keys = band_keys(signatures, config.bands, config.rows)
    assert (keys[0] == keys[2]).any(), "x2 must be a candidate of x0 for this test to mean anything"
    assert estimated_jaccard(signatures[0], signatures[2]) < 0.95
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | MinHashDedup(config)
        _check_outputs(
            out,
            kept=[("x0", "x0", 2), ("x2", "x2", 1)],
            rejected=[("x1", "x0", 2, "dedup_minhash.near_duplicate")],
        )


@pytest.mark.slow
def test_components_in_beam_match_union_find_and_stop_early():
    rnd = random.Random(3)
    nodes = [f"n{i:04d}" for i in range(600)]
    edges = set()
    for start in range(0, 600, 60):  # ten chains of 60, shuffled: many rounds of work
        chain = nodes[start : start + 60]
        rnd.shuffle(chain)
        edges.update((min(a, b), max(a, b)) for a, b in itertools.pairwise(chain))
    expected = sorted(components_local(edges).items())
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(sorted(edges)) | ConnectedComponents(max_rounds=12)
        assert_that(out["labels"], equal_to(expected), label="labels")
        changed_rounds = (
            out["rounds"]
            | beam.Filter(lambda fact: fact[3] > 0)
            | beam.Map(lambda fact: fact[1])
            | beam.Distinct()
            | beam.combiners.Count.Globally()
        )
        assert_that(changed_rounds, _one_between(2, 11), label="rounds")
    # Bounded rounds never merge what is not connected, even when they stop short.
    truth = components_local(edges)
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(sorted(edges)) | ConnectedComponents(max_rounds=1)
        wrong = out["labels"] | beam.Filter(lambda kv, truth=truth: truth[kv[0]] != truth[kv[1]])
        assert_that(wrong, equal_to([]), label="no_false_merge")


def _one_between(low, high):
    def check(actual):
        assert len(actual) == 1 and low <= actual[0] <= high, actual

    return check


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


@pytest.mark.slow
def test_unrelated_plagiarism_answers_are_never_merged():
    with open(CLOUGH / "file_information.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    task_of = {row["File"]: row["Task"] for row in rows}
    task_of.update({f"orig_task{t}.txt": t for t in "abcde"})
    records = [{"id": name, "text": _read(CLOUGH / name)} for name in sorted(task_of)]
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | MinHashDedup(MinHashDedupConfig())
        cross_task = (
            (out.kept, out.rejected)
            | beam.Flatten()
            | beam.Filter(lambda r, task_of=task_of: task_of[r["minhash_cluster_id"]] != task_of[r["id"]])
        )
        assert_that(cross_task, equal_to([]), label="cross_task")
        non_rejected = out.rejected | beam.Filter(
            lambda r, rows=rows: any(row["File"] == r["id"] and row["Category"] == "non" for row in rows)
        )
        assert_that(non_rejected, equal_to([]), label="non_never_rejected")
