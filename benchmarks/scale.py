"""Memory and time of both jobs at 1x and ``--factor`` x input, side by side in one run.

    .venv/bin/python -m benchmarks.scale [--text-pages 20000] [--images 2000] [--factor 10]
        [--text-docs] [--skip-text] [--skip-images] [--work-dir DIR] [--json FILE]
        [--buffer-mib N] [--task-mib N] [--shard-rows N]

- Text: a gzipped WARC of real pages (the Common Crawl excerpt, the article-benchmark pages and
  the ``python3.11-doc`` pages from ``benchmarks.text_pipeline``), repeated with distinct URIs
  up to ``--text-pages`` and ``factor`` times that; the default config (dedup on, so the copies
  end as duplicates: every record still travels to ``rejected/``). With ``--text-docs`` the
  corpus is a JSONL of short real documents instead (the 100 texts of the Clough & Stevenson
  corpus, 1.3 KB on average, repeated with distinct URLs): what grows per document (ids, keys,
  decisions) at document counts that whole pages would take hours to reach.
- Images: ``--images`` and ``factor`` times that distinct JPEGs served on 127.0.0.1
  (``benchmarks.images``), a URL + caption table, every default stage on (NSFW included).

Each run is a subprocess on the in-process runner (the local default); the figures are its
whole process tree's: peak PSS sampled every 0.1 s, the largest single RSS, wall and CPU time.
With ``--factor 1`` each job runs once. The last lines give the ``factor`` x run over the 1x run: memory should stay flat and CPU grow
no faster than the input. ``--buffer-mib``, ``--task-mib`` and ``--shard-rows`` set the bounds
(``memory.buffer_bytes``, ``memory.task_bytes``, ``output.max_rows_per_shard``): with bounds
that a 1x run already fills, what is left of the growth is what no bound covers.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.images import make_images, serve
from benchmarks.text_pipeline import SHARED_DATA, Measured, build_corpus, measure

_IMAGES = """
import json, sys
from pipelines import images
from transforms.crawl.config import IMAGE_CONTENT_TYPES, CrawlConfig
from transforms.images.download import DownloadConfig
from transforms.spill import MemoryConfig
table, out, memory = sys.argv[1:4]
crawl = CrawlConfig(content_types=IMAGE_CONTENT_TYPES, per_host_rate=10000.0, per_host_concurrency=16,
                    allow_private_addresses=True, max_retries=0)
bounds = json.loads(memory)
bounds.pop("shard_rows", None)
config = images.Config(download=DownloadConfig(crawl=crawl), memory=MemoryConfig(**bounds))
manifest = images.run([table], out, "scale", config, ["--runner=FnApiRunner"], compare_previous=False)
print(json.dumps(manifest["conservation"]))
"""

_TEXT = """
import json, sys
from pipelines import text
from transforms.spill import MemoryConfig
corpus, out, memory = sys.argv[1:4]
import dataclasses
bounds = json.loads(memory)
shard_rows = bounds.pop("shard_rows", None)
config = text.Config(memory=MemoryConfig(**bounds))
if shard_rows:
    config = dataclasses.replace(config, output=dataclasses.replace(config.output, max_rows_per_shard=shard_rows))
manifest = text.run([corpus], out, "scale", config, ["--runner=FnApiRunner"], compare_previous=False)
print(json.dumps(manifest["conservation"]))
"""


def text_corpus(work: Path, pages: int) -> tuple[Path, int]:
    """A WARC of at least ``pages`` real pages (whole copies of the source set)."""
    warcs = [SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"]
    once = work / "once.warc.gz"
    per_copy = build_corpus(once, 1, warcs, SHARED_DATA / "scrapinghub-aeb")
    copies = math.ceil(pages / per_copy)
    corpus = work / f"pages-{pages}.warc.gz"
    count = build_corpus(corpus, copies, warcs, SHARED_DATA / "scrapinghub-aeb")
    once.unlink()
    return corpus, count


def short_documents_corpus(work: Path, docs: int) -> tuple[Path, int]:
    """A JSONL of ``docs`` real short texts (the Clough & Stevenson answers and their sources,
    in name order, repeated with distinct URLs)."""
    texts = [path.read_text(encoding="utf-8", errors="replace")
             for path in sorted((SHARED_DATA / "clough-plagiarism").glob("*.txt"))]
    corpus = work / f"docs-{docs}.jsonl"
    with open(corpus, "w") as stream:
        for i in range(docs):
            stream.write(json.dumps({"text": texts[i % len(texts)], "url": f"https://clough.test/{i}"}) + "\n")
    return corpus, docs


def image_table(work: Path, count: int, base: str) -> Path:
    table = work / f"pairs-{count}.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "caption"])
        for i in range(count):
            writer.writerow([f"{base}/img/{i}.jpg", f"a photograph of a temple or a flower, number {i}"])
    return table


def sizes(count: int, factor: int) -> tuple[int, ...]:
    return (count,) if factor == 1 else (count, count * factor)


def run_job(script: str, source: Path, out: Path, log: Path, memory: dict) -> Measured:
    shutil.rmtree(out, ignore_errors=True)
    measured = measure([sys.executable, "-c", script, str(source), str(out), json.dumps(memory)], log)
    if measured.returncode != 0:
        raise SystemExit(f"run failed (exit {measured.returncode}):\n{log.read_text()[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)  # outputs of 10x runs are large; the figures are kept
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-pages", type=int, default=20_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--factor", type=int, default=10, help="1: one run per job")
    parser.add_argument("--text-docs", action="store_true",
                        help="text corpora of --text-pages short real documents (JSONL) instead of pages (WARC)")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder, removed at the end")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--buffer-mib", type=int, help="memory.buffer_bytes in MiB (default: the config's)")
    parser.add_argument("--task-mib", type=int, help="memory.task_bytes in MiB (default: the config's)")
    parser.add_argument("--shard-rows", type=int, help="text: output.max_rows_per_shard (default: the config's)")
    args = parser.parse_args(argv)
    memory = {name: mib * 1024 * 1024 for name, mib in
              (("buffer_bytes", args.buffer_mib), ("task_bytes", args.task_mib)) if mib is not None}
    if args.shard_rows:
        memory["shard_rows"] = args.shard_rows
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="dataprep-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, int, Measured]] = []
    try:
        if not args.skip_text:
            for pages in sizes(args.text_pages, args.factor):
                corpus, count = (short_documents_corpus if args.text_docs else text_corpus)(work, pages)
                unit = "docs" if args.text_docs else "pages"
                rows.append((f"text {count} {unit}", count,
                             run_job(_TEXT, corpus, work / "text-out", work / f"text-{count}.log", memory)))
                corpus.unlink()
        if not args.skip_images:
            largest = args.images * args.factor
            server, base = serve(make_images(largest))
            try:
                for count in sizes(args.images, args.factor):
                    table = image_table(work, count, base)
                    rows.append((f"images {count}", count,
                                 run_job(_IMAGES, table, work / "images-out", work / f"images-{count}.log", memory)))
            finally:
                server.shutdown()
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'run':<24}{'records':>9}{'wall s':>9}{'cpu s':>9}{'rec/cpu-s':>11}{'peak tree PSS MB':>18}"
          f"{'max RSS MB':>12}")
    for name, count, m in rows:
        print(f"{name:<24}{count:>9}{m.wall_s:>9.1f}{m.cpu_s:>9.1f}{count / m.cpu_s:>11.1f}"
              f"{m.peak_tree_pss_mb:>18.0f}{m.max_proc_rss_mb:>12.0f}")
    for name, _count, m in rows:
        print(f"{name}: PSS at the peak, per process (MB): {', '.join(map(str, m.pss_at_peak_mb))}")
    for small, large in zip(rows[::2], rows[1::2], strict=True) if args.factor > 1 else ():
        (name, count, m1), (_, count10, m10) = small, large
        print(f"{name.split()[0]}: x{count10 / count:.1f} input -> peak tree PSS x{m10.peak_tree_pss_mb / m1.peak_tree_pss_mb:.2f}"
              f", max RSS x{m10.max_proc_rss_mb / m1.max_proc_rss_mb:.2f}, CPU x{m10.cpu_s / m1.cpu_s:.2f}"
              f", wall x{m10.wall_s / m1.wall_s:.2f}")
    if args.json:
        args.json.write_text(json.dumps([{"run": name, "records": count, **vars(m)} for name, count, m in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
