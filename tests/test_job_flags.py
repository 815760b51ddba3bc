"""Every ``dataprep run`` flag works for a job or is refused with a clear message, never
silently ignored; refusals happen before anything is run or written."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from pipelines import cli, images, text

CC_WARC = str(SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz")
# Flags every job uses; the others are a job's own run flags (``Job.flags``) or crawl settings.
GENERAL = {"help", "job", "input", "urls", "output", "config", "run_id", "verbose", "workers", "synthetic",
           "synthetic_max_records", "previous", "drift_threshold", "no_drift"}
CRAWL = {"allow_private_addresses", "allowed_domains", "allowed_hosts", "allowed_networks", "content_types",
         "depth", "max_body_bytes", "page_budget", "per_host_concurrency", "per_host_rate", "total_timeout_s",
         "user_agent"}


def _run_flags() -> set[str]:
    commands = next(action for action in cli._parser()._actions if action.dest == "command")
    return {action.dest for action in commands.choices["run"]._actions}


def test_every_run_flag_is_general_a_crawl_setting_or_a_job_flag():
    """A new flag must be placed here, and so decided: for every job, or refused where unused."""
    job_flags = {flag.name for job in (text.JOB, images.JOB) for flag in job.flags}
    assert _run_flags() == GENERAL | CRAWL | {"dedup_index"}
    assert "dedup_index" in job_flags


def test_dedup_index_is_refused_by_the_images_job(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run", "images", "--input", CC_WARC, "--output", str(out),
                     "--dedup-index", str(tmp_path / "index")])
    assert code == 2
    assert "--dedup-index does not apply to the images job" in capsys.readouterr().err
    assert not out.exists()


def test_crawl_settings_without_urls_are_refused_by_the_text_job(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run", "text", "--input", CC_WARC, "--output", str(out),
                     "--allow-private-addresses", "--per-host-rate", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "crawl settings (per_host_rate, allow_private_addresses) apply to the text job only with --urls" in err
    assert not out.exists()


def test_the_runner_refuses_a_flag_the_job_does_not_accept(tmp_path):
    with pytest.raises(ValueError, match="--dedup-index does not apply to the images job"):
        images.run([CC_WARC], str(tmp_path), "r1", images.Config(), [], dedup_index=str(tmp_path / "index"))
    with pytest.raises(ValueError, match="--allow-private-addresses does not apply to the text job"):
        text.run([CC_WARC], str(tmp_path), "r1", text.Config(), [], allow_private_addresses=True)
    assert not (tmp_path / "r1").exists()


def test_the_images_job_applies_its_own_flag():
    (flag,) = images.JOB.flags
    config = flag.apply(images.Config(), True)
    assert config.download.crawl.allow_private_addresses and not images.Config().download.crawl.allow_private_addresses
