"""How each column is profiled: fixed bins for numbers, bounded counts for categories.

A job's ``Profile`` names its core columns and the signals that need bins of their own; every
other declared signal is profiled from its Arrow type (``field_stat``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from transforms.stage import Record
from transforms.summaries import Bins, fraction_bins, linear_bins, log_count_bins

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


def stage_fields(stage_names: Sequence[str], stage_classes: Iterable[type],
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


def field_value(record: Record, stat: FieldStat) -> Any:
    """The value ``stat`` profiles: the column itself, or the length of the column it is derived from."""
    if stat.length_of is not None:
        text = record.get(stat.length_of)
        return None if text is None else len(text)
    return record.get(stat.name)
