"""The per-source near-duplicate cap: MinHashDedup and CollectStats in Beam on real articles,
then the run gate on the stats they wrote."""

import dataclasses
import json
import types

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from test_dedup_minhash import _articles
from test_validation import _validation, only

from pipelines import text
from run_folder.gate import evaluate, source_removal_shares
from transforms.dedup_minhash import MinHashDedup
from transforms.stats import STATS_FILE, CollectStats

MIRROR, SITE = "s3://crawl/mirror.jsonl", "s3://crawl/site.jsonl"


def _records():
    """``MIRROR``: 6 articles with 3 copies each (a cut-off page, an ad, a footer): 18 of its 24
    records are near-duplicates. ``SITE``: 24 distinct articles."""
    art = [a for a in _articles() if len(a.split()) >= 150]
    records = []
    for i, article in enumerate(art[:6]):
        copies = [article, article[: int(len(article) * 0.9)], "Advertisement\n" + article,
                  article + "\nShare this article on Facebook"]
        records += [{"id": f"m{i}-{c}", "text": t, "source": MIRROR} for c, t in enumerate(copies)]
    records += [{"id": f"s{i}", "text": t, "source": SITE} for i, t in enumerate(art[6:30])]
    return records


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cap-run")
    config = only(text.Config(), "dedup_minhash")
    config = dataclasses.replace(config, dedup_minhash=dataclasses.replace(config.dedup_minhash, cap_min_records=20))
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(_records()) | MinHashDedup(config.dedup_minhash)
        outputs = types.SimpleNamespace(kept={"dedup_minhash": out.kept}, rejected={"dedup_minhash": out.rejected})
        _ = p | CollectStats(outputs, str(run_dir), text.STAGES)
    return config, json.loads((run_dir / STATS_FILE).read_text())


def _gate(config, stats):
    profile = stats["profiles"]["dedup_minhash"]
    rows = {"kept": profile["kept"]["n"], "rejected": profile["rejected"]["n"]}
    validation = _validation(config, {"read": {"kept": 48, "rejected": 0}, "dedup_minhash": rows})
    return evaluate(validation, {"read": 48}, stats)


def test_a_source_losing_more_than_the_cap_fails_the_gate_by_name(run):
    config, stats = run
    shares = {row["source"]: row for row in source_removal_shares(stats, "dedup_minhash", "dedup_minhash.near_duplicate", 20)}
    assert shares[MIRROR]["records_in"] == 24 and shares[MIRROR]["removed"] == 18
    assert shares[SITE]["removed"] == 0 and not shares[MIRROR]["approximate"]
    result = _gate(config, stats)
    (failure,) = [f for f in result.critical if f.key == "source.removal_share"]
    assert not result.success and failure.stage == "dedup_minhash"
    assert MIRROR in failure.summary and "75.0%" in failure.summary and "cap 50%" in failure.summary
    assert "dedup_minhash.near_duplicate" in failure.summary
    assert SITE not in failure.summary


def test_a_higher_cap_or_a_larger_floor_lets_the_run_publish(run):
    config, stats = run
    for change in ({"max_source_removal_share": 0.8}, {"cap_min_records": 25}, {"max_source_removal_share": None}):
        relaxed = dataclasses.replace(config, dedup_minhash=dataclasses.replace(config.dedup_minhash, **change))
        result = _gate(relaxed, stats)
        assert result.success, (change, [f.line() for f in result.critical])
