"""The text job end to end on the real shared files: output layout, conservation, determinism."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc

from pipelines import text
from transforms.spill import MemoryConfig

CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
CLIPPED = SHARED_DATA / "cc-warc-resiliparse" / "clipped.warc.gz"
# Malformed as shipped (LF line endings, Content-Length in characters): a whole-file quarantine.
WET = SHARED_DATA / "ccnet-wet-sample" / "sample.warc.txt"
DUPLICATED = 8

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The shared Common Crawl WARC and damaged files, 60 real article pages as a WARC, and 40
    gold article texts as JSONL of which 8 appear twice with their spacing changed."""
    folder = tmp_path_factory.mktemp("inputs")
    pages = aeb_pages()
    warc = write_warc(folder / "articles.warc.gz", [(url, html) for url, html, _ in pages[:60]])
    lines = [{"url": url, "text": gold} for url, _, gold in pages[60:100]]
    lines += [{"url": f"{row['url']}?copy", "text": "  " + row["text"].replace(" ", "  ") + "\n"}
              for row in lines[:DUPLICATED]]
    jsonl = folder / "articles.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in lines) + "\n")
    return [str(CC_WARC), str(CLIPPED), str(WET), str(warc), str(jsonl)]


def digests(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run_dir / "data").rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, inputs):
    out = tmp_path_factory.mktemp("out")
    manifest = text.run(inputs, str(out), "r1", text.Config(), [])
    assert_conserved(out / "r1")
    return out / "r1", manifest


def test_run_folder_layout_and_success_marker(local_run):
    run_dir, manifest = local_run
    assert (run_dir / "_SUCCESS").exists() and (run_dir / "manifest.json").exists()
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest
    assert list((run_dir / "data").glob("part-*.parquet"))
    assert {p.name for p in (run_dir / "rejected").iterdir()} >= {"stage=read"}
    assert not (run_dir / "_staging").exists(), "the staging area goes with the seal"
    for info in manifest["files"]:
        data = (run_dir / info["path"]).read_bytes()
        assert len(data) == info["bytes"] and hashlib.sha256(data).hexdigest() == info["sha256"]
    assert len(manifest["config_hash"]) == 64 and manifest["code_version"]


def test_every_input_record_is_kept_or_rejected_once(local_run):
    run_dir, manifest = local_run
    kept = ds.dataset(run_dir / "data").to_table(columns=["id"]).column("id").to_pylist()
    rejected = pd.read_parquet(run_dir / "rejected")
    ids = kept + rejected["id"].tolist()
    assert len(ids) == len(set(ids)) == manifest["conservation"]["input"]
    c = manifest["conservation"]
    assert c["input"] == c["kept"] + c["rejected"] == len(kept) + len(rejected)
    assert all(r.startswith(s + ".") for r, s in zip(rejected["reject_reason"], rejected["reject_stage"]))
    funnel = {row["stage"]: row for row in manifest["funnel"]}
    assert funnel["read"]["in"] == c["input"] and manifest["funnel"][-1]["kept"] == c["kept"]
    # the CC WARC's 17 requests and 16 metadata records are no documents: counted apart as
    # skipped, by type, not as rejected documents
    skipped, reasons = manifest["skipped"], funnel["read"]["reasons"]
    assert skipped["warc_request_record"] >= 17 and skipped["warc_metadata_record"] >= 16
    assert c["skipped"] == sum(skipped.values()) and not any(r.endswith("_record") for r in reasons)
    # damaged files are quarantined by name, and the rest of the run completed
    truncated = rejected[rejected["reject_reason"] == "read.truncated_file"]
    assert len(truncated) == 1 and "clipped.warc.gz" in truncated["reject_detail"].iloc[0]
    corrupt = rejected[rejected["reject_reason"] == "read.corrupt_file"]
    assert len(corrupt) == 1 and "sample.warc.txt" in corrupt["reject_detail"].iloc[0]


def test_exact_duplicates_are_rejected_with_their_keeper(local_run):
    run_dir, _ = local_run
    rejected = pd.read_parquet(run_dir / "rejected")
    kept = pd.read_parquet(run_dir / "data")
    dups = rejected[rejected["reject_reason"] == "dedup_exact.duplicate"]
    assert set(dups["dup_of"]) <= set(kept["id"])
    by_url = {row.url: row for row in pd.concat([kept, rejected]).itertuples()}
    reached_dedup = 0
    for copy_url in [u for u in by_url if isinstance(u, str) and u.endswith("?copy")]:
        original, copy = by_url[copy_url[: -len("?copy")]], by_url[copy_url]
        stages = {original.reject_stage, copy.reject_stage} - {None, float("nan")}
        if all(pd.isna(stage) or stage == "dedup_exact" for stage in stages):  # both reached dedup: exactly one was kept
            reached_dedup += 1
            pair = sorted([original, copy], key=lambda r: str(r.reject_stage))
            assert pd.isna(pair[1].reject_stage) and pair[0].dup_of == pair[1].id
            assert pair[0].dup_cluster_size == pair[1].dup_cluster_size == 2
    assert reached_dedup >= DUPLICATED // 2


def test_output_opens_with_pandas_duckdb_and_pyarrow(local_run):
    run_dir, manifest = local_run
    n = manifest["conservation"]["kept"]
    assert len(pd.read_parquet(run_dir / "data")) == n
    assert duckdb.sql(f"select count(*) from '{run_dir}/data/*.parquet'").fetchone()[0] == n
    assert ds.dataset(run_dir / "data", format="parquet").count_rows() == n


def test_rerun_same_run_id_is_byte_identical_and_cleans_stale_files(local_run, inputs):
    run_dir, _ = local_run
    before = digests(run_dir)
    stale = run_dir / "data" / "part-00099-of-00100.parquet"
    stale.write_bytes(b"left by an earlier attempt")
    (run_dir / "data" / ".part-00000-of-00001.parquet.dead.tmp").write_bytes(b"partial")
    text.run(inputs, str(run_dir.parent), run_dir.name, text.Config(), [])
    assert digests(run_dir) == before
    assert_conserved(run_dir)
    assert not stale.exists() and not list((run_dir / "data").glob(".*"))


def test_multi_processing_gives_the_same_files(local_run, inputs, tmp_path):
    run_dir, _ = local_run
    args = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    text.run(inputs, str(tmp_path), "mp", text.Config(), args)
    assert_conserved(tmp_path / "mp")
    assert digests(tmp_path / "mp") == digests(run_dir)


def test_tiny_memory_bounds_give_the_same_records(local_run, inputs, tmp_path):
    """Bounds far below the input (every spill buffer and join task holds a few records, every
    shard 7 rows): the same records, ids and signals reach data/ and rejected/, the shards are
    contiguous id ranges, and no spill file outlives the run."""
    run_dir, manifest = local_run
    tiny = replace(
        text.Config(),
        memory=MemoryConfig(buffer_bytes=20_000, task_bytes=30_000, block_bytes=4_000),
        output=replace(text.Config().output, max_rows_per_shard=7),
    )
    tiny_manifest = text.run(inputs, str(tmp_path), "tiny", tiny, [])
    assert_conserved(tmp_path / "tiny")
    assert tiny_manifest["funnel"] == manifest["funnel"]
    for folder in ("data", "rejected"):
        expected = pq.read_table(run_dir / folder).sort_by("id")
        got = pq.read_table(tmp_path / "tiny" / folder).sort_by("id")
        assert got.equals(expected.select(got.schema.names))
    shards = sorted((tmp_path / "tiny" / "data").glob("*.parquet"))
    assert len(shards) > 3
    ids = [pq.read_table(shard, columns=["id"]).column("id").to_pylist() for shard in shards]
    assert sum(ids, []) == sorted(sum(ids, []))  # shards in order are sorted by id
    assert not (tmp_path / "tiny" / "_staging").exists()


def test_s3_input_and_output_through_standard_aws_variables(local_run, inputs, s3_server, monkeypatch):
    run_dir, manifest = local_run
    bucket = s3_server.create_bucket()
    s3_inputs = [s3_server.upload(path, bucket, f"in/{Path(path).name}") for path in inputs]
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    s3_manifest = text.run(s3_inputs, f"s3://{bucket}/out", "r1", text.Config(), [])
    assert s3_manifest["conservation"] == manifest["conservation"]
    assert_conserved(f"s3://{bucket}/out/r1", s3_server)
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="out/r1/")["Contents"]}
    assert "out/r1/_SUCCESS" in keys and "out/r1/manifest.json" in keys
    assert not any("_staging" in key for key in keys)
    data_keys = sorted(key for key in keys if key.startswith("out/r1/data/"))
    assert [key[len("out/r1/"):] for key in data_keys] == list(digests(run_dir))
    for key in data_keys:
        s3_table = pq.read_table(pa.BufferReader(client.get_object(Bucket=bucket, Key=key)["Body"].read()))
        local_table = pq.read_table(run_dir / key[len("out/r1/"):])
        # identical but for `source`, the input's URI, which names where it was read from
        assert s3_table.drop_columns(["source"]).equals(local_table.drop_columns(["source"]))
        assert all(uri.startswith(f"s3://{bucket}/in/") for uri in s3_table.column("source").to_pylist())


def test_cli_runs_and_reports_bad_usage(tmp_path):
    cli = [sys.executable, "-m", "pipelines.cli"]
    ok = subprocess.run(cli + ["run", "text", "--input", str(CC_WARC), "--output", str(tmp_path),
                               "--run-id", "cli"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "reconciled" in ok.stdout and (tmp_path / "cli" / "_SUCCESS").exists()
    assert_conserved(tmp_path / "cli")
    assert "apitools" not in ok.stderr

    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("languag: {}\n")
    bad = subprocess.run(cli + ["run", "text", "--input", str(CC_WARC), "--output", str(tmp_path),
                                "--config", str(bad_config)], capture_output=True, text=True)
    assert bad.returncode == 2 and "languag" in bad.stderr

    missing = subprocess.run(cli + ["run", "text", "--input", str(tmp_path / "nope*.warc.gz"),
                                    "--output", str(tmp_path), "--run-id", "missing"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nope*.warc.gz: the pattern matches no file" in missing.stderr
    assert not (tmp_path / "missing").exists()  # the preflight stopped it before anything was written


def test_dedup_index_drops_what_earlier_runs_published(tmp_path):
    articles = [(url, gold) for url, _, gold in aeb_pages()[100:140]]
    first, second = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"
    first.write_text("".join(json.dumps({"url": u, "text": t}) + "\n" for u, t in articles[:20]))
    # day 2: ten of yesterday's articles republished with a new first line, and ten new ones
    republished = [(u + "?v=2", "Updated on 3 March with minor corrections.\n" + t) for u, t in articles[:10]]
    second.write_text("".join(json.dumps({"url": u, "text": t}) + "\n" for u, t in republished + articles[20:30]))
    index = tmp_path / "index"
    text.run([str(first)], str(tmp_path / "out"), "day1", text.Config(), [], dedup_index=str(index))
    day2 = text.run([str(second)], str(tmp_path / "out"), "day2", text.Config(), [], dedup_index=str(index))
    assert_conserved(tmp_path / "out" / "day1")
    assert_conserved(tmp_path / "out" / "day2")
    reasons = {row["stage"]: row["reasons"] for row in day2["funnel"]}["dedup_minhash"]
    kept_day1 = pd.read_parquet(tmp_path / "out" / "day1" / "data")["url"].tolist()
    expected = sum(1 for u, _ in articles[:10] if u in kept_day1)
    assert expected >= 5
    assert reasons.get("dedup_minhash.near_duplicate_of_previous_run", 0) >= expected - 1
    rejected = pd.read_parquet(tmp_path / "out" / "day2" / "rejected" / "stage=dedup_minhash")
    assert rejected["url"].str.endswith("?v=2").all()


def test_run_text_from_urls_crawls_then_cleans(tmp_path):
    from crawl_sites import serve, static_routes

    site_root = tmp_path / "site"
    site_root.mkdir()
    pages = aeb_pages(12)
    for i, (_, html, _) in enumerate(pages):
        (site_root / f"a{i}.html").write_bytes(html)
    with serve(static_routes(site_root)) as site:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(f"{site.url}/a{i}.html\n" for i in range(len(pages))) + f"{site.url}/missing.html\n")
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", "text", "--urls", str(urls), "--output",
             str(tmp_path / "out"), "--run-id", "fromurls", "--allow-private-addresses", "--per-host-rate", "50"],
            capture_output=True, text=True,
        )
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "out" / "fromurls"
    crawl_manifest = json.loads((run_dir / "crawl" / "manifest.json").read_text())
    assert crawl_manifest["totals"]["fetched"] == len(pages)
    assert crawl_manifest["totals"]["reasons"].get("http_404") == 1
    manifest = assert_conserved(run_dir)
    assert_conserved(run_dir / "crawl")
    assert (run_dir / "_SUCCESS").exists()
    read = manifest["funnel"][0]
    assert read["kept"] == len(pages)  # every fetched page reached the text job


def test_bad_input_is_quarantined_with_a_reason_and_the_run_completes(tmp_path):
    """Binary and mis-encoded bodies, a 50 MB page, a 50 MB JSONL line and a broken JSON line
    each end as one rejected record with a stable reason; the good records are published."""
    url, html, _ = aeb_pages(1)[0]
    huge_page = b"<html><body><p>" + b"word " * (10 * 1024 * 1024) + b"</p></body></html>"  # 50 MB
    binary = bytes(range(256)) * 64
    latin1_garbage = ("caf\xe9 na\xefve " * 2000).encode("latin-1") + b"\xff\xfe" * 4000
    warc = write_warc(tmp_path / "bad.warc.gz", [
        (url, html), ("https://x.test/bin", binary), ("https://x.test/latin1", latin1_garbage),
        ("https://x.test/huge", huge_page),
    ])
    jsonl = tmp_path / "bad.jsonl"
    with open(jsonl, "w") as handle:
        handle.write(json.dumps({"url": "https://x.test/ok", "text": "fine " * 100}) + "\n")
        handle.write('{"url": "https://x.test/broken", "text": "no closing brace"\n')
        handle.write(json.dumps({"url": "https://x.test/hugeline", "text": "a" * (50 * 1024 * 1024)}) + "\n")
    text.run([str(warc), str(jsonl)], str(tmp_path / "out"), "bad", text.Config(), [], compare_previous=False)
    rejected = pd.read_parquet(tmp_path / "out" / "bad" / "rejected", columns=["url", "reject_reason"])
    reason_of = dict(zip(rejected["url"].fillna(""), rejected["reject_reason"]))
    assert reason_of["https://x.test/bin"] == "extract.binary_content"
    assert reason_of["https://x.test/latin1"] == "extract.bad_encoding"
    assert reason_of["https://x.test/huge"] == "read.record_too_large"
    unreadable = sorted(rejected[rejected["url"].isna()]["reject_reason"])
    assert unreadable == ["read.invalid_json", "read.line_too_large"]
    c = assert_conserved(tmp_path / "out" / "bad")["conservation"]
    assert c["input"] == 7 == c["kept"] + c["rejected"]
    assert (tmp_path / "out" / "bad" / "_SUCCESS").exists()
