"""What a run costs whatever its data: the steps of each job's Beam graph and small text runs,
for this checkout and a baseline checkout side by side in one invocation.

    .venv/bin/python -m benchmarks.run_overhead [--runs 2] [--baseline DIR]

``--baseline`` is another checkout of the project (e.g. ``git worktree add /tmp/base <commit>``),
run with this checkout's virtualenv. For each checkout, in one fresh subprocess on the
in-process runner: the text and images jobs' graphs are built and counted (transforms,
``ParDo`` steps, build seconds), then the text job runs ``--runs`` times over one WARC of the 181
article-benchmark pages (``../shared/data/scrapinghub-aeb``). The first run pays the imports and
model loads; the later ones are what every further run in a process pays again (a test, a
small scheduled run): the cost of the graph itself, which grows with its steps, not the data.
Printed: each figure per checkout and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.text_pipeline import SHARED_DATA, build_corpus

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import collections, json, resource, sys, tempfile, time
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from pipelines import images, job_runner, text
from transforms.stage import RunContext

corpus, table, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
work = tempfile.mkdtemp()


def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def graph(name, module, inputs):
    config = module.Config()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    start = time.perf_counter()
    job_runner.build(module.JOB, pipeline, inputs, RunContext(f"{work}/{name}", name, None, config.memory), config)
    counts = collections.Counter(build_s=time.perf_counter() - start)

    class Count(PipelineVisitor):
        def visit_transform(self, node):
            counts["transforms"] += 1
            counts["pardos"] += isinstance(node.transform, beam.ParDo)

    pipeline.visit(Count())
    return {f"{name} {key}": value for key, value in counts.items()}


figures = {**graph("text", text, [corpus]), **graph("images", images, [table])}
for index in range(runs):
    start, used = time.perf_counter(), cpu()
    manifest = text.run([corpus], f"{work}/out", f"run{index}", text.Config(), ["--runner=FnApiRunner"],
                        compare_previous=False)
    figures[f"text run {index + 1} wall s"] = time.perf_counter() - start
    figures[f"text run {index + 1} CPU s"] = cpu() - used
    figures["docs in"] = manifest["conservation"]["input"]
print("FIGURES " + json.dumps(figures))
"""


def probe(checkout: Path, corpus: Path, table: Path, runs: int) -> dict[str, float]:
    """The figures of one checkout, from a fresh process running its code."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(corpus), str(table), str(runs)],
        cwd=checkout, env=env, capture_output=True, text=True, check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIGURES ")]
    if done.returncode or not lines:
        raise SystemExit(f"the probe failed in {checkout}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("FIGURES "))


def table_rows(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    rows = [["figure", *names, *(["ratio"] if len(names) == 2 else [])]]
    for key in results[names[0]]:
        values = [results[name].get(key) for name in names]
        cells = [f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" for value in values]
        if len(values) == 2 and values[1]:
            cells.append(f"{values[0] / values[1]:.2f}x")
        rows.append([key, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="text runs per process (default 2)")
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to compare")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "articles.warc.gz"
        build_corpus(corpus, 1, [], SHARED_DATA / "scrapinghub-aeb")
        table = Path(work) / "images.csv"
        table.write_text("url,caption\nhttp://127.0.0.1:9/a.jpg,a cat on a mat\n")
        results = {"this checkout": probe(REPO, corpus, table, args.runs)}
        if args.baseline is not None:
            results["baseline"] = probe(args.baseline.resolve(), corpus, table, args.runs)
    print(table_rows(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
