"""The Beam side of the stats: per-bundle partial summaries, one merge, one JSON file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

from run_folder.layout import STAGING_DIR, STATS_NAME
from run_folder.staged import write_staged
from run_folder.storage import read_bytes
from transforms.stage import Record
from transforms.stats.accumulate import (
    FINAL,
    KEPT,
    REJECTED,
    STATS_FORMAT,
    StatsPlan,
    add_to_stats,
    empty_stats,
    merge_stats,
    stats_document,
)
from transforms.stats.clusters import CLUSTER_SIZE_BINS, trim_clusters
from transforms.stats.fields import TEXT_PROFILE, Profile
from transforms.stats.samples import record_sample
from transforms.summaries import Summary, add_smallest, add_value, histogram, merge_smallest

STATS_FILE = f"{STAGING_DIR}/{STATS_NAME}.json"  # relative to the run folder

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
        trim_clusters(clusters, self._plan.top_clusters)
        return acc

    def merge_accumulators(self, accs: Iterable[Summary]) -> Summary:
        return merge_stats(accs, self._plan)

    def extract_output(self, acc: Summary) -> Summary:
        return acc


class CollectStats(beam.PTransform):
    """Profiles of every stage's kept and rejected outputs, samples and clusters, as one JSON.

    Apply to the pipeline: ``pipeline | "Stats" >> CollectStats(outputs, run_dir, stages)`` where
    ``outputs`` has ``kept`` / ``rejected`` dicts of PCollections by stage (in order) and
    ``final`` (the published records). ``stage_classes`` (the job's) and ``profile`` say what a
    job's records hold (``profile``: the text job's by default; ``transforms.images.profile`` for images).
    """

    def __init__(self, outputs: Any, run_dir: str, stage_classes: Sequence[type],
                 sample_size: int = 5, top_clusters: int = 10, cluster_members: int = 3,
                 profile: Profile = TEXT_PROFILE):
        super().__init__()
        if not outputs.kept:
            raise ValueError("outputs has no stages")
        self._outputs = outputs
        self._run_dir = run_dir
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
            | "Write" >> beam.Map(write_staged, self._run_dir, STATS_NAME)
        )


def load_stats(path: str) -> dict[str, Any]:
    stats = json.loads(read_bytes(path))
    if stats.get("format") != STATS_FORMAT:
        raise ValueError(f"{path}: not a stats file of format {STATS_FORMAT}")
    return stats
