"""Speed and memory of MinHash dedup: signatures against datasketch's per-document loop, and
the whole Beam stage at 1x, 4x and 16x input.

Corpus: documents assembled from the paragraphs of the Scrapinghub benchmark's 181 real
articles (8-24 paragraphs drawn at random from the whole pool, so documents are distinct and
of news-article length), with 10% of them near-duplicates of another document (one edit of
``dedup_quality``: boilerplate, dates, ads, truncation, reorder or combined). Seeded.

1. Signatures/s from raw text, same documents, same process, best of ``--repeat`` (the update
   loop runs once, on a tenth of the documents: it is slow); every path normalises and shingles
   with the same code:
   - ``datasketch update loop``: per document ``MinHash(112)``, ``update(shingle)`` per shingle
     (SHA-1 per shingle, the numpy permutation step per shingle);
   - ``datasketch update_batch``: per document, all shingles at once (SHA-1 per shingle);
   - ``ours``: ``shingle_hashes`` + ``MinHasher.signatures`` + ``band_keys`` on batches of 256
     documents, with the default (100 permutations, 25 x 4 bands) and FineWeb's 112 as 14 x 8
     (the previous default) side by side.
2. End to end: ``MinHashDedup`` with the default and with FineWeb's 14 x 8 (no verification, the
   previous default), in a fresh process per size and setting (FnApiRunner, one worker), reading
   the corpus (JSONL) inside the pipeline and counting kept and rejected records: wall time
   from pipeline construction to completion (best of ``--e2e-repeat`` runs), documents/s, and
   the process's peak RSS. Scale 0
   runs the same pipeline on no documents: Beam's start-up time and the interpreter's memory.

    python -m benchmarks.dedup_speed [--base 2000] [--scales 0 1 4 16] [--repeat 3] [--e2e-repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datasketch import MinHash

from benchmarks.dedup_corpus import DEFAULT_DATA, EDITS, aeb_pages, edit
from transforms.dedup_minhash.bands import band_keys
from transforms.dedup_minhash.config import MinHashDedupConfig
from transforms.dedup_minhash.shingles import shingle_hashes, shingles
from transforms.dedup_minhash.signatures import MinHasher

DUPLICATE_SHARE = 0.10
FINEWEB = MinHashDedupConfig(num_perm=112, bands=14, rows=8, verify_threshold=None)


def make_corpus(data: Path, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pages = aeb_pages(data)
    frames = [frame for _, _, frame in pages]
    pool = [p for _, text, _ in pages for p in text.split("\n") if len(p.split()) >= 5]
    docs = []
    for number in range(count):
        if docs and rng.random() < DUPLICATE_SHARE:
            text, _ = edit(rng.choice(EDITS), rng.choice(docs)["text"], rng, frames)
        else:
            text = "\n".join(rng.choice(pool) for _ in range(rng.randint(8, 24)))
        docs.append({"id": f"{number:032x}", "text": text})
    return docs


def _best(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def signature_speed(texts: list[str], repeat: int) -> dict[str, float]:
    """Documents/s from raw text to signature; every path shingles with the same
    ``shingles.normalise``, so only the hashing and permuting differ. The datasketch paths use
    FineWeb's 112 permutations."""
    config = FINEWEB

    def update_loop():  # slow: on the first tenth of the documents
        for text in texts[: max(1, len(texts) // 10)]:
            sketch = MinHash(num_perm=config.num_perm, seed=config.seed)
            for gram in shingles(text, config.ngram):
                sketch.update(gram.encode("utf-8"))

    def update_batch():
        for text in texts:
            sketch = MinHash(num_perm=config.num_perm, seed=config.seed)
            sketch.update_batch([gram.encode("utf-8") for gram in shingles(text, config.ngram)])

    def ours(setting: MinHashDedupConfig):
        hasher = MinHasher(setting.num_perm, setting.seed)

        def sign():
            for start in range(0, len(texts), setting.batch_size):
                batch = texts[start : start + setting.batch_size]
                band_keys(hasher.signatures(*shingle_hashes(batch, setting.ngram)), setting.bands, setting.rows)

        return sign

    # The two settings alternate, best of ``repeat`` each, so load on a shared machine hits both.
    old, new = ours(FINEWEB), ours(MinHashDedupConfig())
    best_old = best_new = float("inf")
    for _ in range(repeat):
        best_old = min(best_old, _best(old, 1))
        best_new = min(best_new, _best(new, 1))
    return {
        "datasketch update loop": max(1, len(texts) // 10) / _best(update_loop, 1),
        "datasketch update_batch": len(texts) / _best(update_batch, repeat),
        "ours 14x8 (previous default)": len(texts) / best_old,
        "ours 25x4 (default)": len(texts) / best_new,
    }


SETTINGS = {"default": MinHashDedupConfig(), "14x8": FINEWEB}


def run_stage(corpus: str, setting: str) -> dict:
    """One end-to-end run in this process (called in a child process per size)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.dedup_minhash import MinHashDedup

    def read(path: str):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)

    result = Path(corpus).with_suffix(".result.json")
    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = p | beam.Create([corpus]) | "Read" >> beam.FlatMap(read) | MinHashDedup(SETTINGS[setting])
        kept = out.kept | "CountKept" >> beam.combiners.Count.Globally()
        _ = (
            out.rejected
            | "CountRejected" >> beam.combiners.Count.Globally()
            | beam.Map(
                lambda rejected, kept: result.write_text(json.dumps([kept, rejected])),
                kept=beam.pvalue.AsSingleton(kept),
            )
        )
    seconds = time.perf_counter() - started
    kept, rejected = json.loads(result.read_text())
    return {"seconds": seconds, "kept": kept, "rejected": rejected, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak RSS. ``VmHWM`` where Linux has it: ``ru_maxrss`` of a child process
    also counts the parent's memory at fork time, which would inflate the small sizes."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_run(corpus: Path, setting: str) -> dict:
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.dedup_speed", "--child", str(corpus), "--setting", setting],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--base", type=int, default=2000, help="documents at 1x")
    # 0: the same pipeline on no documents, for Beam's own start-up time and memory.
    parser.add_argument("--scales", type=int, nargs="+", default=[0, 1, 4, 16])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--e2e-repeat", type=int, default=2, help="end-to-end runs per size (best kept)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="default", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_stage(args.child, args.setting)))
        return 0

    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, {platform.processor() or platform.machine()}"
    )
    docs = make_corpus(args.data, args.base * max(1, *args.scales), args.seed)
    base = [doc["text"] for doc in docs[: args.base]]
    words = sum(len(text.split()) for text in base) / len(base)
    print(
        f"corpus: {len(docs)} documents of {words:.0f} words on average, {DUPLICATE_SHARE:.0%} near-duplicates"
    )
    print(f"\nsignatures and band keys of {len(base)} documents (word 5-grams):")
    speeds = signature_speed(base, args.repeat)
    baseline = speeds["datasketch update loop"]
    for name, rate in speeds.items():
        print(f"  {name:26s} {rate:9.0f} docs/s  x{rate / baseline:.1f}")

    print("\nend to end (MinHashDedup, FnApiRunner, one process per size and setting):")
    print("  setting  scale     docs   seconds    docs/s   kept  rejected  peak RSS MiB")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            corpus = Path(tmp) / f"corpus-{scale}.jsonl"
            with corpus.open("w", encoding="utf-8") as handle:
                for doc in docs[: args.base * scale]:
                    handle.write(json.dumps(doc) + "\n")
            for setting in ("14x8", "default"):
                runs = [_child_run(corpus, setting) for _ in range(args.e2e_repeat)]
                row = {"scale": scale, "docs": args.base * scale, **min(runs, key=lambda run: run["seconds"])}
                rate = f"{row['docs'] / row['seconds']:9.0f}" if row["docs"] else "        -"
                print(
                    f"  {setting:8s} {scale:4d}x {row['docs']:8d} {row['seconds']:9.1f} {rate}"
                    f" {row['kept']:6d} {row['rejected']:9d} {row['peak_rss_mib']:12.0f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
