"""Near-duplicate detection quality of ``MinHashDedup`` on labelled clusters built from real pages.

Bases: the gold article texts of the Scrapinghub article benchmark (181 real news and blog
articles) and the main text of the Common Crawl pages in the resiliparse WARC excerpt (read and
extracted by this project's WARC reader and ``extract`` stage), each of at least ``MIN_WORDS``
normalised words. Every base gets 0-3 edited copies, one edit kind per copy, as the web edits
pages (seeded, so the corpus is the same on every run):

- ``boilerplate``: header and footer lines of a *different real page* of the benchmark (its
  navigation, menus, share buttons, footers: the lines resiliparse's full-page text has and the
  gold article has not), up to 30% of the article's words, as when an article is syndicated;
- ``dates``: month and weekday names rotated, years and clock times changed;
- ``ads``: 1-4 advertisement / call-to-action lines inserted between paragraphs;
- ``truncation``: the first 70-95% of the words (a cut-off crawl, a paywall);
- ``reorder``: the paragraphs shuffled;
- ``combined``: boilerplate + dates + ads + one paragraph moved + the first 85-98% kept.

Hard negatives (``template``): 60 further articles of the benchmark, held out from the bases,
in pairs, both framed with the *whole* boilerplate of one same real page (not capped): two
different articles of one site as a full-page extractor gives them. They are never duplicates.

A base and its copies form one labelled cluster. Duplicate pairs are scored: a pair is
predicted when both documents end in the same MinHash cluster; precision, recall and F1 over
all pairs, and recall per edit kind with the exact 5-gram Jaccard of the pairs (which says how
hard each kind is: the defaults' 50% point is J = 0.68).

Clough & Stevenson's corpus (95 short answers to 5 questions, labelled cut / light / heavy / non
against the Wikipedia source text): the similarity to the source must order
cut > light > heavy > non, and no two answers to different questions may ever share a cluster.

    python -m benchmarks.dedup_quality [--data DIR] [--seed 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from resiliparse.extract.html2text import extract_plain_text

from transforms.dedup_minhash import MinHashDedup, MinHashDedupConfig
from transforms.dedup_minhash.bands import band_keys, estimated_threshold
from transforms.dedup_minhash.shingles import normalise, shingle_hashes, shingles
from transforms.dedup_minhash.signatures import MinHasher, estimated_jaccard

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MIN_WORDS = 50
TEMPLATE_ARTICLES = 60
EDITS = ("boilerplate", "dates", "ads", "truncation", "reorder", "combined")
# Ad and call-to-action lines of the kinds that pages insert between paragraphs.
ADS = (
    "Advertisement",
    "ADVERTISEMENT - CONTINUE READING BELOW",
    "Sponsored: Compare the best credit cards of 2024 and earn up to $500 in rewards",
    "Subscribe to our newsletter for the latest news delivered to your inbox every morning",
    "Story continues below advertisement",
    "Get unlimited digital access for just $1 a week. Cancel anytime.",
    "Shop the look: the season's best deals are up to 60% off today only",
    "RELATED: The 10 most popular stories this week",
    "Download our app to get breaking news alerts",
    "This article contains affiliate links; we may earn a commission on purchases",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_YEAR = re.compile(r"\b(19|20)\d\d\b")
_CLOCK = re.compile(r"\b\d{1,2}:\d\d\b")
_NAME = re.compile(r"\b(" + "|".join(MONTHS + WEEKDAYS) + r")\b")

CONFIGS = {
    "14x8 (default)": MinHashDedupConfig(),
    "14x8 + verify J>=0.7": MinHashDedupConfig(verify_threshold=0.7),
    "20x5 (100 perm)": MinHashDedupConfig(num_perm=100, bands=20, rows=5),
    "9x13 (117 perm)": MinHashDedupConfig(num_perm=117, bands=9, rows=13),
}


@dataclass(frozen=True)
class Frame:
    """Boilerplate lines of one real page: before and after its article."""

    header: tuple[str, ...]
    footer: tuple[str, ...]


def _words(text: str) -> int:
    return len(normalise(text).split())


def aeb_pages(data: Path) -> list[tuple[str, str, Frame]]:
    """(url, gold article, boilerplate frame) of every page of the article benchmark."""
    gold = json.loads((data / "scrapinghub-aeb" / "ground-truth.json").read_text())
    pages = []
    for key in sorted(gold):
        article = gold[key]["articleBody"]
        html = gzip.decompress((data / "scrapinghub-aeb" / "html" / f"{key}.html.gz").read_bytes())
        full = extract_plain_text(html.decode("utf-8", "replace"), main_content=False)
        body = normalise(article)
        lines = [line.strip() for line in full.split("\n") if len(normalise(line).split()) >= 2]
        inside = [i for i, line in enumerate(lines) if normalise(line) in body]
        if inside:
            frame = Frame(
                tuple(line for line in lines[: inside[0]] if normalise(line) not in body),
                tuple(line for line in lines[inside[-1] + 1 :] if normalise(line) not in body),
            )
        else:
            frame = Frame((), ())
        pages.append((gold[key]["url"], article, frame))
    return pages


def warc_pages(data: Path) -> list[tuple[str, str]]:
    """(url, extracted main text) of the Common Crawl responses, through the project's reader."""
    from transforms.extract import Extract, ExtractConfig
    from transforms.readers.read_config import ReadConfig
    from transforms.readers.warc import read_warc

    path = str(data / "cc-warc-resiliparse" / "warcfile.warc.gz")
    records = [record for record, drop in read_warc(path, ReadConfig()) if drop is None]
    drops = Extract(ExtractConfig()).process_batch(records)
    return [(r["url"], r["text"]) for r, drop in zip(records, drops, strict=True) if drop is None]


def _paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n") if p.strip()]


def edit(kind: str, text: str, rng: random.Random, frames: list[Frame]) -> tuple[str, dict]:
    """One edited copy of ``text`` and what was done (for the report)."""
    if kind == "boilerplate":
        frame = rng.choice([f for f in frames if f.header or f.footer])
        budget = int(0.3 * _words(text))
        header, footer = list(frame.header), list(frame.footer)
        while header or footer:
            if _words("\n".join(header + footer)) <= budget:
                break
            (header if len(header) > len(footer) else footer).pop(0 if len(header) > len(footer) else -1)
        return "\n".join([*header, text, *footer]), {"lines": len(header) + len(footer)}
    if kind == "dates":
        shift = rng.randint(1, 3)

        def rotate(match: re.Match) -> str:
            names = MONTHS if match.group(1) in MONTHS else WEEKDAYS
            return names[(names.index(match.group(1)) + shift) % len(names)]

        text = _NAME.sub(rotate, text)
        text = _YEAR.sub(lambda m: str(int(m.group(0)) + shift), text)
        return _CLOCK.sub(lambda m: f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", text), {}
    if kind == "ads":
        paragraphs = _paragraphs(text)
        count = rng.randint(1, 4)
        for _ in range(count):
            paragraphs.insert(rng.randint(0, len(paragraphs)), rng.choice(ADS))
        return "\n".join(paragraphs), {"ads": count}
    if kind == "truncation":
        keep = rng.uniform(0.70, 0.95)
        return _cut(text, keep), {"kept": round(keep, 3)}
    if kind == "reorder":
        paragraphs = _paragraphs(text)
        rng.shuffle(paragraphs)
        return "\n".join(paragraphs), {"paragraphs": len(paragraphs)}
    if kind == "combined":
        text, _ = edit("boilerplate", text, rng, frames)
        text, _ = edit("dates", text, rng, frames)
        text, _ = edit("ads", text, rng, frames)
        paragraphs = _paragraphs(text)
        paragraphs.insert(rng.randint(0, len(paragraphs) - 1), paragraphs.pop(rng.randrange(len(paragraphs))))
        keep = rng.uniform(0.85, 0.98)
        return _cut("\n".join(paragraphs), keep), {"kept": round(keep, 3)}
    raise ValueError(kind)


def _cut(text: str, keep: float) -> str:
    spans = [m.end() for m in re.finditer(r"\S+", text)]
    return text[: spans[max(0, int(len(spans) * keep) - 1)]] if spans else text


def build_corpus(data: Path, seed: int) -> tuple[list[dict], dict[str, int]]:
    """Records (id, text, cluster, edit) and how many bases came from each source."""
    rng = random.Random(seed)
    aeb = aeb_pages(data)
    frames = [frame for _, _, frame in aeb]
    articles = [text for _, text, _ in aeb if _words(text) >= MIN_WORDS]
    held_out = articles[-TEMPLATE_ARTICLES:]
    bases = [("aeb", text) for text in articles[:-TEMPLATE_ARTICLES]]
    bases += [("warc", text) for _, text in warc_pages(data) if _words(text) >= MIN_WORDS]
    records = []
    for number, (source, text) in enumerate(bases):
        cluster = f"c{number:03d}"
        records.append(
            {"id": f"{cluster}-base", "text": text, "cluster": cluster, "edit": "base", "source": source}
        )
        for copy, kind in enumerate(rng.sample(EDITS, rng.choice((0, 1, 2, 3)))):
            edited, info = edit(kind, text, rng, frames)
            records.append(
                {
                    "id": f"{cluster}-{copy}-{kind}",
                    "text": edited,
                    "cluster": cluster,
                    "edit": kind,
                    "info": info,
                    "source": source,
                }
            )
    big_frames = [frame for frame in frames if _words("\n".join(frame.header + frame.footer)) >= 100]
    for pair in range(len(held_out) // 2):
        frame = rng.choice(big_frames)
        for side, text in zip("ab", held_out[2 * pair : 2 * pair + 2]):
            records.append(
                {
                    "id": f"t{pair:02d}-{side}",
                    "text": "\n".join([*frame.header, text, *frame.footer]),
                    "cluster": f"t{pair:02d}-{side}",
                    "edit": "template",
                    "source": "aeb",
                }
            )
    sources = {
        "aeb": sum(1 for s, _ in bases if s == "aeb"),
        "warc": sum(1 for s, _ in bases if s == "warc"),
        "template_pairs": len(held_out) // 2,
    }
    return records, sources


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


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {pair for members in groups.values() for pair in itertools.combinations(sorted(members), 2)}


def _by(mapping: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for doc, group in mapping.items():
        groups[group].append(doc)
    return groups


def jaccard(a: str, b: str) -> float:
    left, right = set(shingles(a, 5)), set(shingles(b, 5))
    return len(left & right) / len(left | right) if left | right else 1.0


def score(records: list[dict], predicted: dict[str, str]) -> dict[str, Any]:
    gold_pairs = _pairs(_by({r["id"]: r["cluster"] for r in records}))
    predicted_pairs = _pairs(_by(predicted))
    true_positive = len(gold_pairs & predicted_pairs)
    precision = true_positive / len(predicted_pairs) if predicted_pairs else 1.0
    recall = true_positive / len(gold_pairs) if gold_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    text_of = {r["id"]: r["text"] for r in records}
    template_pairs = {
        pair
        for pair in predicted_pairs - gold_pairs
        if all(d.startswith("t") for d in pair) and pair[0][:3] == pair[1][:3]
    }
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
            "missed_jaccard_max": round(max((s for s, f in zip(similarity, found) if not f), default=0.0), 3),
        }
    return {
        "gold_pairs": len(gold_pairs),
        "predicted_pairs": len(predicted_pairs),
        "false_pairs": len(predicted_pairs - gold_pairs),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "per_edit": per_edit,
        "template_pairs_merged": len(template_pairs),
        "template_pairs_merged_jaccard": sorted(
            round(jaccard(text_of[a], text_of[b]), 3) for a, b in template_pairs
        ),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.time()
    records, sources = build_corpus(args.data, args.seed)
    print(
        f"corpus: {len(records)} documents, {len({r['cluster'] for r in records})} labelled clusters "
        f"from {sources['aeb']} article-benchmark and {sources['warc']} Common Crawl bases, plus "
        f"{sources['template_pairs']} template pairs (seed {args.seed})"
    )
    report: dict[str, Any] = {"documents": len(records), "bases": sources, "seed": args.seed, "configs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in CONFIGS.items():
            figures = score(records, run_dedup(records, config, Path(tmp)))
            figures["estimated_threshold"] = round(estimated_threshold(config.bands, config.rows), 3)
            report["configs"][name] = figures
            print(
                f"\n{name}: threshold(50%) J={figures['estimated_threshold']}  P={figures['precision']:.4f} "
                f"R={figures['recall']:.4f} F1={figures['f1']:.4f}  ({figures['predicted_pairs']} predicted, "
                f"{figures['gold_pairs']} gold, {figures['false_pairs']} false pairs)"
            )
            print("  edit         copies  recall  J median  J min  max J missed")
            for kind, row in figures["per_edit"].items():
                print(
                    f"  {kind:12s} {row['copies']:6d}  {row['recall_vs_base']:.3f}   {row['jaccard_median']:.3f}"
                    f"    {row['jaccard_min']:.3f}  {row['missed_jaccard_max']:.3f}"
                )
            print(
                f"  template pairs merged (different articles, same page frame): "
                f"{figures['template_pairs_merged']} of {sources['template_pairs']}, "
                f"J {figures['template_pairs_merged_jaccard']}"
            )
        report["clough"] = result = clough(args.data, Path(tmp))
    print("\nclough-plagiarism (answer vs its source text, 14x8):")
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
