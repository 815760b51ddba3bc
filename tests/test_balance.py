"""Balance: a per-domain cap and language quotas, deterministic, with before/after counts."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.balance import Balance, BalanceConfig, id_hash, load_balance_stats
from transforms.stage import RunContext


def _records() -> list[dict]:
    spec = (
        [("bbc.co.uk", "en")] * 5
        + [("spiegel.de", "de")] * 3
        + [("example.org", "en"), (None, "en"), (None, None)]
    )
    return [
        {"id": f"doc{i:02d}", "domain": domain, "lang": lang, "quality_score": i / 10}
        for i, (domain, lang) in enumerate(spec)
    ]


def _ids(records: list[dict]) -> list[str]:
    return [r["id"] for r in records]


def _by_hash(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: id_hash(r["id"]))


def _check(config: BalanceConfig, records: list[dict], dropped: list[tuple[str, str]], run=None) -> None:
    kept = sorted(set(_ids(records)) - {i for i, _ in dropped})
    with TestPipeline(runner="FnApiRunner") as p:
        step = Balance.for_run(config, run) if run else Balance(config)
        out = p | beam.Create(records) | step
        assert_that(out.kept | "KeptIds" >> beam.Map(lambda r: r["id"]), equal_to(kept), label="Kept")
        assert_that(
            out.rejected | "Reasons" >> beam.Map(lambda r: (r["id"], r["reject_reason"])),
            equal_to(dropped),
            label="Rejected",
        )


def test_domain_cap_keeps_smallest_id_hashes_whatever_the_order():
    records = _records()
    over = [
        r
        for domain in ("bbc.co.uk", "spiegel.de")
        for r in _by_hash([r for r in records if r["domain"] == domain])[2:]
    ]
    dropped = [(r["id"], "balance.domain_cap") for r in over]
    config = BalanceConfig(enabled=True, max_per_domain=2)
    _check(config, records, dropped)
    _check(config, list(reversed(records)), dropped)


def test_keep_by_quality_score_keeps_the_best():
    # bbc.co.uk is doc00..doc04 with scores 0.0..0.4; spiegel.de doc05..doc07.
    dropped = [(i, "balance.domain_cap") for i in ("doc00", "doc01", "doc02", "doc05")]
    _check(BalanceConfig(enabled=True, max_per_domain=2, keep_by="quality_score"), _records(), dropped)


def test_language_quotas_after_the_cap(tmp_path):
    records = _records()
    run = RunContext(str(tmp_path / "run"), "r1")
    config = BalanceConfig(
        enabled=True, max_per_domain=4, language_quotas={"de": 1}, default_language_quota=3
    )
    bbc = _by_hash([r for r in records if r["domain"] == "bbc.co.uk"])
    dropped = [(bbc[4]["id"], "balance.domain_cap")]
    # en after the cap: 4 bbc + example.org + one without domain = 6, quota 3; de: 3, quota 1;
    # the record without a language ("und") falls under the default quota and stays.
    english = _by_hash([r for r in records if r["lang"] == "en" and r["id"] != bbc[4]["id"]])
    german = _by_hash([r for r in records if r["lang"] == "de"])
    dropped += [(r["id"], "balance.language_quota") for r in english[3:] + german[1:]]
    _check(config, records, dropped, run)
    stats = load_balance_stats(run.run_dir)
    assert stats["language"] == {
        "de": {"before": 3, "after": 1},
        "en": {"before": 7, "after": 3},
        "und": {"before": 1, "after": 1},
    }
    assert stats["documents"] == {"before": 11, "after": 5}
    assert stats["domain"]["bbc.co.uk"]["before"] == 5
    assert sum(d["after"] for d in stats["domain"].values()) == 5


def test_config_is_validated():
    with pytest.raises(ValueError, match="sets no"):
        BalanceConfig(enabled=True)
    with pytest.raises(ValueError, match="keep_by"):
        BalanceConfig(keep_by="random")
    with pytest.raises(ValueError, match="max_per_domain"):
        BalanceConfig(max_per_domain=0)


def test_cap_on_a_large_domain_prunes_to_the_same_answer():
    records = [{"id": f"page{i:03d}", "domain": "big.example", "lang": "en"} for i in range(60)]
    dropped = [(r["id"], "balance.domain_cap") for r in _by_hash(records)[3:]]
    _check(BalanceConfig(enabled=True, max_per_domain=3), records, dropped)
