"""URL filter speed and memory: FineWeb's full lists against the old starter lists, same code.

URLs: every page URL of the Scrapinghub and WCEB benchmarks in ``shared/data`` (real sites,
990 distinct), repeated to ``--urls``, scored in batches of 256 as the pipeline does. Each
variant runs in a fresh process, so start-up and memory are a worker's:

- ``starter lists``: the lists the filter shipped before (no domain, 8 banned words, no URL,
  subword or soft-word list): the baseline;
- ``full lists, first on the machine``: the defaults (UT1 adult 4,558,940 domains as 64-bit
  hashes + 19,587 URLs, FineWeb's banned words, subwords (Aho-Corasick) and soft words), the
  domain table hashed and written to a fresh cache folder;
- ``full lists``: the same, every later worker: the cached table is memory-mapped;
- ``python set``: the UT1 domains loaded into a ``frozenset`` of strings instead, only to show
  what the hashed table saves (no filtering).

Reports setup seconds (first ``setup()`` in the process; a second one is served from the
per-process cache), the resident memory it added (steady and peak; the mapped table counts
once it is read, but is one copy in the page cache for all workers), and URLs/s.

    python -m benchmarks.url_filter [--urls 100000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STARTER_WORDS = "porn xxx sex nude nsfw hentai escort camgirl".split()


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def real_urls(data: Path) -> list[str]:
    urls = {v["url"] for v in json.loads((data / "scrapinghub-aeb" / "ground-truth.json").read_text()).values()}
    for path in sorted((data / "wceb").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            urls.update(u for line in handle if (u := json.loads(line).get("url")))
    return sorted(u for u in urls if u)


def _run(variant: str, urls: list[str], lists_dir: str, out: multiprocessing.Queue) -> None:
    os.environ["DATAPREP_CACHE"] = str(Path(lists_dir, "cache"))
    from transforms.filters.url_filter import UrlFilter, UrlFilterConfig

    before, peak_before = _rss_mb(), _peak_mb()
    started = time.perf_counter()
    if variant == "python set":
        from transforms.filters.url_lists import entry_blocks, open_list

        with open_list(None, "ut1:domains") as raw:
            domains = frozenset(d for block in entry_blocks(raw) for d in block)
        out.put({"variant": variant, "setup_s": round(time.perf_counter() - started, 2),
                 "entries": len(domains), "rss_added_mb": round(_rss_mb() - before),
                 "peak_added_mb": round(_peak_mb() - peak_before)})
        return
    if variant == "starter lists":
        empty, words = Path(lists_dir, "empty.txt"), Path(lists_dir, "words.txt")
        config = UrlFilterConfig(
            blocklist_path=str(empty), blocked_urls_path=str(empty), banned_words_path=str(words),
            banned_subwords_path=str(empty), soft_banned_words_path=str(empty),
        )
    else:
        config = UrlFilterConfig()
    stage = UrlFilter(config)
    stage.setup()
    setup_s = time.perf_counter() - started
    rss_added, peak_added = _rss_mb() - before, _peak_mb() - peak_before
    again = time.perf_counter()
    UrlFilter(config).setup()
    second_setup_s = time.perf_counter() - again
    started = time.perf_counter()
    rejected = 0
    for i in range(0, len(urls), 256):
        rejected += sum(d is not None for d in stage.process_batch([{"url": u} for u in urls[i : i + 256]]))
    seconds = time.perf_counter() - started
    out.put({"variant": variant, "setup_s": round(setup_s, 2), "second_setup_s": round(second_setup_s, 4),
             "entries": len(stage._lists.domains), "rss_added_mb": round(rss_added),
             "peak_added_mb": round(peak_added), "urls": len(urls), "rejected": rejected,
             "seconds": round(seconds, 2), "urls_per_s": round(len(urls) / seconds)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    distinct = real_urls(args.data)
    urls = (distinct * (args.urls // len(distinct) + 1))[: args.urls]
    context = multiprocessing.get_context("spawn")
    results = []
    with tempfile.TemporaryDirectory() as lists_dir:
        Path(lists_dir, "empty.txt").write_text("")
        Path(lists_dir, "words.txt").write_text("\n".join(STARTER_WORDS) + "\n")
        for variant in ("starter lists", "full lists, first on the machine", "full lists", "python set"):
            out = context.Queue()
            process = context.Process(target=_run, args=(variant, urls, lists_dir, out))
            process.start()
            results.append(out.get())
            process.join()
    print(json.dumps({"machine": platform.node(), "distinct_urls": len(distinct), "results": results}, indent=1))


if __name__ == "__main__":
    main()
