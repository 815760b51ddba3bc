from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.dedup_exact import ExactDedup, content_key, normalise


def test_normalise_ignores_case_punctuation_and_spacing():
    assert normalise("Hello,   World!\n") == normalise("hello world") == "hello world"
    assert content_key("Hello, World") != content_key("Hello, Word")


def _record(record_id, text, day=None):
    fetched = datetime(2024, 1, day, tzinfo=UTC) if day else None
    return {"id": record_id, "text": text, "fetched_at": fetched}


def test_keeper_is_earliest_fetch_then_smallest_id():
    records = [
        _record("b1", "Same text here.", day=2),
        _record("c1", "same TEXT here", day=1),  # earliest fetch: kept
        _record("a1", "Same text here!"),  # no fetch time: never the keeper while others have one
        _record("d1", "Something else entirely."),
        _record("f1", "Tie on time.", day=3),
        _record("e1", "tie on time", day=3),  # same time: smallest id kept
    ]
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | ExactDedup()
        assert_that(
            out.kept | "KeptIds" >> beam.Map(lambda r: (r["id"], r["dup_cluster_size"])),
            equal_to([("c1", 3), ("d1", 1), ("e1", 2)]),
            label="kept",
        )
        assert_that(
            out.rejected | beam.Map(lambda r: (r["id"], r["dup_of"], r["reject_reason"])),
            equal_to(
                [
                    ("b1", "c1", "dedup_exact.duplicate"),
                    ("a1", "c1", "dedup_exact.duplicate"),
                    ("f1", "e1", "dedup_exact.duplicate"),
                ]
            ),
            label="rejected",
        )
