"""Balance: a cap on documents per registered domain, then optional per-language quotas.

A few sites can dominate a crawl (RefinedWeb and FineWeb report single domains with millions of
pages); a cap keeps any one from setting the corpus' style. Which documents a cap keeps is
deterministic, by ``keep_by``:
- ``hash``: the smallest blake2b hashes of the record ids, a uniform sample that does not
  depend on input order, sharding or runner;
- ``quality_score``: the highest ``quality_score`` (the ``quality_model`` signal; records
  without one come last), ties by the id hash.

The domain is the record's ``domain`` column (the registered domain, ``bbc.co.uk`` for
``news.bbc.co.uk``, from tldextract's bundled suffix list at read time); records without one
are not capped. Language quotas use the ``lang`` column of the language stage:
``language_quotas`` per language, ``default_language_quota`` for the others (None: no quota).

Beam: (key, rank) pairs → ``Top.SmallestPerKey`` (a combiner: it holds at most the cap's
number of ranks per key) → the kept ids meet their records in a ``CoGroupByKey`` on id. Rejected:
``balance.domain_cap`` and ``balance.language_quota``. Signal: ``balance_rank`` (the hash part
of the rank, in [0, 1)), so a finished run can be re-capped without recomputing.

``stats`` (also written to ``_staging/balance.json``, see ``load_balance_stats``): documents per
language and per domain before and after, the domains limited to the ``report_top_domains``
largest before balancing plus the totals.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from run_folder.staged import load_staged, write_staged
from transforms.spilled_shuffle import SpilledCoGroupByKey
from transforms.stage import (
    KEPT,
    REJECTED,
    GlobalStep,
    Record,
    RunContext,
    SignalRules,
    StageResult,
    rejected,
)

STAGE = "balance"
STAGED = "balance"  # its report data, ``_staging/balance.json`` (``run_folder.staged``)
KEEP_BY = ("hash", "quality_score")
NO_LANGUAGE = "und"


@dataclass(frozen=True)
class BalanceConfig:
    # Off by default: caps and quotas depend on the corpus being built.
    enabled: bool = False
    max_per_domain: int | None = None
    keep_by: str = "hash"
    language_quotas: dict[str, int] = field(default_factory=dict)
    default_language_quota: int | None = None
    report_top_domains: int = 100

    def __post_init__(self) -> None:
        if self.keep_by not in KEEP_BY:
            raise ValueError(f"keep_by must be one of {KEEP_BY}, got {self.keep_by!r}")
        for name, value in {
            "max_per_domain": self.max_per_domain,
            "default_language_quota": self.default_language_quota,
            **{f"language_quotas[{k}]": v for k, v in self.language_quotas.items()},
        }.items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.report_top_domains < 0:
            raise ValueError(f"report_top_domains must be >= 0, got {self.report_top_domains}")
        if self.enabled and not self.caps_anything:
            raise ValueError("balance is enabled but sets no max_per_domain or language quota")

    @property
    def caps_anything(self) -> bool:
        return bool(self.max_per_domain or self.language_quotas or self.default_language_quota)


def id_hash(record_id: str) -> float:
    digest = hashlib.blake2b(record_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def rank(record: Record, keep_by: str) -> tuple:
    """Smaller ranks are kept first."""
    tie = (id_hash(record["id"]), record["id"])
    if keep_by == "quality_score":
        score = record.get("quality_score")
        return (score is None, -(score or 0.0), *tie)
    return tie


def language_of(record: Record) -> str:
    return record.get("lang") or NO_LANGUAGE


class _Cap(beam.PTransform):
    """Keep the ``limit_of(key)`` smallest ranks per ``key_of(record)``; reject the rest."""

    def __init__(self, key_of, limit_of, keep_by: str, reason: str, label: str, run: RunContext | None):
        super().__init__(label=label)
        self._key_of, self._limit_of, self._keep_by, self._reason = key_of, limit_of, keep_by, reason
        self._run = run

    def expand(self, records: beam.PCollection) -> pvalue.DoOutputsTuple:
        key_of, limit_of, keep_by = self._key_of, self._limit_of, self._keep_by
        capped = records | "Capped" >> beam.Filter(lambda r: limit_of(key_of(r)) is not None)
        # The limit travels with each rank: a CombineFn does not see its key.
        keepers = (
            capped
            | "Rank" >> beam.Map(lambda r: (key_of(r), (limit_of(key_of(r)), rank(r, keep_by))))
            | "KeepSmallest" >> beam.CombinePerKey(_SmallestN())
            | "KeptIds" >> beam.FlatMapTuple(lambda key, ranks: ((r[-1], True) for r in ranks))
        )
        keyed = records | "KeyById" >> beam.Map(lambda r: (r["id"], r))
        reason = self._reason

        def emit(_: str, grouped: dict[str, list]) -> Iterator[Any]:
            kept = bool(grouped["kept"])
            for record in grouped["record"]:
                if kept or limit_of(key_of(record)) is None:
                    yield record
                else:
                    detail = f"{key_of(record)} over {limit_of(key_of(record))}"
                    yield pvalue.TaggedOutput(REJECTED, rejected(record, STAGE, reason, detail))

        return (
            {"record": keyed, "kept": keepers}
            | "Join" >> SpilledCoGroupByKey.for_run(self._run, "record", stream_large=True)
            | "Split" >> beam.FlatMapTuple(emit).with_outputs(REJECTED, main=KEPT)
        )


class _SmallestN(beam.CombineFn):
    """The ``n`` smallest ranks of (n, rank) inputs; holds at most ~2n ranks (pruned in bulk,
    so adding is amortised O(log n))."""

    def create_accumulator(self) -> tuple[int, list]:
        return (0, [])

    def add_input(self, acc: tuple[int, list], element: tuple[int, tuple]) -> tuple[int, list]:
        limit, value = element
        ranks = acc[1]
        ranks.append(value)
        if len(ranks) >= 2 * limit + 16:
            ranks = heapq.nsmallest(limit, ranks)
        return (limit, ranks)

    def merge_accumulators(self, accs: Iterable[tuple[int, list]]) -> tuple[int, list]:
        limit, ranks = 0, []
        for acc_limit, acc_ranks in accs:
            limit = max(limit, acc_limit)
            ranks.extend(acc_ranks)
        return (limit, heapq.nsmallest(limit, ranks))

    def extract_output(self, acc: tuple[int, list]) -> list:
        return heapq.nsmallest(acc[0], acc[1])


def _distribution_keys(record: Record, when: str) -> Iterator[tuple[tuple[str, str, str], int]]:
    yield (when, "language", language_of(record)), 1
    yield (when, "domain", record.get("domain") or ""), 1


def _distribution(top_domains: int):
    def build(counts: list[tuple[tuple[str, str, str], int]]) -> dict[str, Any]:
        table: dict[str, dict[str, dict[str, int]]] = {
            when: {"language": {}, "domain": {}} for when in ("before", "after")
        }
        for (when, kind, key), count in counts:
            table[when][kind][key] = count
        before_domains = table["before"]["domain"]
        top = sorted(before_domains, key=lambda d: (-before_domains[d], d))[:top_domains]
        return {
            "language": {
                lang: {"before": n, "after": table["after"]["language"].get(lang, 0)}
                for lang, n in sorted(table["before"]["language"].items())
            },
            "domain": {
                d: {"before": before_domains[d], "after": table["after"]["domain"].get(d, 0)} for d in top
            },
            "domains": {"before": len(before_domains), "after": len(table["after"]["domain"])},
            "documents": {
                "before": sum(table["before"]["language"].values()),
                "after": sum(table["after"]["language"].values()),
            },
        }

    return build


class Balance(GlobalStep):
    """Capped and quota'd records on ``kept``; the others on ``rejected``; ``stats`` after expand."""

    name = STAGE
    config_class = BalanceConfig
    reasons = ("domain_cap", "language_quota")
    signal_rules = SignalRules(required=False)
    signal_fields = (pa.field("balance_rank", pa.float64()),)

    def __init__(self, config: BalanceConfig, run: RunContext | None = None):
        if not config.caps_anything:
            raise ValueError("Balance needs max_per_domain or a language quota")
        super().__init__(config, run)
        self.run = run
        self.run_dir = run.run_dir if run is not None else None
        self.stats: beam.PCollection | None = None

    def expand(self, records: beam.PCollection) -> StageResult:
        config = self.config
        ranked = records | "RankSignal" >> beam.Map(lambda r: {**r, "balance_rank": id_hash(r["id"])})
        kept, rejected_parts = ranked, []
        if config.max_per_domain:
            cap = config.max_per_domain
            out = kept | "DomainCap" >> _Cap(
                lambda r: r.get("domain"),
                lambda domain: cap if domain else None,
                config.keep_by,
                "domain_cap",
                "DomainCap",
                self.run,
            )
            kept, rejected_parts = out.kept, [*rejected_parts, out.rejected]
        quotas, default = dict(config.language_quotas), config.default_language_quota
        if quotas or default:
            out = kept | "LanguageQuota" >> _Cap(
                language_of,
                lambda lang: quotas.get(lang, default),
                config.keep_by,
                "language_quota",
                "LanguageQuota",
                self.run,
            )
            kept, rejected_parts = out.kept, [*rejected_parts, out.rejected]
        rejected_all = tuple(rejected_parts) | "AllRejected" >> beam.Flatten()
        before = (kept, rejected_all) | "Before" >> beam.Flatten()
        self.stats = (
            (
                before | "CountBefore" >> beam.FlatMap(_distribution_keys, "before"),
                kept | "CountAfter" >> beam.FlatMap(_distribution_keys, "after"),
            )
            | "AllCounts" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "Gather" >> beam.combiners.ToList()
            | "Distribution" >> beam.Map(_distribution(config.report_top_domains))
        )
        if self.run_dir is not None:
            _ = self.stats | "WriteStats" >> beam.Map(write_staged, self.run_dir, STAGED)
        return StageResult(kept, rejected_all)


def load_balance_stats(run_dir: str) -> dict[str, Any]:
    """Before/after distributions a run wrote (read it before ``seal_run`` clears ``_staging``)."""
    return load_staged(run_dir, STAGED)
