"""Consent, licence and takedown stages: each signal on its own, then the text job on a WARC of
a loopback site's real responses (every reserved page in rejected/ with its signal and evidence,
every other page kept, with its licence)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pyarrow.dataset as ds
import pytest
from conftest import assert_conserved
from consent_site import CRAWL_REASONS, PAGES, SITE_WIDE, site_routes, warc_of_responses
from crawl_sites import serve

from pipelines import crawl, text
from pipelines.report import load_report
from transforms.consent.blocklist import parse_blocklist
from transforms.consent.content_usage import reserved_category
from transforms.consent.licenses import find_license
from transforms.consent.signals import find_reservations, head_metas
from transforms.crawl.config import CrawlConfig
from transforms.filters.consent import ConsentConfig, ConsentFilter
from transforms.filters.takedown import TakedownConfig
from transforms.readers.read_config import ReadConfig
from transforms.readers.warc import read_warc
from transforms.stage import run_stage

pytestmark = pytest.mark.slow  # the text job and the crawl job on a loopback site

PAGE_STAGES = ("takedown", "url_filter", "consent", "license", "extract")


def test_content_usage_reads_the_narrowest_stated_category():
    assert reserved_category(["train-ai=n"]) == "train-ai"
    assert reserved_category(["train-ai=n, train-genai=y"]) is None  # narrower allows
    assert reserved_category(["train-genai=n", "train-ai=y"]) == "train-genai"  # two fields, one dictionary
    assert reserved_category(["search=n"]) is None
    assert reserved_category(["bots=n"]) == "bots"
    assert reserved_category(["ai=n;foo=1"]) == "ai"  # parameters ignored, later labels read


def test_x_robots_tag_scoped_to_another_agent_does_not_apply():
    tokens = ConsentConfig().agent_tokens
    assert find_reservations([("X-Robots-Tag", "googlebot: noindex")], [], tokens) == []
    assert find_reservations([("X-Robots-Tag", "gptbot: noai")], [], tokens) == [
        ("x_robots_tag_noai", "X-Robots-Tag: gptbot: noai")
    ]


def test_meta_tags_are_read_from_the_head_only():
    html = b'<html><head><title>t</title></head><body><meta name="robots" content="noai"></body></html>'
    assert head_metas(html) == []
    assert head_metas(b'<head><META NAME="Robots" CONTENT="NOAI"></head>') == [("robots", "NOAI")]


def test_licence_statements_are_found_in_any_case():
    # The gate before the HTML parse lower-cases the page; every form still names the licence.
    pages = {
        b'<html><head><link rel="License" href="https://CreativeCommons.org/licenses/by/4.0/"></head></html>': "CC-BY-4.0",
        b'<html><a href="HTTPS://CREATIVECOMMONS.ORG/LICENSES/BY-SA/4.0/">cc</a></html>': "CC-BY-SA-4.0",
        b'<html><head><meta name="LICENCE" content="MIT"></head></html>': "MIT",
    }
    for body, spdx in pages.items():
        assert find_license(None, body).spdx == spdx
    assert find_license(None, b"<html><p>licensing aside, nothing here</p></html>") is None


def test_honoured_signals_are_configuration():
    record = {"body": b'<head><meta name="robots" content="noindex"></head>', "content_type": "text/html"}
    kept_anyway = ConsentFilter(ConsentConfig(honoured=("meta_robots_noai",)))
    ((scored, drop),) = run_stage(kept_anyway, [dict(record)])
    assert drop is None and scored["consent_signals"] == ["meta_robots_noindex"]
    with pytest.raises(ValueError, match="unknown signals"):
        ConsentConfig(honoured=("noai",))


def _page_config(blocklist: str) -> text.Config:
    config = text.Config()
    off = {s.name: dataclasses.replace(getattr(config, s.name), enabled=False)
           for s in text.STAGES if s.name not in PAGE_STAGES}
    return dataclasses.replace(config, **off, takedown=TakedownConfig(blocklist_path=blocklist))


@pytest.fixture(scope="module")
def site_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("consent")
    with serve(site_routes()) as site:
        warc = warc_of_responses(site.url, folder / "site.warc.gz")
    blocklist = folder / "blocklist.txt"
    blocklist.write_text(f"# a takedown request\nurl {site.url}/lic-meta.html DMCA notice 2026-12-01\n")
    text.run([str(warc)], str(folder / "out"), "r1", _page_config(str(blocklist)), [])
    run_dir = folder / "out" / "r1"
    assert_conserved(run_dir)
    kept = ds.dataset(run_dir / "data").to_table().to_pylist()
    rejected = ds.dataset(run_dir / "rejected", partitioning="hive").to_table().to_pylist()
    return site.url, {r["url"]: r for r in kept}, {r["url"]: r for r in rejected}, run_dir


def test_every_reserved_page_is_rejected_with_its_signal_and_evidence(site_run):
    url, kept, rejected, _ = site_run
    for path, (headers, head, _, reason, _) in PAGES.items():
        if path == "/lic-meta.html":
            continue  # taken down, below
        if reason is None:
            assert url + path in kept, (path, rejected.get(url + path, {}).get("reject_reason"))
            continue
        row = rejected[url + path]
        assert row["reject_reason"] == reason, path
        signal = reason.split(".", 1)[1]
        evidence = row["consent_evidence"][row["consent_signals"].index(signal)]
        assert row["reject_detail"] == evidence
        said = next(iter(headers), None) or head.split(" content=")[0]
        assert said.lower() in evidence.lower(), (path, evidence)


def test_kept_pages_record_the_signals_they_carry_but_we_do_not_honour(site_run):
    url, kept, _, _ = site_run
    assert kept[url + "/xrt-noimageai.html"]["consent_signals"] == ["x_robots_tag_noimageai"]
    assert kept[url + "/plain.html"]["consent_signals"] == []


def test_licence_column_in_data(site_run):
    url, kept, _, _ = site_run
    for path, (_, _, _, _, licence) in PAGES.items():
        if licence and path != "/lic-meta.html":
            assert kept[url + path]["license"] == licence, (path, kept[url + path]["license_value"])


def test_a_listed_url_is_taken_down_without_its_content(site_run):
    url, kept, rejected, _ = site_run
    row = rejected[url + "/lic-meta.html"]
    assert row["reject_reason"] == "takedown.url" and "DMCA notice" in row["reject_detail"]
    assert row["text"] is None and url + "/lic-meta.html" not in kept


def test_report_section_counts_opt_outs_by_signal_and_source_and_the_licence_mix(site_run):
    url, kept, rejected, run_dir = site_run
    section = load_report(str(run_dir))["consent"]
    reserved = Counter(row["reject_reason"] for row in rejected.values()
                       if row["reject_stage"] in ("consent", "takedown"))
    assert Counter({row["reason"]: row["records"] for row in section["opt_outs"]}) == reserved
    assert all(row["source"].endswith("site.warc.gz") for row in section["opt_outs"])
    mix = {row["license"]: row["records"] for row in section["licenses"]}
    assert mix["CC-BY-SA-4.0"] >= 1 and sum(mix.values()) == len(kept)


def test_the_crawler_honours_what_it_sees_and_the_consent_stage_what_it_archived(tmp_path):
    config = CrawlConfig(per_host_rate=500.0, per_host_concurrency=4, allowed_networks=("127.0.0.1/32",))
    with serve(site_routes()) as site:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(f"{site.url}{path}\n" for path in [*PAGES, *SITE_WIDE]))
        manifest = crawl.run([str(urls)], str(tmp_path / "out"), "c", config, ["--runner=FnApiRunner"])
        tdmrep_fetches = site.paths().count("/.well-known/tdmrep.json")
    assert_conserved(tmp_path / "out" / "c")
    assert tdmrep_fetches == 1  # once per origin, as robots.txt
    log = {r["url"].removeprefix(site.url): r for r in ds.dataset(tmp_path / "out" / "c" / "fetch_log").to_table().to_pylist()}
    for path, row in log.items():
        assert row["reason"] == CRAWL_REASONS.get(path), (path, row["reason"], row["detail"])
    assert "tdmrep.json" in log["/tdmrep/page.html"]["detail"]
    assert "train-ai=n" in log["/cu-robots/page.html"]["detail"] and "gptbot" in log["/gpt-blocked/page.html"]["detail"]
    # What the crawler archived, the consent stage reads from the WARC: tags it does not honour.
    stage = ConsentFilter()
    records = [r for path in crawl.warc_files(manifest) for r, drop in read_warc(path, ReadConfig()) if drop is None]
    decided = {r["url"].removeprefix(site.url): drop for r, drop in run_stage(stage, records)}
    assert {p: d.reason for p, d in decided.items() if d} == {
        "/meta-ccbot.html": "meta_robots_noindex", "/tdm-meta.html": "tdm_reservation_meta"}


def test_image_pairs_from_a_reserved_page_carry_its_signals_and_licence(site_run, tmp_path):
    """The images job reads <img alt> pairs from the same WARC: each pair carries its page's
    reservations (noimageai honoured there) and licence, and its consent stage decides on them."""
    from pipelines.images import ImagesConfig
    from transforms.images.html_alt import read_warc_alt_pairs

    url, _, _, run_dir = site_run
    warc = json.loads((run_dir / "manifest.json").read_text())["inputs"][0]
    pairs = [record for record, drop in read_warc_alt_pairs(warc) if drop is None]
    stage = ConsentFilter(ImagesConfig().consent)
    decided = {}
    for record, drop in run_stage(stage, pairs):
        decided.setdefault(record["page_url"].removeprefix(url), set()).add(drop.reason if drop else None)
    assert decided["/xrt-noimageai.html"] == {"x_robots_tag_noimageai"}
    assert decided["/tdm-header.html"] == {"tdm_reservation_header"}
    assert decided["/plain.html"] == {None}
    licensed = [r for r in pairs if r["page_url"] == url + "/lic-rel.html"]
    assert licensed and {r["license"] for r in licensed} == {"CC-BY-SA-4.0"}


def test_takedown_matches_image_hashes_and_clears_the_content():
    from transforms.filters.takedown import TakedownFilter

    stage = TakedownFilter(TakedownConfig(phash_max_distance=2))
    stage._blocklist = parse_blocklist("sha256 " + "ab" * 32 + " DMCA 7\nphash 00000000000000ff\n", 2)
    records = [{"id": "a", "sha256": "ab" * 32, "image": b"x", "caption": "c"},
               {"id": "b", "sha256": "cd" * 32, "phash": "00000000000000fc", "image": b"y"},
               {"id": "c", "sha256": "cd" * 32, "phash": "0f000000000000fc", "image": b"z"}]
    decided = [(r["id"], d and d.reason, r["image"]) for r, d in run_stage(stage, records)]
    assert decided == [("a", "sha256", None), ("b", "phash", None), ("c", None, b"z")]
