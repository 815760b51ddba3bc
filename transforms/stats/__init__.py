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

The package, one concept per module: ``fields`` (how a column is profiled), ``profiles``,
``samples``, ``clusters`` (the mergeable summaries), ``accumulate`` (a whole job's summary and
its JSON document) and ``collect`` (the Beam transform, the stats file).
"""

from transforms.stats.accumulate import (
    KEPT,
    REJECTED,
    StatsPlan,
    add_to_stats,
    empty_stats,
    merge_stats,
    stats_document,
)
from transforms.stats.collect import STATS_FILE, CollectStats, load_stats
from transforms.stats.fields import (
    COUNT_BINS,
    DOMAIN_CAPACITY,
    FRACTION_BINS,
    UNPROFILED,
    FieldStat,
    Profile,
    field_stat,
)
from transforms.stats.profiles import merge_profiles
from transforms.stats.samples import snippet

__all__ = [
    "COUNT_BINS",
    "DOMAIN_CAPACITY",
    "FRACTION_BINS",
    "KEPT",
    "REJECTED",
    "STATS_FILE",
    "UNPROFILED",
    "CollectStats",
    "FieldStat",
    "Profile",
    "StatsPlan",
    "add_to_stats",
    "empty_stats",
    "field_stat",
    "load_stats",
    "merge_profiles",
    "merge_stats",
    "snippet",
    "stats_document",
]
