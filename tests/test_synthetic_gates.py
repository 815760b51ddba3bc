"""Synthetic records pass the same gates as crawled ones: the text job's own stages, then exact
dedup over crawled and synthetic records together (the wiring proposed for
``pipelines/text.py``), and the report's synthetic section. The model is a loopback fake here
so that what each gate sees is known; tests/test_synthetic_llm.py uses the real model."""

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import aeb_pages
from synthetic_servers import FakeServer

from pipelines.text import TextConfig, enabled_stages
from transforms.dedup_exact import ExactDedup
from transforms.stage import ApplyStage, RunContext, Stage, run_stage
from transforms.synthetic import SyntheticBranch, SyntheticConfig, SyntheticReport, load_synthetic_stats
from transforms.synthetic.branch import NOT_GATES

pytestmark = pytest.mark.slow


def _answer(body: dict) -> str:
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    if "encyclopedic prose" in system:  # rephrase: echo the document, a duplicate of its parent
        return user.split("Text:\n", 1)[1]
    # qa: a well-formed but thin answer, which the quality gates stop.
    return json.dumps({"pairs": [{"question": "What does the article describe?", "answer": "Some events."}]})


def _gates(config: TextConfig) -> list[Stage]:
    return [cls(getattr(config, cls.name)) for cls in enabled_stages(config)
            if issubclass(cls, Stage) and cls.name not in NOT_GATES]


def _passes(stages, record) -> bool:
    for stage in stages:
        stage.setup()
        ((_, drop),) = run_stage(stage, [dict(record)])
        if drop is not None:
            return False
    return True


def test_synthetic_records_meet_the_gates_and_dedup(tmp_path):
    stages = _gates(TextConfig())
    pages = [{"id": f"{i:032x}", "url": url, "domain": "example.org", "source": "gold.jsonl",
              "text": gold, "fetched_at": None, "synthetic": False}
             for i, (url, _html, gold) in enumerate(aeb_pages(40)) if 600 < len(gold) < 3000]
    loaded = _gates(TextConfig())
    seeds = [page for page in pages if _passes(loaded, page)][:3]
    assert len(seeds) == 3
    run_dir = str(tmp_path / "run")
    with FakeServer() as server:
        server.respond = _answer
        config = SyntheticConfig(enabled=True, tasks=("rephrase", "qa"), backend="openai",
                                 server_url=server.base_url, retries=0, timeout_s=5,
                                 cache_uri=str(tmp_path / "cache"))
        with TestPipeline(runner="FnApiRunner") as p:
            crawled = p | beam.Create(seeds)
            for stage in stages:  # the crawled records' own gates, as in the text job
                crawled = (crawled | f"Crawled_{stage.name}" >> ApplyStage(stage)).kept
            synthetic = crawled | "Synthetic" >> SyntheticBranch(config, RunContext(run_dir, "r1"), stages)
            merged = (crawled, synthetic["kept"]) | "WithSynthetic" >> beam.Flatten()
            dedup = merged | ExactDedup()
            all_rejected = (synthetic["rejected"], dedup.rejected) | "AllRejected" >> beam.Flatten()
            _ = {"generated": synthetic["generated"], "failed": synthetic["failed"], "final": dedup.kept,
                 "rejected": all_rejected, "selection": synthetic["selection"]} | SyntheticReport(run_dir)
            assert_that(dedup.kept | beam.Map(lambda r: r["id"]), equal_to([s["id"] for s in seeds]),
                        label="parents kept")
            assert_that(
                dedup.rejected | beam.Map(lambda r: (r["parent_id"], r["template"], r["dup_of"], r["reject_reason"])),
                equal_to([(s["id"], "rephrase@v1", s["id"], "dedup_exact.duplicate") for s in seeds]),
                label="rephrase of its parent is its duplicate",
            )
            assert_that(
                synthetic["rejected"] | beam.Map(
                    lambda r: (r["template"], r["reject_stage"], r["reject_reason"].startswith("synthetic."))),
                equal_to([("qa@v1", "synthetic", False)] * 3),
                label="qa stopped by a quality gate",
            )
    stats = load_synthetic_stats(run_dir)
    assert stats["synthetic_records"] == 0 and stats["final_records"] == 3 and stats["share"] == 0.0
    rephrase, qa = stats["templates"]["rephrase@v1"], stats["templates"]["qa@v1"]
    assert rephrase["attempted"] == 3 and rephrase["acceptance_rate"] == 0.0
    assert rephrase["rejected"] == {"dedup_exact.duplicate": 3}
    assert qa["attempted"] == 3 and sum(qa["rejected"].values()) == 3
    assert stats["selection"]["selected"] == 6
