"""One profile per stage output: record count, reasons, histograms and bounded value counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from transforms.stage import Record
from transforms.stats.fields import DOMAIN_CAPACITY, NONE_LABEL, FieldStat, field_value
from transforms.summaries import (
    Summary,
    add_item,
    add_value,
    histogram,
    merge_histograms,
    merge_top_counts,
    top_counts,
)


def empty_profile(fields: Sequence[FieldStat]) -> Summary:
    return {
        "n": 0,
        "reasons": {},
        "hist": {f.name: histogram(f.bins) for f in fields if f.bins is not None},
        "counts": {f.name: top_counts() for f in fields if f.bins is None},
    }


def add_record(profile: Summary, fields: Sequence[FieldStat], record: Record) -> Summary:
    profile["n"] += 1
    reason = record.get("reject_reason")
    if reason is not None:
        profile["reasons"][reason] = profile["reasons"].get(reason, 0) + 1
    for stat in fields:
        value = field_value(record, stat)
        if stat.bins is not None:
            add_value(profile["hist"][stat.name], stat.bins, value)
        else:
            add_item(profile["counts"][stat.name], NONE_LABEL if value is None else value, stat.capacity)
    return profile


def merge_profiles(profiles: Iterable[Summary], capacities: dict[str, int] | None = None) -> Summary:
    """Add profiles up; fields missing from some (signals of later stages) are merged where present."""
    profiles = list(profiles)
    capacities = capacities or {}
    merged: Summary = {"n": 0, "reasons": {}, "hist": {}, "counts": {}}
    for profile in profiles:
        merged["n"] += profile["n"]
        for reason, n in profile["reasons"].items():
            merged["reasons"][reason] = merged["reasons"].get(reason, 0) + n
    for kind in ("hist", "counts"):
        names = dict.fromkeys(name for p in profiles for name in p[kind])
        for name in names:
            parts = [p[kind][name] for p in profiles if name in p[kind]]
            merged[kind][name] = (
                merge_histograms(parts) if kind == "hist"
                else merge_top_counts(parts, capacities.get(name, DOMAIN_CAPACITY))
            )
    merged["reasons"] = dict(sorted(merged["reasons"].items()))
    return merged

