"""Quality classifier: train on real article bodies against the same pages' boilerplate, then
check that held-out clean articles outscore boilerplate, through the filter and the Beam step."""

from __future__ import annotations

import argparse
import json
import math

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from resiliparse.extract.html2text import extract_plain_text

from pipelines import train_quality
from pipelines.train_quality import QualityTrainConfig, is_held_out, roc_auc
from tests.conftest import aeb_pages
from transforms.filters.quality_model import (
    QualityModel,
    QualityModelConfig,
    QualityModelFilter,
    model_input,
)

# Small enough to train in ~2 s on one core; the defaults are for real corpora.
FAST = {"bucket": 50_000, "dim": 32, "epoch": 10}


def _boilerplate(html: bytes, article: str) -> str:
    """The page's full text (resiliparse, main_content=False) minus the gold article's lines."""
    full = extract_plain_text(html.decode("utf-8", errors="replace"), main_content=False)
    article_lines = {line.strip() for line in article.splitlines() if line.strip()}
    return "\n".join(line for line in full.splitlines() if line.strip() and line.strip() not in article_lines)


@pytest.fixture(scope="module")
def corpus():
    pages = aeb_pages()
    return [article for _, _, article in pages], [_boilerplate(html, article) for _, html, article in pages]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """Trained through the CLI entry point: positives as JSONL, negatives as Parquet."""
    articles, boilerplate = corpus
    tmp = tmp_path_factory.mktemp("quality")
    positive = tmp / "articles.jsonl"
    positive.write_text("".join(json.dumps({"text": t}) + "\n" for t in articles), encoding="utf-8")
    negative = tmp / "boilerplate.parquet"
    pq.write_table(pa.table({"text": boilerplate}), negative)
    model = tmp / "quality.bin"
    parser = argparse.ArgumentParser()
    train_quality.add_arguments(parser)
    args = parser.parse_args(
        ["--positive", str(positive), "--negative", str(negative), "--output", str(model)]
        + [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    )
    assert train_quality.main(args) == 0
    metrics = json.loads((tmp / "quality.bin.metrics.json").read_text())
    return str(model), metrics


def _held_out(texts: list[str]) -> list[str]:
    return [t for t in texts if is_held_out(model_input(t), 0.2) and len(model_input(t)) >= 50]


def test_training_reports_held_out_metrics(trained):
    _, metrics = trained
    assert metrics["held_out_documents"] > 50 and metrics["positives"] > 20 and metrics["negatives"] > 20
    assert metrics["roc_auc"] > 0.95
    assert metrics["precision"] > 0.7 and metrics["recall"] > 0.9


def test_held_out_articles_outscore_boilerplate(trained, corpus):
    model, _ = trained
    stage = QualityModelFilter(QualityModelConfig(model_path=model))
    stage.setup()
    articles, boilerplate = (_held_out(texts) for texts in corpus)
    good = [s["quality_score"] for s in stage.score_batch([{"text": t} for t in articles])]
    bad = [s["quality_score"] for s in stage.score_batch([{"text": t} for t in boilerplate])]
    assert sorted(good)[len(good) // 2] > sorted(bad)[len(bad) // 2]
    assert roc_auc([1] * len(good) + [0] * len(bad), good + bad) > 0.95


def test_threshold_drops_with_reason(trained, corpus):
    model, _ = trained
    stage = QualityModelFilter(QualityModelConfig(model_path=model, threshold=0.5))
    stage.setup()
    article, boilerplate = corpus[0][0], corpus[1][0]
    drops = stage.process_batch([{"text": article}, {"text": boilerplate}, {"text": ""}])
    assert drops[0] is None
    assert drops[1].reason == "below_threshold"
    assert drops[2].reason == "below_threshold"


def test_top_fraction_keeps_the_best_scores(trained, corpus):
    model, _ = trained
    articles, boilerplate = corpus
    records = [{"id": f"a{i}", "text": t} for i, t in enumerate(articles[:20])] + [
        {"id": f"b{i}", "text": t} for i, t in enumerate(boilerplate[:20])
    ]
    config = QualityModelConfig(model_path=model, top_fraction=0.5)
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | QualityModel(config)
        kept_articles = out.kept | "KeptA" >> beam.Filter(lambda r: r["id"].startswith("a"))
        reasons = out.rejected | beam.Map(lambda r: r["reject_reason"]) | beam.Distinct()
        count = out.kept | beam.combiners.Count.Globally()
        assert_that(reasons, equal_to(["quality_model.below_top_fraction"]), label="Reasons")
        assert_that(count, lambda c: _near(c[0], 20, 3), label="Count")
        assert_that(
            kept_articles | "CountA" >> beam.combiners.Count.Globally(),
            lambda c: _near(c[0], 20, 3),
            label="Articles",
        )


def _near(value: int, target: int, slack: int) -> None:
    assert abs(value - target) <= slack, (value, target)


def test_no_model_passes_everything_through():
    records = [{"id": "x", "text": "anything"}]
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | QualityModel(QualityModelConfig())
        assert_that(out.kept, equal_to([{"id": "x", "text": "anything", "quality_score": None}]))
        assert_that(out.rejected, equal_to([]), label="NoRejects")


def test_train_from_and_to_s3_then_apply(s3_server, corpus, tmp_path):
    articles, boilerplate = corpus
    bucket = s3_server.create_bucket()
    local = tmp_path / "pos.jsonl"
    local.write_text("".join(json.dumps({"body": t}) + "\n" for t in articles[:60]), encoding="utf-8")
    positive = s3_server.upload(local, bucket, "train/pos.jsonl")
    pq.write_table(pa.table({"body": boilerplate[:60]}), tmp_path / "neg.parquet")
    negative = s3_server.upload(tmp_path / "neg.parquet", bucket, "train/neg.parquet")
    uri = f"s3://{bucket}/models/quality.bin"
    parser = argparse.ArgumentParser()
    train_quality.add_arguments(parser)
    args = parser.parse_args(
        ["--positive", positive, "--negative", negative, "--output", uri, "--text-field", "body"]
        + ["--holdout-fraction=0"]
        + [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    )
    try:
        assert train_quality.main(args, s3_server.pipeline_args()) == 0
        stage = QualityModelFilter(QualityModelConfig(model_path=uri))
        stage.setup()
    finally:
        FileSystems.set_options(None)
    metrics = json.loads(
        s3_server.client().get_object(Bucket=bucket, Key="models/quality.bin.metrics.json")["Body"].read()
    )
    assert metrics["held_out_documents"] == 0 and metrics["train_documents"] > 100
    assert 0.0 <= stage.score({"text": articles[0]})["quality_score"] <= 1.0


def test_model_input_normalisation():
    assert model_input("Ｈｅｌｌｏ,\nWorld!") == "hello , world !"
    assert model_input("abcdef", max_chars=3) == "abc"


def test_roc_auc():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([1, 0, 1, 0], [0.1, 0.4, 0.5, 0.8]) == 0.25
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_config_is_validated():
    with pytest.raises(ValueError, match="not both"):
        QualityModelConfig(model_path="m", threshold=0.5, top_fraction=0.1)
    with pytest.raises(ValueError, match="top_fraction"):
        QualityModelConfig(top_fraction=0.0)
    with pytest.raises(ValueError, match="holdout_fraction"):
        QualityTrainConfig(holdout_fraction=1.0)


def test_top_fraction_on_an_empty_run(trained):
    model, _ = trained
    with TestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create([{"id": "x", "text": "x"}])
            | beam.Filter(lambda r: False)
            | QualityModel(QualityModelConfig(model_path=model, top_fraction=0.5))
        )
        assert_that(out.kept, equal_to([]))
