"""Dedup clusters: the largest ones, with their keeper and a few removed members.

The largest clusters are found from both sides of a dedup stage: keepers (kept records whose
cluster has more than one member) and removed members (rejected records, each naming its
keeper in ``dup_of`` and carrying the cluster size). Both are top-k by (size descending, keeper
id), which does not depend on the order of merging: a partial summary drops a cluster only when
it holds k better ones, and then the cluster cannot be among the k best overall either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from transforms.stage import DEDUP, Record
from transforms.stats.fields import COUNT_BINS
from transforms.stats.samples import record_sample
from transforms.summaries import add_smallest, merge_smallest


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
    trim_clusters(clusters, k)


def _worst(clusters: dict[str, Any]) -> tuple:
    return max((-c["size"], keeper) for keeper, c in clusters.items())


def trim_clusters(clusters: dict[str, Any], k: int) -> None:
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
    trim_clusters(merged, k)
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
    """The cluster-size signal a dedup step declares (``cluster_size_field``); None for others."""
    return stage_class.cluster_size_field if getattr(stage_class, "role", None) == DEDUP else None


def names_keeper_only(stage_class: type | None) -> bool:
    """A dedup step whose duplicates name their keeper (``dup_of``) but that records no cluster
    size: its clusters are counted from the removed members (``collect._MemberClustersFn``)."""
    return getattr(stage_class, "role", None) == DEDUP and stage_class.cluster_size_field is None


# A cluster counted from its removed members: the keeper and every record naming it.
CLUSTER_SIZE_BINS = COUNT_BINS
