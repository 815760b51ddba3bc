"""Near-duplicate detection quality of ``MinHashDedup`` on labelled clusters built from real pages.

The corpus (``benchmarks.dedup_corpus``): real articles with edited copies (boilerplate, dates,
ads, truncation, truncation plus an ad, word edits, reordering, all combined; every labelled pair
at 5-gram Jaccard >= 0.70) and hard negatives (different articles in one site's boilerplate, a
digest quoting part of an article), split in a ``tune`` and a ``test`` half.

1. Tune (``tune`` split only): bands x rows and the verification threshold, with the stage's own
   signatures and the stage's candidate rule (pairs sharing a band, verified by estimated
   Jaccard, then connected components) computed in-process, averaged over permutation seeds.
   The defaults of ``MinHashDedupConfig`` come from this table.
2. Test (``test`` split): the Beam stage itself (``MinHashDedup``, FnApiRunner, reading the
   corpus inside the pipeline) with the default and the alternatives; a pair is predicted when
   both documents end in the same cluster. Precision, recall, F1, recall per edit kind with the
   exact Jaccard of those copies, and the hard negatives merged.
3. Ours against plain datasketch (``test`` split, 14 x 8, seeds 1-10, in-process): plain
   datasketch (``MinHash(112)`` with its SHA-1 hashing over lower-cased whitespace 5-grams,
   ``MinHashLSH(params=(14, 8))``), our shingles with datasketch's hashing, and ours: whether a
   recall gap comes from shingling, hashing or chance; and the default over the same seeds.
4. Clough & Stevenson's corpus (95 short answers to 5 questions, labelled cut / light / heavy /
   non against the Wikipedia source text): the similarity to the source must order
   cut > light > heavy > non, and no two answers to different questions may share a cluster.

    python -m benchmarks.dedup_quality [--data DIR] [--seed 1] [--seeds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from datasketch import MinHash, MinHashLSH

from benchmarks.dedup_corpus import DEFAULT_DATA, EDITS, build_corpus, jaccard
from transforms.dedup_minhash import MinHashDedup, MinHashDedupConfig
from transforms.dedup_minhash.bands import band_keys, estimated_threshold
from transforms.dedup_minhash.components import components_local
from transforms.dedup_minhash.shingles import shingle_hashes, shingles
from transforms.dedup_minhash.signatures import MinHasher, estimated_jaccard

FINEWEB = MinHashDedupConfig(num_perm=112, bands=14, rows=8, verify_threshold=None)
CONFIGS = {
    "default (25x4, verify 0.5)": MinHashDedupConfig(),
    "25x4, no verification": MinHashDedupConfig(verify_threshold=None),
    "20x5 (100 perm), verify 0.5": MinHashDedupConfig(bands=20, rows=5, verify_threshold=0.5),
    "14x8 FineWeb (previous default)": FINEWEB,
}
TUNE_BANDS = ((14, 8), (20, 5), (25, 4))
TUNE_THRESHOLDS = (None, 0.4, 0.5, 0.6, 0.7)
NEGATIVES = ("template", "excerpt")


def _read_jsonl(path: str):
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def run_dedup(records: list[dict], config: MinHashDedupConfig, workdir: Path) -> dict[str, str]:
    """{id: minhash cluster id} from the Beam stage (FnApiRunner), reading the corpus inside
    the pipeline."""
    corpus = workdir / "corpus.jsonl"
    result = workdir / "clusters.json"
    with corpus.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"id": record["id"], "text": record["text"]}) + "\n")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = p | beam.Create([str(corpus)]) | "Read" >> beam.FlatMap(_read_jsonl) | MinHashDedup(config)
        _ = (
            (out.kept, out.rejected)
            | beam.Flatten()
            | beam.Map(lambda r: (r["id"], r["minhash_cluster_id"]))
            | beam.combiners.ToDict()
            | beam.Map(lambda d: result.write_text(json.dumps(d)))
        )
    return json.loads(result.read_text())


# ---- the stage's rule in-process, and plain datasketch ------------------------------------


def our_signatures(texts: list[str], num_perm: int, seed: int) -> np.ndarray:
    return MinHasher(num_perm, seed).signatures(*shingle_hashes(texts, 5))


def datasketch_signatures(grams: Callable[[str], list[str]]):
    def sign(texts: list[str], num_perm: int, seed: int) -> np.ndarray:
        out = []
        for text in texts:
            sketch = MinHash(num_perm=num_perm, seed=seed)
            sketch.update_batch([gram.encode("utf-8") for gram in grams(text)])
            out.append(sketch.hashvalues.astype(np.uint32))
        return np.stack(out)

    return sign


def plain_grams(text: str) -> list[str]:
    """What a plain datasketch user shingles: lower-cased whitespace words, 5 at a time."""
    tokens = text.lower().split()
    return [" ".join(tokens[i : i + 5]) for i in range(max(len(tokens) - 4, 1))]


def local_clusters(ids: list[str], signatures: np.ndarray, bands: int, rows: int,
                   threshold: float | None) -> dict[str, str]:
    """Pairs sharing a band key, kept if their estimated Jaccard reaches ``threshold``, joined
    into connected components: the stage's rule with every bucket's pairs checked."""
    buckets: dict[int, list[int]] = defaultdict(list)
    for doc, keys in enumerate(band_keys(signatures, bands, rows)):
        for key in set(keys.tolist()):
            buckets[key].append(doc)
    edges = set()
    for members in buckets.values():
        for a, b in itertools.combinations(members, 2):
            if threshold is None or estimated_jaccard(signatures[a], signatures[b]) >= threshold:
                edges.add((ids[a], ids[b]) if ids[a] < ids[b] else (ids[b], ids[a]))
    labels = components_local(edges)
    return {doc: labels.get(doc, doc) for doc in ids}


def plain_datasketch_clusters(ids: list[str], texts: list[str], seed: int) -> dict[str, str]:
    """MinHashLSH (14 x 8) queried with every document, candidates joined into components."""
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    sketches = {}
    for doc, text in zip(ids, texts, strict=True):
        sketch = MinHash(num_perm=112, seed=seed)
        sketch.update_batch([gram.encode("utf-8") for gram in plain_grams(text)])
        sketches[doc] = sketch
        lsh.insert(doc, sketch)
    edges = {(min(a, b), max(a, b)) for a in ids for b in lsh.query(sketches[a]) if a != b}
    labels = components_local(edges)
    return {doc: labels.get(doc, doc) for doc in ids}


# ---- scoring --------------------------------------------------------------------------------


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {pair for members in groups.values() for pair in itertools.combinations(sorted(members), 2)}


def _by(mapping: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for doc, group in mapping.items():
        groups[group].append(doc)
    return groups


def prf(records: list[dict], predicted: dict[str, str]) -> tuple[float, float, float, set, set]:
    gold_pairs = _pairs(_by({r["id"]: r["cluster"] for r in records}))
    predicted_pairs = _pairs(_by(predicted))
    true_positive = len(gold_pairs & predicted_pairs)
    precision = true_positive / len(predicted_pairs) if predicted_pairs else 1.0
    recall = true_positive / len(gold_pairs) if gold_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, gold_pairs, predicted_pairs


def score(records: list[dict], predicted: dict[str, str]) -> dict[str, Any]:
    precision, recall, f1, gold_pairs, predicted_pairs = prf(records, predicted)
    text_of = {r["id"]: r["text"] for r in records}
    kind_of = {r["id"]: r["edit"] for r in records}
    false_pairs = predicted_pairs - gold_pairs
    base_of = {r["cluster"]: r for r in records if r["edit"] == "base"}
    per_edit: dict[str, dict[str, Any]] = {}
    for kind in EDITS:
        copies = [r for r in records if r["edit"] == kind]
        found = [predicted[r["id"]] == predicted[base_of[r["cluster"]]["id"]] for r in copies]
        similarity = [jaccard(base_of[r["cluster"]]["text"], r["text"]) for r in copies]
        per_edit[kind] = {
            "copies": len(copies),
            "recall_vs_base": round(sum(found) / len(found), 3) if found else None,
            "jaccard_median": round(statistics.median(similarity), 3) if similarity else None,
            "jaccard_min": round(min(similarity), 3) if similarity else None,
        }
    negatives = {}
    for kind in NEGATIVES:
        pairs = [(r["id"], r["id"][:-1] + "b") for r in records if r["edit"] == kind and r["id"].endswith("a")]
        merged = [pair for pair in pairs if predicted[pair[0]] == predicted[pair[1]]]
        negatives[kind] = {
            "pairs": len(pairs),
            "merged": len(merged),
            "jaccard_max": round(max((jaccard(text_of[a], text_of[b]) for a, b in pairs), default=0.0), 3),
        }
    return {
        "gold_pairs": len(gold_pairs),
        "predicted_pairs": len(predicted_pairs),
        "false_pairs": len(false_pairs),
        "false_pair_kinds": sorted({f"{kind_of[a]}/{kind_of[b]}" for a, b in false_pairs}),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "per_edit": per_edit,
        "hard_negatives": negatives,
    }


def over_seeds(records: list[dict], cluster: Callable[[int], dict[str, str]], seeds: range) -> dict[str, float]:
    """Mean, min and max of precision, recall and F1 over permutation seeds."""
    runs = [prf(records, cluster(seed))[:3] for seed in seeds]
    out = {}
    for i, name in enumerate(("precision", "recall", "f1")):
        values = [run[i] for run in runs]
        out[name] = round(statistics.mean(values), 4)
        out[f"{name}_min"] = round(min(values), 4)
        out[f"{name}_max"] = round(max(values), 4)
    return out


def tune(records: list[dict], seeds: range) -> dict[str, dict[str, float]]:
    """Bands x rows and verification threshold on the tune split (in-process, mean over seeds)."""
    ids, texts = [r["id"] for r in records], [r["text"] for r in records]
    table = {}
    for bands, rows in TUNE_BANDS:
        signatures = {seed: our_signatures(texts, bands * rows, seed) for seed in seeds}
        for threshold in TUNE_THRESHOLDS:
            name = f"{bands}x{rows} verify {threshold}"
            table[name] = over_seeds(
                records, lambda seed, b=bands, r=rows, t=threshold, s=signatures: local_clusters(ids, s[seed], b, r, t),
                seeds)
    return table


def compare_with_datasketch(records: list[dict], seeds: range) -> dict[str, dict[str, float]]:
    """14 x 8, no verification: plain datasketch, our shingles with its hashing, ours; and the
    default setting, over the same seeds."""
    ids, texts = [r["id"] for r in records], [r["text"] for r in records]
    ours_shingles = datasketch_signatures(lambda text: shingles(text, 5))
    return {
        "plain datasketch (lower-cased words, SHA-1, MinHashLSH)": over_seeds(
            records, lambda seed: plain_datasketch_clusters(ids, texts, seed), seeds),
        "our shingles, datasketch SHA-1 hashing": over_seeds(
            records, lambda seed: local_clusters(ids, ours_shingles(texts, 112, seed), 14, 8, None), seeds),
        "ours (stage signatures)": over_seeds(
            records, lambda seed: local_clusters(ids, our_signatures(texts, 112, seed), 14, 8, None), seeds),
        "ours, default (25x4, verify 0.5)": over_seeds(
            records, lambda seed: local_clusters(ids, our_signatures(texts, 100, seed), 25, 4, 0.5), seeds),
    }


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def clough(data: Path, workdir: Path) -> dict[str, Any]:
    """Similarity of each answer to its source text by category, and the stage's clusters."""
    folder = data / "clough-plagiarism"
    with open(folder / "file_information.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Category"] != "orig"]
    originals = {task: _read_text(folder / f"orig_task{task}.txt") for task in "abcde"}
    answers = {row["File"]: _read_text(folder / row["File"]) for row in rows}
    config = MinHashDedupConfig()
    hasher = MinHasher(config.num_perm, config.seed)
    names = [*answers, *(f"orig_task{t}.txt" for t in originals)]
    texts = [*answers.values(), *originals.values()]
    hashes, offsets = shingle_hashes(texts, config.ngram)
    signatures = dict(zip(names, hasher.signatures(hashes, offsets), strict=True))
    keys = dict(
        zip(names, band_keys(np.stack(list(signatures.values())), config.bands, config.rows), strict=True)
    )
    by_category: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        original = f"orig_task{row['Task']}.txt"
        stats = by_category[row["Category"]]
        stats["jaccard"].append(jaccard(answers[row["File"]], originals[row["Task"]]))
        stats["estimated"].append(estimated_jaccard(signatures[row["File"]], signatures[original]))
        stats["candidate"].append(float(np.any(keys[row["File"]] == keys[original])))
    order = ("cut", "light", "heavy", "non")
    table = {
        category: {
            "answers": len(by_category[category]["jaccard"]),
            "jaccard_mean": round(statistics.mean(by_category[category]["jaccard"]), 3),
            "estimated_mean": round(statistics.mean(by_category[category]["estimated"]), 3),
            "candidate_share": round(statistics.mean(by_category[category]["candidate"]), 3),
        }
        for category in order
    }
    task_of = {row["File"]: row["Task"] for row in rows} | {f"orig_task{t}.txt": t for t in originals}
    category_of = {row["File"]: row["Category"] for row in rows} | {
        f"orig_task{t}.txt": "orig" for t in originals
    }
    clusters = run_dedup([{"id": n, "text": t} for n, t in zip(names, texts, strict=True)], config, workdir)
    cross_task = sum(1 for a, b in _pairs(_by(clusters)) if task_of[a] != task_of[b])
    merged = defaultdict(int)
    for name, cluster in clusters.items():
        if cluster != name or len(_by(clusters)[cluster]) > 1:
            merged[category_of[name]] += 1
    ordered = all(
        table[a][measure] > table[b][measure]
        for measure in ("jaccard_mean", "estimated_mean")
        for a, b in itertools.pairwise(order)
    )
    return {
        "by_category": table,
        "order_cut_light_heavy_non": ordered,
        "pairs_across_questions": cross_task,
        "in_a_cluster_by_category": dict(merged),
    }


def _line(name: str, row: dict[str, float]) -> str:
    return (f"  {name:44s} P={row['precision']:.4f} R={row['recall']:.4f} F1={row['f1']:.4f}"
            f"  (F1 {row['f1_min']:.4f}-{row['f1_max']:.4f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=1, help="seed of the corpus")
    parser.add_argument("--seeds", type=int, default=10, help="permutation seeds of the in-process comparisons")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.time()
    seeds = range(1, args.seeds + 1)
    report: dict[str, Any] = {"seed": args.seed, "permutation_seeds": args.seeds}
    corpora = {}
    for split in ("tune", "test"):
        records, facts = build_corpus(args.data, args.seed, split)
        corpora[split] = records
        report[f"{split}_corpus"] = {"documents": len(records), **facts}
        print(f"{split} corpus: {len(records)} documents from {facts['aeb']} article-benchmark and {facts['warc']} "
              f"Common Crawl bases, {facts['hard_negative_pairs']} hard-negative pairs, "
              f"{facts['edits_dropped_below_jaccard']} edits dropped below J 0.70 (corpus seed {args.seed})")

    print(f"\n1. tune split, in-process, mean over permutation seeds 1-{args.seeds}:")
    report["tune"] = tuned = tune(corpora["tune"], seeds)
    for name, row in tuned.items():
        print(_line(name, row))

    print("\n2. test split, the Beam stage (permutation seed 1):")
    report["test"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in CONFIGS.items():
            figures = score(corpora["test"], run_dedup(corpora["test"], config, Path(tmp)))
            figures["estimated_threshold"] = round(estimated_threshold(config.bands, config.rows), 3)
            report["test"][name] = figures
            print(f"\n{name}: 50% point J={figures['estimated_threshold']}  P={figures['precision']:.4f} "
                  f"R={figures['recall']:.4f} F1={figures['f1']:.4f}  ({figures['predicted_pairs']} predicted, "
                  f"{figures['gold_pairs']} gold, {figures['false_pairs']} false pairs "
                  f"{figures['false_pair_kinds']})")
            print("  edit           copies  recall  J median  J min")
            for kind, row in figures["per_edit"].items():
                if row["copies"]:
                    print(f"  {kind:14s} {row['copies']:6d}  {row['recall_vs_base']:.3f}   "
                          f"{row['jaccard_median']:.3f}    {row['jaccard_min']:.3f}")
            for kind, row in figures["hard_negatives"].items():
                print(f"  hard negatives {kind}: {row['merged']} of {row['pairs']} pairs merged "
                      f"(J max {row['jaccard_max']})")
        print(f"\n3. test split, in-process, mean over permutation seeds 1-{args.seeds} (14x8: no verification):")
        report["versus_datasketch"] = versus = compare_with_datasketch(corpora["test"], seeds)
        for name, row in versus.items():
            print(_line(name, row))
        report["clough"] = result = clough(args.data, Path(tmp))
    print("\n4. clough-plagiarism (answer vs its source text, default setting):")
    print("  category  answers  J mean  est. J mean  candidate share")
    for category, row in result["by_category"].items():
        print(
            f"  {category:8s}  {row['answers']:7d}  {row['jaccard_mean']:.3f}   {row['estimated_mean']:.3f}"
            f"        {row['candidate_share']:.3f}"
        )
    print(
        f"  order cut > light > heavy > non: {result['order_cut_light_heavy_non']}; "
        f"pairs across questions in one cluster: {result['pairs_across_questions']}; "
        f"in a cluster by category: {result['in_a_cluster_by_category']}"
    )
    print(f"\n{time.time() - started:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if result["order_cut_light_heavy_non"] and result["pairs_across_questions"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
