"""``Decode``: raw bytes → normalised, re-encoded image with its metadata (``normalise`` does
the image work). The raw bytes leave the record here; rejections are ``decode.too_large``,
``decode.too_many_pixels``, ``decode.unsupported_format``, ``decode.not_an_image``,
``decode.corrupt`` (truncated or damaged data, failed ``verify``).

``sha256`` is of the bytes as served (what the placeholder check and exact dedup compare);
``phash`` is of the oriented RGB image before any crop or border (cropping would shift it),
taken from the scaled copy when that is the smaller (pHash sees a 32 x 32 thumbnail: the bits
agree with a full-size decode's, ``tests/test_images_decode.py``); original
width/height are after EXIF orientation. ``Image.MAX_IMAGE_PIXELS`` is set to ``max_pixels`` in
``setup`` (per worker process) so no other Pillow call in the worker decodes a bigger image.

Downloaded images are decoded by the download's fetch threads as they arrive
(``DecodeWhileFetching``, ``while_fetching``); ``Decode`` then applies what they found, so its
columns, reasons and place in the funnel are the same either way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa

from transforms.images.normalise import (
    OUTPUT_FORMATS,
    RESIZE_MODES,
    ImageRejected,
    decode_checked,
    encode,
    frame,
    limit_pillow,
    phash64,
    scale,
)
from transforms.images.record import BODY
from transforms.stage import POSITIVE, Drop, Record, SignalRules, Stage
from transforms.worker_cores import worker_cores


@dataclass(frozen=True)
class DecodeConfig:
    enabled: bool = True
    # The crawler's body limit (CrawlConfig.max_body_bytes).
    max_bytes: int = 10 * 1024 * 1024
    # Pillow's own default Image.MAX_IMAGE_PIXELS (~89.5 Mpx, "about 0.25 GB for a 24-bit image").
    max_pixels: int = 89_478_485
    allowed_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "AVIF")
    # img2dataset's defaults: 256 px, border, JPEG quality 95.
    resize_mode: str = "border"
    image_size: int = 256
    only_downscale: bool = False
    border_color: tuple[int, int, int] = (255, 255, 255)
    output_format: str = "jpeg"
    quality: int = 95
    # JPEGs much larger than the output decode at a reduced scale (libjpeg's DCT scaling): ~5x
    # less CPU on a 1600 px photo, the same pHash on our test photos. Never with resize_mode "no".
    fast_jpeg_decode: bool = True
    # Downloaded images are decoded as they arrive, by the fetch loop's threads (img2dataset's
    # shape): decoding overlaps the network, and Pillow and OpenCV release the GIL, so one
    # worker uses more than one core. Off: every image is decoded after the download's join.
    while_fetching: bool = True
    # Threads that decode while fetching, per worker; 0: one per core of the worker's share
    # (``transforms.worker_cores``) but the one the fetch loop keeps busy (10,000 images on 2 cores: one thread 71-72 CPU-s, two 74-79, the
    # same wall time; docs/images.md).
    threads: int = 0

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {sorted(OUTPUT_FORMATS)}, got {self.output_format!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in [1, 100], got {self.quality}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: one per CPU core), got {self.threads}")
        if min(self.max_bytes, self.max_pixels, self.image_size) < 1:
            raise ValueError("max_bytes, max_pixels and image_size must be >= 1")
        object.__setattr__(self, "allowed_formats", tuple(f.upper() for f in self.allowed_formats))
        object.__setattr__(self, "border_color", tuple(int(c) for c in self.border_color))


def normalise_bytes(data: bytes, config: DecodeConfig) -> Record:
    """The columns ``Decode`` adds for one image; raises ``ImageRejected``."""
    draft = config.image_size if config.fast_jpeg_decode and config.resize_mode != "no" else None
    pixels, original_format, (original_width, original_height) = decode_checked(
        data, config.max_bytes, config.max_pixels, config.allowed_formats, config.border_color, draft
    )
    scaled = scale(pixels, config.resize_mode, config.image_size, config.only_downscale)
    phash = phash64(scaled if scaled.size < pixels.size else pixels)  # the same bits, fewer pixels
    out = frame(scaled, config.resize_mode, config.image_size, config.border_color)
    encoded = encode(out, config.output_format, config.quality)
    return {
        "image": encoded,
        "width": out.shape[1],
        "height": out.shape[0],
        "format": config.output_format,
        "bytes": len(encoded),
        "original_width": original_width,
        "original_height": original_height,
        "original_format": original_format,
        "original_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "phash": phash,
    }


def decoded(data: bytes, config: DecodeConfig) -> tuple[Record, Drop | None]:
    """The columns ``Decode`` adds for one image and ``None``, or, for an image it rejects,
    the columns a rejected record keeps (size and sha256 as served) and the ``Drop``."""
    try:
        return normalise_bytes(data, config), None
    except ImageRejected as exc:
        return {"original_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, Drop(exc.reason, exc.detail)


# The field where a download that decoded as it fetched leaves ``decoded(body)`` for ``Decode``.
DECODED = "decoded_while_fetching"


class DecodeWhileFetching:
    """The fetch loop's ``postprocess`` (``transforms.crawl.FetchHosts``): a fetched body is
    replaced by ``decoded(body)``, so only the re-encoded image travels on to the join."""

    def __init__(self, config: DecodeConfig):
        self.config = config

    @property
    def threads(self) -> int:
        return self.config.threads or max(1, worker_cores() - 1)

    def setup(self) -> None:
        limit_pillow(self.config.max_pixels)

    def __call__(self, outcome: Record) -> Record:
        data = outcome.pop("body", None) or b""
        return {**outcome, DECODED: decoded(data, self.config)}


class Decode(Stage):
    name = "decode"
    config_class = DecodeConfig
    reasons = ("too_large", "too_many_pixels", "unsupported_format", "not_an_image", "corrupt")
    signal_rules = SignalRules(
        ranges={
            name: POSITIVE
            for name in ("width", "height", "bytes", "original_width", "original_height", "original_bytes")
        }
    )
    signal_fields = (
        pa.field("image", pa.binary()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("format", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("original_format", pa.string()),
        pa.field("original_bytes", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("phash", pa.string()),
    )

    def __init__(self, config: DecodeConfig = DecodeConfig()):
        self.config = config

    def setup(self) -> None:
        limit_pillow(self.config.max_pixels)

    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        drops: list[Drop | None] = []
        for record in records:
            ahead = record.get(DECODED)
            columns, drop = ahead if ahead is not None else decoded(record.get(BODY) or b"", self.config)
            record.update(columns)
            drops.append(drop)
            # Popped only once handled, so a batch retried record by record still has the bytes.
            record.pop(BODY, None)
            record.pop(DECODED, None)
        return drops
