"""Token counts with the BPE that ships inside bpe-openai, summed per language and source."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import aeb_pages
from transforms.stage import ApplyStage, RunContext
from transforms.tokens import TokenCount, TokenCountConfig, TokenTotals, load_token_totals


@pytest.fixture(scope="module")
def counter() -> TokenCount:
    stage = TokenCount()
    stage.setup()
    return stage


def test_known_counts(counter):
    # tiktoken's README: "tiktoken is great!" is 6 cl100k_base tokens.
    assert counter.count(["tiktoken is great!", "Hello world", ""]) == [6, 2, 0]
    # Ordinary text: a special token's spelling is just characters.
    assert counter.count(["<|endoftext|>"])[0] > 1


def test_other_encoding():
    stage = TokenCount(TokenCountConfig(encoding="o200k_base"))
    stage.setup()
    assert stage.count(["Hello world"]) == [2]
    # Shipped by bpe-openai only through tiktoken, which downloads its files.
    with pytest.raises(ValueError, match="encoding"):
        TokenCountConfig(encoding="gpt2")


def test_totals_per_language_and_source(counter, tmp_path):
    articles = [body for _, _, body in aeb_pages(limit=8)]
    records = [
        {"id": f"d{i}", "text": t, "lang": "en" if i % 2 else "de", "source": f"s3://b/part-{i % 3}.jsonl"}
        for i, t in enumerate(articles)
    ] + [{"id": "empty", "text": None, "lang": None, "source": None}]
    counts = counter.count([r["text"] or "" for r in records])
    by = {}
    for record, n in zip(records, counts):
        for kind, key in (("language", record["lang"] or "und"), ("source", record["source"] or "")):
            entry = by.setdefault(kind, {}).setdefault(key, {"documents": 0, "tokens": 0})
            entry["documents"] += 1
            entry["tokens"] += n
    expected = {
        "encoding": "cl100k_base",
        "documents": len(records),
        "tokens": sum(counts),
        "language": dict(sorted(by["language"].items())),
        "source": dict(sorted(by["source"].items())),
    }
    run = RunContext(str(tmp_path / "run"), "r1")
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | ApplyStage(TokenCount(), batch_size=3)
        assert_that(out.rejected, equal_to([]), label="NoneDropped")
        assert_that(
            out.kept | beam.Map(lambda r: (r["id"], r["token_count"])),
            equal_to([(r["id"], n) for r, n in zip(records, counts)]),
            label="PerDocument",
        )
        totals = out.kept | TokenTotals("cl100k_base", run.run_dir)
        assert_that(totals, equal_to([expected]), label="Totals")
    assert load_token_totals(run.run_dir) == expected
    assert sum(counts) > 5000
