"""``dataprep train-quality``: train the fastText quality classifier that ``quality_model`` applies.

Positive documents (the kind to keep: reference text, curated articles) and negative ones (the
web as crawled, boilerplate) are read from JSONL or Parquet, local or ``s3://``, with the same
readers as the text job. Each document becomes one fastText line ``__label__hq <text>`` or
``__label__lq <text>`` after ``quality_model.model_input`` (the normalisation the stage applies
when scoring). A deterministic held-out split (by a hash of the normalised text, so the same
inputs always split the same way and duplicate texts never straddle it) measures precision and
recall of the positive label at ``threshold`` and ROC AUC; the numbers are printed as JSON and
written beside the model as ``<model>.metrics.json``.

Hyperparameters follow DCLM's quality classifier (word bigrams, 100 dimensions); ``thread=1``
and a fixed seed make training reproducible on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from run_folder.storage import write_atomic
from transforms.filters.quality_model import LABEL_PREFIX, NEGATIVE, POSITIVE, model_input
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import match_inputs, read_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QualityTrainConfig:
    # fastText supervised hyperparameters (DCLM: wordNgrams 2, dim 100; lr, epoch as fastText's
    # text-classification tutorial recommends for small sets).
    lr: float = 0.1
    epoch: int = 20
    dim: int = 100
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 2_000_000
    loss: str = "softmax"
    thread: int = 1
    seed: int = 0
    # Share of documents held out for the reported metrics; 0 trains on everything.
    holdout_fraction: float = 0.2
    # Positive-label probability at which precision and recall are reported.
    threshold: float = 0.5
    max_chars: int = 10_000
    # Drop inputs shorter than this after normalisation (empty or near-empty pages).
    min_chars: int = 50
    # Extra attempts, each at half the learning rate, when fastText diverges (``_train_supervised``).
    nan_retries: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        for name in ("epoch", "dim", "word_ngrams", "min_count", "thread", "max_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def read_texts(patterns: Sequence[str], read_config: ReadConfig = ReadConfig()) -> Iterator[str]:
    """Texts of every readable record in the files ``patterns`` match (rejections are skipped)."""
    for path in match_inputs(patterns):
        for record, drop in read_file(path, read_config):
            if drop is None and record.get("text"):
                yield record["text"]


def is_held_out(line: str, fraction: float) -> bool:
    digest = hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic, ties counted half."""
    labels_a = np.asarray(labels, dtype=bool)
    scores_a = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(labels_a.sum()), int((~labels_a).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores_a, kind="mergesort")
    ranks = np.empty(len(scores_a))
    sorted_scores = scores_a[order]
    start = 0
    for end in range(1, len(sorted_scores) + 1):
        if end == len(sorted_scores) or sorted_scores[end] != sorted_scores[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # average 1-based rank of the tie
            start = end
    return float((ranks[labels_a].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(labels: Sequence[int], scores: Sequence[float], threshold: float) -> dict[str, float]:
    predicted = [s >= threshold for s in scores]
    tp = sum(1 for y, p in zip(labels, predicted) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted) if not y and p)
    fn = sum(1 for y, p in zip(labels, predicted) if y and not p)
    return {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "roc_auc": roc_auc(labels, scores),
        "threshold": threshold,
        "positives": int(sum(labels)),
        "negatives": int(len(labels) - sum(labels)),
    }


def _examples(texts: Iterable[str], label: str, config: QualityTrainConfig) -> list[tuple[int, str]]:
    flag = int(label == POSITIVE)
    lines = (model_input(text, config.max_chars) for text in texts)
    return [(flag, line) for line in lines if len(line) >= config.min_chars]


# Trains in a fresh interpreter that imports only fastText (see ``train``). fastText stops with
# "Encountered NaN" when training diverges; its maintainers' advice is a lower learning rate
# (facebookresearch/fastText#638), so a NaN run is retried with the rate halved.
_FIT = """
import json, sys
import fasttext
job = json.loads(sys.argv[1])
lr = job["lr"]
for attempt in range(job["retries"] + 1):
    try:
        fasttext.train_supervised(input=job["input"], lr=lr, **job["kwargs"]).save_model(job["output"])
        break
    except RuntimeError as exc:
        if "NaN" not in str(exc) or attempt == job["retries"]:
            raise
        print(f"fastText hit NaN at lr={lr:g}; halving it", file=sys.stderr)
        lr /= 2
print(json.dumps({"lr": lr}))
"""


def _fit(train_path: str, model_path: str, retries: int, lr: float, kwargs: dict[str, Any]) -> float:
    """Train and save in a child interpreter; return the learning rate that trained."""
    job = {"input": train_path, "output": model_path, "retries": retries, "lr": lr, "kwargs": kwargs}
    done = subprocess.run(
        [sys.executable, "-c", _FIT, json.dumps(job)], capture_output=True, text=True, check=False
    )
    if done.stderr.strip():
        log.warning("fastText training: %s", done.stderr.strip()[-2000:])
    if done.returncode != 0:
        raise RuntimeError(f"fastText training failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["lr"]


def train(
    positive: Iterable[str],
    negative: Iterable[str],
    output: str,
    config: QualityTrainConfig = QualityTrainConfig(),
) -> dict:
    """Train on positive and negative texts, write the model to ``output`` (path or URI),
    and return the held-out metrics with the counts and the config."""
    import fasttext

    examples = _examples(positive, POSITIVE, config) + _examples(negative, NEGATIVE, config)
    train_set = [e for e in examples if not is_held_out(e[1], config.holdout_fraction)]
    held_out = [e for e in examples if is_held_out(e[1], config.holdout_fraction)]
    if not any(flag for flag, _ in train_set) or all(flag for flag, _ in train_set):
        raise ValueError("training needs both positive and negative documents")
    random.Random(config.seed).shuffle(train_set)
    with tempfile.TemporaryDirectory() as tmp:
        train_path = os.path.join(tmp, "train.txt")
        with open(train_path, "w", encoding="utf-8", errors="surrogatepass") as out:
            out.writelines(
                f"{LABEL_PREFIX}{POSITIVE if flag else NEGATIVE} {line}\n" for flag, line in train_set
            )
        model_path = os.path.join(tmp, "model.bin")
        kwargs = {
            "epoch": config.epoch,
            "dim": config.dim,
            "wordNgrams": config.word_ngrams,
            "minCount": config.min_count,
            "bucket": config.bucket,
            "loss": config.loss,
            "thread": config.thread,
            "seed": config.seed,
            "verbose": 0,
        }
        # fastText 0.9.2 (fasttext-numpy2-wheel) trains cleanly the first time in a process but
        # often diverges to NaN on later calls in the same process, with the same file and
        # arguments (measured: 6 of 6 fresh processes trained, then 4 of 5 repeat calls failed);
        # so every training gets a fresh process.
        lr_used = _fit(train_path, model_path, config.nan_retries, config.lr, kwargs)
        model = fasttext.load_model(model_path)
        with open(model_path, "rb") as f:
            write_atomic(output, f.read())
    metrics: dict = {
        "train_documents": len(train_set),
        "held_out_documents": len(held_out),
        "lr_used": lr_used,
    }
    if held_out:
        labels, probs = model.predict([line for _, line in held_out], k=2)
        positive_label = LABEL_PREFIX + POSITIVE
        scores = [float(dict(zip(lab, pr)).get(positive_label, 0.0)) for lab, pr in zip(labels, probs)]
        metrics.update(evaluate([flag for flag, _ in held_out], scores, config.threshold))
    metrics["config"] = asdict(config)
    write_atomic(output + ".metrics.json", json.dumps(metrics, indent=1).encode())
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--positive", nargs="+", required=True, help="JSONL/Parquet files or globs to keep")
    parser.add_argument("--negative", nargs="+", required=True, help="JSONL/Parquet files or globs to drop")
    parser.add_argument("--output", required=True, help="model path or URI (.bin)")
    parser.add_argument("--text-field", default="text", help="JSONL key / Parquet column of the text")
    defaults = QualityTrainConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=type(value), default=value, help=f"default {value}"
        )


def main(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    """``beam_args`` (what follows ``--`` on the command line) configure Beam's filesystems,
    e.g. ``--s3_endpoint_url``, for inputs and output on ``s3://``."""
    if beam_args:
        FileSystems.set_options(PipelineOptions(list(beam_args)))
    config = QualityTrainConfig(**{name: getattr(args, name) for name in asdict(QualityTrainConfig())})
    read_config = ReadConfig(text_field=args.text_field, url_field=None)
    metrics = train(
        read_texts(args.positive, read_config), read_texts(args.negative, read_config), args.output, config
    )
    print(json.dumps(metrics, indent=1))
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="train-quality", description=__doc__)
    add_arguments(cli)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    raise SystemExit(main(cli.parse_args(argv[:cut]), argv[cut + 1 :]))
