"""Pure image code: open with hard limits, orient, RGB, resize, re-encode, hash.

Limits before pixels are decoded: the byte cap, then the declared size against ``max_pixels``
(Pillow reads only the header in ``Image.open``; its own ``DecompressionBombError`` /
``DecompressionBombWarning`` are turned into the same rejection), then ``verify()`` (checks
PNG CRCs, structure), then a full ``load()`` of a fresh handle (``verify`` leaves the image
unusable) which raises on truncated data (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off).

Resize modes are img2dataset's: ``keep_ratio`` (smaller side to ``size``), ``center_crop``
(smaller side to ``size``, then the central square), ``border`` (larger side to ``size``, padded
to a square with ``border_color``), ``no``. With ``only_downscale`` small images are not blown up.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_MODES = ("keep_ratio", "center_crop", "border", "no")
OUTPUT_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}


class ImageRejected(Exception):
    """A stable reason (``too_large``, ``too_many_pixels``, ``not_an_image``...) and a detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Normalised:
    image: bytes
    width: int
    height: int
    format: str
    original_width: int
    original_height: int
    original_format: str
    original_bytes: int
    sha256: str
    phash: str


# EXIF orientations that swap width and height (``ImageOps.exif_transpose`` rotates by 90°).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def open_checked(
    data: bytes, max_bytes: int, max_pixels: int, allowed_formats: tuple[str, ...], draft_size: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """The decoded image and its full size as displayed (EXIF orientation applied), or
    ``ImageRejected``; pixels are decoded only within the limits.

    ``draft_size``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling,
    Pillow's ``draft``) as long as both sides stay at least this large: about 5x less CPU for a
    1600 px photo resized to 256, with the same pHash on the photos we tested
    (``tests/test_images_decode.py``). Other formats decode in full."""
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"{len(data)} bytes > {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            width, height = probe.size
            fmt = probe.format or "?"
            if width * height > max_pixels:
                raise ImageRejected("too_many_pixels", f"{width}x{height} {fmt} > {max_pixels} pixels")
            if fmt not in allowed_formats:
                raise ImageRejected("unsupported_format", f"{fmt}")
            probe.verify()
            image = Image.open(io.BytesIO(data))
            swapped = image.getexif().get(0x0112, 1) in _SWAPPING_ORIENTATIONS
            if draft_size is not None:
                image.draft(None, (draft_size, draft_size))  # a no-op for formats other than JPEG
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not_an_image", str(exc)[:200]) from exc
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged data
        raise ImageRejected("corrupt", f"{type(exc).__name__}: {exc}") from exc
    return image, ((height, width) if swapped else (width, height))


def to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """EXIF orientation applied, first frame only, transparency flattened onto ``background``."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB") if image.mode != "RGB" else image


def resize(
    image: Image.Image, mode: str, size: int, only_downscale: bool, border_color: tuple[int, int, int]
) -> Image.Image:
    if mode == "no":
        return image
    width, height = image.size
    side = max(width, height) if mode == "border" else min(width, height)
    scale = size / side
    if only_downscale:
        scale = min(scale, 1.0)
    if scale != 1.0:
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
        width, height = image.size
    if mode == "center_crop":
        crop_w, crop_h = min(size, width), min(size, height)
        left, top = (width - crop_w) // 2, (height - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    elif mode == "border":
        canvas = Image.new("RGB", (size, size), border_color)
        canvas.paste(image, ((size - width) // 2, (size - height) // 2))
        image = canvas
    return image


def encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    pil_format = OUTPUT_FORMATS[fmt]
    if pil_format == "PNG":
        image.save(out, "PNG", optimize=False)
    else:
        image.save(out, pil_format, quality=quality)
    return out.getvalue()


def phash64(image: Image.Image) -> str:
    """imagehash's 64-bit DCT pHash as 16 hex digits (``imagehash.hex_to_hash`` reads it back)."""
    return str(imagehash.phash(image, hash_size=8))


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
