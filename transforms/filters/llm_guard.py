"""LLM guard: ask a safety model behind an OpenAI-compatible server whether a document is safe.

Off by default (it needs a server: Llama Guard 3 or any safety classifier that vLLM, llama.cpp's
server or a hosted API serves). Each document (its first ``max_chars`` characters) goes as the
one user message of a chat; the server's chat template wraps it in the model's own safety
policy, and the model answers Llama Guard's way: ``safe``, or ``unsafe`` and a line of
category codes (``S1,S10``). The client, its retries and timeouts, and the answer cache are the
synthetic step's (``transforms/synthetic/backends.py``, ``cache.py``): a rerun asks the server
only about documents it has not judged. A transport failure rejects the record with the
client's reason (``llm_guard.backend_timeout``, ...), never silently keeps it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import Drop, Filter, Record, SignalRules
from transforms.synthetic.backends import (
    HTTP_ERROR,
    MALFORMED,
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    BackendError,
    Completion,
    GenerationRequest,
    OpenAIBackend,
    openai_from_config,
)
from transforms.synthetic.cache import GenerationCache, cache_key

PROMPT_REF = "llm_guard@1"  # part of the cache key: bump when the request changes
SAFE, UNSAFE = "safe", "unsafe"
BACKEND_REASONS = (TIMEOUT, UNREACHABLE, MALFORMED, HTTP_ERROR, REFUSED)
_CATEGORY = re.compile(r"[A-Za-z]*\d+")


@dataclass(frozen=True)
class LlmGuardConfig:
    enabled: bool = False
    server_url: str = "http://127.0.0.1:8000/v1"
    server_model: str = ""  # e.g. meta-llama/Llama-Guard-3-1B as the server names it
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    timeout_s: float = 60.0
    retries: int = 2
    backoff_s: float = 1.0
    # Llama Guard 3 reads 8k tokens (~32k characters); the start of a page is enough to judge it
    # and keeps each request cheap.
    max_chars: int = 4000
    max_tokens: int = 16  # "unsafe\nS1,S10" fits
    # Categories that drop a document; empty: any ``unsafe`` answer drops it.
    blocked_categories: tuple[str, ...] = ()
    cache_uri: str = ""  # local folder or s3:// prefix; empty: no cache
    model_id: str = ""  # in cache keys; empty: openai/<server_model>

    def __post_init__(self) -> None:
        if self.max_chars < 1 or self.max_tokens < 1 or self.concurrency < 1:
            raise ValueError("llm_guard: max_chars, max_tokens and concurrency must be >= 1")


def parse_verdict(answer: str) -> tuple[str, str] | None:
    """``(safe|unsafe, "S1,S10")`` from a Llama Guard answer; ``None`` if it is neither."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if not lines or lines[0].lower() not in (SAFE, UNSAFE):
        return None
    verdict = lines[0].lower()
    categories = ",".join(_CATEGORY.findall(" ".join(lines[1:]))).upper() if verdict == UNSAFE else ""
    return verdict, categories


class LlmGuard(Filter):
    name = "llm_guard"
    config_class = LlmGuardConfig
    reasons = (UNSAFE, *BACKEND_REASONS)
    signal_rules = SignalRules(
        must_be_null=("guard_error",),
        value_sets={"guard_verdict": (SAFE, UNSAFE)},  # unsafe kept: a category not blocked
    )
    signal_fields = (
        pa.field("guard_verdict", pa.string()),
        pa.field("guard_categories", pa.string()),
        pa.field("guard_error", pa.string()),
    )

    def __init__(self, config: LlmGuardConfig = LlmGuardConfig()):
        self.config = config
        self._backend: OpenAIBackend | None = None
        self._cache: GenerationCache | None = None

    def setup(self) -> None:
        self._backend = openai_from_config(self.config)
        self._cache = GenerationCache(self.config.cache_uri) if self.config.cache_uri else None

    def request(self, record: Record) -> GenerationRequest:
        text = (record.get("text") or "")[: self.config.max_chars]
        return GenerationRequest(({"role": "user", "content": text},), self.config.max_tokens)

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        backend, cache = self._backend, self._cache
        if backend is None:
            raise RuntimeError("LlmGuard.setup() was not called")
        requests = [self.request(record) for record in records]
        keys = [cache_key(backend.model_id, PROMPT_REF, list(r.messages), r.params()) for r in requests]
        answers: list[Completion | BackendError | None] = [cache.get(k) if cache else None for k in keys]
        missing = [i for i, answer in enumerate(answers) if answer is None]
        for i, outcome in zip(missing, backend.generate([requests[i] for i in missing]), strict=True):
            answers[i] = outcome
            if cache is not None and isinstance(outcome, Completion):
                cache.put(keys[i], outcome, backend.model_id, PROMPT_REF)
        return [_signals(answer) for answer in answers]

    def decide(self, record: Record) -> Drop | None:
        if record["guard_error"]:
            reason, _, detail = record["guard_error"].partition(": ")
            return Drop(reason, detail)
        if record["guard_verdict"] != UNSAFE:
            return None
        categories = record["guard_categories"] or ""
        blocked = self.config.blocked_categories
        if blocked and not set(categories.split(",")) & {c.upper() for c in blocked}:
            return None
        return Drop(UNSAFE, categories)


def _signals(answer: Completion | BackendError | None) -> Record:
    if isinstance(answer, BackendError):
        return {"guard_verdict": None, "guard_categories": None, "guard_error": f"{answer.reason}: {answer.detail}"}
    parsed = parse_verdict(answer.text if answer is not None else "")
    if parsed is None:
        text = answer.text[:100] if answer is not None else ""
        return {"guard_verdict": None, "guard_categories": None, "guard_error": f"{MALFORMED}: {text!r}"}
    return {"guard_verdict": parsed[0], "guard_categories": parsed[1], "guard_error": None}
