"""One large input file, one worker against two: split reads (issue #14, point 3).

    .venv/bin/python -m benchmarks.split_reads [--warc-copies 140] [--jsonl-copies 40]
        [--split-mib 64] [--unsplit] [--work-dir DIR] [--keep]

Builds one gzipped WARC of real pages (``text_pipeline.build_corpus``: the shared Common Crawl
excerpt and the 181 article-benchmark pages, one gzip member per record, ``--warc-copies``
times with distinct URIs; 140 copies are ~1 GiB at gzip level 1) and one plain JSONL of real texts (the gold
article bodies of the article benchmark and of the Web Content Extraction Benchmark,
``--jsonl-copies`` times with distinct URLs). Runs ``dataprep run text`` over each file twice in
the same invocation: ``--direct_num_workers=1`` (in-process), then ``--direct_num_workers=2
--direct_running_mode=multi_processing``, and prints docs/s of each, the ratio, and whether the
two runs' ``data/`` and ``rejected/`` files (sha256) and manifest funnels are identical.
``--unsplit`` adds a two-worker run with ``read.split_bytes: 0`` (each file read whole by one
worker, the behaviour before split reads) as a third column. Throughput is documents in per
wall second, start-up included; on a shared machine the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.text_pipeline import SHARED_DATA, Measured, build_corpus, measure

REPO = Path(__file__).resolve().parents[1]
ONE_WORKER = ["--direct_num_workers=1"]
TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@dataclass
class Run:
    name: str
    docs_in: int
    measured: Measured
    outputs: dict[str, str]  # data/ and rejected/ file -> sha256
    funnel: list

    @property
    def docs_per_s(self) -> float:
        return self.docs_in / self.measured.wall_s


def build_jsonl(out: Path, copies: int) -> int:
    """Real article texts (gold bodies), ``copies`` times with distinct URLs; the line count."""
    texts = [(page["url"], page["articleBody"])
             for page in json.loads((SHARED_DATA / "scrapinghub-aeb" / "ground-truth.json").read_text()).values()]
    for dataset in sorted((SHARED_DATA / "wceb").glob("*.jsonl.gz")):
        with gzip.open(dataset, "rt") as lines:
            texts += [(page.get("url") or f"https://{dataset.stem}.test/{page['id']}", page["ground_truth"])
                      for page in map(json.loads, lines) if page.get("ground_truth")]
    count = 0
    with open(out, "w") as stream:
        for copy in range(copies):
            for url, text in texts:
                stream.write(json.dumps({"text": text, "url": f"{url}#copy={copy}"}) + "\n")
                count += 1
    return count


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_job(name: str, corpus: Path, work: Path, config: Path, beam_args: list[str]) -> Run:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "pipelines.cli", "run", "text", "--input", str(corpus), "--output",
               str(out), "--run-id", "run", "--config", str(config), "--no-drift", "--", *beam_args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    measured = measure(command, work / f"{name}.log", env)
    run_dir = out / "run"
    if measured.returncode != 0 or not (run_dir / "_SUCCESS").exists():
        tail = (work / f"{name}.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name}: failed ({measured.returncode}); log {work / f'{name}.log'}\n{tail}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    outputs = {str(p.relative_to(run_dir)): _sha256(p)
               for folder in ("data", "rejected") for p in sorted((run_dir / folder).rglob("*")) if p.is_file()}
    return Run(name, manifest["conservation"]["input"], measured, outputs, manifest["funnel"])


def compare(corpus: Path, work: Path, config: Path, unsplit: Path | None) -> list[Run]:
    stem = corpus.name.replace(".", "-")
    print(f"\n{corpus.name}: {corpus.stat().st_size / 2**20:.0f} MiB; load average {os.getloadavg()}", flush=True)
    runs = [run_job(f"{stem}-1-worker", corpus, work, config, ONE_WORKER),
            run_job(f"{stem}-2-workers", corpus, work, config, TWO_WORKERS)]
    if unsplit is not None:
        runs.append(run_job(f"{stem}-2-workers-unsplit", corpus, work, unsplit, TWO_WORKERS))
    for run in runs:
        m = run.measured
        print(f"  {run.name:<28} {run.docs_in:>8} docs  {m.wall_s:8.1f} s wall  {run.docs_per_s:7.1f} docs/s  "
              f"{m.cpu_s:8.1f} CPU s  peak tree PSS {m.peak_tree_pss_mb:6.0f} MB", flush=True)
    one, two = runs[0], runs[1]
    print(f"  2 workers / 1 worker: {two.docs_per_s / one.docs_per_s:.2f}x docs/s", flush=True)
    for other in runs[1:]:
        same = other.outputs == one.outputs and other.funnel == one.funnel
        print(f"  {other.name} output identical to 1 worker (data/, rejected/ sha256; funnel): {same} "
              f"({len(one.outputs)} files)", flush=True)
        if not same:
            differing = sorted(set(one.outputs.items()) ^ set(other.outputs.items()))[:6]
            print(f"    differing files: {differing}; funnels equal: {other.funnel == one.funnel}")
    print(f"  load average after: {os.getloadavg()}", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.split_reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc-copies", type=int, default=140, help="copies of the pages in the WARC (140: ~1 GiB)")
    parser.add_argument("--jsonl-copies", type=int, default=40, help="copies of the texts in the JSONL")
    parser.add_argument("--split-mib", type=float, help="read.split_bytes in MiB (default: the job's default)")
    parser.add_argument("--unsplit", action="store_true", help="also run 2 workers with read.split_bytes: 0")
    parser.add_argument("--skip-warc", action="store_true")
    parser.add_argument("--skip-jsonl", action="store_true")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder, removed unless --keep")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="split-reads-"))
    work.mkdir(parents=True, exist_ok=True)
    read = {} if args.split_mib is None else {"split_bytes": int(args.split_mib * 2**20)}
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"read": read}))
    unsplit = None
    if args.unsplit:
        unsplit = work / "config-unsplit.yaml"
        unsplit.write_text(yaml.safe_dump({"read": {**read, "split_bytes": 0}}))
    all_same = True
    try:
        if not args.skip_warc:
            warc = work / "big.warc.gz"
            if not warc.exists():
                count = build_corpus(warc, args.warc_copies, [SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"],
                                     SHARED_DATA / "scrapinghub-aeb")
                print(f"WARC: {count} response records", flush=True)
            runs = compare(warc, work, config, unsplit)
            all_same &= all(r.outputs == runs[0].outputs and r.funnel == runs[0].funnel for r in runs)
        if not args.skip_jsonl:
            jsonl = work / "big.jsonl"
            if not jsonl.exists():
                print(f"JSONL: {build_jsonl(jsonl, args.jsonl_copies)} lines", flush=True)
            runs = compare(jsonl, work, config, unsplit)
            all_same &= all(r.outputs == runs[0].outputs and r.funnel == runs[0].funnel for r in runs)
    finally:
        if args.keep or args.work_dir:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
