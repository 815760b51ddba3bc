"""The data-quality report on real runs: funnel, distributions, samples, clusters, validation,
drift between runs, the output inventory, ``dataprep report``, and progress on a terminal."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as ds
import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc

from pipelines import text
from pipelines.drift import js_distance, sampling_noise
from pipelines.progress import run_with_progress
from pipelines.report import (
    DRIFT_EXIT,
    add_report_arguments,
    drift_alarms,
    load_report,
    report_command,
    write_report,
)
from pipelines.report_inputs import find_previous_run, load_validation
from pipelines.runner import pipeline_options

pytestmark = pytest.mark.slow

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
COPIES = 5


def run_text(inputs: list[str], output: str, run_id: str, before_report=None) -> dict:
    """``pipelines.text.run`` (which writes the report); ``before_report`` changes the finished run
    and the report is re-rendered from it, as ``dataprep report`` does."""
    text.run(inputs, output, run_id, text.Config(), [])
    run_dir = f"{output}/{run_id}"
    assert_conserved(run_dir)
    if before_report:
        before_report(run_dir)
        return write_report(run_dir)
    return load_report(run_dir)


def write_gate_shaped_validation(run_dir: str) -> None:
    """Validation results as the run gate writes them (GE's result shape) and in the flat shape."""
    folder = Path(run_dir) / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "language.json").write_text(json.dumps({
        "stage": "language", "success": True,
        "results": [
            {"success": True, "summary": "0 of 20 values unexpected",
             "expectation_config": {"type": "expect_column_values_to_be_between",
                                    "kwargs": {"column": "lang_score", "min_value": 0, "max_value": 1},
                                    "meta": {"severity": "critical", "scope": "batch", "key": "lang_score.range"}},
             "result": {"observed_value": None, "partial_unexpected_index_list": []}},
            {"success": False, "summary": "3 of 20 values unexpected; example ids: a1, b2",
             "expectation_config": {"type": "expect_column_values_to_be_in_set",
                                    "kwargs": {"column": "lang", "value_set": ["en"]},
                                    "meta": {"severity": "warning", "scope": "batch", "key": "lang.allowed"}},
             "result": {"partial_unexpected_index_list": [{"id": "a1", "lang": "de"}, {"id": "b2", "lang": "fr"}]}},
        ],
    }))
    (folder / "read.json").write_text(json.dumps([
        {"expectation": "expect_column_values_to_be_unique(column='id')", "severity": "critical",
         "success": False, "observed": {"duplicate_ids": 1}, "example_ids": ["dead"]},
    ]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs under one output prefix: r1 and r2 over the same input, r3 over other pages."""
    folder = tmp_path_factory.mktemp("inputs")
    pages = aeb_pages()
    same = write_warc(folder / "same.warc.gz",
                      [(u, h) for u, h, _ in pages[:50]] + [(f"{u}?copy", h) for u, h, _ in pages[:COPIES]])
    other = write_warc(folder / "other.warc.gz", [(u, h) for u, h, _ in pages[100:181]])
    out = tmp_path_factory.mktemp("out")
    reports = {
        "r1": run_text([str(CC_WARC), str(same)], str(out), "r1"),
        "r2": run_text([str(CC_WARC), str(same)], str(out), "r2"),
        "r3": run_text([str(other)], str(out), "r3"),
    }
    return out, reports


def test_report_files_are_in_the_run_folder(runs):
    out, reports = runs
    run_dir = out / "r1"
    for name in ("report.json", "index.html", "stats.json"):
        assert (run_dir / "report" / name).stat().st_size > 0
    assert not list((run_dir / "_staging").glob("*"))
    assert load_report(str(run_dir))["funnel"] == reports["r1"]["funnel"]
    html = (run_dir / "report" / "index.html").read_text()
    assert "http://" not in html.split("<main>")[0] and "<script" not in html


def test_funnel_and_inventory_reconcile_with_the_manifest(runs):
    out, reports = runs
    report = reports["r1"]
    manifest = json.loads((out / "r1" / "manifest.json").read_text())
    assert [r["stage"] for r in report["funnel"]] == [r["stage"] for r in manifest["funnel"]]
    assert all(row["ok"] for row in report["stats_check"]), report["stats_check"]
    assert all(check["ok"] for check in report["inventory"]["checks"]), report["inventory"]["checks"]
    reasons = {r["reason"] for row in report["funnel"] for r in row["reasons"]}
    assert {"language.language_not_allowed", "dedup_exact.duplicate"} <= reasons
    # WARC requests and metadata are no documents: listed apart, outside the funnel
    assert not any(r.endswith("_record") for r in reasons) and report["skipped"]["warc_request_record"] >= 17
    assert 'id="skipped"' in (out / "r1" / "report" / "index.html").read_text()
    stages = {r["stage"] for r in report["funnel"]}
    assert report["run"]["stage_seconds"] and set(report["run"]["stage_seconds"]) <= stages


def test_distributions_before_and_after(runs):
    _, reports = runs
    report = reports["r1"]
    entries = {e["field"]: e for e in report["distributions"]}
    kept = report["conservation"]["kept"]
    lang = entries["lang"]
    assert lang["before_stage"] == "language"
    before = dict(zip(lang["labels"], lang["before"]["counts"]))
    after = dict(zip(lang["labels"], lang["after"]["counts"]))
    assert after["en"] == kept and sum(after.values()) == kept
    assert sum(v for k, v in before.items() if k != "en") > 0
    length = entries["text_length"]
    assert length["before_stage"] == "extract" and length["after"]["n"] == kept
    assert length["before"]["n"] > length["after"]["n"]
    assert entries["lang_score"]["kind"] == "histogram" and entries["lang_score"]["after"]["min"] >= 0.65


def test_rejected_samples_are_the_smallest_ids_per_reason(runs):
    out, reports = runs
    rejected = ds.dataset(out / "r1" / "rejected", partitioning="hive").to_table(
        columns=["id", "reject_reason"]).to_pylist()
    by_reason: dict[str, list[str]] = {}
    for row in rejected:
        by_reason.setdefault(row["reject_reason"], []).append(row["id"])
    samples = reports["r1"]["samples"]
    assert set(samples["by_reason"]) == set(by_reason)
    for reason, ids in by_reason.items():
        assert [s["id"] for s in samples["by_reason"][reason]] == sorted(ids)[: samples["k"]]
    # Same input, same samples: r2 reads the same files.
    assert reports["r2"]["samples"] == samples


def test_harm_scores_per_source_account_for_every_scored_record(runs):
    """Issue 20: the report shows the harm score distribution per source, read from the committed
    files; every record the harm stage scored is counted once, under its input file."""
    out, reports = runs
    report = reports["r1"]
    harm = report["harm"]
    row = next(r for r in report["funnel"] if r["stage"] == "harm")
    sources = {s["source"]: s for s in harm["sources"]}
    assert set(sources) == set(report["run"]["inputs"])
    assert sum(s["scored"] for s in sources.values()) == row["in"] > 0
    assert all(sum(s["counts"]) == s["scored"] and len(s["counts"]) == len(harm["labels"]) for s in sources.values())
    toxic = sum(r["count"] for r in row["reasons"] if r["reason"] == "harm.toxic")
    assert sum(s["above_threshold"] for s in sources.values()) == toxic
    assert harm["threshold"] == text.Config().harm.max_toxicity
    section = (out / "r1" / "report" / "index.html").read_text().split('<section id="harm">')[1].split("</section>")[0]
    for source in sources:
        assert f'data-plot="harm.{Path(source).name}"' in section


def test_dedup_clusters_name_their_keeper_and_members(runs):
    out, reports = runs
    (exact,) = [c for c in reports["r1"]["clusters"] if c["stage"] == "dedup_exact"]
    removed = ds.dataset(out / "r1" / "rejected" / "stage=dedup_exact").to_table(
        columns=["id", "url", "dup_of"]).to_pylist()
    assert 0 < len(removed) <= COPIES and exact["duplicates_removed"] == len(removed)
    members = {row["dup_of"]: row["id"] for row in removed}
    assert sorted(c["keeper"]["id"] for c in exact["top"]) == sorted(members)
    published = set(ds.dataset(out / "r1" / "data").to_table(columns=["id"]).column("id").to_pylist())
    for cluster in exact["top"]:
        assert cluster["size"] == 2 and cluster["keeper"]["id"] in published
        (member,) = cluster["members"]
        assert member["id"] == members[cluster["keeper"]["id"]]
        assert member["url"].removesuffix("?copy") == cluster["keeper"]["url"].removesuffix("?copy")
    sizes = dict(zip(exact["labels"], exact["clusters_by_size"]))
    assert sizes["2–4"] == len(removed) and sizes["1"] == len(published) - len(removed)


def test_no_drift_between_runs_over_the_same_input(runs):
    _, reports = runs
    section = reports["r2"]["drift"]
    assert section["previous"]["run_id"] == "r1" and section["previous"]["same_config"]
    assert section["rows"] and all(row["distance"] in (0.0, None) for row in section["rows"])
    assert drift_alarms(reports["r2"]) == []
    assert reports["r1"]["drift"]["previous"] is None


def test_drift_flagged_between_runs_over_different_inputs(runs):
    _, reports = runs
    section = reports["r3"]["drift"]
    assert section["previous"]["run_id"] == "r2"
    rows = {row["name"]: row for row in section["rows"]}
    alarmed = {name for name, row in rows.items() if row["alarm"]}
    # r3 has no duplicates: that shows as drift. Nor has it WARC request/metadata records, but
    # those are no documents: skipped outside the funnel, so no funnel change names them.
    assert "after.dup_cluster_size" in alarmed
    assert len(drift_alarms(reports["r3"])) == len(alarmed)
    assert rows["funnel"]["top_changes"] and not any(
        c["value"].startswith("read.") for c in rows["funnel"]["top_changes"])
    # Other sites, but ~1 page per domain on either side: a large distance that sampling alone
    # would also give, so no alarm (see pipelines/drift.py).
    assert rows["input.domain"]["distance"] > 0.8 and rows["input.domain"]["status"] == "within noise"
    assert all(0 <= row["distance"] <= 1 for row in section["rows"] if row["distance"] is not None)


def test_previous_run_is_the_latest_earlier_finished_run(runs):
    out, _ = runs
    assert find_previous_run(str(out / "r1")) is None
    assert find_previous_run(str(out / "r2")) == str(out / "r1")
    assert find_previous_run(str(out / "r3")) == str(out / "r2")
    assert find_previous_run(str(out / "r9")) == str(out / "r3")


def _report_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return parser.parse_args(list(argv))


def test_report_command_rerenders_and_exits_on_drift(runs, tmp_path, capsys):
    out, reports = runs
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "r3" / "report" / "index.html").unlink()
    (copy / "r3" / "report" / "report.json").unlink()
    assert report_command(_report_args(str(copy / "r3"))) == DRIFT_EXIT
    # r3's inputs differ from r2's: its distributions drift (the funnel no longer does, now that
    # WARC request records are skipped rather than counted as rejected documents).
    assert "drift alarm: after." in capsys.readouterr().err
    again = json.loads((copy / "r3" / "report" / "report.json").read_text())
    assert again["funnel"] == reports["r3"]["funnel"] and again["distributions"] == reports["r3"]["distributions"]
    assert report_command(_report_args(str(copy / "r3"), "--no-drift")) == 0
    assert report_command(_report_args(str(copy / "r3"), "--previous", str(copy / "r3"))) == 0
    assert report_command(_report_args(str(copy / "r3"), "--drift-threshold", "1")) == 0
    assert report_command(_report_args(str(tmp_path / "missing"))) == 1


def test_validation_results_of_both_shapes_are_rendered(runs, tmp_path):
    out, _ = runs
    run_dir = tmp_path / "r1"
    shutil.copytree(out / "r1", run_dir)
    write_gate_shaped_validation(str(run_dir))
    validation = load_validation(str(run_dir))
    assert validation["language"]["success"] is True
    failed = validation["language"]["results"][1]
    assert failed["severity"] == "warning" and failed["example_ids"] == ["a1", "b2"]
    assert failed["expectation"].startswith("expect_column_values_to_be_in_set(")
    assert validation["read"]["success"] is False and validation["read"]["results"][0]["example_ids"] == ["dead"]
    report = write_report(str(run_dir), find_previous=False)
    assert report["validation"]["failures"] == 1 and report["validation"]["warnings"] == 1
    html = (run_dir / "report" / "index.html").read_text()
    assert "expect_column_values_to_be_in_set" in html and "1 failed expectation" in html


def test_drift_measure():
    assert js_distance([5, 5], [5, 5]) == 0
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1)
    assert js_distance([1, 0], [3, 0]) == 0  # shares, not counts
    assert js_distance([9, 1], [1, 9]) == pytest.approx(js_distance([1, 9], [9, 1]))
    assert sampling_noise(100, 100, 5) > sampling_noise(10_000, 10_000, 5) > 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _counting_pipeline() -> tuple[beam.Pipeline, list[str]]:
    pipeline = beam.Pipeline(options=pipeline_options([]))
    kept, dropped = beam.metrics.Metrics.counter("even", "kept"), beam.metrics.Metrics.counter("even", "rejected")

    def count(x: int) -> int:
        (kept if x % 2 == 0 else dropped).inc()
        return x

    _ = pipeline | beam.Create(range(10)) | "even" >> beam.Map(count)
    return pipeline, ["even"]


def test_progress_prints_stage_counts_on_a_terminal():
    pipeline, stages = _counting_pipeline()
    terminal = _Terminal()
    progress = run_with_progress(pipeline, stages, stream=terminal, interval=0.05)
    assert progress.stage_counts == {"even": {"kept": 5, "rejected": 5}}
    assert "even" in progress.stage_seconds
    lines = terminal.getvalue().splitlines()
    assert any(line.split()[:3] == ["even", "5", "5"] for line in lines)
    assert "finished in" in terminal.getvalue()


def test_progress_is_quiet_when_not_a_terminal():
    pipeline, stages = _counting_pipeline()
    stream = io.StringIO()
    progress = run_with_progress(pipeline, stages, stream=stream)
    assert stream.getvalue() == "" and progress.stage_counts["even"]["kept"] == 5


def test_tokens_per_language_and_source_are_in_the_manifest_and_the_report(runs):
    out, reports = runs
    manifest = json.loads((out / "r1" / "manifest.json").read_text())
    tokens = manifest["tokens"]
    assert tokens["documents"] == manifest["conservation"]["kept"]
    assert tokens["tokens"] == sum(v["tokens"] for v in tokens["language"].values()) > 0
    assert sum(v["documents"] for v in tokens["source"].values()) == tokens["documents"]
    assert reports["r1"]["tokens"] == tokens
    html = (out / "r1" / "report" / "index.html").read_text()
    assert 'id="tokens"' in html and f"{tokens['tokens']:,}" in html
