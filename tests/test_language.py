import json
import shutil
from pathlib import Path

import apache_beam as beam
import fasttext
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.filters.language import (
    LanguageFilter,
    LanguageFilterConfig,
    lid_input,
    packaged_model_path,
)
from transforms.stage import ApplyStage

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _wet_conversions(path: Path) -> list[dict]:
    """The conversion records of a small WET file: headers, a blank line, the text."""
    records = []
    for block in path.read_text(encoding="utf-8").split("WARC/1.0\n")[1:]:
        head, _, body = block.partition("\n\n")
        headers = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        if headers.get("WARC-Type") == "conversion":
            records.append({"url": headers["WARC-Target-URI"], "text": body.strip()})
    return records


@pytest.fixture(scope="module")
def stage():
    stage = LanguageFilter()
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def ccnet():
    return _wet_conversions(DATA / "ccnet-wet-sample" / "sample.warc.txt")


def test_ccnet_sample_languages(stage, ccnet):
    drops = stage.process_batch(ccnet)
    assert [(r["url"], r["lang"]) for r in ccnet] == [
        ("http://sample_english.com", "en"),
        ("http://sample_chinese.zh", "zh"),
        ("http://sample_russian.ru", "ru"),
    ]
    assert all(r["lang_score"] > 0.9 for r in ccnet)
    assert drops[0] is None
    assert [d.reason for d in drops[1:]] == ["language_not_allowed"] * 2
    assert drops[1].detail.startswith("zh ")


def test_allow_list_and_empty_allows_all(ccnet):
    some = LanguageFilter(LanguageFilterConfig(allowed_languages=("en", "ru")))
    some.setup()
    assert [d and d.reason for d in some.process_batch([dict(r) for r in ccnet])] == [
        None,
        "language_not_allowed",
        None,
    ]
    every = LanguageFilter(LanguageFilterConfig(allowed_languages=()))
    every.setup()
    assert every.process_batch([dict(r) for r in ccnet]) == [None, None, None]


def test_low_score_and_per_language_threshold(stage):
    records = [{"text": "asdf qwer zxcv uiop"}, {"text": "   \n "}, {}]
    drops = stage.process_batch(records)
    assert [d.reason for d in drops] == ["low_language_score"] * 3
    assert records[1]["lang"] is None and records[1]["lang_score"] == 0.0

    english = "Don't part with your illusions. When they are gone you may still exist."
    strict = LanguageFilter(LanguageFilterConfig(per_language_min_score={"en": 0.99}))
    strict.setup()
    record = {"text": english}
    assert strict.process_batch([record])[0].reason == "low_language_score"
    assert 0.65 < record["lang_score"] < 0.99
    assert stage.process_batch([{"text": english}]) == [None]


def test_batch_predict_equals_one_by_one(stage):
    bodies = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    records = [{"text": v["articleBody"]} for v in bodies.values()]
    batch = stage.score_batch(records)
    model = fasttext.load_model(packaged_model_path())
    for record, signals in zip(records, batch, strict=True):
        (label,), (score,) = model.predict(lid_input(record["text"], 10_000), k=1)
        assert signals["lang"] == label.removeprefix("__label__")
        assert signals["lang_score"] == pytest.approx(min(score, 1.0), rel=1e-5)
    assert {s["lang"] for s in batch} >= {"en", "pt", "ru", "ko", "ja", "de"}


def test_only_a_bounded_one_line_prefix_is_scored(stage, ccnet):
    english, russian = ccnet[0]["text"], ccnet[2]["text"]
    assert "\n" in english
    assert lid_input(english, 10_000) == english.replace("\n", " ")
    mixed = {"text": english + " " + russian * 50}
    prefix = LanguageFilter(LanguageFilterConfig(max_chars=len(english)))
    prefix.setup()
    assert prefix.score(dict(mixed))["lang"] == "en"
    assert stage.score(dict(mixed))["lang"] == "ru"


def test_model_from_a_local_path(tmp_path, ccnet):
    local = tmp_path / "my-lid.ftz"
    shutil.copy(packaged_model_path(), local)
    stage = LanguageFilter(LanguageFilterConfig(model_path=str(local)))
    stage.setup()
    assert stage.score(dict(ccnet[2]))["lang"] == "ru"


def test_model_from_s3(s3_server, ccnet):
    bucket = s3_server.create_bucket()
    uri = s3_server.upload(packaged_model_path(), bucket, "models/lid.176.ftz")
    FileSystems.set_options(s3_server.pipeline_options())
    try:
        stage = LanguageFilter(LanguageFilterConfig(model_path=uri))
        stage.setup()
    finally:
        FileSystems.set_options(None)
    assert [stage.score(dict(r))["lang"] for r in ccnet] == ["en", "zh", "ru"]


def test_config_is_validated():
    with pytest.raises(ValueError, match="min_score"):
        LanguageFilterConfig(min_score=65)
    with pytest.raises(ValueError, match="zh"):
        LanguageFilterConfig(per_language_min_score={"zh": -0.1})
    with pytest.raises(TypeError, match="list of language codes"):
        LanguageFilterConfig(allowed_languages="en")
    with pytest.raises(ValueError, match="max_chars"):
        LanguageFilterConfig(max_chars=0)


def test_in_a_pipeline(ccnet):
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(ccnet) | ApplyStage(LanguageFilter())
        assert_that(out.kept | beam.Map(lambda r: r["lang"]), equal_to(["en"]), label="kept")
        assert_that(
            out.rejected | beam.Map(lambda r: (r["lang"], r["reject_reason"])),
            equal_to([("zh", "language.language_not_allowed"), ("ru", "language.language_not_allowed")]),
            label="rejected",
        )


def test_no_break_spaces_do_not_hide_the_language():
    stage = LanguageFilter()
    stage.setup()
    words = "Return the number of items in a container and raise an error when it is not sized."
    records = [{"text": words}, {"text": words.replace(" ", "\xa0")}]
    stage.process_batch(records)
    assert records[1]["lang"] == records[0]["lang"] == "en"
    assert abs(records[1]["lang_score"] - records[0]["lang_score"]) < 1e-6
