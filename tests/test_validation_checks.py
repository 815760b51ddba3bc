"""Our per-batch evaluation of the suites against Great Expectations' own, on hostile batches.

``transforms.validate_checks`` re-implements GE's pandas conditions so that validation costs no
GE machinery per batch; here GE itself (1.24, the pinned version) validates the same batches and
the mergeable results (counts, missing, examples, observed values, errors) must be identical.
"""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from pipelines import images, text
from transforms.stage import KEPT, REJECTED
from transforms.validate import BatchFn, _columns_of, empty_result, expectations_of, summarise, to_gx_suite


def _ge_partial_results(stage: str, scope: str, expectations: list[dict], records: list[dict]) -> dict:
    """What the GE-backed validation gave for one batch: a DataFrame of object columns, GE's
    validate with COMPLETE results, each summarised."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults()))
    asset = context.data_sources.add_pandas("records").add_dataframe_asset(f"{stage}.{scope}")
    definition = asset.add_batch_definition_whole_dataframe("batch")
    columns = sorted({"id"}.union(*(_columns_of(e) + list(e["kwargs"].get("column_set", ())) for e in expectations)))
    present = set().union(*(r.keys() for r in records)) | {"id"}
    values = {name: [r.get(name) for r in records] for name in columns if name in present}
    frame = pd.DataFrame({name: pd.Series(v, dtype=object) for name, v in values.items()})
    runnable = [e for e in expectations if e["type"].startswith("expect_table") or set(_columns_of(e)) <= present]
    results = definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        to_gx_suite(f"{stage}.{scope}", runnable),
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"],
                       "return_unexpected_index_query": False},
    )
    by_key = {r.expectation_config.meta["key"]: r.to_json_dict() for r in results.results}
    out = {}
    for e in expectations:
        key = e["meta"]["key"]
        if key in by_key:
            out[key] = summarise(e, by_key[key], values.get(e["kwargs"].get("column")), 5)
        else:
            out[key] = {**empty_result(), "skipped_batches": 1}
    return out


def _ours(stage: str, scope: str, expectations: list[dict], records: list[dict]) -> dict:
    _, partial = BatchFn(stage, scope, expectations).check(records)
    return partial["results"]


def _hostile_images_records(suite: dict, n: int = 40) -> list[dict]:
    """Decode's kept records, mostly valid, with wrong types, NaN, None, out-of-range values,
    bad hex digests and a record lacking some columns."""
    rng = random.Random(7)
    columns = next(e for e in suite["expectations"] if e["meta"]["key"] == "columns.present")["kwargs"]["column_set"]
    records = []
    for i in range(n):
        record = dict.fromkeys(columns)
        record.update(id=f"id{i:03d}", caption="a photo of a temple roof", url=f"http://x/{i}.jpg",
                      source="t.csv", source_key=f"row:{i}", synthetic=False, domain="x",
                      http_status=200, image=b"\xff\xd8", width=256, height=256, format="jpeg", bytes=9000,
                      original_width=480, original_height=360, original_format="JPEG", original_bytes=20000,
                      sha256="ab" * 32, phash="0123456789abcdef")
        records.append(record)
    odd = [
        ("width", "256"), ("width", 257), ("width", 0), ("width", math.nan), ("width", None), ("width", True),
        ("height", 3.5), ("height", [1, 2]), ("bytes", b"xx"), ("original_bytes", 2**40),
        ("format", "png"), ("format", 7), ("format", None), ("original_format", "jpeg"),
        ("sha256", "AB" * 32), ("sha256", "ab" * 32 + "\n"), ("sha256", 12), ("phash", "0123"),
        ("phash", None), ("caption", ""), ("caption", 5), ("caption", None), ("caption", math.nan),
        ("http_status", 404), ("http_status", "200"), ("id", None),
    ]
    for (name, value), record in zip(odd, rng.sample(records, len(odd)), strict=False):
        record[name] = value
    del records[-1]["phash"], records[-1]["sha256"]
    return records


def _hostile_rejected(stage: str) -> list[dict]:
    reasons = [f"{stage}.corrupt", f"{stage}.nope", "decode", None, 3, f"{stage}.too_large\n", f"{stage}.error"]
    return [{"id": f"r{i}", "reject_stage": stage if i % 3 else "other", "reject_reason": reason}
            for i, reason in enumerate(reasons)]


@pytest.mark.parametrize("scope", [KEPT, REJECTED])
def test_image_suites_give_what_great_expectations_gives(scope):
    suites = images.JOB.validation_suites(images.Config())
    for stage in ("decode", "image_filter", "read"):
        checks = expectations_of(suites[stage], scope)
        records = _hostile_images_records(suites["decode"]) if scope == KEPT else _hostile_rejected(stage)
        ours, theirs = _ours(stage, scope, checks, records), _ge_partial_results(stage, scope, checks, records)
        if "bytes.type" in ours:  # GE's JSON results turn a bytes value into its repr, a str
            assert ours["bytes.type"]["observed"] == {"unexpected_types": {"bytes": 1}}
            assert theirs["bytes.type"]["observed"] == {"unexpected_types": {"str": 1}}
            ours["bytes.type"]["observed"] = theirs["bytes.type"]["observed"]
            ours["bytes.type"]["examples"] = theirs["bytes.type"]["examples"]
        assert ours == theirs, stage
        assert any(r["unexpected"] or r["errors"] for r in ours.values())


def test_text_suite_with_mixed_types_gives_what_great_expectations_gives():
    suite = text.JOB.validation_suites(text.Config())["language"]
    checks = expectations_of(suite, KEPT)
    base = dict.fromkeys(suite["expectations"][0]["kwargs"]["column_set"])
    records = [{**base, "id": f"id{i:02d}", "text": "Some text.", "lang": "en", "lang_score": 0.5 + i / 100}
               for i in range(30)]
    for i, value in ((2, "high"), (4, None), (6, math.nan), (8, 1.5), (10, -0.1), (12, 1)):
        records[i]["lang_score"] = value
    records[14]["lang"], records[16]["text"], records[18]["text"] = "de", "", None
    assert _ours("language", KEPT, checks, records) == _ge_partial_results("language", KEPT, checks, records)
    del records[2]  # without the str, between is evaluated (not raised)
    ours = _ours("language", KEPT, checks, records)
    assert ours == _ge_partial_results("language", KEPT, checks, records)
    assert ours["lang_score.range"]["unexpected"] == 2 and ours["lang_score.range"]["missing"] == 2
