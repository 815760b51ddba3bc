"""Real photos and hostile image files for the image-caption tests, served on loopback.

The photos are the two JPEGs scikit-learn ships (``sklearn/datasets/images/china.jpg`` and
``flower.jpg``, 640x427 real photographs); scikit-learn is installed with the project
(alt-profanity-check depends on it). If they are missing the tests fail, never skip.
Variants (crops, resized and re-encoded copies) are made from them with Pillow; the corrupt,
truncated and decompression-bomb files are made here byte by byte.
"""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib
from functools import cache
from pathlib import Path

from PIL import Image


def _sklearn_images() -> Path:
    spec = importlib.util.find_spec("sklearn")
    assert spec is not None and spec.submodule_search_locations, (
        "scikit-learn (a project dependency) is not installed"
    )
    return Path(spec.submodule_search_locations[0]) / "datasets" / "images"


@cache
def photo(name: str) -> bytes:
    """``china`` or ``flower``: the real JPEG bytes as shipped."""
    path = _sklearn_images() / f"{name}.jpg"
    assert path.is_file(), f"real test photo missing: {path}"
    return path.read_bytes()


def jpeg(image: Image.Image, quality: int = 90, **save_args) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality, **save_args)
    return out.getvalue()


def variant(
    name: str, box: tuple[int, int, int, int] | None = None, size: tuple[int, int] | None = None, quality: int = 90
) -> bytes:
    """A crop and/or resize of a real photo, re-encoded as JPEG."""
    image = Image.open(io.BytesIO(photo(name)))
    if box:
        image = image.crop(box)
    if size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return jpeg(image, quality)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` pixels (10 gigapixels by default)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * 16), 9)  # a sliver of data: decoding would need it all
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def corrupt_png() -> bytes:
    """A PNG whose image data was damaged in transit: one byte of IDAT flipped (CRC mismatch)."""
    data = bytearray(placeholder_png())
    at = data.index(b"IDAT") + 8
    data[at] ^= 0xFF
    return bytes(data)


def placeholder_png() -> bytes:
    """What an image host serves for every missing image: a small, real PNG."""
    image = Image.new("RGB", (400, 300), (200, 200, 200))
    for x in range(100, 300):
        image.putpixel((x, 150), (90, 90, 90))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
