"""Loopback servers for the synthetic tests: a misbehaving fake and llama-cpp-python's own."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ok_body(content: str) -> dict:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7},
    }


class FakeServer:
    """An OpenAI-style server whose behaviour a test sets: ``ok``, ``slow``, ``garbage``,
    ``bad_shape``, ``flaky`` (``fail_first`` 503s, then ok) or ``refuse`` (HTTP 400)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.fail_first = 0
        self.delay_s = 5.0
        self.content = "A clean encyclopedic paragraph about the topic, written for the test."
        # When set: the answer's content from the request body (mode "ok").
        self.respond: Callable[[dict], str] | None = None
        self.requests: list[dict] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        if self.mode == "garbage":
            return web.Response(text="<html>502 proxy error, not JSON", content_type="text/html")
        if self.mode == "bad_shape":
            return web.json_response({"result": "no choices here"})
        if self.mode == "refuse":
            return web.json_response({"error": "context length exceeded"}, status=400)
        if self.mode == "flaky" and len(self.requests) <= self.fail_first:
            return web.json_response({"error": "overloaded"}, status=503)
        body = self.requests[-1]
        return web.json_response(_ok_body(self.respond(body) if self.respond else self.content))

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "fake"}]})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def llama_server(model_path: str, n_threads: int = 2, n_ctx: int = 2048) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on loopback; yields its ``/v1`` base URL."""
    with tempfile.TemporaryFile() as log:
        yield from _serve_llama(model_path, n_threads, n_ctx, log)


def _serve_llama(model_path: str, n_threads: int, n_ctx: int, log) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", str(n_threads), "--n_ctx", str(n_ctx),
         "--model_alias", "smollm2-135m-instruct"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                    json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
