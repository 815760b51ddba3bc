"""Statistics as data: one profile per stage output, rejected samples, dedup clusters.

``CollectStats`` profiles what every stage kept and what it rejected, the way TFDV profiles a
dataset, with summaries that merge in any order and grouping (``transforms.summaries``): the
record count, the count of each reject reason, fixed-bin histograms of every numeric signal
(fractions in 0..1, counts on a 1-2-5 log scale, declared ranges otherwise), and bounded counts
of categorical values (language, domain, input file, extractor, ...). A stage's profile covers
the core columns plus every signal known at that point of the pipeline, so a stage's input is its
kept profile merged with its rejected one ("before"), and the last stage's kept profile is the
published data ("after").

Beside the profiles: the ``k`` smallest ids of each reject reason with url, detail, a text
snippet and the rejecting stage's signals (the same records on every runner and rerun), and for
each dedup stage the largest clusters with their keeper and a few removed members, and its
removals counted by reason and source (``removed_by_source``: what the run gate's per-source
cap reads).

On a runner, each stage output feeds a ``DoFn`` that summarises the records of a bundle where
they were produced and emits one partial summary at the bundle's end (combiner lifting by hand,
so records never move for stats); one ``CombineFn`` merges all partials of all stages. Everything
lands in one JSON file, ``<run_dir>/_staging/stats.json``, that the driver reads after the
pipeline (``pipelines.report`` keeps it as ``report/stats.json``). Beam counters stay for live
monitoring only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

from transforms.registry import TEXT_STAGES
from transforms.stage import Record
from transforms.storage import join, read_bytes, write_atomic
from transforms.summaries import (
    Bins,
    Summary,
    add_item,
    add_smallest,
    add_value,
    finish_top_counts,
    fraction_bins,
    histogram,
    linear_bins,
    log_count_bins,
    merge_histograms,
    merge_smallest,
    merge_top_counts,
    top_counts,
)

STATS_FILE = "_staging/stats.json"
STATS_FORMAT = "genai-dataprep/stats/1"
KEPT, REJECTED, FINAL = "kept", "rejected", "final"
SNIPPET_CHARS = 300
NONE_LABEL = "(none)"

COUNT_BINS = log_count_bins()
FRACTION_BINS = fraction_bins()
# Declared ranges of signals that are neither counts nor fractions.
BIN_OVERRIDES: dict[str, Bins] = {
    # Gopher keeps 3..10 characters per word; 0..20 shows both tails.
    "gopher_mean_word_length": linear_bins(0, 20, 1),
}
# Identifiers, not measurements: a histogram of them says nothing.
UNPROFILED = frozenset({"dup_of", "minhash_cluster_id", "parent_id"})
CATEGORY_CAPACITY = 100
DOMAIN_CAPACITY = 1000


@dataclass(frozen=True)
class FieldStat:
    """One profiled column: a fixed-bin histogram (``bins``) or bounded value counts.
    ``length_of``: the column is derived, the characters of that column (``text_length``)."""

    name: str
    bins: Bins | None = None
    capacity: int = CATEGORY_CAPACITY
    length_of: str | None = None

    def to_json(self, stage: str) -> dict[str, Any]:
        if self.bins is not None:
            return {"kind": "histogram", "bins": self.bins.to_json(), "stage": stage}
        return {"kind": "counts", "capacity": self.capacity, "stage": stage}


# ``text_length`` is derived (characters of ``text`` as the record leaves the stage).
CORE_FIELDS = (
    FieldStat("text_length", COUNT_BINS, length_of="text"),
    FieldStat("domain", capacity=DOMAIN_CAPACITY),
    FieldStat("source", capacity=DOMAIN_CAPACITY),
)


@dataclass(frozen=True)
class Profile:
    """What a job profiles besides the signals its stages declare: its core columns, the bins
    of signals that are neither counts nor fractions, the identifiers left out, and the column
    a rejected sample shows a snippet of. The text job's is the default (``TEXT_PROFILE``)."""

    core: tuple[FieldStat, ...] = CORE_FIELDS
    bin_overrides: Mapping[str, Bins] = field(default_factory=lambda: dict(BIN_OVERRIDES))
    unprofiled: frozenset[str] = UNPROFILED
    snippet_of: str = "text"


TEXT_PROFILE = Profile()


def field_stat(field: pa.Field, profile: Profile = TEXT_PROFILE) -> FieldStat | None:
    """How a declared signal column is profiled, from its name and Arrow type."""
    name, kind = field.name, field.type
    if name in profile.unprofiled:
        return None
    if name in profile.bin_overrides:
        return FieldStat(name, profile.bin_overrides[name])
    if pa.types.is_boolean(kind) or pa.types.is_string(kind):
        return FieldStat(name)
    if pa.types.is_integer(kind):
        return FieldStat(name, COUNT_BINS)
    if pa.types.is_floating(kind):
        return FieldStat(name, FRACTION_BINS)
    return None


def stage_fields(stage_names: Sequence[str], stage_classes: Iterable[type] = TEXT_STAGES,
                 profile: Profile = TEXT_PROFILE) -> dict[str, tuple[FieldStat, ...]]:
    """Per stage, in order: the core fields plus every signal declared up to that stage."""
    signals = {cls.name: cls.signal_fields for cls in stage_classes}
    known: dict[str, FieldStat] = {f.name: f for f in profile.core}
    out = {}
    for stage in stage_names:
        for signal in signals.get(stage, ()):
            stat = field_stat(signal, profile)
            if stat is not None:
                known.setdefault(stat.name, stat)
        out[stage] = tuple(known.values())
    return out


def _value(record: Record, stat: FieldStat) -> Any:
    if stat.length_of is not None:
        text = record.get(stat.length_of)
        return None if text is None else len(text)
    return record.get(stat.name)


# ---- profiles -------------------------------------------------------------------------------


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
        value = _value(record, stat)
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


# ---- samples --------------------------------------------------------------------------------


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


# ---- dedup clusters -------------------------------------------------------------------------
#
# The largest clusters are found from both sides of a dedup stage: keepers (kept records whose
# cluster has more than one member) and removed members (rejected records, each naming its
# keeper in ``dup_of`` and carrying the cluster size). Both are top-k by (size descending, keeper
# id), which does not depend on the order of merging: a partial summary drops a cluster only when
# it holds k better ones, and then the cluster cannot be among the k best overall either.


def add_keeper(keepers: list, record: Record, size_field: str, k: int, signal_names: Sequence[str],
               snippet_of: str = "text") -> None:
    size = record.get(size_field) or 0
    if size < 2:
        return
    key = (-size, record["id"])
    if len(keepers) < k or key < keepers[-1][0]:
        add_smallest(keepers, key, record_sample(record, signal_names, snippet_of), k)


def add_member(clusters: dict[str, Any], record: Record, size_field: str, k: int, members: int,
               signal_names: Sequence[str], snippet_of: str = "text") -> None:
    keeper = record.get("dup_of")
    if keeper is None:
        return
    size = record.get(size_field) or 0
    cluster = clusters.get(keeper)
    if cluster is None:
        if len(clusters) >= k and (-size, keeper) > _worst(clusters):
            return
        cluster = clusters[keeper] = {"size": size, "members": []}
    add_smallest(cluster["members"], record["id"], record_sample(record, signal_names, snippet_of), members)
    _trim_clusters(clusters, k)


def _worst(clusters: dict[str, Any]) -> tuple:
    return max((-c["size"], keeper) for keeper, c in clusters.items())


def _trim_clusters(clusters: dict[str, Any], k: int) -> None:
    while len(clusters) > k:
        del clusters[_worst(clusters)[1]]


def merge_clusters(accs: Iterable[dict[str, Any]], k: int, members: int) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for acc in accs:
        for keeper, cluster in acc.items():
            if keeper in merged:
                merged[keeper]["members"] = merge_smallest([merged[keeper]["members"], cluster["members"]], members)
            else:
                merged[keeper] = {"size": cluster["size"], "members": list(cluster["members"])}
    _trim_clusters(merged, k)
    return merged


def top_clusters(keepers: list, clusters: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """The k largest clusters, each with its keeper (when kept in this run) and removed members."""
    by_keeper = {key[1]: {"size": -key[0], "keeper": sample} for key, sample in keepers}
    for keeper, cluster in clusters.items():
        by_keeper.setdefault(keeper, {"size": cluster["size"], "keeper": {"id": keeper}})
    ranked = sorted(by_keeper.items(), key=lambda kv: (-kv[1]["size"], kv[0]))[:k]
    return [{**info, "members": [sample for _, sample in clusters.get(keeper, {}).get("members", [])]}
            for keeper, info in ranked]


def dedup_size_field(stage_class: type | None) -> str | None:
    """A dedup stage declares ``dup_of`` and a ``*cluster_size`` signal; others return None."""
    names = [f.name for f in getattr(stage_class, "signal_fields", ())]
    sizes = [n for n in names if n.endswith("cluster_size")]
    return sizes[0] if "dup_of" in names and sizes else None


def names_keeper_only(stage_class: type | None) -> bool:
    """A dedup stage whose duplicates name their keeper (``dup_of``) but that records no cluster
    size: its clusters are counted from the removed members (``MemberClusters``)."""
    names = [f.name for f in getattr(stage_class, "signal_fields", ())]
    return "dup_of" in names and dedup_size_field(stage_class) is None


# A cluster counted from its removed members: the keeper and every record naming it.
CLUSTER_SIZE_BINS = COUNT_BINS


# ---- the Beam side --------------------------------------------------------------------------


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
    def for_stages(cls, stages: Sequence[str], stage_classes: Iterable[type] = TEXT_STAGES,
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


class _BundleStatsFn(beam.DoFn):
    """Stats of the records of one bundle, emitted once at its end (see the module doc)."""

    def __init__(self, plan: StatsPlan, stage: str, side: str):
        self._plan, self._stage, self._side = plan, stage, side
        self._acc: Summary | None = None

    def start_bundle(self) -> None:
        self._acc = None

    def process(self, record: Record) -> Iterator[Any]:
        if self._acc is None:
            self._acc = empty_stats()
        add_to_stats(self._acc, self._plan, self._stage, self._side, record)
        return iter(())

    def finish_bundle(self) -> Iterator[Any]:
        if self._acc is not None:
            yield GlobalWindows.windowed_value(self._acc)
            self._acc = None


class MergeStatsFn(beam.CombineFn):
    """Merges partial stats of any bundles, stages and sides into the stats document."""

    def __init__(self, plan: StatsPlan):
        self._plan = plan

    def create_accumulator(self) -> Summary:
        return empty_stats()

    def add_input(self, acc: Summary, partial: Summary) -> Summary:
        return merge_stats([acc, partial], self._plan)

    def merge_accumulators(self, accs: Iterable[Summary]) -> Summary:
        return merge_stats(accs, self._plan)

    def extract_output(self, acc: Summary) -> dict[str, Any]:
        return stats_document(acc, self._plan)


def _keyed_member(record: Record, signal_names: Sequence[str], snippet_of: str) -> tuple[str, tuple[str, Any]]:
    return record["dup_of"], (record["id"], record_sample(record, signal_names, snippet_of))


class _MembersFn(beam.CombineFn):
    """Per keeper: how many records name it in ``dup_of``, and the smallest ids among them."""

    def __init__(self, members: int):
        self._members = members

    def create_accumulator(self) -> list:
        return [0, []]

    def add_input(self, acc: list, member: tuple[str, dict[str, Any]]) -> list:
        acc[0] += 1
        add_smallest(acc[1], member[0], member[1], self._members)
        return acc

    def merge_accumulators(self, accs: Iterable[list]) -> list:
        accs = list(accs)
        return [sum(a[0] for a in accs), merge_smallest((a[1] for a in accs), self._members)]

    def extract_output(self, acc: list) -> list:
        return acc


class _MemberClustersFn(beam.CombineFn):
    """(keeper, [members, smallest]) of one stage into a partial stats summary: the cluster-size
    histogram and the largest clusters (a cluster: the keeper and the records naming it)."""

    def __init__(self, plan: StatsPlan, stage: str):
        self._plan, self._stage = plan, stage

    def create_accumulator(self) -> Summary:
        acc = empty_stats()
        acc["clusters"][self._stage] = {}
        acc["cluster_sizes"][self._stage] = histogram(CLUSTER_SIZE_BINS)
        return acc

    def add_input(self, acc: Summary, element: tuple[str, list]) -> Summary:
        keeper, (members, smallest) = element
        add_value(acc["cluster_sizes"][self._stage], CLUSTER_SIZE_BINS, members + 1)
        clusters = acc["clusters"][self._stage]
        clusters[keeper] = {"size": members + 1, "members": smallest}
        _trim_clusters(clusters, self._plan.top_clusters)
        return acc

    def merge_accumulators(self, accs: Iterable[Summary]) -> Summary:
        return merge_stats(accs, self._plan)

    def extract_output(self, acc: Summary) -> Summary:
        return acc


class CollectStats(beam.PTransform):
    """Profiles of every stage's kept and rejected outputs, samples and clusters, as one JSON.

    Apply to the pipeline: ``pipeline | "Stats" >> CollectStats(outputs, run_dir)`` where
    ``outputs`` has ``kept`` / ``rejected`` dicts of PCollections by stage (in order) and
    ``final`` (the published records). ``stage_classes`` and ``profile`` say what a job's
    records hold (the text job's by default; ``transforms.images.profile`` for images).
    """

    def __init__(self, outputs: Any, run_dir: str, stage_classes: Sequence[type] = TEXT_STAGES,
                 sample_size: int = 5, top_clusters: int = 10, cluster_members: int = 3,
                 profile: Profile = TEXT_PROFILE):
        super().__init__()
        if not outputs.kept:
            raise ValueError("outputs has no stages")
        self._outputs = outputs
        self._path = join(run_dir, STATS_FILE)
        self._plan = StatsPlan.for_stages(list(outputs.kept), stage_classes, profile, sample_size=sample_size,
                                          top_clusters=top_clusters, cluster_members=cluster_members)

    def expand(self, pbegin: pvalue.PBegin) -> beam.PCollection:
        outputs, plan = self._outputs, self._plan
        sources = [(stage, side, pcoll) for stage in plan.stages
                   for side, pcoll in ((KEPT, outputs.kept[stage]), (REJECTED, outputs.rejected[stage]))]
        final = getattr(outputs, "final", None)
        if final is not None and final is not outputs.kept[plan.stages[-1]]:
            sources.append((FINAL, KEPT, final))
        partials = [pcoll | f"Stats[{stage}.{side}]" >> beam.ParDo(_BundleStatsFn(plan, stage, side))
                    for stage, side, pcoll in sources]
        for stage in plan.member_clusters:
            partials.append(
                outputs.rejected[stage]
                | f"ClusterMembers[{stage}]" >> beam.Filter(lambda r: r.get("dup_of") is not None)
                | f"KeyByKeeper[{stage}]" >> beam.Map(_keyed_member, plan.signals[stage], plan.snippet_of)
                | f"CountMembers[{stage}]" >> beam.CombinePerKey(_MembersFn(plan.cluster_members))
                | f"Clusters[{stage}]" >> beam.CombineGlobally(_MemberClustersFn(plan, stage)).without_defaults()
            )
        return (
            partials
            | "AllStats" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(MergeStatsFn(plan))
            | "Write" >> beam.Map(_write_json, self._path)
        )


def _write_json(document: dict[str, Any], path: str) -> str:
    write_atomic(path, json.dumps(document, indent=1).encode())
    return path


def load_stats(path: str) -> dict[str, Any]:
    stats = json.loads(read_bytes(path))
    if stats.get("format") != STATS_FORMAT:
        raise ValueError(f"{path}: not a stats file of format {STATS_FORMAT}")
    return stats
