import json
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import CLEAN_PROSE as CLEAN

from pipelines.config import from_dict
from transforms.filters.c4 import C4QualityConfig, C4QualityFilter, count_sentences
from transforms.stage import rejected

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"



def _run(text, **config):
    record = {"text": text}
    (drop,) = C4QualityFilter(C4QualityConfig(**config)).process_batch([record])
    return record, drop


def test_clean_prose_passes_untouched():
    record, drop = _run(CLEAN)
    assert drop is None and record["text"] == CLEAN
    assert record["c4_lines_before"] == record["c4_lines_after"] == 4
    assert record["c4_sentences"] == 8 and record["c4_terminal_punct_line_frac"] == 1.0
    assert record["c4_removed_char_frac"] == 0.0


def test_boilerplate_lines_are_removed_per_rule_and_paragraphs_kept():
    text = (
        "Home\n"
        "Please enable JavaScript to view the comments.\n"
        "This site uses cookies to improve your experience.\n"
        + CLEAN.replace("names.", "names.[12]")
        + "\nShare this story\n"
        + "x" * 1001
        + " is a very long word."
    )
    record, drop = _run(text)
    assert drop is None
    assert record["text"] == CLEAN + "\nShare this story"
    assert record["c4_lines_before"] == 9 and record["c4_lines_after"] == 5
    assert record["c4_lines_removed_too_few_words"] == 1  # "Home"
    assert record["c4_lines_removed_javascript"] == 1
    assert record["c4_lines_removed_policy"] == 1
    assert record["c4_lines_removed_long_word"] == 1
    assert record["c4_lines_removed_no_terminal_punct"] == 0  # kept in fineweb_doc_level mode
    assert 0.0 < record["c4_removed_char_frac"] < 1.0
    assert record["c4_terminal_punct_line_frac"] == pytest.approx(7 / 9)


def test_line_removal_mode_also_removes_unpunctuated_lines():
    record, drop = _run(CLEAN + "\nShare this story", mode="line_removal")
    assert drop is None and record["text"] == CLEAN
    assert record["c4_lines_removed_no_terminal_punct"] == 1


def test_each_line_rule_can_be_switched_off():
    text = CLEAN + "\nPlease enable JavaScript to view the comments."
    record, _ = _run(text, filter_javascript=False)
    assert record["text"] == text and record["c4_lines_removed_javascript"] == 0


@pytest.mark.parametrize("text", ["", "  \n\u200b\n\t"])
def test_empty_text_is_scored_and_dropped(text):
    record, drop = _run(text)
    assert drop.reason == "empty_text" and record["c4_lines_before"] == 0


def test_lorem_ipsum():
    assert _run(CLEAN + "\nLorem ipsum dolor sit amet, consectetur.")[1].reason == "lorem_ipsum"


def test_curly_bracket():
    assert _run(CLEAN + "\nfunction show() { return 1; }")[1].reason == "curly_bracket"


def test_all_lines_removed():
    assert _run("Home\nNews\nContact us")[1].reason == "all_lines_removed"


def test_too_few_sentences():
    record, drop = _run("One short story here. It ends soon.\nThen it stops for good.")
    assert drop.reason == "too_few_sentences" and record["c4_sentences"] == 3


def test_document_level_terminal_punctuation_when_asked():
    menu = "\n".join(f"Section number {i} of the site" for i in range(20))
    assert _run(CLEAN + "\n" + menu)[1] is None
    drop = _run(CLEAN + "\n" + menu, min_terminal_punct_line_frac=0.5)[1]
    assert drop.reason == "terminal_punct_line_frac"


def test_a_dropped_record_keeps_its_original_text():
    text = "Home\nNews\nContact us"
    record, drop = _run(text)
    row = rejected(record, C4QualityFilter.name, drop.reason)
    assert row["text"] == text and row["reject_reason"] == "c4_quality.all_lines_removed"


def test_sentences_are_counted_at_sentence_breaks():
    assert count_sentences("One. Two! Three? “Four.” Five") == 5
    assert count_sentences("No break at 3.5 or e.g.here") == 1


def test_config_from_yaml_mapping_and_bad_mode():
    config = from_dict(C4QualityConfig, {"mode": "line_removal", "terminal_punct": [".", "!"]})
    assert config.terminal_punct == (".", "!")
    C4QualityFilter(config)
    with pytest.raises(ValueError, match="mode"):
        C4QualityFilter(C4QualityConfig(mode="strict"))


def _gold_texts():
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    return [page["articleBody"] for page in gold.values()]


@pytest.mark.parametrize(
    ("mode", "min_rate"),
    # Measured: 177 of 181 pass by default, 170 with C4's line removal; the same documents as
    # datatrove's C4QualityFilter but one (a short WSJ teaser: punkt counts one sentence fewer).
    [("fineweb_doc_level", 0.95), ("line_removal", 0.90)],
)
def test_gold_articles_mostly_pass_and_signals_stay_in_range(mode, min_rate):
    stage = C4QualityFilter(C4QualityConfig(mode=mode))
    texts = _gold_texts()
    records = [{"text": text} for text in texts]
    drops = stage.process_batch(records)
    assert sum(drop is None for drop in drops) / len(records) >= min_rate
    signals = [{f.name: r[f.name] for f in stage.signal_fields} for r in records]
    pa.Table.from_pylist(signals, schema=pa.schema(stage.signal_fields))
    for row, record, original, drop in zip(signals, records, texts, drops, strict=True):
        assert 0 <= row["c4_lines_after"] <= row["c4_lines_before"]
        assert 0.0 <= row["c4_terminal_punct_line_frac"] <= 1.0
        assert 0.0 <= row["c4_removed_char_frac"] <= 1.0
        assert len(record["text"]) <= len(original)
        if drop is not None:
            assert record["text"] == original
