"""HF datatrove's FineWeb-style text pipeline on one core: the baseline of ``text_pipeline.py``.

Runs inside ``.venv-datatrove`` (``requirements-datatrove.txt``), never in the project's
venv, and imports nothing from the project. The blocks are those of datatrove's FineWeb
recipe (``examples/fineweb.py``) less the URL filter and dedup:

    WarcReader -> Trafilatura (or Resiliparse) -> LanguageFilter(en) -> GopherRepetitionFilter
    -> GopherQualityFilter -> C4QualityFilter -> FineWebQualityFilter -> JsonlWriter

each filter writing what it removes to its own exclusion JSONL, as the recipe does.

Offline, datatrove's language filter would download fastText's ``lid.176.bin`` (126 MB) into
its asset cache. We point it at ``lid.176.ftz`` instead: the quantized release of the same
model (same 176 labels), the file the project itself uses, placed in datatrove's cache under
the name datatrove derives from the model's URL, so no download is attempted.

    .venv-datatrove/bin/python benchmarks/datatrove_baseline.py --input corpus.warc.gz \\
        --output /tmp/dt --lid-model lid.176.ftz --summary /tmp/dt/summary.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

from datatrove.executor import LocalPipelineExecutor
from datatrove.io import strip_protocol
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.extractors.base import BaseExtractor
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.lid import FT176LID
from huggingface_hub import cached_assets_path

# Where fastText publishes the quantized model; only its name is used (no download).
LID_176_FTZ_URL = "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.ftz"


class Resiliparse(BaseExtractor):
    """resiliparse's main-content HTML-to-text (datatrove 0.10 ships no resiliparse block)."""

    name = "⛏ Resiliparse"
    _requires_dependencies: ClassVar[list] = ["resiliparse"]

    def __init__(self, timeout: float = 1):
        super().__init__(timeout)

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(text, main_content=True)


def use_local_lid_model(model_path: Path) -> Path:
    """Place ``model_path`` in datatrove's asset cache as lid.176.ftz and make FT176LID load it."""
    cache_dir = Path(cached_assets_path(library_name="datatrove", namespace="lid", subfolder="ft176"))
    cached = cache_dir / strip_protocol(LID_176_FTZ_URL).replace("/", "_")
    completed = Path(f"{cached}.completed")  # datatrove's marker: present means "downloaded"
    if not completed.exists():
        shutil.copyfile(model_path, cached)
        completed.touch()
    FT176LID.MODEL_URL = LID_176_FTZ_URL
    return cached


def build_pipeline(input_path: Path, output: Path, extractor: str) -> list:
    def removed(step: str) -> JsonlWriter:
        return JsonlWriter(str(output / "removed" / step))

    return [
        WarcReader(str(input_path.parent), glob_pattern=input_path.name, default_metadata={"dump": "bench"}),
        Trafilatura(favour_precision=True) if extractor == "trafilatura" else Resiliparse(),
        LanguageFilter(languages=["en"], exclusion_writer=removed("1_non_english")),
        GopherRepetitionFilter(exclusion_writer=removed("2_gopher_rep")),
        GopherQualityFilter(exclusion_writer=removed("3_gopher_qual")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=removed("4_c4")),
        FineWebQualityFilter(exclusion_writer=removed("5_fineweb_qual")),
        JsonlWriter(str(output / "data")),
    ]


def _count(block: dict, key: str) -> int:
    value = block["stats"].get(key, 0)  # a metric is {"total": n, ...} once anything was counted
    return int(value["total"] if isinstance(value, dict) else value)


def summarize(stats: list[dict], seconds: float, extractor: str) -> dict:
    """Docs read and kept, from datatrove's own per-block counters."""
    return {
        "datatrove_version": version("datatrove"),
        "extractor": f"{extractor} {version(extractor)}",
        "seconds": round(seconds, 3),
        "docs_in": _count(stats[0], "documents"),
        "docs_kept": _count(stats[-1], "total"),
        "blocks": [{"name": s["name"], "stats": s["stats"]} for s in stats],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="one WARC file (.warc or .warc.gz)")
    parser.add_argument("--output", required=True, type=Path, help="a new folder: data/, removed/, logs/")
    parser.add_argument("--lid-model", required=True, type=Path, help="fastText lid.176.ftz")
    parser.add_argument("--extractor", choices=("trafilatura", "resiliparse"), default="trafilatura")
    parser.add_argument("--summary", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"--output {args.output} is not empty (datatrove would skip completed tasks)")
    use_local_lid_model(args.lid_model)
    executor = LocalPipelineExecutor(
        build_pipeline(args.input, args.output, args.extractor),
        tasks=1, workers=1, logging_dir=str(args.output / "logs"),
    )
    started = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - started
    stats = json.loads((args.output / "logs" / "stats.json").read_text())
    summary = summarize(stats, seconds, args.extractor)
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "blocks"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
