"""The stats of a whole job as one mergeable summary: what to collect (``StatsPlan``), adding
one record a stage kept or rejected, merging partial summaries, and the final JSON document."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from transforms.stage import KEPT, REJECTED, Record
from transforms.stats.clusters import (
    CLUSTER_SIZE_BINS,
    add_keeper,
    add_member,
    dedup_size_field,
    merge_clusters,
    names_keeper_only,
    top_clusters,
)
from transforms.stats.fields import (
    DOMAIN_CAPACITY,
    NONE_LABEL,
    TEXT_PROFILE,
    FieldStat,
    Profile,
    stage_fields,
)
from transforms.stats.profiles import add_record, empty_profile, merge_profiles
from transforms.stats.samples import add_sample, merge_samples
from transforms.summaries import (
    Summary,
    add_item,
    finish_top_counts,
    histogram,
    merge_histograms,
    merge_smallest,
    merge_top_counts,
    top_counts,
)

STATS_FORMAT = "genai-dataprep/stats/1"
FINAL = "final"

@dataclass(frozen=True)
class StatsPlan:
    """What to collect: stage order, fields per stage, sizes of samples and cluster lists."""

    stages: tuple[str, ...]
    fields: dict[str, tuple[FieldStat, ...]]
    signals: dict[str, tuple[str, ...]]
    dedup: dict[str, str]  # stage -> its cluster-size signal
    sample_size: int = 5
    top_clusters: int = 10
    cluster_members: int = 3
    # Dedup stages without a cluster-size signal: clusters counted from the removed members.
    member_clusters: tuple[str, ...] = ()
    snippet_of: str = "text"

    @classmethod
    def for_stages(cls, stages: Sequence[str], stage_classes: Iterable[type],
                   profile: Profile = TEXT_PROFILE, **sizes: int) -> StatsPlan:
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        classes = {c.name: c for c in stage_classes}
        signals = {s: tuple(f.name for f in getattr(classes.get(s), "signal_fields", ())) for s in stages}
        dedup = {s: f for s in stages if (f := dedup_size_field(classes.get(s))) is not None}
        member_clusters = tuple(s for s in stages if names_keeper_only(classes.get(s)))
        return cls(tuple(stages), stage_fields(stages, classes.values(), profile), signals, dedup, **sizes,
                   member_clusters=member_clusters, snippet_of=profile.snippet_of)


def empty_stats() -> Summary:
    return {"profiles": {}, "samples": {}, "keepers": {}, "clusters": {}, "cluster_sizes": {}, "removed_by_source": {}}


def removal_key(reason: str, source: Any) -> str:
    """The key of ``removed_by_source``: a reason and a source (an input URI holds no tab)."""
    return f"{reason}\t{NONE_LABEL if source is None else source}"


def add_to_stats(acc: Summary, plan: StatsPlan, stage: str, side: str, record: Record) -> Summary:
    """Count one record that ``stage`` kept or rejected (``side``); ``stage`` "final": published."""
    fields = plan.fields[plan.stages[-1] if stage == FINAL else stage]
    key = f"{stage}|{side}"
    profile = acc["profiles"].get(key)
    if profile is None:
        profile = acc["profiles"][key] = empty_profile(fields)
    add_record(profile, fields, record)
    if stage == FINAL:
        return acc
    if side == REJECTED:
        add_sample(acc["samples"], record, plan.sample_size, plan.signals[stage], plan.snippet_of)
    size_field = plan.dedup.get(stage)
    if size_field is not None and side == KEPT:
        add_keeper(acc["keepers"].setdefault(stage, []), record, size_field, plan.top_clusters, plan.signals[stage],
                   plan.snippet_of)
    elif size_field is not None:
        add_member(acc["clusters"].setdefault(stage, {}), record, size_field, plan.top_clusters,
                   plan.cluster_members, plan.signals[stage], plan.snippet_of)
        add_item(acc["removed_by_source"].setdefault(stage, top_counts()),
                 removal_key(record.get("reject_reason"), record.get("source")), DOMAIN_CAPACITY)
    return acc


def merge_stats(accs: Iterable[Summary], plan: StatsPlan) -> Summary:
    accs = list(accs)
    capacities = {f.name: f.capacity for fields in plan.fields.values() for f in fields if f.bins is None}
    merged = empty_stats()
    for key in dict.fromkeys(k for acc in accs for k in acc["profiles"]):
        merged["profiles"][key] = merge_profiles([acc["profiles"][key] for acc in accs if key in acc["profiles"]],
                                                 capacities)
    merged["samples"] = merge_samples((acc["samples"] for acc in accs), plan.sample_size)
    for stage in plan.dedup:
        merged["keepers"][stage] = merge_smallest((acc["keepers"].get(stage, []) for acc in accs), plan.top_clusters)
        merged["removed_by_source"][stage] = merge_top_counts(
            (acc.get("removed_by_source", {}).get(stage, top_counts()) for acc in accs), DOMAIN_CAPACITY)
        merged["clusters"][stage] = merge_clusters((acc["clusters"].get(stage, {}) for acc in accs),
                                                   plan.top_clusters, plan.cluster_members)
    for stage in plan.member_clusters:
        merged["clusters"][stage] = merge_clusters((acc["clusters"].get(stage, {}) for acc in accs),
                                                   plan.top_clusters, plan.cluster_members)
        sizes = [acc["cluster_sizes"][stage] for acc in accs if stage in acc.get("cluster_sizes", {})]
        merged["cluster_sizes"][stage] = merge_histograms(sizes) if sizes else histogram(CLUSTER_SIZE_BINS)
    return merged


def stats_document(acc: Summary, plan: StatsPlan) -> dict[str, Any]:
    """The JSON document of merged stats: every stage has both profiles, empty when nothing passed."""
    capacities = {f.name: f.capacity for fields in plan.fields.values() for f in fields if f.bins is None}

    def profile(key: str, fields: tuple[FieldStat, ...]) -> Summary:
        found = acc["profiles"].get(key) or empty_profile(fields)
        for name, top in found["counts"].items():
            found["counts"][name] = finish_top_counts(top, capacities.get(name, DOMAIN_CAPACITY))
        return found

    profiles = {s: {side: profile(f"{s}|{side}", plan.fields[s]) for side in (KEPT, REJECTED)} for s in plan.stages}
    last = plan.stages[-1]
    final_key = f"{FINAL}|{KEPT}"
    field_info: dict[str, Any] = {}
    for stage in plan.stages:
        for stat in plan.fields[stage]:
            field_info.setdefault(stat.name, stat.to_json(stage))
    clusters = {
        stage: {"size_field": size_field,
                "top": top_clusters(acc["keepers"].get(stage, []), acc["clusters"].get(stage, {}), plan.top_clusters)}
        for stage, size_field in plan.dedup.items()
    }
    for stage in plan.member_clusters:
        sizes = acc.get("cluster_sizes", {}).get(stage) or histogram(CLUSTER_SIZE_BINS)
        clusters[stage] = {"size_field": None, "labels": CLUSTER_SIZE_BINS.labels(), "sizes": sizes,
                           "top": top_clusters([], acc["clusters"].get(stage, {}), plan.top_clusters)}
    return {
        "format": STATS_FORMAT,
        "stages": list(plan.stages),
        "fields": field_info,
        "profiles": profiles,
        "final": profile(final_key, plan.fields[last]) if final_key in acc["profiles"] else profiles[last][KEPT],
        "samples": {"k": plan.sample_size, "snippet_of": plan.snippet_of,
                    "by_reason": {r: [s for _, s in items] for r, items in acc["samples"].items()}},
        "clusters": clusters,
        "removed_by_source": {stage: finish_top_counts(acc.get("removed_by_source", {}).get(stage, top_counts()),
                                                       DOMAIN_CAPACITY) for stage in plan.dedup},
    }
