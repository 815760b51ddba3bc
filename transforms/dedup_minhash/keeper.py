"""The keeper policy, encoded in the graph's node names so that a component's smallest node
is its keeper.

A document of this run is the node ``"1" + rank + id``: ``rank`` is one fixed-width field per
key of the policy, written so that plain string order is the policy's order (crawled before
synthetic, highest quality first, earliest fetch first, longest text first; a record missing a key ranks after those
that have it), and the id breaks ties. A document published by an earlier run is the node
``"0" + id + "\\x1f" + run_id``: it sorts before every document of this run, so a component
that reaches an earlier run's document is labelled by it and none of this run's members
stays (the earlier document was already published). Connected components then need no
separate keeper step: the component label is the keeper.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta

from transforms.stage import Record

CURRENT = "1"
PREVIOUS = "0"
_RUN_SEPARATOR = "\x1f"
_FIELD = 16  # hex digits of one rank field
_MISSING = "z" * _FIELD  # after every hex field: missing values rank last
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_ALL_BITS = (1 << 64) - 1


def _descending_float(value: float) -> str:
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(value)))
    ascending = bits ^ _ALL_BITS if bits >> 63 else bits | 1 << 63
    return f"{ascending ^ _ALL_BITS:016x}"


def _ascending_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{(value - _EPOCH) // _ONE_MICROSECOND + (1 << 62):016x}"


def _as_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def rank_field(record: Record, key: str, quality_field: str) -> str:
    """One fixed-width field; values that cannot be read as the key's type rank as missing."""
    if key == "quality_score":
        value = _as_float(record.get(quality_field))
        return _MISSING if value is None else _descending_float(value)
    if key == "crawled":  # crawled before synthetic: a rephrase never displaces its source
        return ("f" if record.get("synthetic") else "0") * _FIELD
    if key == "fetched_at":
        value = _as_datetime(record.get("fetched_at"))
        return _MISSING if value is None else _ascending_time(value)
    if key == "text_length":
        return f"{_ALL_BITS - len(record.get('text') or ''):016x}"
    raise ValueError(f"unknown keeper key {key!r}")


def current_node(record: Record, policy: tuple[str, ...], quality_field: str) -> str:
    return CURRENT + "".join(rank_field(record, key, quality_field) for key in policy) + record["id"]


def previous_node(doc_id: str, run_id: str) -> str:
    return PREVIOUS + doc_id + _RUN_SEPARATOR + run_id


def is_previous(node: str) -> bool:
    return node.startswith(PREVIOUS)


def node_id(node: str, policy_len: int) -> str:
    """The document id a node stands for."""
    if is_previous(node):
        return node[1:].split(_RUN_SEPARATOR, 1)[0]
    return node[1 + _FIELD * policy_len :]


def previous_run(node: str) -> str:
    return node[1:].split(_RUN_SEPARATOR, 1)[1]
