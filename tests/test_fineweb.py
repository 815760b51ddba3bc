import json
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import CLEAN_PROSE as CLEAN

from transforms.filters.fineweb import FineWebQualityConfig, FineWebQualityFilter

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"



def _run(text, **config):
    record = {"text": text}
    (drop,) = FineWebQualityFilter(FineWebQualityConfig(**config)).process_batch([record])
    return record, drop


def _reason(text, **config):
    drop = _run(text, **config)[1]
    return drop and drop.reason


def test_clean_prose_passes_and_blank_lines_are_not_lines():
    record, drop = _run(CLEAN)
    assert drop is None
    assert record["fineweb_line_punct_ratio"] == 1.0
    assert record["fineweb_short_line_ratio"] == record["fineweb_char_dup_ratio"] == 0.0
    # 3 line breaks between 4 lines, whatever the blank lines between them.
    assert (
        record["fineweb_newline_ratio"]
        == _run(CLEAN.replace("\n\n", "\n"))[0]["fineweb_newline_ratio"]
    )


@pytest.mark.parametrize("text", ["", "\n \n\t", "\u200b\n"])
def test_empty_text_is_scored_and_dropped(text):
    record, drop = _run(text)
    assert drop.reason == "empty_text" and record["fineweb_line_punct_ratio"] == 0.0


def test_line_punct_ratio():
    headings = "\n".join(f"A heading without any final stop, number {i}" for i in range(8))
    assert _reason(CLEAN.split("\n\n")[0] + "\n" + headings) == "line_punct_ratio"


def test_line_punct_exclude_zero_keeps_unpunctuated_text():
    text = "\n".join(f"A heading without any final stop, number {i}" for i in range(3))
    assert _reason(text) == "line_punct_ratio"
    assert _reason(text, line_punct_exclude_zero=True) is None


def test_short_line_ratio():
    menu = "\n".join(f"Menu entry {i}." for i in range(10))
    assert _reason(CLEAN + "\n" + menu) == "short_line_ratio"


def test_char_dup_ratio():
    assert _reason(CLEAN + "\n" + CLEAN.split("\n\n")[2]) == "char_dup_ratio"


def test_newline_ratio():
    # 29 line breaks for 90 tokens ("Lot", "7", "."): a list, even with the short-line rule off.
    lots = "\n".join(f"Lot {i}." for i in range(30))
    assert _reason(lots, short_line_thr=None) == "newline_ratio"


def _gold_texts():
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    return [page["articleBody"] for page in gold.values()]


def test_gold_articles_mostly_pass_and_signals_stay_in_range():
    stage = FineWebQualityFilter()
    records = [{"text": text} for text in _gold_texts()]
    drops = stage.process_batch(records)
    # Measured: 168 of 181 pass, the same documents as datatrove's FineWebQualityFilter. Five
    # repeat lines ("See it now: Amazon", table headers, an embedded tweet's byline); the other
    # eight have few lines ending in . ! ? " ' (Japanese text ends lines with "。").
    assert sum(drop is None for drop in drops) / len(records) >= 0.9
    signals = [{f.name: r[f.name] for f in stage.signal_fields} for r in records]
    pa.Table.from_pylist(signals, schema=pa.schema(stage.signal_fields))
    for row in signals:
        for name, value in row.items():
            assert 0.0 <= value <= 1.0, name
