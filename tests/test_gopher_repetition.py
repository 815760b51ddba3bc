import json
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import CLEAN_PROSE as CLEAN

from transforms.filters.gopher_repetition import (
    RULES,
    GopherRepetitionConfig,
    GopherRepetitionFilter,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


PARAGRAPHS = CLEAN.split("\n\n")


def _run(text, config=None):
    record = {"text": text}
    (drop,) = GopherRepetitionFilter(config or GopherRepetitionConfig()).process_batch([record])
    return record, drop


def _reason(text, config=None):
    drop = _run(text, config)[1]
    return drop and drop.reason


def _only(rule):
    """A config with every rule off but ``rule``."""
    return GopherRepetitionConfig(**{name: None for name in RULES if name != rule})


def test_clean_prose_passes():
    record, drop = _run(CLEAN)
    assert drop is None
    assert record["rep_dup_para_frac"] == record["rep_dup_line_frac"] == 0.0
    assert record["rep_dup_5gram_char_frac"] == 0.0
    assert 0.0 < record["rep_top_2gram_char_frac"] < 0.05  # "of the"-like pairs, not repetition


@pytest.mark.parametrize("text", ["", " \n\n\t"])
def test_empty_text_is_scored_and_dropped(text):
    record, drop = _run(text)
    assert drop.reason == "empty_text"
    assert all(record[f"rep_{rule}"] == 0.0 for rule in RULES)


def test_signals_follow_the_gopher_definitions():
    text = "a b\n\na b\n\nc d"
    record, _ = _run(text)
    assert record["rep_dup_para_frac"] == pytest.approx(1 / 3)
    assert record["rep_dup_para_char_frac"] == pytest.approx(3 / len(text))
    assert record["rep_dup_line_frac"] == pytest.approx(1 / 3)
    assert record["rep_top_2gram_char_frac"] == pytest.approx(2 * len("a b") / len(text))


def test_repeated_paragraphs_drop_on_the_first_rule_checked():
    assert _reason("\n\n".join(PARAGRAPHS + PARAGRAPHS[:2])) == "dup_para_frac"


def test_repeated_lines_inside_distinct_paragraphs():
    # Every paragraph is new, but each repeats a line seen before.
    parts = enumerate(PARAGRAPHS[1:] * 2)
    text = "\n\n".join(f"Part {i}.\n{PARAGRAPHS[0]}\n{p}" for i, p in parts)
    assert _reason(text) == "dup_line_frac"


def test_a_spammed_phrase_drops_on_top_2gram():
    spam = CLEAN + "\n\n" + " ".join(f"buy now {i}" for i in range(40))
    assert _reason(spam) == "top_2gram_char_frac"


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_fires_on_its_own(rule):
    assert _reason("\n\n".join(["the same old song"] * 30), _only(rule)) == rule


def test_a_short_text_without_repeats_is_not_repetitive():
    # datatrove 0.10 drops this as top_2_gram; a single occurrence is not repetition.
    record, drop = _run("Tiny but unique words here.")
    assert drop is None and record["rep_top_2gram_char_frac"] == 0.0


def _gold_texts():
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    return [page["articleBody"] for page in gold.values()]


def test_gold_articles_mostly_pass_and_signals_stay_in_range():
    stage = GopherRepetitionFilter()
    records = [{"text": text} for text in _gold_texts()]
    drops = stage.process_batch(records)
    # Measured: 178 of 181 pass (datatrove 0.10: 177, as it takes lines of zero-width spaces for
    # repeated paragraphs). The three repeat short paragraphs: "Buy Now" buttons, a meal plan's
    # "Eat every 2-3 hours", an interview's recurring questions.
    assert sum(drop is None for drop in drops) / len(records) >= 0.95
    signals = [{f.name: r[f.name] for f in stage.signal_fields} for r in records]
    pa.Table.from_pylist(signals, schema=pa.schema(stage.signal_fields))
    for row in signals:
        for name, value in row.items():
            assert 0.0 <= value <= 1.0, name
