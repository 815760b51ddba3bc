import json

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from benchmarks.extraction_quality import page_tp_fp_fn
from benchmarks.train_extractor import block_labels
from benchmarks.wceb import DEFAULT_DATA as WCEB
from benchmarks.wceb import is_training_page
from benchmarks.wceb import load_pages as load_wceb
from transforms.extract import BOILERPLATE_MODEL, classifier_input, kept_text, page_blocks_of
from transforms.text_blocks import COUNT_COLUMNS, FEATURE_NAMES, features
from transforms.tree_ensemble import TreeEnsemble, export_sklearn

PAGE = """<html><body>
<ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul>
<h1>A headline about the river</h1>
<p>The river rose by two metres overnight, and the town's bridge was closed to traffic.
<a href="/more">Read more</a></p>
<p>First line<br>second line of the same paragraph</p>
<div>Loose text &amp; an entity</div>
<h2>A section</h2>
<div>Loose text after a heading</div>
</body></html>"""


def column(blocks, name):
    return blocks.counts[:, COUNT_COLUMNS.index(name)].tolist()


def test_blocks_carry_their_tag_links_and_lines():
    blocks = page_blocks_of(PAGE)
    assert blocks.texts == [
        "Home",
        "News",
        "A headline about the river",
        "The river rose by two metres overnight, and the town's bridge was closed to traffic. "
        "Read more",
        "First line",
        "second line of the same paragraph",
        "Loose text & an entity",
        "A section",
        "Loose text after a heading",
    ]
    # li, li, h, p, p, p (after <br>), text, h, text: a heading ends at its closing tag
    assert column(blocks, "tag") == [3, 3, 2, 1, 1, 1, 0, 2, 0]
    assert column(blocks, "list_depth") == [1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert column(blocks, "link_chars") == [4, 4, 0, 9, 0, 0, 0, 0, 0]
    assert column(blocks, "continues_block") == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    x = features(blocks, frozenset({"A headline about the river"}))
    assert x.shape == (9, len(FEATURE_NAMES)) and np.isfinite(x).all()
    assert x[:, FEATURE_NAMES.index("in_main_content")].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert x[0, FEATURE_NAMES.index("link_ratio")] == 1.0


def test_neighbour_and_window_features_read_the_blocks_around_each_block():
    blocks = page_blocks_of(PAGE)
    x = features(blocks, frozenset({"A headline about the river"}))

    def feature(name):
        return x[:, FEATURE_NAMES.index(name)].tolist()

    tags = [3, 3, 2, 1, 1, 1, 0, 2, 0]
    assert feature("prev_tag") == [-1, *tags[:-1]] and feature("next_tag") == [*tags[1:], -1]
    assert feature("prev_link_ratio")[:2] == [1.0, 1.0] and feature("next_link_ratio")[-1] == 1.0
    # The third block is in main content; the window is two blocks either side, cut at the ends.
    assert feature("window_in_main_content") == pytest.approx(
        [1 / 3, 1 / 4, 1 / 5, 1 / 5, 1 / 5, 0, 0, 0, 0]
    )


def test_a_page_without_text_has_no_blocks():
    blocks = page_blocks_of("<html><body><script>var x = 1;</script></body></html>")
    assert blocks.texts == [] and features(blocks, frozenset()).shape == (0, len(FEATURE_NAMES))


def test_exported_trees_give_sklearns_probabilities():
    x, y = make_classification(n_samples=500, n_features=6, random_state=0)
    model = HistGradientBoostingClassifier(max_depth=4, max_iter=10, random_state=0).fit(x, y)
    spec = json.loads(json.dumps(export_sklearn(model, tuple("abcdef"))))  # through JSON
    ours = TreeEnsemble(spec).predict_proba(x)
    assert ours == pytest.approx(model.predict_proba(x)[:, 1], abs=1e-12)


def test_the_shipped_model_reads_the_features_the_code_computes():
    model = TreeEnsemble.load(BOILERPLATE_MODEL)
    assert model.feature_names == FEATURE_NAMES
    probabilities = model.predict_proba(classifier_input(PAGE)[1])
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_training_labels_follow_the_gold_text():
    gold = "The river rose by two metres overnight, and the bridge was closed."
    texts = ["The river rose by two metres overnight", "Home", "Share this story on Facebook"]
    assert block_labels(texts, gold) == [1, 0, 0]


def test_the_shipped_model_prunes_boilerplate_from_real_held_out_pages():
    # Dragnet pages the model was not trained on: the shipped trees must keep text more
    # precisely than resiliparse's main content and keep most of the article.
    model = TreeEnsemble.load(BOILERPLATE_MODEL)
    pages = [p for p in load_wceb(WCEB, "dragnet") if not is_training_page(p["id"])][:20]
    before, after = [], []
    for page in pages:
        blocks, x = classifier_input(page["html"])
        pruned = kept_text(blocks, model.predict_proba(x) >= 0.5)
        main_content = "\n".join(page_blocks_of(page["html"], main_content=True).texts)
        before.append(page_tp_fp_fn(page["ground_truth"], main_content))
        after.append(page_tp_fp_fn(page["ground_truth"], pruned))

    def precision(counts):
        return np.mean([tp / (tp + fp) for tp, fp, _ in counts if tp + fp > 0])

    def recall(counts):
        return np.mean([tp / (tp + fn) for tp, _, fn in counts if tp + fn > 0])

    assert precision(after) > precision(before)
    assert recall(after) > 0.7
