"""The text job with synthetic data switched on from the command line, end to end.

First with a loopback OpenAI-compatible server whose answers are known, so that every outcome
can be asserted: every rephrase repeats its parent (dedup must drop it as the parent's
duplicate) and every QA answer is built from the document's own sentences (it must pass the
gates and land in data/ as a synthetic record). Then with the shipped model in-process
(SmolLM2-135M through llama-cpp-python), whose answers are not known: there the accounting is
asserted, whatever the model says."""

import dataclasses
import json
import re

import pyarrow.dataset as ds
import pytest
from conftest import aeb_pages, assert_conserved
from synthetic_servers import FakeServer

from pipelines import cli
from transforms.synthetic.templates import REPHRASE

pytestmark = pytest.mark.slow


def _answer(body: dict) -> str:
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    if "encyclopedic prose" in system:
        return user.split("Text:\n", 1)[1]
    document = user.split("Document:\n", 1)[1]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", document) if len(s.split()) >= 8][:4]
    pairs = [{"question": f"What does the article report in its part {i + 1}?", "answer": s}
             for i, s in enumerate(sentences)]
    return json.dumps({"pairs": pairs})


def test_text_job_with_synthetic_from_the_command_line(tmp_path):
    rows = [{"url": url, "text": gold} for url, _html, gold in aeb_pages(30) if 800 < len(gold) < 4000][:12]
    source = tmp_path / "articles.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with FakeServer() as server:
        server.respond = _answer
        config = tmp_path / "text.yaml"
        config.write_text(json.dumps({"synthetic": {
            "backend": "openai", "server_url": server.base_url, "server_model": "fake", "retries": 0,
            "cache_uri": str(tmp_path / "cache"), "min_chars": 200}}))

        def argv(run_id):
            return ["run", "text", "--input", str(source), "--output", str(tmp_path / "out"), "--run-id", run_id,
                    "--config", str(config), "--synthetic", "rephrase,qa", "--synthetic-max-records", "10"]

        assert cli.main(argv("r1")) == 0
        asked = len(server.requests)
        assert 0 < asked <= 10
        assert cli.main(argv("r2")) == 0
        assert len(server.requests) == asked, "the rerun is served from the cache"
    run_dir = tmp_path / "out" / "r1"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stats = manifest["synthetic"]
    data = ds.dataset(run_dir / "data", format="parquet").to_table().to_pylist()
    rejected = ds.dataset(run_dir / "rejected", format="parquet").to_table().to_pylist()
    synthetic = [r for r in data if r["synthetic"]]
    assert synthetic and all(r["template"] == "qa@v1" and r["synthetic_tokens"] == 7 for r in synthetic)
    assert {r["parent_id"] for r in synthetic} <= {r["id"] for r in data if not r["synthetic"]}
    dup = [r for r in rejected if r["synthetic"] and r["template"] == "rephrase@v1"]
    assert dup and all(r["reject_reason"] == "dedup_exact.duplicate" and r["dup_of"] == r["parent_id"] for r in dup)
    assert stats["synthetic_records"] == len(synthetic)
    assert stats["share"] == round(len(synthetic) / len(data), 4)
    assert stats["templates"]["rephrase@v1"]["acceptance_rate"] == 0.0
    assert stats["templates"]["qa@v1"]["accepted"] == len(synthetic)
    c = manifest["conservation"]
    assert c["input"] == len(rows) + stats["selection"]["selected"] == c["kept"] + c["rejected"]
    again = json.loads((tmp_path / "out" / "r2" / "manifest.json").read_text())["synthetic"]
    assert all(t["cached"] == t["attempted"] and t["generated"] == 0 for t in again["templates"].values())
    assert c["created"] == stats["selection"]["selected"] and c["read"] == len(rows)
    funnel = {row["stage"]: row for row in manifest["funnel"]}
    born = funnel["synthetic"]
    assert born["created"] == c["created"] and born["in"] == funnel["pii"]["kept"]
    assert born["kept"] == born["in"] + born["created"] - born["rejected"] == funnel["dedup_exact"]["in"]
    assert_conserved(run_dir)
    validation = json.loads((run_dir / "validation" / "synthetic.json").read_text())
    assert validation["success"] and validation["counts"]["records_in"] == born["in"] + born["created"]
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert report["synthetic"]["share"] == stats["share"]
    assert 'id="synthetic"' in (run_dir / "report" / "index.html").read_text()


SHORT_REPHRASE = dataclasses.replace(REPHRASE, version="test-48", max_tokens=48, reject_truncated=False)


def test_text_job_with_the_shipped_model(tmp_path):
    rows = [{"url": url, "text": gold} for url, _html, gold in aeb_pages(30) if 800 < len(gold) < 2500][:4]
    source = tmp_path / "articles.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    config = tmp_path / "text.yaml"
    config.write_text(json.dumps({"synthetic": {
        "templates": [dataclasses.asdict(SHORT_REPHRASE)], "n_ctx": 1024, "min_chars": 200}}))
    out = tmp_path / "out"
    code = cli.main(["run", "text", "--input", str(source), "--output", str(out), "--run-id", "local",
                     "--config", str(config), "--synthetic", "rephrase", "--synthetic-max-records", "2"])
    assert code == 0
    run_dir = out / "local"
    manifest = assert_conserved(run_dir)
    template = manifest["synthetic"]["templates"]["rephrase@test-48"]
    assert template["attempted"] == manifest["conservation"]["created"] == 2
    assert template["generated"] == 2 and template["tokens"] > 0
    data = ds.dataset(run_dir / "data", format="parquet").to_table().to_pylist()
    rejected = ds.dataset(run_dir / "rejected", format="parquet").to_table().to_pylist()
    born = [r for r in data + rejected if r["synthetic"]]
    assert len(born) == 2, "every synthetic record ends in data/ or rejected/"
    parents = {r["id"] for r in data + rejected if not r["synthetic"]}
    for record in born:
        assert record["template"] == "rephrase@test-48" and "SmolLM2" in record["generator"]
        assert record["parent_id"] in parents and record["text"]
    accepted = [r for r in data if r["synthetic"]]
    assert template["accepted"] == len(accepted)
    assert all(r["reject_reason"] for r in born if r not in accepted)


def test_a_server_answering_garbage_ends_as_rejected_records(tmp_path):
    rows = [{"url": url, "text": gold} for url, _html, gold in aeb_pages(30) if 800 < len(gold) < 4000][:4]
    source = tmp_path / "articles.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with FakeServer() as server:
        server.mode = "garbage"  # an HTML error page where JSON should be
        config = tmp_path / "text.yaml"
        config.write_text(json.dumps({"synthetic": {
            "backend": "openai", "server_url": server.base_url, "server_model": "fake", "retries": 1,
            "backoff_s": 0.01, "min_chars": 200}}))
        code = cli.main(["run", "text", "--input", str(source), "--output", str(tmp_path / "out"),
                         "--run-id", "g1", "--config", str(config), "--synthetic", "rephrase"])
    assert code == 0, "a bad server is the synthetic records' failure, not the run's"
    run_dir = tmp_path / "out" / "g1"
    manifest = assert_conserved(run_dir)
    created = manifest["conservation"]["created"]
    assert created > 0 and len(server.requests) == 2 * created  # one retry each
    rejected = ds.dataset(run_dir / "rejected" / "stage=synthetic", format="parquet").to_table().to_pylist()
    assert len(rejected) == created
    assert {r["reject_reason"] for r in rejected} == {"synthetic.malformed_response"}
    assert all("not JSON" in r["reject_detail"] or "502" in r["reject_detail"] for r in rejected)
    data = ds.dataset(run_dir / "data", format="parquet").to_table().to_pylist()
    assert data and not any(r["synthetic"] for r in data)
