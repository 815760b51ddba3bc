"""Drift between two runs of the same dataset: Jensen-Shannon distance per distribution.

The distributions compared (all from data the runs already keep):

- ``funnel``: where input records went: kept, or each reject reason (from the manifests);
- ``input.domain``: the domains of the records read;
- ``after.<field>``: every profiled column of the published records: text length, language,
  domain, each numeric signal (its fixed-bin histogram) and each categorical signal;
- ``clusters.<stage>``: sizes of the duplicate clusters of a dedup stage that counts them from
  the removed members (the images job's).

The measure is the Jensen-Shannon distance with base-2 logarithms: the square root of
``JSD(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M)`` with ``M = ½ (P + Q)``. It is symmetric, defined when a
bin is empty on one side (unlike KL), bounded in [0, 1] (0: same shares; 1: no value in common)
and a metric. Histograms have fixed bins (``transforms.summaries``), so two runs' bins line up.
Categorical counts are aligned on the union of their values; what a bounded summary left out
is one "(other)" bin.

Two samples of one distribution differ by chance; with ``B`` non-empty bins and ``n1``, ``n2``
values, the expected JSD is about ``(B-1)/(8 ln 2) · (1/n1 + 1/n2)`` (second-order expansion of
the JSD around ``M``; each bin's share varies by ``m(1-m)/n``). A distribution raises an alarm
when its distance reaches the threshold *and* is more than twice that sampling noise, so
small runs do not cry wolf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

DEFAULT_THRESHOLD = 0.2
NOISE_FACTOR = 2.0
MEASURE = "jensen_shannon_distance_base2"
OTHER = "(other)"


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2) between two count vectors over the same bins."""
    if len(p) != len(q):
        raise ValueError(f"distributions of {len(p)} and {len(q)} bins")
    sp, sq = float(sum(p)), float(sum(q))
    if sp <= 0 or sq <= 0:
        raise ValueError("an empty distribution has no distance")
    divergence = 0.0
    for a, b in zip(p, q):
        a, b = a / sp, b / sq
        m = (a + b) / 2
        if a > 0:
            divergence += 0.5 * a * math.log2(a / m)
        if b > 0:
            divergence += 0.5 * b * math.log2(b / m)
    return math.sqrt(max(divergence, 0.0))


def sampling_noise(n1: int, n2: int, bins: int) -> float:
    """The JS distance two samples of one distribution show by chance (see module doc)."""
    if n1 <= 0 or n2 <= 0 or bins <= 1:
        return 0.0
    return math.sqrt((bins - 1) / (8 * math.log(2)) * (1 / n1 + 1 / n2))


def _counts_vector(top: dict[str, Any]) -> dict[str, float]:
    vector = dict(top["counts"])
    other = top["total"] - sum(vector.values())
    if other > 0:
        vector[OTHER] = vector.get(OTHER, 0) + other
    return vector


def distributions(stats: dict[str, Any], manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every compared distribution of a run: ``{name: {"labels": [...], "counts": [...]}}``."""
    out: dict[str, dict[str, Any]] = {}
    funnel: dict[str, float] = {"kept": manifest["funnel"][-1]["kept"] if manifest["funnel"] else 0}
    for row in manifest["funnel"]:
        funnel.update(row["reasons"])
    out["funnel"] = {"labels": list(funnel), "counts": list(funnel.values())}
    first = stats["stages"][0]
    domain = stats["profiles"][first]["kept"]["counts"].get("domain")
    if domain is not None:
        vector = _counts_vector(domain)
        out["input.domain"] = {"labels": list(vector), "counts": list(vector.values())}
    final = stats["final"]
    for name, hist in final["hist"].items():
        labels = stats["fields"][name]["bins"]["labels"]
        out[f"after.{name}"] = {"labels": labels, "counts": list(hist["counts"])}
    for name, top in final["counts"].items():
        if name == "source":  # input file names change from run to run by design
            continue
        vector = _counts_vector(top)
        out[f"after.{name}"] = {"labels": list(vector), "counts": list(vector.values())}
    for stage, info in stats.get("clusters", {}).items():
        if "sizes" in info:
            out[f"clusters.{stage}"] = {"labels": info["labels"], "counts": list(info["sizes"]["counts"])}
    return out


def _align(current: dict[str, Any], previous: dict[str, Any]) -> tuple[list[str], list[float], list[float]]:
    if current["labels"] == previous["labels"]:
        return current["labels"], current["counts"], previous["counts"]
    a = dict(zip(current["labels"], current["counts"]))
    b = dict(zip(previous["labels"], previous["counts"]))
    labels = list(dict.fromkeys([*a, *b]))
    return labels, [a.get(k, 0) for k in labels], [b.get(k, 0) for k in labels]


def _top_changes(labels: list[str], p: list[float], q: list[float], limit: int = 3) -> list[dict[str, Any]]:
    sp, sq = sum(p) or 1, sum(q) or 1
    changes = [(label, a / sp, b / sq) for label, a, b in zip(labels, p, q)]
    changes.sort(key=lambda c: (-abs(c[1] - c[2]), c[0]))
    return [{"value": label, "current": round(a, 4), "previous": round(b, 4)}
            for label, a, b in changes[:limit] if a != b]


def compare(current: dict[str, dict[str, Any]], previous: dict[str, dict[str, Any]],
            threshold: float = DEFAULT_THRESHOLD) -> list[dict[str, Any]]:
    """One row per distribution the two runs share: distance, noise, status."""
    if not 0 < threshold <= 1:
        raise ValueError(f"drift threshold must be in (0, 1], got {threshold}")
    rows = []
    for name in current:
        if name not in previous:
            continue
        labels, p, q = _align(current[name], previous[name])
        n1, n2 = sum(p), sum(q)
        row: dict[str, Any] = {"name": name, "n_current": n1, "n_previous": n2}
        if n1 <= 0 or n2 <= 0:
            rows.append({**row, "distance": None, "noise": None, "status": "no data", "alarm": False})
            continue
        distance = js_distance(p, q)
        bins = sum(1 for a, b in zip(p, q) if a or b)
        noise = sampling_noise(int(n1), int(n2), bins)
        alarm = distance >= threshold and distance > NOISE_FACTOR * noise
        status = "alarm" if alarm else ("within noise" if distance >= threshold else "ok")
        rows.append({**row, "distance": round(distance, 4), "noise": round(noise, 4), "status": status,
                     "alarm": alarm, "top_changes": _top_changes(labels, p, q)})
    return rows


def describe_alarm(row: dict[str, Any]) -> str:
    changes = ", ".join(f"{c['value']} {c['previous']:.1%}→{c['current']:.1%}" for c in row.get("top_changes", []))
    return f"{row['name']}: JS distance {row['distance']:.3f} (noise {row['noise']:.3f}); {changes}"
