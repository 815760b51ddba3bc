"""The LLM guard against a loopback OpenAI-compatible server that answers Llama Guard's way."""

import pytest
from synthetic_servers import FakeServer

from transforms.filters.llm_guard import LlmGuard, LlmGuardConfig, parse_verdict

DOCS = {
    "A recipe for lentil soup with cumin and lemon.": "safe",
    "Step-by-step instructions to build a pipe bomb.": "unsafe\nS9",
    "A threat to hurt a named person, with their address.": "unsafe\nS1,S10",
}


def _guard_answer(body: dict) -> str:
    return DOCS.get(body["messages"][-1]["content"], "I cannot tell")


@pytest.fixture
def server():
    with FakeServer() as fake:
        fake.respond = _guard_answer
        yield fake


def _guard(server, **settings):
    stage = LlmGuard(LlmGuardConfig(enabled=True, server_url=server.base_url, retries=0, **settings))
    stage.setup()
    return stage


def test_verdicts_become_signals_and_reasons(server):
    records = [{"text": t} for t in DOCS]
    drops = _guard(server).process_batch(records)
    assert [d and (d.reason, d.detail) for d in drops] == [None, ("unsafe", "S9"), ("unsafe", "S1,S10")]
    assert [r["guard_verdict"] for r in records] == ["safe", "unsafe", "unsafe"]
    assert server.requests[0]["messages"] == [{"role": "user", "content": list(DOCS)[0]}]


def test_blocked_categories_keep_other_unsafe_answers(server):
    records = [{"text": t} for t in DOCS]
    drops = _guard(server, blocked_categories=("S1",)).process_batch(records)
    assert [d and d.reason for d in drops] == [None, None, "unsafe"]


def test_answers_are_cached_and_reused(server, tmp_path):
    records = [{"text": t} for t in DOCS]
    _guard(server, cache_uri=str(tmp_path)).process_batch([dict(r) for r in records])
    asked = len(server.requests)
    server.mode = "refuse"  # any new question now fails: the rerun must not ask
    again = [dict(r) for r in records]
    drops = _guard(server, cache_uri=str(tmp_path)).process_batch(again)
    assert len(server.requests) == asked == 3
    assert [d and d.reason for d in drops] == [None, "unsafe", "unsafe"]


def test_unparseable_answers_and_transport_failures_are_rejections(server):
    records = [{"text": "Something the fake guard has no answer for."}]
    assert _guard(server).process_batch(records)[0].reason == "malformed_response"
    server.mode = "garbage"
    assert _guard(server).process_batch([{"text": list(DOCS)[0]}])[0].reason == "malformed_response"
    server.mode = "refuse"
    assert _guard(server).process_batch([{"text": list(DOCS)[0]}])[0].reason == "backend_refused"


def test_parse_verdict():
    assert parse_verdict(" safe \n") == ("safe", "")
    assert parse_verdict("unsafe\ns1, S10") == ("unsafe", "S1,S10")
    assert parse_verdict("The text is safe.") is None
