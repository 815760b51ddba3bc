"""Validation suites per stage and the run gate: suites, merging, GE on batches, whole runs."""

import dataclasses
import json
import random
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc

from pipelines import text
from run_folder.facts import load_run_facts
from run_folder.gate import ValidationFailed, evaluate, gate
from run_folder.layout import SUCCESS
from run_folder.manifest import write_manifest
from run_folder.seal import begin_run, seal_run
from schemas.expectations import CRITICAL, DATASET, WARNING
from transforms.extract import Extract, ExtractConfig
from transforms.filters.language import LanguageFilter
from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import ReadInputs, read_file
from transforms.stage import KEPT, REJECTED, ApplyStage, RunContext
from transforms.validate import (
    BatchFn,
    ValidateStages,
    empty_partial,
    empty_result,
    expectations_of,
    merge_partial,
    merge_result,
    to_gx_suite,
)

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"


def disabled(config, *stages):
    """``config`` with the named stages (those it has) switched off."""
    sections = {
        name: dataclasses.replace(getattr(config, name), enabled=False) for name in stages if hasattr(config, name)
    }
    return dataclasses.replace(config, **sections)


def only(config, *stages):
    return disabled(config, *[s.name for s in text.STAGES if s.name not in stages])


def run_with_gate(inputs, run_dir, config, options=None):
    """The text job's pipeline (which validates every stage), its gate, its manifest and seal;
    returns the ``GateResult`` (``pipelines.publish.publish_run`` adds the report before the seal)."""
    begin_run(run_dir)
    with beam.Pipeline(options=options or PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        text.build(pipeline, inputs, RunContext(run_dir, Path(run_dir).name), config)
    result = gate(run_dir, load_run_facts(run_dir))
    write_manifest(run_dir, text.stage_order(config), {"run_id": Path(run_dir).name})
    seal_run(run_dir)
    assert_conserved(run_dir)
    return result


# ---------------------------------------------------------------------------------------------
# Suites


def test_every_stage_has_a_suite_with_severities_and_unique_keys():
    config = text.Config()
    suites = text.JOB.validation_suites(config)
    assert list(suites) == text.stage_order(config)
    for suite in suites.values():
        keys = [e["meta"]["key"] for e in suite["expectations"]]
        assert len(keys) == len(set(keys))
        for e in suite["expectations"]:
            assert e["meta"]["severity"] == e["severity"] in (CRITICAL, WARNING)
        assert {e["meta"]["scope"] for e in suite["expectations"]} == {KEPT, REJECTED, DATASET}
        assert "id.unique" in keys and "rows.conservation" in keys and "columns.present" in keys
    # every signal of an enabled stage has its type checked on that stage's kept records
    for stage_class in text.enabled_stages(config):
        keys = {e["meta"]["key"] for e in suites[stage_class.name]["expectations"]}
        assert {f"{f.name}.type" for f in stage_class.signal_fields} <= keys


def test_reasons_are_closed_sets_with_the_stage_prefix():
    suites = text.JOB.validation_suites(text.Config())
    (check,) = [e for e in suites["language"]["expectations"] if e["meta"]["key"] == "reject_reason.allowed"]
    assert sorted(check["kwargs"]["value_set"]) == [
        "language.error",
        "language.language_not_allowed",
        "language.low_language_score",
    ]
    (read,) = [e for e in suites["read"]["expectations"] if e["meta"]["key"] == "reject_reason.allowed"]
    assert read["type"] == "expect_column_values_to_match_regex"
    import re

    assert re.match(read["kwargs"]["regex"], "read.http_status_404")
    assert not re.match(read["kwargs"]["regex"], "read.http_status_40")
    assert not re.match(read["kwargs"]["regex"], "extract.empty_text")


def test_allowed_languages_and_thresholds_come_from_config():
    config = text.Config()
    config = dataclasses.replace(
        config,
        language=dataclasses.replace(
            config.language, allowed_languages=("en", "de"), min_score=0.5, per_language_min_score={"de": 0.3}
        ),
    )
    checks = {e["meta"]["key"]: e for e in text.JOB.validation_suites(config)["language"]["expectations"]}
    assert checks["lang.allowed"]["kwargs"]["value_set"] == ["de", "en"]
    assert checks["lang_score.min_score"]["kwargs"]["min_value"] == 0.3
    everything = dataclasses.replace(config, language=dataclasses.replace(config.language, allowed_languages=()))
    assert "lang.allowed" not in {e["meta"]["key"] for e in text.JOB.validation_suites(everything)["language"]["expectations"]}


def test_severity_overrides():
    suites = text.JOB.validation_suites(text.Config(), {"language:lang_score.range": WARNING, "*:rows.kept": CRITICAL})
    by_key = {e["meta"]["key"]: e for e in suites["language"]["expectations"]}
    assert by_key["lang_score.range"]["severity"] == by_key["lang_score.range"]["meta"]["severity"] == WARNING
    assert all(
        {e["meta"]["key"]: e for e in s["expectations"]}["rows.kept"]["severity"] == CRITICAL for s in suites.values()
    )
    with pytest.raises(ValueError, match="match no expectation"):
        text.JOB.validation_suites(text.Config(), {"language:no_such.key": WARNING})
    with pytest.raises(ValueError, match="severity"):
        text.JOB.validation_suites(text.Config(), {"language:lang_score.range": "fatal"})


def test_a_stage_whose_signals_are_not_required_gets_a_lenient_suite():
    """A stage's suite comes from its class alone: its reasons, its signals and their rules."""
    import types

    import pyarrow as pa

    from transforms.stage import Filter, SignalRules

    class Tagger(Filter):
        name = "tagger"
        signal_fields = (pa.field("tags", pa.list_(pa.string())), pa.field("tag_score", pa.float32()))
        reasons = ("untagged",)
        signal_rules = SignalRules(required=False)

    base = text.Config()
    config = types.SimpleNamespace(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, tagger=types.SimpleNamespace(enabled=True)
    )
    suites = dataclasses.replace(text.JOB, stages=(*text.STAGES, Tagger)).validation_suites(config)
    checks = {e["meta"]["key"]: e for e in suites["tagger"]["expectations"]}
    assert checks["tags.type"]["kwargs"]["type_list"] == ["list"] and checks["tags.type"]["severity"] == CRITICAL
    assert checks["tag_score.not_null"]["severity"] == WARNING
    assert checks["reject_reason.allowed"]["kwargs"]["value_set"] == ["tagger.error", "tagger.untagged"]
    assert "tags" not in checks["columns.present"]["kwargs"]["column_set"]


def test_every_suite_loads_in_great_expectations():
    for stage, suite in text.JOB.validation_suites(text.Config()).items():
        for scope in (KEPT, REJECTED):
            checks = expectations_of(suite, scope)
            gx_suite = to_gx_suite(f"{stage}.{scope}", checks)
            assert [e.meta["key"] for e in gx_suite.expectations] == [e["meta"]["key"] for e in checks]
            assert {e.severity.value for e in gx_suite.expectations} <= {CRITICAL, WARNING}


# ---------------------------------------------------------------------------------------------
# Mergeable results


def _result(unexpected_ids, evaluated=10, lo=0.0, hi=1.0):
    result = empty_result()
    result.update(
        evaluated=evaluated,
        unexpected=len(unexpected_ids),
        batches=1,
        examples=[[i, 7.5] for i in sorted(unexpected_ids)[:5]],
        observed={"min": lo, "max": hi},
    )
    return result


def test_merged_results_do_not_depend_on_batching_or_order():
    ids = [f"{i:04x}" for i in range(40)]
    batches = [ids[i : i + 7] for i in range(0, 40, 7)]
    parts = [_result(b, evaluated=len(b), lo=float(n), hi=float(n) + 0.5) for n, b in enumerate(batches)]
    merged = []
    for seed in range(5):
        random.Random(seed).shuffle(parts)
        total = empty_result()
        for part in parts:
            total = merge_result(total, part)
        merged.append(total)
    assert all(m == merged[0] for m in merged)
    assert merged[0]["unexpected"] == merged[0]["evaluated"] == 40
    assert [e[0] for e in merged[0]["examples"]] == ids[:5]  # the smallest ids, whatever the order
    assert merged[0]["observed"] == {"min": 0.0, "max": 5.5}


def test_merge_partial_adds_rows_and_duplicates():
    a, b = empty_partial(), empty_partial()
    a["rows"]["kept"], b["rows"]["kept"], b["rows"]["rejected"] = 3, 4, 1
    b["duplicates"] = {"ids": 1, "rows": 1, "examples": [["x", 2]]}
    merged = merge_partial(a, b)
    assert merged["rows"] == {"kept": 7, "rejected": 1} and merged["duplicates"]["ids"] == 1


# ---------------------------------------------------------------------------------------------
# The gate on merged results (no pipeline)


def _validation(config, rows, duplicates=None):
    suites = text.JOB.validation_suites(config)
    stages = {}
    for stage, suite in suites.items():
        partial = empty_partial()
        partial["rows"] = dict(rows[stage])
        if duplicates and stage in duplicates:
            partial["duplicates"] = duplicates[stage]
        stages[stage] = {"suite": suite, **partial}
    return {"order": list(suites), "stages": stages}


def test_gate_checks_conservation_uniqueness_and_row_counts():
    config = only(text.Config(), "extract", "language")
    ok = _validation(
        config,
        {
            "read": {"kept": 5, "rejected": 2},
            "extract": {"kept": 5, "rejected": 0},
            "language": {"kept": 3, "rejected": 2},
        },
    )
    result = evaluate(ok, {"read": 7})
    assert result.success and not result.warnings
    assert result.stages["language"]["counts"] == {
        "records_in": 5,
        "kept": 3,
        "rejected": 2,
        "records_out": 5,
        "duplicate_ids": 0,
    }

    lost = _validation(
        config,
        {
            "read": {"kept": 5, "rejected": 2},
            "extract": {"kept": 4, "rejected": 0},
            "language": {"kept": 0, "rejected": 4},
        },
        duplicates={"language": {"ids": 1, "rows": 1, "examples": [["abc", 2]]}},
    )
    result = evaluate(lost, {"read": 8})
    failed = {(f.stage, f.key) for f in result.critical}
    assert failed == {
        ("read", "rows.conservation"),
        ("extract", "rows.conservation"),
        ("language", "id.unique"),
    }
    assert {(f.stage, f.key) for f in result.warnings} == {("language", "rows.kept")}
    (dup,) = [f for f in result.critical if f.key == "id.unique"]
    assert "abc" in dup.summary and "1 ids seen more than once" in dup.summary


# ---------------------------------------------------------------------------------------------
# GE on one batch (no pipeline)


def test_batch_fn_reports_unexpected_values_with_the_smallest_ids():
    suite = text.JOB.validation_suites(text.Config())["language"]
    fn = BatchFn("language", KEPT, expectations_of(suite, KEPT))
    fn.setup()
    base = {f: None for f in suite["expectations"][0]["kwargs"]["column_set"]}
    records = [{**base, "id": f"id{i:02d}", "text": "Some text.", "lang": "en", "lang_score": 0.9} for i in range(12)]
    for i in (11, 3, 7, 5, 9, 1):
        records[i]["lang_score"] = 7.5
    records[4]["lang"], records[6]["lang_score"] = "de", "high"
    stage, partial = fn.check(records)
    results = partial["results"]
    assert stage == "language" and partial["rows"]["kept"] == 12
    score = results["lang_score.range"]
    # "high" is not a number: GE's between raises on it, and the type check names the record
    assert score["errors"] == 1 and "same type" in score["error"]
    assert results["lang_score.type"]["unexpected"] == 1
    assert results["lang_score.type"]["examples"] == [["id06", "high"]]
    assert results["lang_score.type"]["observed"] == {"unexpected_types": {"str": 1}}
    assert results["lang.allowed"]["examples"] == [["id04", "de"]]
    assert results["columns.present"]["unexpected"] == 0

    del records[6]
    _, partial = fn.check(records)
    score = partial["results"]["lang_score.range"]
    assert score["unexpected"] == 6 and score["observed"] == {"min": 0.9, "max": 7.5}
    assert [e[0] for e in score["examples"]] == ["id01", "id03", "id05", "id07", "id09"]


def test_batch_fn_reports_missing_columns_without_raising():
    suite = text.JOB.validation_suites(text.Config())["language"]
    fn = BatchFn("language", KEPT, expectations_of(suite, KEPT))
    fn.setup()
    _, partial = fn.check([{"id": "a", "text": "x", "lang": "en"}])
    results = partial["results"]
    assert results["columns.present"]["unexpected"] == 1
    assert "lang_score" in results["columns.present"]["observed"]["missing_columns"]
    assert results["lang_score.range"]["skipped_batches"] == 1 and not results["lang_score.range"]["errors"]


# ---------------------------------------------------------------------------------------------
# Whole runs


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    articles = write_warc(folder / "articles.warc.gz", [(u, h) for u, h, _ in aeb_pages(30)])
    run_dir = str(folder / "run")
    result = run_with_gate([str(CC_WARC), str(articles)], run_dir, text.Config())
    return Path(run_dir), result


@pytest.mark.slow
def test_a_run_on_the_shared_warc_passes_its_suites(good_run):
    run_dir, result = good_run
    config = text.Config()
    assert result.success and not result.critical
    assert (run_dir / SUCCESS).exists()
    files = sorted(p.name for p in (run_dir / "validation").iterdir())
    assert files == sorted(f"{stage}.json" for stage in text.stage_order(config))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    funnel = {row["stage"]: row for row in manifest["funnel"]}
    for stage in text.stage_order(config):
        doc = json.loads((run_dir / "validation" / f"{stage}.json").read_text())
        assert doc["success"] and doc["stage"] == stage
        assert doc["counts"]["kept"] == funnel[stage]["kept"]
        assert doc["counts"]["rejected"] == funnel[stage]["rejected"]
        assert doc["counts"]["records_in"] == funnel[stage]["in"]
        for entry in doc["results"]:
            assert entry["expectation_config"]["meta"]["severity"] in (CRITICAL, WARNING)
            assert entry["success"] or entry["expectation_config"]["meta"]["severity"] == WARNING
    # every kept record of every stage was seen by a batch
    extract = json.loads((run_dir / "validation" / "extract.json").read_text())
    (lengths,) = [e for e in extract["results"] if e["expectation_config"]["meta"]["key"] == "text.max_length"]
    assert lengths["result"]["element_count"] == funnel["extract"]["kept"] > 30


@pytest.mark.slow
def test_empty_texts_let_through_fail_the_gate_with_stage_expectation_and_ids(tmp_path):
    # Extract applies min_text_chars to HTML only (and refuses 0): texts from JSONL, Parquet and
    # WET pass it as they are, and only the filters after it drop empty ones.
    lines = [{"url": url, "text": gold} for url, _, gold in aeb_pages(3)]
    lines.append({"url": "https://example.com/empty", "text": ""})
    jsonl = tmp_path / "with-empty.jsonl"
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (empty_id,) = [r["id"] for r, _ in read_file(str(jsonl), ReadConfig()) if r["url"] == "https://example.com/empty"]
    config = disabled(
        text.Config(),
        "language",
        "gopher_repetition",
        "gopher_quality",
        "c4_quality",
        "fineweb_quality",
        "dedup_minhash",
    )
    run_dir = tmp_path / "run"
    with pytest.raises(ValidationFailed) as failed:
        run_with_gate([str(jsonl)], str(run_dir), config)
    message = str(failed.value)
    first = message.splitlines()[1]
    assert first.startswith("- stage harm: expect_column_value_lengths_to_be_between(column='text', min_value=1)")
    assert "[text.min_length, critical]" in first and "observed min_length=0" in first
    assert empty_id in first
    assert not (run_dir / SUCCESS).exists() and not (run_dir / "manifest.json").exists()
    harm = json.loads((run_dir / "validation" / "harm.json").read_text())
    assert not harm["success"] and harm["statistics"]["critical_failures"] == 1
    # extract lets it through by config: reported there as a warning, which alone would not fail
    extract = json.loads((run_dir / "validation" / "extract.json").read_text())
    assert extract["success"] and extract["statistics"]["warnings"] == 1
    assert failed.value.result.warnings


class CorruptLanguage(LanguageFilter):
    """A language filter with a bug: every score is 7.5."""

    def score_batch(self, records):
        return [{**signals, "lang_score": 7.5} for signals in super().score_batch(records)]


def _corrupt_run(run_dir, overrides=None, options=None):
    config = only(text.Config(), "extract", "language")
    config = dataclasses.replace(config, language=dataclasses.replace(config.language, allowed_languages=()))
    suites = text.JOB.validation_suites(config, overrides)
    options = options or PipelineOptions(["--runner=FnApiRunner"])
    FileSystems.set_options(options)  # the driver reads and writes the run folder too
    begin_run(str(run_dir))
    with beam.Pipeline(options=options) as pipeline:
        read = pipeline | "Read" >> ReadInputs([str(CC_WARC)], config.read)
        extract = read.kept | ApplyStage(Extract(config.extract))
        language = extract.kept | ApplyStage(CorruptLanguage(config.language))
        outputs = {
            "read": (read.kept, read.rejected),
            "extract": (extract.kept, extract.rejected),
            "language": (language.kept, language.rejected),
        }
        _ = pipeline | "Validate" >> ValidateStages(outputs, suites, str(run_dir))
    return gate(str(run_dir), None)


def _kept_ids():
    """The records that reach the language stage: read, then extracted by the default."""
    read = [r for r, drop in read_file(str(CC_WARC), ReadConfig()) if drop is None]
    extract = Extract(ExtractConfig())
    extract.setup()
    return sorted(r["id"] for r, drop in zip(read, extract.process_batch(read)) if drop is None)


@pytest.mark.slow
def test_a_corrupted_signal_fails_the_gate(tmp_path):
    with pytest.raises(ValidationFailed) as failed:
        _corrupt_run(tmp_path / "run")
    lines = str(failed.value).splitlines()
    assert lines[0].startswith("validation failed: 1 critical expectation(s) failed")
    (line,) = lines[1:]
    assert line.startswith(
        "- stage language: expect_column_values_to_be_between("
        "column='lang_score', min_value=0.0, max_value=1.0) [lang_score.range, critical]"
    )
    kept = _kept_ids()
    assert f"{len(kept)} of {len(kept)} values unexpected" in line and '"max": 7.5' not in line
    assert "observed min=7.5, max=7.5" in line
    assert all(f"{i} (7.5)" in line for i in kept[:5]) and kept[5] not in line


@pytest.mark.slow
def test_warnings_are_reported_and_do_not_fail(tmp_path):
    result = _corrupt_run(tmp_path / "run", {"language:lang_score.range": WARNING})
    assert result.success and not result.critical
    assert [(f.stage, f.key) for f in result.warnings] == [("language", "lang_score.range")]
    doc = json.loads((tmp_path / "run" / "validation" / "language.json").read_text())
    assert doc["success"] and doc["statistics"]["warnings"] == 1
    (entry,) = [e for e in doc["results"] if not e["success"]]
    assert entry["result"]["observed_value"] == {"min": 7.5, "max": 7.5}
    assert [row["id"] for row in entry["result"]["partial_unexpected_index_list"]] == _kept_ids()[:5]


@pytest.mark.slow
def test_results_and_gate_on_s3(s3_server):
    bucket = s3_server.create_bucket()
    try:
        result = _corrupt_run(
            f"s3://{bucket}/run", {"language:lang_score.range": WARNING}, s3_server.pipeline_options()
        )
    finally:
        FileSystems.set_options(PipelineOptions([]))
    assert result.success and [f.key for f in result.warnings] == ["lang_score.range"]
    listing = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="run/validation/")["Contents"]
    assert sorted(o["Key"] for o in listing) == [f"run/validation/{s}.json" for s in ("extract", "language", "read")]


def test_gate_without_results_fails(tmp_path):
    with pytest.raises(ValidationFailed, match="no validation results"):
        gate(str(tmp_path), None)


def test_validate_stages_needs_a_suite_for_every_stage():
    with pytest.raises(ValueError, match="no validation suite"):
        ValidateStages({"read": (None, None), "mystery": (None, None)}, {"read": {"expectations": []}}, "/tmp/x")


@pytest.mark.slow
def test_the_cli_exits_non_zero_names_the_failure_and_publishes_nothing(tmp_path):
    import subprocess
    import sys

    import yaml

    lines = [{"url": url, "text": gold} for url, _, gold in aeb_pages(3)]
    lines.append({"url": "https://example.com/empty", "text": ""})
    jsonl = tmp_path / "with-empty.jsonl"
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    lenient = ("language", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality", "dedup_minhash")
    config = tmp_path / "lenient.yaml"
    config.write_text(yaml.safe_dump({name: {"enabled": False} for name in lenient}))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "text", "--input", str(jsonl), "--output",
         str(tmp_path / "out"), "--run-id", "broken", "--config", str(config)],
        capture_output=True, text=True,
    )
    assert done.returncode == 1
    assert "validation failed" in done.stderr and "- stage harm: expect_column_value_lengths" in done.stderr
    run_dir = tmp_path / "out" / "broken"
    assert not (run_dir / SUCCESS).exists()
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert report["sealed"] is False and report["validation"]["failures"] >= 1
