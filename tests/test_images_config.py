"""The images job's config: a section per stage, YAML round trip, loud typos; S3 in and out."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import assert_conserved
from image_fixtures import photo, variant

from pipelines import images
from pipelines.config import config_hash, dump_config, from_dict, load_config
from transforms.crawl.config import IMAGE_CONTENT_TYPES


def test_every_stage_has_a_config_section_named_after_it():
    config = images.Config()
    for stage in images.STAGES:
        assert isinstance(getattr(config, stage.name).enabled, bool)
    # the alignment scorer needs a checkpoint the user gives: off by default
    off = {stage.name for stage in images.STAGES if not getattr(config, stage.name).enabled}
    assert off == {"alignment"}
    assert images.stage_order(config)[0] == "read" and len(images.stage_order(config)) == len(images.STAGES)


def test_nested_sections_overlay_their_defaults(tmp_path):
    path = tmp_path / "images.yaml"
    path.write_text("download:\n  crawl:\n    per_host_rate: 5.0\n    allow_private_addresses: true\n")
    config = load_config(images.Config, path)
    crawl = config.download.crawl
    assert crawl.per_host_rate == 5.0 and crawl.allow_private_addresses
    # every other setting is the download's own default (image types, image-sized body cap), not CrawlConfig()'s
    assert crawl == replace(images.Config().download.crawl, per_host_rate=5.0, allow_private_addresses=True)
    assert crawl.content_types == IMAGE_CONTENT_TYPES
    assert config.download == replace(images.Config().download, crawl=crawl)
    # a section that names a field still replaces that field whole
    jpeg_only = from_dict(images.Config, {"download": {"crawl": {"content_types": ["image/jpeg"]}}})
    assert jpeg_only.download.crawl.content_types == ("image/jpeg",)
    # validation still runs on the overlaid result
    with pytest.raises(ValueError, match="content_types"):
        from_dict(images.Config, {"download": {"crawl": {"content_types": []}}})


def test_yaml_round_trip_and_typos(tmp_path):
    path = tmp_path / "images.yaml"
    path.write_text(dump_config(images.Config()))
    assert load_config(images.Config, path) == images.Config()
    changed = from_dict(
        images.Config,
        {
            "decode": {"resize_mode": "center_crop", "border_color": [0, 0, 0]},
            "nsfw": {"threshold": 0.3},
            "download": {"crawl": {"allow_private_addresses": True}},
        },
    )
    assert changed.decode.border_color == (0, 0, 0) and changed.download.crawl.allow_private_addresses
    assert config_hash(changed) != config_hash(images.Config())
    with pytest.raises(ValueError, match="threshhold"):
        from_dict(images.Config, {"nsfw": {"threshhold": 0.3}})
    with pytest.raises(ValueError, match="resize_mode"):
        from_dict(images.Config, {"decode": {"resize_mode": "stretch"}})


@pytest.mark.slow
def test_webdataset_from_s3_to_s3(tmp_path, s3_server, monkeypatch):
    tar = tmp_path / "shard.tar"
    with tarfile.open(tar, "w") as archive:
        for name, data in [
            ("a.jpg", photo("china")),
            ("a.txt", b"the roof of a temple in china"),
            ("b.jpg", variant("china", size=(320, 213))),
            ("b.txt", b"a smaller copy of that temple"),
            ("c.jpg", photo("flower")),
            ("c.txt", b"DSC_0042 IMG_0043 DSC_0044"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    bucket = s3_server.create_bucket()
    uri = s3_server.upload(tar, bucket, "in/shard.tar")
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    config = from_dict(images.Config, {"nsfw": {"enabled": False}})
    manifest = images.run([uri], f"s3://{bucket}/out", "r1", config, [])
    assert manifest["conservation"]["kept"] == 1 and manifest["conservation"]["rejected"] == 2
    assert_conserved(f"s3://{bucket}/out/r1", s3_server)
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="out/r1/")["Contents"]}
    assert "out/r1/_SUCCESS" in keys
    (data_key,) = [k for k in keys if k.startswith("out/r1/data/")]
    table = pq.read_table(pa.BufferReader(client.get_object(Bucket=bucket, Key=data_key)["Body"].read()))
    assert table.column("caption").to_pylist() == ["the roof of a temple in china"]
    reasons = {reason for row in manifest["funnel"] for reason in row["reasons"]}
    assert reasons == {"caption_boilerplate.camera_name", "dedup_near.near_duplicate"}


def test_cli_crawl_flags_reach_the_download_and_core_stages_stay_on():
    import argparse

    from pipelines import crawl

    parser = argparse.ArgumentParser()
    crawl.add_crawl_options(parser)
    config = images.with_crawl_flags(images.Config(), parser.parse_args(["--allow-private-addresses"]))
    assert config.download.crawl.allow_private_addresses
    assert "image/jpeg" in config.download.crawl.content_types
    with pytest.raises(ValueError, match="decode cannot be disabled"):
        from_dict(images.Config, {"decode": {"enabled": False}})
