"""The pure core of MinHash dedup, without Beam: shingles, signatures (bit-for-bit datasketch),
bands, keeper order, large-star / small-star, stats merging."""

import csv
import itertools
import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from benchmarks.wceb import load_pages as load_wceb
from transforms.dedup_minhash.bands import band_keys, candidate_probability, estimated_threshold
from transforms.dedup_minhash.candidates import bucket_edges
from transforms.dedup_minhash.components import components_local, large_star, small_star
from transforms.dedup_minhash.config import MinHashDedupConfig
from transforms.dedup_minhash.keeper import current_node, node_id, previous_node
from transforms.dedup_minhash.shingles import normalise, normalised_buffer, shingle_hashes, shingles
from transforms.dedup_minhash.signatures import MinHasher, estimated_jaccard
from transforms.dedup_minhash.stats import MinHashStatsFn, size_bin

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def articles() -> list[str]:
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text())
    return [gold[key]["articleBody"] for key in sorted(gold)]


def test_normalise_folds_case_punctuation_digits_and_splits_unspaced_scripts():
    assert normalise("Hello,   World!\n Updated 2024-05-01") == "hello world updated 0000 00 00"
    assert normalise("Ｆｕｌｌ-width_text") == "full width text"
    assert normalise("東京タワー") == "東 京 タ ワ ー"
    assert normalise(None) == normalise("  ... ") == ""


def test_batch_normalisation_leaves_the_words_normalise_leaves(articles):
    # Real pages in many languages and scripts (gold text and raw HTML), plus the cases the
    # table must get right: digits of other scripts, NFKC folds, underscores, lone surrogates.
    pages = [page for name in ("cleaneval", "google-trends-2017", "readability")
             for page in itertools.islice(load_wceb(DATA / "wceb", name), 40)]
    texts = [*articles[:40], *(p["ground_truth"] for p in pages), *(p["html"] for p in pages[::4]),
             "Ｆｕｌｌ-width_text ① ²³ ﬁne İstanbul", "٣٤٥ ߁߂ १२३ snake_case__x", "a\ud800b", "",
             None, "東京タワー mixed 漢字abc１２", "한국어 텍스트 ㄱ", "\n\n\t", "x" * 5]
    lines = normalised_buffer(texts).split(b"\n")
    assert len(lines) == len(texts)
    for text, line in zip(texts, lines, strict=True):
        assert line.split() == normalise(text).encode("utf-8").split()


def test_shingle_hashes_of_a_batch_match_one_hash_per_ngram(articles):
    texts = [*articles[:20], "", "three short words", None, "日本語のテキストです"]
    hashes, offsets = shingle_hashes(texts, 5)
    for i, text in enumerate(texts):
        grams = shingles(text, 5)
        own = hashes[offsets[i] : offsets[i + 1]]
        assert own.size == len(grams)
        # Same n-gram, same hash, wherever it sits in the batch.
        alone, _ = shingle_hashes([text], 5)
        assert np.array_equal(own, alone)
        assert len(set(own.tolist())) == len(set(grams))


def test_signatures_are_datasketch_affine32_bit_for_bit(articles):
    hasher = MinHasher(112, seed=1)
    texts = [*articles[:10], "", "tiny"]
    hashes, offsets = shingle_hashes(texts, 5)
    signatures = hasher.signatures(hashes, offsets)
    for i in range(len(texts)):
        reference = MinHash(num_perm=112, seed=1, scheme="affine32", hashfunc=lambda value: value)
        reference.update_batch(hashes[offsets[i] : offsets[i + 1]].tolist())
        assert np.array_equal(signatures[i], reference.hashvalues)
        assert hasher.as_datasketch(signatures[i]).scheme == "affine32"


def test_signatures_work_with_datasketch_lsh(articles):
    hasher = MinHasher(112, seed=1)
    edited = articles[3].replace("\n\n", "\n\nAdvertisement\n\n", 2)
    hashes, offsets = shingle_hashes([articles[3], edited, articles[4]], 5)
    signatures = hasher.signatures(hashes, offsets)
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    lsh.insert("original", hasher.as_datasketch(signatures[0]))
    assert lsh.query(hasher.as_datasketch(signatures[1])) == ["original"]
    assert lsh.query(hasher.as_datasketch(signatures[2])) == []


def test_band_keys_match_exactly_when_a_band_matches():
    rng = np.random.default_rng(0)
    signatures = rng.integers(0, 2**32, size=(3, 112), dtype=np.uint32)
    signatures[1] = signatures[0]
    signatures[1, 8:] += 1  # only band 0 equal
    keys = band_keys(signatures, 14, 8)
    assert keys.shape == (3, 14) and keys.dtype == np.int64
    assert keys[0, 0] == keys[1, 0] and not np.any(keys[0, 1:] == keys[1, 1:])
    assert not np.any(keys[0] == keys[2])
    # The same values in two bands give two keys.
    same = np.tile(signatures[0, :8], 14)[None, :]
    assert len(set(band_keys(same, 14, 8)[0].tolist())) == 14


def test_fineweb_setting_threshold():
    threshold = estimated_threshold(14, 8)
    assert 0.68 < threshold < 0.69
    assert candidate_probability(threshold, 14, 8) == pytest.approx(0.5)
    assert candidate_probability(0.9, 14, 8) > 0.99 and candidate_probability(0.4, 14, 8) < 0.01


def test_estimated_jaccard_orders_real_edits(articles):
    hasher = MinHasher(112, seed=1)
    original = articles[7]
    paragraphs = original.split("\n")
    light = "\n".join(paragraphs[: int(len(paragraphs) * 0.9)])
    unrelated = articles[8]
    hashes, offsets = shingle_hashes([original, light, unrelated], 5)
    sig = hasher.signatures(hashes, offsets)
    assert estimated_jaccard(sig[0], sig[1]) > 0.7
    assert estimated_jaccard(sig[0], sig[2]) < 0.05


def test_keeper_nodes_sort_by_policy_then_id():
    policy = ("quality_score", "fetched_at")

    def node(doc_id, quality=None, day=None):
        fetched = datetime(2024, 1, day, tzinfo=UTC) if day else None
        return current_node(
            {"id": doc_id, "quality_score": quality, "fetched_at": fetched}, policy, "quality_score"
        )

    order = [
        node("z", quality=0.9, day=5),
        node("b", quality=0.5, day=1),
        node("a", quality=0.5, day=2),
        node("c", quality=0.5),  # no fetch time: after those with one
        node("d", day=1),  # no quality: after every scored record
        node("e"),
    ]
    assert sorted(order) == order
    assert [node_id(n, len(policy)) for n in order] == ["z", "b", "a", "c", "d", "e"]
    earlier = previous_node("x", "2024-01-01")
    assert earlier < min(order) and node_id(earlier, 2) == "x"


def test_bucket_edges_are_a_star_and_prefer_an_earlier_run():
    assert sorted(bucket_edges((1, ["1c", "1a", "1b", "1a"]))) == [("1a", "1b"), ("1a", "1c")]
    assert list(bucket_edges((1, ["1a"]))) == []
    assert list(bucket_edges((1, ["0x\x1fr1", "0y\x1fr2"]))) == []  # no document of this run
    assert sorted(bucket_edges((1, ["1b", "0y\x1fr2", "0x\x1fr1"]))) == [("0x\x1fr1", "1b")]


def test_small_buckets_offer_every_pair_for_verification():
    # A star around "1a" (say a cut-off copy that fails verification with both) would lose the
    # pair (1b, 1c); every pair of a small bucket is checked instead.
    assert sorted(bucket_edges((1, ["1c", "1a", "1b"]), all_pairs_up_to=3)) == [
        ("1a", "1b"), ("1a", "1c"), ("1b", "1c")]
    assert len(list(bucket_edges((1, [f"1{i:02d}" for i in range(4)]), all_pairs_up_to=3))) == 3  # a star
    assert sorted(bucket_edges((1, ["1b", "1c", "0x\x1fr1"]), all_pairs_up_to=3)) == [
        ("0x\x1fr1", "1b"), ("0x\x1fr1", "1c")]


def _rounds_locally(edges, max_rounds):
    """The Beam rounds of ``components.ConnectedComponents``, as plain loops."""
    edges = set(edges)
    for number in range(1, max_rounds + 1):
        neighbours = defaultdict(set)
        for a, b in edges:
            neighbours[a].add(b)
            neighbours[b].add(a)
        large, changed = set(), 0
        for node, around in neighbours.items():
            out, did = large_star(node, around)
            large.update(out)
            changed += did
        smaller = defaultdict(set)
        for a, b in large:
            smaller[b].add(a)
        edges = set()
        for node, around in smaller.items():
            out, did = small_star(node, around)
            edges.update(out)
            changed += did
        if not changed:
            return edges, number
    return edges, None


def test_large_star_small_star_finds_the_components_of_random_graphs():
    rnd = random.Random(7)
    for trial in range(20):
        nodes = [f"n{i:04d}" for i in range(rnd.randint(2, 300))]
        edges = set()
        for _ in range(rnd.randint(1, 400)):
            a, b = rnd.sample(nodes, 2)
            edges.add((min(a, b), max(a, b)))
        chain = rnd.sample(nodes, min(len(nodes), 40))  # a long path, the slow case
        edges.update((min(a, b), max(a, b)) for a, b in itertools.pairwise(chain))
        stars, rounds = _rounds_locally(edges, 30)
        assert rounds is not None and rounds <= 12, trial
        labels = {}
        for a, b in stars:
            labels[b] = a
            labels.setdefault(a, a)
        assert labels == components_local(edges)


def test_stats_merge_like_one_accumulator():
    config = MinHashDedupConfig(largest_clusters=2, examples_per_cluster=2)
    facts = [
        ("docs", 10, 1),
        ("cluster", "k1", 3, 3, False, ["k1", "m"]),
        ("cluster", "k2", 2, 2, False, ["k2", "n"]),
        ("cluster", "p1", 4, 3, True, ["a", "b"]),
        ("cluster", "k3", 40, 40, False, ["k3", "q"]),
        ("round", 1, "large", 5),
        ("round", 1, "small", 2),
    ]
    fn = MinHashStatsFn(config)
    one = fn.extract_output(fn.add_inputs(fn.create_accumulator(), facts))
    parts = [fn.add_inputs(fn.create_accumulator(), facts[i::3]) for i in range(3)]
    merged = fn.extract_output(fn.merge_accumulators(parts))
    assert one == merged
    assert one["clusters"] == 4 and one["documents_in_clusters"] == 48
    assert one["removed_near_duplicate"] == 2 + 1 + 39
    assert one["removed_near_duplicate_of_previous_run"] == 3
    assert one["cluster_size_histogram"] == {"2": 1, "3": 1, "4": 1, "33-64": 1}
    assert [c["cluster_id"] for c in one["largest_clusters"]] == ["k3", "p1"]
    assert one["components"] == {
        "max_rounds": 12,
        "converged": True,
        "rounds": 2,
        "changed_per_round": [{"round": 1, "large_star": 5, "small_star": 2}],
    }
    assert json.loads(json.dumps(one)) == one
    assert size_bin(2000) == "1025+"


def test_config_is_validated():
    with pytest.raises(ValueError, match="bands"):
        MinHashDedupConfig(bands=10, rows=8)
    with pytest.raises(ValueError, match="keeper_policy"):
        MinHashDedupConfig(keeper_policy=("pagerank",))
    with pytest.raises(ValueError, match="verify_threshold"):
        MinHashDedupConfig(verify_threshold=1.5)
    with pytest.raises(ValueError, match="max_source_removal_share"):
        MinHashDedupConfig(max_source_removal_share=0.0)
    with pytest.raises(ValueError, match="verify_all_pairs_up_to"):
        MinHashDedupConfig(verify_all_pairs_up_to=1)


def test_clough_answers_order_cut_light_heavy_non_by_estimated_jaccard():
    folder = DATA / "clough-plagiarism"
    with open(folder / "file_information.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Category"] != "orig"]

    def read(name):
        data = (folder / name).read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")

    texts = [read(row["File"]) for row in rows] + [read(f"orig_task{t}.txt") for t in "abcde"]
    hashes, offsets = shingle_hashes(texts, 5)
    signatures = MinHasher(112, seed=1).signatures(hashes, offsets)
    source = {t: signatures[len(rows) + i] for i, t in enumerate("abcde")}
    by_category = defaultdict(list)
    for row, signature in zip(rows, signatures, strict=False):
        by_category[row["Category"]].append(estimated_jaccard(signature, source[row["Task"]]))
    means = [sum(by_category[c]) / len(by_category[c]) for c in ("cut", "light", "heavy", "non")]
    assert means == sorted(means, reverse=True) and len(set(means)) == 4, means
