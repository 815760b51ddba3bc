"""Synthetic data without a model: templates, selection, cache keys, config and CLI flags, and
the OpenAI-compatible client against a misbehaving server on loopback (timeouts, garbage,
unreachable, 5xx then success), ending as rejected records with a reason, never a crash."""

import argparse
import dataclasses
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from synthetic_servers import FakeServer, free_port

from transforms.synthetic import SyntheticConfig, add_synthetic_options, generate_once, with_synthetic_options
from transforms.synthetic.backends import BackendUnavailable, GenerationRequest, OpenAIBackend
from transforms.synthetic.cache import GenerationCache, cache_key
from transforms.synthetic.generate import GenerateSynthetic
from transforms.synthetic.select import SelectSeeds, is_candidate, seed_score
from transforms.synthetic.templates import QA, REPHRASE, ParseError, PromptTemplate, parse_answer

TEXT = ("The river Thames flows through London and is 346 kilometres long. It rises in the "
        "Cotswold Hills and reaches the North Sea at the Thames Estuary. ") * 3


def _seed(i: int, text: str = TEXT) -> dict:
    return {"id": f"{i:032x}", "url": f"https://example.org/{i}", "domain": "example.org",
            "source": "in.jsonl", "text": text, "lang": "en"}


def test_qa_answers_parse_into_pairs_and_garbage_is_malformed():
    answer = json.dumps({"pairs": [{"question": "How long is the Thames?", "answer": "346 km."}]})
    assert parse_answer(QA, answer) == "Q: How long is the Thames?\nA: 346 km."
    with pytest.raises(ParseError) as err:
        parse_answer(QA, '{"pairs": [{"question": "unterminated')
    assert err.value.reason == "malformed_response"
    with pytest.raises(ParseError) as err:
        parse_answer(QA, '{"pairs": []}')
    assert err.value.reason == "malformed_response"


def test_rephrase_rejects_truncated_and_empty_answers():
    assert parse_answer(REPHRASE, "  The Thames is a river in England.  ") == "The Thames is a river in England."
    with pytest.raises(ParseError, match="max_tokens") as err:
        parse_answer(REPHRASE, "The Thames is a river in", finish_reason="length")
    assert err.value.reason == "truncated_response"
    with pytest.raises(ParseError) as err:
        parse_answer(REPHRASE, "ok")
    assert err.value.reason == "empty_response"


def test_template_validation_and_yaml_override():
    with pytest.raises(ValueError, match="{input}"):
        PromptTemplate(name="x", version="v1", system="s", prompt="no placeholder")
    config = SyntheticConfig(enabled=True, tasks=("rephrase",), templates=(
        {"name": "rephrase", "version": "v2", "system": "s", "prompt": "Rewrite: {input}", "max_tokens": 32},))
    assert config.active_templates()[0].ref == "rephrase@v2"
    with pytest.raises(ValueError, match="unknown"):
        SyntheticConfig(tasks=("poetry",))
    with pytest.raises(ValueError, match="fraction"):
        SyntheticConfig(fraction=1.5)


def test_cli_flags_overlay_the_config():
    @dataclasses.dataclass(frozen=True)
    class Job:
        synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    parser = argparse.ArgumentParser()
    add_synthetic_options(parser)
    config = with_synthetic_options(Job(), parser.parse_args(["--synthetic", "rephrase,qa",
                                                              "--synthetic-max-records", "7"]))
    assert config.synthetic.enabled and config.synthetic.tasks == ("rephrase", "qa")
    assert config.synthetic.max_records == 7
    assert with_synthetic_options(config, parser.parse_args(["--synthetic", "none"])).synthetic.enabled is False
    assert with_synthetic_options(Job(), parser.parse_args([])) == Job()


def test_selection_is_a_deterministic_fraction_with_filters():
    config = SyntheticConfig(enabled=True, fraction=0.3, seed=7)
    seeds = [_seed(i) for i in range(2000)]
    picked = [s["id"] for s in seeds if is_candidate(s, config)]
    assert 0.25 < len(picked) / len(seeds) < 0.35
    assert picked == [s["id"] for s in seeds if is_candidate(s, config)]
    assert [s["id"] for s in seeds if is_candidate(s, dataclasses.replace(config, seed=8))] != picked
    assert not is_candidate({**_seed(1), "text": "short"}, dataclasses.replace(config, fraction=1.0))
    assert not is_candidate(_seed(1), dataclasses.replace(config, fraction=1.0, languages=("de",)))
    assert not is_candidate({**_seed(1), "synthetic": True}, dataclasses.replace(config, fraction=1.0))
    assert 0.0 <= seed_score(0, "a") < 1.0


def test_select_seeds_keeps_budget_and_picks_the_same_pairs_in_any_order():
    config = SyntheticConfig(enabled=True, tasks=("rephrase", "qa"), max_records=5, seed=3)
    seeds = [_seed(i) for i in range(20)]

    def run(order):
        with TestPipeline(runner="FnApiRunner") as p:
            out = p | beam.Create(order) | SelectSeeds(config)
            assert_that(out.selected | beam.Map(lambda p: (p[0], p[1]["id"])), equal_to(expected), label="pairs")
            assert_that(out.selection | beam.Map(lambda s: (s["candidates"], s["selected"])),
                        equal_to([(40, 5)]), label="summary")

    from transforms.synthetic.select import candidate_pairs

    ranked = sorted((p for s in seeds for p in candidate_pairs(s, config)), key=lambda p: (p[0], p[1]))
    expected = [(name, seed["id"]) for _, name, seed in ranked[:5]]
    run(seeds)
    run(list(reversed(seeds)))
    # A token budget below two pairs' worth selects exactly one.
    from transforms.synthetic.select import pair_cost

    cost = pair_cost(REPHRASE, {"text": TEXT})
    tight = dataclasses.replace(config, tasks=("rephrase",), max_tokens=cost * 3 // 2)
    kept, failed, _ = generate_once(dataclasses.replace(tight, backend="openai", server_url="http://127.0.0.1:9/v1",
                                                        retries=0, timeout_s=1), seeds)
    assert len(kept) + len(failed) == 1


def test_cache_key_changes_with_every_part_and_entries_round_trip(tmp_path):
    base = ("m", "rephrase@v1", [{"role": "user", "content": "x"}], {"max_tokens": 8})
    key = cache_key(*base)
    assert key == cache_key(*base)
    assert len({key, cache_key("m2", *base[1:]), cache_key("m", "rephrase@v2", *base[2:]),
                cache_key("m", "rephrase@v1", [{"role": "user", "content": "y"}], base[3]),
                cache_key(*base[:3], {"max_tokens": 9})}) == 5
    from transforms.synthetic.backends import Completion

    cache = GenerationCache(str(tmp_path / "cache"))
    assert cache.get(key) is None
    cache.put(key, Completion("answer", 3, 4, 0.5, "stop"), "m", "rephrase@v1")
    assert cache.get(key) == Completion("answer", 3, 4, 0.5, "stop")
    (tmp_path / "cache" / key[:2] / f"{key}.json").write_text("{torn")
    assert cache.get(key) is None


def _server_config(server: FakeServer, **changes) -> SyntheticConfig:
    return SyntheticConfig(enabled=True, backend="openai", server_url=server.base_url, server_model="fake",
                           retries=1, backoff_s=0.05, timeout_s=1.0, concurrency=2, **changes)


def _request() -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": "hi"},), max_tokens=8)


def test_openai_backend_retries_5xx_then_succeeds_with_bounded_concurrency():
    with FakeServer() as server:
        server.mode, server.fail_first = "flaky", 1
        backend = OpenAIBackend(server.base_url, model="fake", retries=2, backoff_s=0.01, concurrency=2)
        (outcome,) = backend.generate([_request()])
        assert outcome.text == server.content and outcome.completion_tokens == 7
        assert len(server.requests) == 2
        assert server.requests[-1]["model"] == "fake" and server.requests[-1]["max_tokens"] == 8


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("slow", "backend_timeout"), ("garbage", "malformed_response"), ("bad_shape", "malformed_response"),
     ("refuse", "backend_refused")],
)
def test_misbehaving_server_ends_as_rejected_records(mode, reason, tmp_path):
    with FakeServer() as server:
        server.mode, server.delay_s = mode, 3.0
        config = _server_config(server, cache_uri=str(tmp_path / "cache"), min_chars=10)
        kept, failed, _ = generate_once(config, [_seed(1), _seed(2)])
        assert kept == []
        assert [r["reject_reason"] for r in failed] == [f"synthetic.{reason}"] * 2
        assert all(r["synthetic"] and r["parent_id"] in (_seed(1)["id"], _seed(2)["id"]) for r in failed)
        assert all(r["reject_detail"] for r in failed)
        attempts = 1 if mode == "refuse" else 2
        assert len(server.requests) == 2 * attempts
    assert not list((tmp_path / "cache").rglob("*.json")), "failures are not cached"


def test_unreachable_server_is_a_clear_error_and_rejected_records():
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config = SyntheticConfig(enabled=True, backend="openai", server_url=dead, retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(BackendUnavailable, match="unreachable"):
        OpenAIBackend(dead).check()
    kept, failed, _ = generate_once(config, [_seed(1)])
    assert kept == [] and failed[0]["reject_reason"] == "synthetic.backend_unreachable"
    assert dead in failed[0]["reject_detail"]


def test_generate_synthetic_in_beam_with_the_cache(tmp_path):
    """Two Beam runs over the same seeds: the second asks the server nothing."""
    with FakeServer() as server:
        config = _server_config(server, cache_uri=str(tmp_path / "cache"), tasks=("rephrase",))
        seeds = [_seed(i, f"Document {i}. {TEXT}") for i in range(4)]

        def run():
            with TestPipeline(runner="FnApiRunner") as p:
                out = p | beam.Create(seeds) | GenerateSynthetic(config)
                assert_that(out.kept | beam.Map(lambda r: (r["parent_id"], r["template"], r["synthetic"],
                                                           r["text"], r["generator"])),
                            equal_to([(s["id"], "rephrase@v1", True, server.content, "openai/fake") for s in seeds]))
                assert_that(out.rejected, equal_to([]), label="none rejected")

        run()
        assert len(server.requests) == 4
        run()
        assert len(server.requests) == 4


def test_config_section_round_trips_through_yaml(tmp_path):
    from pipelines.config import dump_config, load_config

    @dataclasses.dataclass(frozen=True)
    class Job:
        synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    custom = Job(SyntheticConfig(enabled=True, tasks=("rephrase", "qa"), fraction=0.25, cache_uri="s3://b/cache",
                                 templates=(dataclasses.replace(REPHRASE, version="v2", max_tokens=128),)))
    path = tmp_path / "job.yaml"
    path.write_text(dump_config(custom))
    loaded = load_config(Job, path)
    assert loaded == custom
    assert loaded.synthetic.active_templates()[0].ref == "rephrase@v2"
    with pytest.raises(ValueError, match="unknown keys"):
        from pipelines.config import from_dict

        from_dict(Job, {"synthetic": {"max_record": 3}})


def test_cache_on_s3(s3_server):
    from apache_beam.io.filesystems import FileSystems

    from transforms.synthetic.backends import Completion

    bucket = s3_server.create_bucket()
    FileSystems.set_options(s3_server.pipeline_options())
    try:
        cache = GenerationCache(f"s3://{bucket}/synthetic-cache/")
        key = cache_key("m", "qa@v1", [{"role": "user", "content": "x"}], {"max_tokens": 8})
        assert cache.get(key) is None
        cache.put(key, Completion('{"pairs": []}', 5, 6, 0.25, "stop"), "m", "qa@v1")
        assert cache.get(key) == Completion('{"pairs": []}', 5, 6, 0.25, "stop")
        listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["Key"] for o in listed] == [f"synthetic-cache/{key[:2]}/{key}.json"]
    finally:
        FileSystems.set_options(None)
