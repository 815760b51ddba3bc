"""Frozen dataclass configs with YAML as their serialized form.

Every stage owns a frozen dataclass of its thresholds (beside the stage, with the source of
each default cited). A job config nests them. ``load_config`` reads YAML over the defaults and
rejects unknown keys, so a typo fails loudly instead of silently running the default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "", base: T | None = None) -> T:
    """Build dataclass ``cls`` from ``data`` over ``base`` (default: ``cls()``'s field defaults).

    Nested sections overlay the parent's default for that field key by key: a YAML
    ``download: {crawl: {per_host_rate: 5}}`` keeps every other setting of the download's own
    crawl default (its image content types), not those of a bare ``CrawlConfig()``.
    """
    data = data or {}
    if not isinstance(data, dict):
        raise ValueError(f"config {where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"config {where or cls.__name__}: unknown keys {unknown}; known: {sorted(fields)}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        path = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            values[name] = from_dict(hint, value, path, _default(fields[name], base, hint))
        else:
            values[name] = _coerce(hint, value, path)
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def _default(field: dataclasses.Field, parent: Any, hint: type) -> Any:
    """What a nested section overlays: the parent's value, else the field's own default."""
    if parent is not None:
        value = getattr(parent, field.name)
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = field.default
    return value if isinstance(value, hint) else None


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """YAML has lists where configs have tuples (hashable, immutable): convert, recursively."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return value if value is None or len(options) != 1 else _coerce(options[0], value, path)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item, path) for item in value)
        if args and len(args) == len(value):
            return tuple(_coerce(arg, item, path) for arg, item in zip(args, value, strict=True))
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, JSON-ready form of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of ``config``: the same settings give the same hash."""
    canonical = json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_config(cls: type[T], path: str | Path | None) -> T:
    """Defaults of ``cls`` overlaid with the YAML file at ``path`` (if any)."""
    if path is None:
        return cls()
    with open(path, encoding="utf-8") as handle:
        return from_dict(cls, yaml.safe_load(handle))


def dump_config(config: Any) -> str:
    """The YAML form of ``config``; ``load_config`` reads it back to an equal config."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
