"""The images job's ``output`` section: Parquet shards of images, and optional WebDataset tars."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.images.record import BODY
from transforms.parquet_sink import ParquetSinkConfig


@dataclass(frozen=True)
class ImageOutputConfig:
    # The sink bounds shards by rows (it counts text bytes, not image bytes): 5,000 images of
    # ~25 KB (256 px JPEG q95) are ~125 MB per shard, 1,000-row groups ~25 MB.
    max_rows_per_shard: int = 5_000
    row_group_rows: int = 1_000
    zstd_level: int = 3
    # Rejected records keep their signals; their (re-encoded) image only when asked.
    rejected_image_bytes: bool = False
    # Kept records also as WebDataset tars (webdataset/shard-SSSSS.tar: <id>.jpg, .txt, .json),
    # for training loaders that stream tars; shards are held in memory, as the Parquet ones.
    webdataset: bool = False
    webdataset_samples_per_shard: int = 5_000

    def sink(self) -> ParquetSinkConfig:
        return ParquetSinkConfig(
            max_rows_per_shard=self.max_rows_per_shard,
            row_group_rows=self.row_group_rows,
            zstd_level=self.zstd_level,
        )


def strip_rejected(record: dict, keep_image: bool) -> dict:
    """A rejected record as written: without the downloaded body, and without its image
    unless ``rejected_image_bytes``."""
    record = {k: v for k, v in record.items() if k != BODY}
    if not keep_image:
        record["image"] = None
    return record
