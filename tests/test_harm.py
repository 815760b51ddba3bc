import json
from pathlib import Path

import numpy as np
import pytest
from apache_beam.io.filesystems import FileSystems

from transforms.filters.harm import HarmFilter, HarmFilterConfig, WordList, chunk_texts, lower_quantile
from transforms.filters.language import LanguageFilter

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

OFFENSIVE = [
    "You are a fucking idiot, shut up.",
    "What a worthless piece of shit.",
    "Shut your mouth, you stupid bitch.",
    "This is complete bullshit, you moron.",
]
NEUTRAL = [
    "The committee approved the budget for next year.",
    "Thanks for the help, have a lovely day.",
    "The train leaves the station at nine in the morning.",
    "She planted tomatoes and basil in the garden.",
]


@pytest.fixture(scope="module")
def stage():
    stage = HarmFilter()
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def english_articles():
    """The gold article bodies of the scrapinghub benchmark that lid.176 reads as English."""
    bodies = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    records = [{"text": v["articleBody"]} for v in bodies.values()]
    language = LanguageFilter()
    language.setup()
    return [r for r, drop in zip(records, language.process_batch(records), strict=True) if drop is None]


def test_offensive_scores_above_neutral_and_drops(stage):
    records = [{"text": t} for t in OFFENSIVE + NEUTRAL]
    drops = stage.process_batch(records)
    scores = [r["toxicity_score"] for r in records]
    assert min(scores[: len(OFFENSIVE)]) > 0.99
    assert max(scores[len(OFFENSIVE) :]) < 0.1
    assert [d and d.reason for d in drops] == ["toxic"] * len(OFFENSIVE) + [None] * len(NEUTRAL)
    assert drops[0].detail.startswith("toxicity ")


def test_batch_scores_equal_single_scores(stage):
    texts = OFFENSIVE + NEUTRAL + [""]
    batch = stage.score_batch([{"text": t} for t in texts])
    assert batch == [stage.score({"text": t}) for t in texts]
    assert batch[-1] == {"bad_words_count": 0, "bad_words_ratio": 0.0, "toxicity_score": 0.0}


def test_english_news_is_not_toxic(stage, english_articles):
    assert len(english_articles) > 150
    drops = stage.process_batch([dict(r) for r in english_articles])
    assert [d for d in drops if d is not None] == []


def test_one_insult_in_a_long_article_is_diluted_by_the_quantile(english_articles):
    article = next(r["text"] for r in english_articles if len(r["text"].split()) > 1000)
    words = article.split()
    half = len(words) // 2
    with_insult = " ".join(words[:half] + OFFENSIVE[0].split() + words[half:])
    short = " ".join(words[:40] + OFFENSIVE[0].split())

    default = HarmFilter()
    default.setup()
    worst_chunk = HarmFilter(HarmFilterConfig(chunk_quantile=1.0))
    worst_chunk.setup()
    # A long article quoting one insult keeps a low score; a short text with it does not.
    assert default.score({"text": with_insult})["toxicity_score"] < 0.5
    assert default.score({"text": short})["toxicity_score"] > 0.8
    assert worst_chunk.score({"text": with_insult})["toxicity_score"] > 0.8


def test_chunks_are_bounded_and_spread_over_the_text():
    words = [f"w{i}" for i in range(1000)]
    chunks = chunk_texts(words, chunk_words=10, max_chunks=5)
    assert len(chunks) == 5
    assert chunks[0].startswith("w0 ") and chunks[-1].endswith("w999")
    assert chunk_texts(words[:25], chunk_words=10, max_chunks=5) == [
        " ".join(words[:10]),
        " ".join(words[10:20]),
        " ".join(words[20:25]),
    ]
    assert chunk_texts([], 10, 5) == []


def test_lower_quantile_is_an_observed_score():
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.05])
    assert lower_quantile(scores, 0.9) == 0.8
    assert lower_quantile(scores, 1.0) == 0.9
    assert lower_quantile(scores[:3], 0.9) == 0.9  # up to 10 chunks: the worst one


def test_bad_words_file_counts_whole_words_and_phrases(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("# my list\nzorblax\nGlorp Fizz\n\n", encoding="utf-8")
    stage = HarmFilter(HarmFilterConfig(bad_words_path=str(words), max_bad_word_ratio=0.1))
    stage.setup()
    records = [
        {"text": "Zorblax! The zorblax said glorp fizz twice: glorp   fizz."},
        {"text": "Zorblaxes and glorp alone are fine; so is " + "a fine sentence " * 10},
    ]
    drops = stage.process_batch(records)
    assert records[0]["bad_words_count"] == 4
    assert records[0]["bad_words_ratio"] == pytest.approx(4 / 9)
    assert drops[0].reason == "bad_words"
    assert records[1]["bad_words_count"] == 0 and drops[1] is None


def test_bad_word_ratio_threshold(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("zorblax\n", encoding="utf-8")
    stage = HarmFilter(HarmFilterConfig(bad_words_path=str(words)))
    stage.setup()
    one_in_200 = {"text": "zorblax " + "the garden is green " * 50 + "ok ok ok"}
    one_in_50 = {"text": "zorblax " + "the garden is green " * 12 + "ok"}
    assert stage.process_batch([one_in_200, one_in_50])[0] is None
    assert one_in_50["bad_words_ratio"] == pytest.approx(1 / 50)
    assert stage.decide(one_in_50).reason == "bad_words"


def test_packaged_list_is_whole_words_only(stage):
    record = {"text": "Scunthorpe United won; the cocktail was fine. Fuck this shit."}
    assert stage.score(record)["bad_words_count"] == 2
    assert WordList.read(None).singles >= {"fuck", "shit"}


def test_bad_words_list_from_s3(s3_server, tmp_path):
    local = tmp_path / "words.txt"
    local.write_text("zorblax\n", encoding="utf-8")
    bucket = s3_server.create_bucket()
    uri = s3_server.upload(local, bucket, "lists/words.txt")
    FileSystems.set_options(s3_server.pipeline_options())
    try:
        stage = HarmFilter(HarmFilterConfig(bad_words_path=uri))
        stage.setup()
    finally:
        FileSystems.set_options(None)
    assert stage.score({"text": "a zorblax here"})["bad_words_count"] == 1


def test_config_is_validated():
    with pytest.raises(ValueError, match="max_toxicity"):
        HarmFilterConfig(max_toxicity=80)
    with pytest.raises(ValueError, match="chunk_quantile"):
        HarmFilterConfig(chunk_quantile=0.0)
    with pytest.raises(ValueError, match="chunk_words"):
        HarmFilterConfig(chunk_words=0)
