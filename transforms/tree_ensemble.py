"""Gradient-boosted trees read from JSON and evaluated with numpy, for the block classifier.

sklearn trains the model (benchmarks/train_extractor.py) but is not needed to apply it: the
trees are padded into arrays, leaves point at themselves, and every block descends every tree
at once, one numpy step per level.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# A leaf's threshold: no feature value is above it, so a leaf's descent stays on the leaf.
_NEVER = float(np.finfo(np.float64).max)


class TreeEnsemble:
    """A binary classifier: baseline + sum of leaf values, through the logistic function."""

    def __init__(self, spec: dict):
        trees = spec["trees"]
        offsets = np.cumsum([0] + [len(tree["feature"]) for tree in trees])
        self.feature = np.concatenate([tree["feature"] for tree in trees]).astype(np.intp)
        self.threshold = np.concatenate([tree["threshold"] for tree in trees]).astype(float)
        # Children are adjacent: a node's next node is first_child + (value > threshold).
        self.first_child = np.concatenate(
            [np.asarray(tree["first_child"]) + offset for tree, offset in zip(trees, offsets)]
        ).astype(np.intp)
        self.value = np.concatenate([tree["value"] for tree in trees]).astype(float)
        self.roots = offsets[:-1].astype(np.intp)
        self.depth = int(spec["max_depth"])
        self.baseline = float(spec["baseline"])
        self.feature_names = tuple(spec["feature_names"])

    @classmethod
    def load(cls, path: Path) -> TreeEnsemble:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The probability of the positive class for each row of ``x``."""
        if len(x) == 0:
            return np.zeros(0)
        x = np.ascontiguousarray(x, dtype=float)
        flat = x.ravel()
        row_start = (np.arange(len(x)) * x.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots)))
        for _ in range(self.depth):
            values = flat.take(row_start + self.feature.take(node))
            node = self.first_child.take(node) + (values > self.threshold.take(node))
        raw = self.baseline + self.value.take(node).sum(axis=1)
        return 1.0 / (1.0 + np.exp(-raw))


def _breadth_first(nodes) -> dict:
    """One sklearn tree renumbered so that each split's children are adjacent (left first);
    a leaf is its own first child."""
    order = [0]
    position = {0: 0}
    for index in order:
        if not nodes[index]["is_leaf"]:
            for child in (int(nodes[index]["left"]), int(nodes[index]["right"])):
                position[child] = len(order)
                order.append(child)
    tree = {"feature": [], "threshold": [], "first_child": [], "value": []}
    for index in order:
        node = nodes[index]
        if node["is_leaf"]:
            tree["feature"].append(0)
            tree["threshold"].append(_NEVER)
            tree["first_child"].append(position[index])
            tree["value"].append(float(node["value"]))
        else:
            tree["feature"].append(int(node["feature_idx"]))
            tree["threshold"].append(float(node["num_threshold"]))
            tree["first_child"].append(position[int(node["left"])])
            tree["value"].append(0.0)
    return tree


def export_sklearn(model, feature_names: tuple[str, ...]) -> dict:
    """The JSON form of a fitted binary ``HistGradientBoostingClassifier`` (numeric features,
    no missing values)."""
    predictors = [predictor for (predictor,) in model._predictors]
    return {
        "kind": "gradient_boosted_trees",
        "feature_names": list(feature_names),
        "baseline": float(np.ravel(model._baseline_prediction)[0]),
        "max_depth": max(int(p.nodes["depth"].max()) for p in predictors),
        "trees": [_breadth_first(p.nodes) for p in predictors],
    }
