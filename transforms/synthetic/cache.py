"""The answer cache: every model answer under a hash of what determined it.

Key = sha256 of the canonical JSON of (model identity, template name@version, the exact
messages sent, the generation parameters). Values are small JSON files under
``<uri>/<key[:2]>/<key>.json`` in a local folder or ``s3://`` prefix, written atomically through
``run_folder.storage``, so concurrent workers and crashed runs never leave half an entry. A
rerun (or another run over the same seeds) asks the model only for what is missing.

Answers are cached when the backend returned one, including answers the template then rejects
(a truncated or non-JSON reply is as reproducible as a good one); transport failures (timeouts,
unreachable server, garbage bodies) are not, so a rerun tries them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from run_folder.storage import is_local, join, read_bytes, write_atomic
from transforms.synthetic.backends import Completion

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def cache_key(model_id: str, template_ref: str, messages: Any, params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"format": CACHE_FORMAT, "model": model_id, "template": template_ref,
         "messages": messages, "params": params},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class GenerationCache:
    def __init__(self, uri: str):
        if not uri:
            raise ValueError("cache uri must not be empty")
        self.uri = uri.rstrip("/")

    def path(self, key: str) -> str:
        return join(self.uri, key[:2], f"{key}.json")

    def get(self, key: str) -> Completion | None:
        path = self.path(key)
        try:
            data = json.loads(read_bytes(path))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a missing S3 key or a torn entry is a miss
            if is_local(path):
                log.warning("unreadable cache entry %s: %s", path, exc)
            return None
        try:
            return Completion(
                data["text"], int(data["prompt_tokens"]), int(data["completion_tokens"]),
                float(data["seconds"]), str(data.get("finish_reason", "")),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("cache entry %s has an unexpected shape: ignored", path)
            return None

    def put(self, key: str, completion: Completion, model_id: str, template_ref: str) -> None:
        entry = {
            "text": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "seconds": round(completion.seconds, 4),
            "finish_reason": completion.finish_reason,
            "model": model_id,
            "template": template_ref,
        }
        write_atomic(self.path(key), json.dumps(entry, ensure_ascii=False).encode("utf-8"))
