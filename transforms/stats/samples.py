"""Rejected samples: the ``k`` smallest ids of each reject reason, the same on every runner."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from transforms.stage import Record
from transforms.summaries import add_smallest, merge_smallest

SNIPPET_CHARS = 300



def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    if not text:
        return ""
    flat = " ".join(text[: limit * 2].split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return round(value, 6) if value == value else None
    if isinstance(value, bytes | bytearray):  # image bytes never go into a report
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value[:20]]
    return str(value)


def record_sample(record: Record, signal_names: Sequence[str] = (), snippet_of: str = "text") -> dict[str, Any]:
    """What the report shows of one record: where it came from, why it left, what it said
    (a snippet of ``snippet_of``: the text, or an image's caption)."""
    sample = {
        "id": record["id"],
        "url": record.get("url"),
        "domain": record.get("domain"),
        "source": record.get("source"),
        "snippet": snippet(record.get(snippet_of)),
    }
    if "reject_reason" in record:
        sample.update(stage=record.get("reject_stage"), reason=record["reject_reason"],
                      detail=record.get("reject_detail") or "")
    signals = {name: _json_value(record.get(name)) for name in signal_names}
    sample["signals"] = {k: v for k, v in signals.items() if v is not None}
    return sample


def add_sample(samples: dict[str, list], record: Record, k: int, signal_names: Sequence[str],
               snippet_of: str = "text") -> None:
    """Keep the ``k`` smallest ids of the record's reject reason (built only when it ranks)."""
    items = samples.setdefault(record["reject_reason"], [])
    if len(items) < k or record["id"] < items[-1][0]:
        add_smallest(items, record["id"], record_sample(record, signal_names, snippet_of), k)


def merge_samples(accs: Iterable[dict[str, list]], k: int) -> dict[str, list]:
    accs = list(accs)
    reasons = sorted({reason for acc in accs for reason in acc})
    return {r: merge_smallest((acc.get(r, []) for acc in accs), k) for r in reasons}

