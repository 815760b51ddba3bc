"""The image-caption job's validation suites, statistics, gate and report, on real runs.

Photos are served on loopback (``tests/image_fixtures.py``, the routes and inputs of
``tests/test_images_pipeline.py``). A full run passes every stage's suite and writes
``validation/<stage>.json``, ``report/report.json`` and ``report/index.html`` with the image
sections; a run that lets empty captions through, or a stage that writes an impossible signal,
fails the gate naming the stage, the expectation, what was observed and the smallest ids, and
publishes nothing; drift is flagged between runs over different inputs, not over the same one.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tarfile
from dataclasses import replace

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from crawl_sites import serve
from image_fixtures import variant
from test_images_pipeline import BEAM_ARGS, FAST_CRAWL, _inputs, _routes

from pipelines import cli, images
from pipelines.assembly import apply_stages
from pipelines.report import DRIFT_EXIT, load_report
from run_folder.gate import ValidationFailed, gate
from run_folder.layout import SUCCESS
from run_folder.seal import begin_run
from transforms.images.download import DownloadConfig
from transforms.images.image_filter import ImageFilter
from transforms.images.profile import IMAGE_PROFILE
from transforms.images.read import ReadCaptionInputs
from transforms.readers.base import base_name
from transforms.record import stable_id
from transforms.stage import RunContext
from transforms.stage_plan import plan_stages
from transforms.stats import StatsPlan, stats_document
from transforms.stats.collect import _MemberClustersFn
from transforms.validate import ValidateStages

pytestmark = pytest.mark.slow

FIRST, SAME, OTHER = "20260101T000000Z", "20260102T000000Z", "20260103T000000Z"
SHORT_CAPTIONS = 200


def _config() -> images.ImagesConfig:
    return images.Config(download=DownloadConfig(crawl=FAST_CRAWL))


def _other_inputs(tmp_path, site_url: str) -> list[str]:
    """A different day: two good photos and many one-word captions from other sites (dropped by
    ``caption_length`` before any download)."""
    table = tmp_path / "other.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "caption"])
        writer.writerow([site_url + "/img/china.jpg", "a temple roof under a grey sky"])
        writer.writerow([site_url + "/img/flower.jpg", "a pink flower in full bloom"])
        for i in range(SHORT_CAPTIONS):
            writer.writerow([f"https://shop{i % 7}.example.org/p/{i}.jpg", f"item{i}"])
    return [str(table)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("images-validation")
    out = tmp_path / "out"
    with serve(_routes()) as site:
        inputs = _inputs(tmp_path, site.url)
        for run_id in (FIRST, SAME):
            images.run(inputs, str(out), run_id, _config(), BEAM_ARGS, allow_private_addresses=True)
        images.run(
            _other_inputs(tmp_path, site.url),
            str(out),
            OTHER,
            _config(),
            BEAM_ARGS,
            allow_private_addresses=True,
        )
    return out


def _read_json(path):
    return json.loads(path.read_text())


def test_a_run_passes_every_stage_suite_and_writes_the_results(runs):
    run_dir = runs / FIRST
    manifest = _read_json(run_dir / "manifest.json")
    order = images.stage_order(_config())
    assert manifest["validation"]["success"] and manifest["validation"]["critical_failures"] == []
    assert manifest["validation"]["files"] == [f"validation/{stage}.json" for stage in order]
    assert sorted(p.name for p in (run_dir / "validation").iterdir()) == sorted(f"{s}.json" for s in order)
    funnel = {row["stage"]: row for row in manifest["funnel"]}
    for stage in order:
        doc = _read_json(run_dir / "validation" / f"{stage}.json")
        assert doc["success"] and doc["suite_name"] == f"images.{stage}", stage
        assert doc["meta"]["schema_version"] == "images/1"
        counts = doc["counts"]
        assert (counts["records_in"], counts["kept"], counts["rejected"]) == (
            funnel[stage]["in"],
            funnel[stage]["kept"],
            funnel[stage]["rejected"],
        ), stage
        assert counts["duplicate_ids"] == 0
    # The image-specific checks ran on every kept record of their stage.
    for stage, key in [
        ("decode", "sha256.format"),
        ("decode", "phash.format"),
        ("decode", "width.range"),
        ("image_filter", "aspect_ratio.range"),
        ("nsfw", "nsfw_score.range"),
        ("nsfw", "nsfw_score.threshold"),
        ("caption_length", "caption.min_length"),
        ("dedup_near", "dup_of.null"),
    ]:
        (entry,) = [
            e
            for e in _read_json(run_dir / "validation" / f"{stage}.json")["results"]
            if e["expectation_config"]["meta"]["key"] == key
        ]
        assert entry["success"] and entry["result"]["element_count"] == funnel[stage]["kept"] > 0, (
            stage,
            key,
        )
    (duplicates,) = [
        e
        for e in _read_json(run_dir / "validation" / "dedup_exact.json")["results"]
        if e["expectation_config"]["meta"]["key"] == "rejected_dup_of.not_null"
    ]
    assert duplicates["result"]["element_count"] == funnel["dedup_exact"]["rejected"] == 1


def test_the_report_has_the_image_sections_and_no_image_bytes(runs):
    run_dir = runs / FIRST
    report = load_report(str(run_dir))
    assert report["run"]["job"] == "images" and report["sealed"] and report["stats_available"]
    assert all(row["ok"] for row in report["stats_check"]) and all(
        c["ok"] for c in report["inventory"]["checks"]
    )
    assert report["validation"]["failures"] == 0
    assert [row["stage"] for row in report["funnel"]] == images.stage_order(_config())
    fields = {d["field"]: d for d in report["distributions"]}
    assert {
        "caption_length",
        "domain",
        "caption_chars",
        "caption_lang",
        "width",
        "height",
        "original_width",
        "aspect_ratio",
        "nsfw_score",
        "bytes",
        "sha256_url_count",
    } <= set(fields)
    assert not {"sha256", "phash", "image", "dup_of", "final_url"} & set(fields)
    # Every published image is 256 px wide (border resize); the caption lengths start at read.
    width = fields["width"]
    assert width["after"]["n"] == 6 and width["after"]["counts"][width["labels"].index("256–383")] == 6
    assert (
        fields["caption_length"]["before_stage"] == "read" and fields["caption_length"]["before"]["n"] == 31
    )
    samples = report["samples"]
    assert samples["snippet_of"] == "caption"
    (placeholder, *_) = samples["by_reason"]["placeholder.shared_bytes"]
    assert placeholder["snippet"].startswith("a product photo of a blue kettle")
    assert placeholder["signals"]["sha256_url_count"] >= 10
    everything = json.dumps(report)
    assert "JFIF" not in everything and "\\u00ff\\u00d8" not in everything
    assert all("image" not in s["signals"] for items in samples["by_reason"].values() for s in items)
    clusters = {c["stage"]: c for c in report["clusters"]}
    assert set(clusters) == {"url_dedup", "dedup_exact", "dedup_near"}
    (exact,) = clusters["dedup_exact"]["top"]
    assert (
        exact["size"] == 2
        and len(exact["members"]) == 1
        and clusters["dedup_exact"]["duplicates_removed"] == 1
    )
    assert sum(clusters["dedup_near"]["clusters_by_size"]) == len(clusters["dedup_near"]["top"]) >= 1
    html = (run_dir / "report" / "index.html").read_text()
    for plot in (
        "funnel",
        "dist.caption_length",
        "dist.width",
        "dist.nsfw_score",
        "dist.caption_lang",
        "clusters.dedup_exact",
        "clusters.dedup_near",
    ):
        assert f'data-plot="{plot}"' in html, plot
    assert "<code>placeholder.shared_bytes</code>" in html and "<th>caption</th>" in html


def test_no_drift_between_runs_over_the_same_input(runs):
    report = load_report(str(runs / SAME))
    drift = report["drift"]
    assert drift["previous"]["run_id"] == FIRST and drift["previous"]["same_config"]
    assert drift["alarms"] == []
    rows = {row["name"]: row for row in drift["rows"]}
    assert {"funnel", "input.domain", "after.width", "after.nsfw_score", "clusters.dedup_near"} <= set(rows)
    assert all(row["distance"] == 0 for row in rows.values() if row["distance"] is not None)


def test_drift_flagged_between_runs_over_different_inputs(runs, capsys):
    report = load_report(str(runs / OTHER))
    assert report["drift"]["previous"]["run_id"] == SAME
    alarmed = {line.split(":")[0] for line in report["drift"]["alarms"]}
    assert {"funnel", "input.domain"} <= alarmed
    # dataprep report re-renders it: exit 3 on the alarms, 0 without drift.
    assert cli.main(["report", str(runs / OTHER)]) == DRIFT_EXIT
    assert "drift alarm: funnel" in capsys.readouterr().err
    assert cli.main(["report", str(runs / OTHER), "--no-drift"]) == 0


def test_empty_captions_let_through_fail_the_gate_through_the_cli(tmp_path, capsys):
    config = tmp_path / "lenient.yaml"
    config.write_text(
        "caption_length:\n  min_words: 0\n  min_chars: 0\ncaption_language:\n  enabled: false\n"
        "nsfw:\n  enabled: false\ndownload:\n  crawl:\n    per_host_rate: 500.0\n    max_retries: 0\n"
    )
    table = tmp_path / "pairs.jsonl"
    with serve(_routes()) as site:
        table.write_text(
            json.dumps({"url": site.url + "/img/china.jpg", "caption": "the roof of a temple in china"})
            + "\n"
            + json.dumps({"url": site.url + "/img/flower.jpg", "caption": ""})
            + "\n"
        )
        code = cli.main(
            [
                "run",
                "images",
                "--input",
                str(table),
                "--output",
                str(tmp_path / "out"),
                "--run-id",
                "broken",
                "--config",
                str(config),
                "--allow-private-addresses",
            ]
        )
    err = capsys.readouterr().err
    assert code == 1, err
    empty_id = stable_id(base_name(str(table)), "row:1")
    assert "nothing published: ValidationFailed: validation failed" in err
    (first,) = [line for line in err.splitlines() if line.startswith("- stage caption_length:")]
    assert first.startswith(
        "- stage caption_length: expect_column_value_lengths_to_be_between(column='caption', min_value=1) "
        "[caption.min_length, critical]: 1 of 2 values unexpected; observed min_length=0"
    )
    assert f'example ids: {empty_id} ("")' in first
    run_dir = tmp_path / "out" / "broken"
    assert not (run_dir / SUCCESS).exists()
    doc = _read_json(run_dir / "validation" / "caption_length.json")
    assert not doc["success"] and doc["statistics"]["critical_failures"] == 1
    report = load_report(str(run_dir))
    assert report["sealed"] is False and report["validation"]["failures"] >= 1
    assert "not sealed" in (run_dir / "report" / "index.html").read_text()


class CorruptImageFilter(ImageFilter):
    """An image filter with a bug: every aspect ratio is 0.5 (longer side / shorter side >= 1)."""

    def score(self, record):
        return {**super().score(record), "aspect_ratio": 0.5}


def _tar(path, samples: dict[str, tuple[bytes, str]]) -> str:
    with tarfile.open(path, "w") as archive:
        for key, (image, caption) in samples.items():
            for name, data in ((f"{key}.jpg", image), (f"{key}.txt", caption.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return str(path)


def test_a_corrupted_signal_fails_the_gate(tmp_path):
    tar = _tar(
        tmp_path / "shard.tar",
        {
            "s1": (variant("flower", box=(320, 0, 640, 427)), "the right half of a flower photo"),
            "s2": (variant("china", box=(0, 0, 320, 427)), "the left half of a temple roof"),
            "s3": (variant("china", box=(200, 0, 520, 427)), "the middle of a temple roof"),
        },
    )
    off = (
        "caption_boilerplate",
        "caption_language",
        "url_dedup",
        "placeholder",
        "nsfw",
        "dedup_exact",
        "dedup_near",
    )
    config = _config()
    for name in off:
        config = replace(config, **{name: replace(getattr(config, name), enabled=False)})
    stages = tuple(CorruptImageFilter if stage is ImageFilter else stage for stage in images.STAGES)
    run_dir = str(tmp_path / "run")
    begin_run(run_dir)
    with beam.Pipeline(options=PipelineOptions(BEAM_ARGS)) as pipeline:
        read = pipeline | "Read" >> ReadCaptionInputs([tar], config.read)
        outputs = apply_stages(read, plan_stages(stages, config), config, RunContext(run_dir, "run"), config.batch_size)
        _ = pipeline | "Validate" >> ValidateStages(outputs, images.JOB.validation_suites(config), run_dir)
    with pytest.raises(ValidationFailed) as failed:
        gate(run_dir, None)
    lines = str(failed.value).splitlines()
    assert lines[0].startswith("validation failed: 1 critical expectation(s) failed")
    (line,) = lines[1:]
    ids = sorted(stable_id(base_name(tar), f"tar:{key}") for key in ("s1", "s2", "s3"))
    assert line == (
        "- stage image_filter: expect_column_values_to_be_between(column='aspect_ratio', min_value=1.0) "
        "[aspect_ratio.range, critical]: 3 of 3 values unexpected; observed min=0.5, max=0.5; example ids: "
        + ", ".join(f"{i} (0.5)" for i in ids)
    )
    doc = json.loads((tmp_path / "run" / "validation" / "image_filter.json").read_text())
    assert not doc["success"] and doc["counts"]["kept"] == 3


def test_every_stage_has_a_suite_with_unique_keys_and_config_thresholds():
    config = _config()
    suites = images.JOB.validation_suites(config)
    assert list(suites) == images.stage_order(config)
    for stage, suite in suites.items():
        keys = [e["meta"]["key"] for e in suite["expectations"]]
        assert len(keys) == len(set(keys)) and suite["name"] == f"images.{stage}"
        assert all(
            e["severity"] == e["meta"]["severity"] in ("critical", "warning") for e in suite["expectations"]
        )
    by_key = {(s, e["meta"]["key"]): e for s, suite in suites.items() for e in suite["expectations"]}
    assert by_key[("nsfw", "nsfw_score.threshold")]["kwargs"]["max_value"] == config.nsfw.threshold
    assert (
        by_key[("image_filter", "original_width.min_side")]["kwargs"]["min_value"]
        == config.image_filter.min_side
    )
    assert by_key[("caption_language", "caption_lang.allowed")]["kwargs"]["value_set"] == ["en"]
    assert by_key[("read", "caption.min_length")]["meta"]["severity"] == "warning"
    assert by_key[("caption_length", "caption.min_length")]["meta"]["severity"] == "critical"
    assert by_key[("nsfw", "caption.min_length")]["kwargs"]["min_value"] == config.caption_length.min_chars
    reasons = by_key[("download", "reject_reason.allowed")]["kwargs"]["regex"]
    assert "http_[0-9]{3}" in reasons and "robots_disallowed" in reasons
    with_alignment = replace(config, alignment=replace(config.alignment, enabled=True, checkpoint="clip.pt"))
    alignment = {e["meta"]["key"]: e for e in images.JOB.validation_suites(with_alignment)["alignment"]["expectations"]}
    assert alignment["alignment_score.range"]["kwargs"] == {
        "column": "alignment_score",
        "min_value": -1.0,
        "max_value": 1.0,
    }
    assert alignment["alignment_score.min_score"]["kwargs"]["min_value"] == with_alignment.alignment.threshold
    overridden = images.JOB.validation_suites(config, {"nsfw:nsfw_score.threshold": "warning"})
    (threshold,) = [
        e for e in overridden["nsfw"]["expectations"] if e["meta"]["key"] == "nsfw_score.threshold"
    ]
    assert threshold["severity"] == "warning"
    with pytest.raises(ValueError, match="match no expectation"):
        images.JOB.validation_suites(config, {"nsfw:no_such_key": "warning"})


def test_clusters_counted_from_members_merge_the_same_in_any_order():
    plan = StatsPlan.for_stages(
        ["read", "url_dedup", "dedup_exact"], images.STAGES, IMAGE_PROFILE, top_clusters=2, cluster_members=2
    )
    assert plan.member_clusters == ("url_dedup", "dedup_exact") and plan.snippet_of == "caption"
    # (keeper, [members naming it, the smallest of them]): what ``_MembersFn`` gives per keeper.
    elements = [
        (f"k{i}", [i + 1, [[f"m{i}-{j}", {"id": f"m{i}-{j}"}] for j in range(min(i + 1, 2))]])
        for i in range(6)
    ]
    combine_fn = _MemberClustersFn(plan, "dedup_exact")

    def combine(parts):
        accs = []
        for part in parts:
            acc = combine_fn.create_accumulator()
            for element in part:
                acc = combine_fn.add_input(acc, element)
            accs.append(acc)
        return stats_document(combine_fn.merge_accumulators(accs), plan)["clusters"]["dedup_exact"]

    whole = combine([elements])
    assert [(c["size"], c["keeper"]["id"], len(c["members"])) for c in whole["top"]] == [
        (7, "k5", 2),
        (6, "k4", 2),
    ]
    assert sum(whole["sizes"]["counts"]) == 6 and whole["sizes"]["max"] == 7 and whole["size_field"] is None
    rng = random.Random(7)
    for _ in range(10):
        shuffled = rng.sample(elements, len(elements))
        cut = rng.randrange(1, len(shuffled))
        assert combine([shuffled[:cut], shuffled[cut:]]) == whole
