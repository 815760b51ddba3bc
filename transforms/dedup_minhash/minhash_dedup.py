"""``MinHashDedup``: near-duplicate removal within a run and against earlier runs.

1. Sign: records in batches -> word n-gram shingles -> datasketch ``affine32`` signatures
   (vectorised over the batch) -> one 64-bit key per band (``shingles``, ``signatures``, ``bands``).
2. Candidates (``candidates``): (band key, node) pairs, with the published keys of earlier runs when an index
   is given (``index.ReadBandIndex``), meet in one ``SpilledGroupByKey`` (a pair per band and
   document would be the largest shuffle of the text job); each bucket links its members to
   its smallest node (a star), or, when verifying, every pair of a small bucket. With
   ``verify_threshold`` (the default) each candidate pair of this run is checked by estimated
   Jaccard (two joins on node) before it becomes an edge.
3. Components: large-star / small-star rounds over the edges (``components``); each node is
   named by the keeper policy (``keeper``), so a component's label is its keeper, or an
   earlier run's document when the component reaches one.
4. Decide: every member, with its signature (a join on node), learns its component's label and
   size and its estimated Jaccard with the keeper (a join on the label), then each record its
   decision (a join on id). The joins that carry signatures or records go through spill files
   (``SpilledCoGroupByKey``), so memory stays bounded. Kept records stay; the others are
   rejected as
   ``dedup_minhash.near_duplicate`` or ``dedup_minhash.near_duplicate_of_previous_run``, with
   ``dup_of`` and ``minhash_jaccard`` (the evidence). Every record gets ``minhash_cluster_id``
   (the keeper's id; for a component that reaches an earlier run, that run's document id) and
   ``minhash_cluster_size`` (its nodes, earlier-run documents included).
5. Report and index: one stats dict (``stats.MinHashStatsFn``) on ``self.stats`` and in
   ``<run_dir>/_staging/dedup_minhash.json``; with an index, the kept documents' band table is
   staged under ``<run_dir>/_dedup_bands/`` for ``index.publish_band_table`` after ``_SUCCESS``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

from run_folder.staged import load_staged, write_staged
from transforms.dedup_minhash.bands import band_keys
from transforms.dedup_minhash.candidates import FACTS, VerifyEdges, bucket_edges
from transforms.dedup_minhash.components import ConnectedComponents
from transforms.dedup_minhash.config import MinHashDedupConfig, band_params
from transforms.dedup_minhash.index import ReadBandIndex, StageBandTable, band_rows, check_run_id
from transforms.dedup_minhash.keeper import current_node, is_previous, node_id, previous_run
from transforms.dedup_minhash.shingles import shingle_hashes
from transforms.dedup_minhash.signatures import MinHasher, estimated_jaccard
from transforms.dedup_minhash.stats import MinHashStatsFn
from transforms.spilled_shuffle import SpilledCoGroupByKey, SpilledGroupByKey
from transforms.stage import (
    DEDUP,
    KEPT,
    REJECTED,
    GlobalStep,
    Record,
    RunContext,
    SignalRules,
    StageResult,
    rejected,
)

STAGE = "dedup_minhash"
NEAR_DUPLICATE = "near_duplicate"
NEAR_DUPLICATE_OF_PREVIOUS_RUN = "near_duplicate_of_previous_run"
STAGED = "dedup_minhash"  # its report data, ``_staging/dedup_minhash.json`` (``run_folder.staged``)

_BANDS = "bands"
_SIGNATURES = "signatures"


class _SignFn(beam.DoFn):
    """A batch of records -> (id, (record, node, band keys)) on the main output, (band key, node)
    on ``bands``, (node, signature) on ``signatures``, doc counts on ``facts``."""

    def __init__(self, config: MinHashDedupConfig):
        self._config = config

    def setup(self) -> None:
        self._hasher = MinHasher(self._config.num_perm, self._config.seed)

    def start_bundle(self) -> None:
        self._docs = self._empty = 0

    def process(self, batch: list[Record]) -> Iterator[Any]:
        config = self._config
        hashes, offsets = shingle_hashes([record.get("text") for record in batch], config.ngram)
        signatures = self._hasher.signatures(hashes, offsets)
        keys = band_keys(signatures, config.bands, config.rows)
        has_shingles = np.diff(offsets) > 0
        self._docs += len(batch)
        self._empty += int(np.count_nonzero(~has_shingles))
        for i, record in enumerate(batch):
            node = current_node(record, config.keeper_policy, config.quality_field)
            if not has_shingles[i]:
                yield record["id"], (record, node, None)
                continue
            record_keys = keys[i].tolist()
            yield record["id"], (record, node, record_keys)
            for key in record_keys:
                yield pvalue.TaggedOutput(_BANDS, (key, node))
            yield pvalue.TaggedOutput(_SIGNATURES, (node, signatures[i].tobytes()))

    def finish_bundle(self) -> Iterator[Any]:
        fact = ("docs", self._docs, self._empty)
        yield pvalue.TaggedOutput(FACTS, GlobalWindows.windowed_value(fact))


class _ClusterFn(beam.CombineFn):
    """Per component label: (nodes, nodes of this run, smallest example nodes)."""

    def __init__(self, examples: int):
        self._examples = examples

    def create_accumulator(self) -> tuple[int, int, list[str]]:
        return (0, 0, [])

    def add_input(self, acc: tuple[int, int, list[str]], node: str) -> tuple[int, int, list[str]]:
        size, current, examples = acc
        if not is_previous(node):
            current += 1
            examples = sorted([*examples, node])[: self._examples]
        return (size + 1, current, examples)

    def merge_accumulators(self, accs: Iterable[tuple[int, int, list[str]]]) -> tuple[int, int, list[str]]:
        size = current = 0
        examples: list[str] = []
        for acc_size, acc_current, acc_examples in accs:
            size += acc_size
            current += acc_current
            examples = sorted(examples + acc_examples)[: self._examples]
        return (size, current, examples)

    def extract_output(self, acc: tuple[int, int, list[str]]) -> tuple[int, int, list[str]]:
        return acc


def _with_signature(kv: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, bytes | None]]]:
    """(label, (node, signature)) of a node in a component; earlier-run nodes have none."""
    node, grouped = kv
    signature = grouped["signature"][0] if grouped["signature"] else None
    for label in grouped["label"]:
        yield label, (node, signature)


def _member_decisions(kv: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, str, int, float | None]]]:
    """(node, (node, label, size, estimated Jaccard with the keeper)) of each member of this run.
    Two passes over the members (the keeper's signature first), so a cluster is never held."""
    label, grouped = kv
    ((size, _current, _examples),) = grouped["cluster"]
    keeper = next((sig for node, sig in grouped["members"] if node == label and sig is not None), None)
    keeper_signature = None if keeper is None else np.frombuffer(keeper, dtype=np.uint32)
    for node, signature in grouped["members"]:
        if is_previous(node):
            continue
        jaccard = None
        if node != label and keeper_signature is not None and signature is not None:
            jaccard = estimated_jaccard(np.frombuffer(signature, dtype=np.uint32), keeper_signature)
        yield node, (node, label, size, jaccard)


class _SplitFn(beam.DoFn):
    """Join of a record with its component (if any) -> kept or rejected, and band rows."""

    def __init__(self, policy_len: int, stage_bands: bool):
        self._policy_len = policy_len
        self._stage_bands = stage_bands

    def process(self, kv: tuple[str, dict[str, list]]) -> Iterator[Any]:
        doc_id, grouped = kv
        decisions = {node: (label, size, jaccard) for node, label, size, jaccard in grouped["decision"]}
        for record, node, keys in grouped["record"]:
            label, size, jaccard = decisions.get(node, (node, 1, None))
            out = {
                **record,
                "minhash_cluster_id": node_id(label, self._policy_len),
                "minhash_cluster_size": size,
                "minhash_jaccard": jaccard,
            }
            if label == node:
                out["dup_of"] = None
                yield out
                if self._stage_bands and keys is not None:
                    for row in band_rows(doc_id, keys):
                        yield pvalue.TaggedOutput(_BANDS, row)
                continue
            out["dup_of"] = out["minhash_cluster_id"]
            if is_previous(label):
                reason = NEAR_DUPLICATE_OF_PREVIOUS_RUN
                detail = f"dup_of={out['dup_of']} run_id={previous_run(label)} cluster_size={size}"
            else:
                reason = NEAR_DUPLICATE
                shown = "n/a" if jaccard is None else f"{jaccard:.2f}"
                detail = f"dup_of={out['dup_of']} jaccard={shown} cluster_size={size}"
            yield pvalue.TaggedOutput(REJECTED, rejected(out, STAGE, reason, detail))


def _cluster_fact(policy_len: int):
    def fact(kv: tuple[str, tuple[int, int, list[str]]]) -> tuple:
        label, (size, current, examples) = kv
        return (
            "cluster",
            node_id(label, policy_len),
            size,
            current,
            is_previous(label),
            [node_id(node, policy_len) for node in examples],
        )

    return fact


class MinHashDedup(GlobalStep):
    """Near-duplicates out: ``kept`` (main) and ``rejected`` outputs, stats on ``self.stats``.

    ``run_dir`` receives the stats file and, with ``index_uri``, the staged band table;
    ``run_id`` (default: the last part of ``run_dir``) names this run in the index.
    """

    name = STAGE
    config_class = MinHashDedupConfig
    role, cluster_size_field = DEDUP, "minhash_cluster_size"
    reasons = ("near_duplicate", "near_duplicate_of_previous_run")
    signal_rules = SignalRules(must_be_null=("dup_of", "minhash_jaccard"), ranges={"minhash_cluster_size": (1, None)})
    signal_fields = (
        pa.field("minhash_cluster_id", pa.string()),
        pa.field("minhash_cluster_size", pa.int32()),
        pa.field("dup_of", pa.string()),
        pa.field("minhash_jaccard", pa.float64()),
    )

    def __init__(
        self,
        config: MinHashDedupConfig | None = None,
        run_dir: str | None = None,
        index_uri: str | None = None,
        run_id: str | None = None,
        run: RunContext | None = None,
    ):
        if index_uri is not None and run_dir is None:
            raise ValueError("index_uri needs run_dir: the band table is staged in the run folder")
        super().__init__(config, run)
        self.run_dir = run_dir
        self.index_uri = index_uri
        self.run_id = run_id or (posixpath.basename(run_dir.rstrip("/")) if run_dir else None)
        if index_uri is not None:
            check_run_id(self.run_id)
        self.stats: beam.PCollection | None = None

    @classmethod
    def for_run(cls, config: MinHashDedupConfig, run: RunContext) -> MinHashDedup:
        return cls(config, run_dir=run.run_dir, index_uri=run.dedup_index, run_id=run.run_id, run=run)

    def expand(self, records: beam.PCollection) -> StageResult:
        config = self.config
        policy_len = len(config.keeper_policy)
        params = band_params(config)
        all_pairs_up_to = config.verify_all_pairs_up_to if config.verify_threshold is not None else 0
        signed = (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=config.batch_size)
            | "Sign" >> beam.ParDo(_SignFn(config)).with_outputs(_BANDS, _SIGNATURES, FACTS, main="records")
        )
        band_members = [signed[_BANDS]]
        if self.index_uri is not None:
            band_members.append(
                records.pipeline | "ReadIndex" >> ReadBandIndex(self.index_uri, params, self.run_id)
            )
        edges = (
            band_members
            | "AllBandMembers" >> beam.Flatten()
            | "GroupBands" >> SpilledGroupByKey(self._run)
            | "BucketEdges" >> beam.FlatMap(bucket_edges, all_pairs_up_to=all_pairs_up_to)
        )
        facts = [signed[FACTS]]
        if config.verify_threshold is not None:
            verify = VerifyEdges(config.verify_threshold, signed[_SIGNATURES], self._run)
            edges = edges | "Verify" >> verify
            facts.append(verify.facts)
        components = edges | "Components" >> ConnectedComponents(config.max_rounds)
        members = components["labels"] | "ByLabel" >> beam.KvSwap()
        clusters = members | "Clusters" >> beam.CombinePerKey(_ClusterFn(config.examples_per_cluster))
        signed_members = (
            {"label": components["labels"], "signature": signed[_SIGNATURES]}
            | "JoinSignatures" >> SpilledCoGroupByKey.for_run(self._run, "signature")
            | "WithSignature" >> beam.FlatMap(_with_signature)
        )
        decisions = (
            {"members": signed_members, "cluster": clusters}
            | "JoinClusters" >> SpilledCoGroupByKey.for_run(self._run, "members")
            | "MemberDecisions" >> beam.FlatMap(_member_decisions)
            | "ById" >> beam.Map(lambda kv: (node_id(kv[0], policy_len), kv[1]))
        )
        out = (
            {"record": signed.records, "decision": decisions}
            | "JoinRecords" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Split"
            >> beam.ParDo(_SplitFn(policy_len, self.index_uri is not None)).with_outputs(
                REJECTED, _BANDS, main=KEPT
            )
        )
        self.stats = (
            (
                *facts,
                clusters | "ClusterFacts" >> beam.Map(_cluster_fact(policy_len)),
                components["rounds"],
            )
            | "AllFacts" >> beam.Flatten()
            | "Stats" >> beam.CombineGlobally(MinHashStatsFn(config))
        )
        if self.run_dir is not None:
            _ = self.stats | "WriteStats" >> beam.Map(write_staged, self.run_dir, STAGED)
        if self.index_uri is not None:
            _ = out[_BANDS] | "StageBands" >> StageBandTable(self.run_dir, params)
        return StageResult(out[KEPT], out[REJECTED])


def load_minhash_stats(run_dir: str) -> dict[str, Any]:
    """The stats dict a run wrote (read it before ``seal_run`` clears ``_staging``)."""
    return load_staged(run_dir, STAGED)
