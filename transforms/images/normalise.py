"""Pure image code: open with hard limits, orient, RGB, resize, re-encode, hash.

Limits before pixels are decoded: the byte cap, then the declared size against ``max_pixels``
(Pillow reads only the header in ``Image.open``; its own ``DecompressionBombError`` /
``DecompressionBombWarning`` are turned into the same rejection), then ``verify()`` where the
format's plugin implements one (PNG: CRCs, structure) and a fresh handle (``verify`` leaves
the image unusable), then a full ``load()``, which raises on truncated data
(``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off). Plain JPEGs decode through OpenCV instead
(``decode_checked``).

Pixels travel in OpenCV's channel order (BGR) from the decode to the encode: OpenCV decodes
and encodes JPEG in that order, so the common path converts nothing.

Resize modes (``scale`` then ``frame``) are img2dataset's: ``keep_ratio`` (smaller side to ``size``), ``center_crop``
(smaller side to ``size``, then the central square), ``border`` (larger side to ``size``, padded
to a square with ``border_color``), ``no``. With ``only_downscale`` small images are not blown up.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

RESIZE_MODES = ("keep_ratio", "center_crop", "border", "no")
OUTPUT_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}


class ImageRejected(Exception):
    """A stable reason (``too_large``, ``too_many_pixels``, ``not_an_image``...) and a detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# EXIF orientations that swap width and height (``ImageOps.exif_transpose`` rotates by 90°).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def limit_pillow(max_pixels: int) -> None:
    """Pillow refuses, in this whole process, to open an image of more than ``max_pixels``:
    its ``DecompressionBombWarning`` becomes an error (a process-wide filter, set once per
    worker: ``warnings.catch_warnings`` is not thread-safe, and images decode in threads)."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def decode_checked(
    data: bytes,
    max_bytes: int,
    max_pixels: int,
    allowed_formats: tuple[str, ...],
    background: tuple[int, int, int],
    draft_size: int | None = None,
) -> tuple[np.ndarray, str, tuple[int, int]]:
    """The image's pixels in OpenCV's channel order (H x W x 3 BGR: EXIF orientation applied,
    first frame, transparency flattened onto the RGB ``background``), its format and its full
    size as displayed; or ``ImageRejected``. Pixels are decoded only within the limits.

    ``draft_size``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling,
    Pillow's ``draft``) as long as both sides stay at least this large: about 5x less CPU for a
    1600 px photo resized to 256, with the same pHash on the photos we tested
    (``tests/test_images_decode.py``). Other formats decode in full.

    A plain JPEG (colour or grey, upright, intact: ``intact_baseline_jpeg``) is decoded by OpenCV
    straight into BGR: the same libjpeg-turbo decode as Pillow's, without Pillow's padded copy
    and the conversions to and from it (``tests/test_images_decode.py`` checks the pixels are
    Pillow's). Anything else, and any JPEG that OpenCV fails on, goes through Pillow, which
    decides what is rejected: OpenCV's libjpeg fills truncated or damaged data in grey where
    Pillow refuses it."""
    with _rejected_on_pillow_errors():
        probe = _probe(data, max_bytes, max_pixels, allowed_formats)
        if (
            probe.format == "JPEG"
            and probe.mode in ("RGB", "L")
            and probe.getexif().get(0x0112, 1) == 1  # upright
            and intact_baseline_jpeg(data)
        ):
            pixels = _opencv_jpeg(data, *probe.size, draft_size)
            if pixels is not None:
                return pixels, "JPEG", probe.size
        image, displayed = _pillow_decode(data, probe, draft_size)
    rgb = np.asarray(to_rgb(image, background))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), image.format or "?", displayed


@contextmanager
def _rejected_on_pillow_errors() -> Iterator[None]:
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not_an_image", str(exc)[:200]) from exc
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged data
        raise ImageRejected("corrupt", f"{type(exc).__name__}: {exc}") from exc


def _probe(data: bytes, max_bytes: int, max_pixels: int, allowed_formats: tuple[str, ...]) -> Image.Image:
    """The image opened by Pillow, header only (``Image.open`` decodes no pixel), within the limits."""
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"{len(data)} bytes > {max_bytes}")
    probe = Image.open(io.BytesIO(data))
    width, height = probe.size
    fmt = probe.format or "?"
    if width * height > max_pixels:
        raise ImageRejected("too_many_pixels", f"{width}x{height} {fmt} > {max_pixels} pixels")
    if fmt not in allowed_formats:
        raise ImageRejected("unsupported_format", f"{fmt}")
    return probe


def dct_scale(width: int, height: int, draft_size: int | None) -> int:
    """The largest of libjpeg's 1/8, 1/4, 1/2 scales that keeps both sides at least
    ``draft_size`` (Pillow's ``JpegImageFile.draft`` rule), as its denominator."""
    if draft_size is None:
        return 1
    fits = min(width // draft_size, height // draft_size)
    return next(scale for scale in (8, 4, 2, 1) if fits >= scale or scale == 1)


# Inside a baseline JPEG's one scan only stuffed zeros, restart markers and fill bytes follow 0xFF.
_MARKER_INSIDE_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_BASELINE_FRAME = 0xC0  # SOF0: baseline sequential, Huffman-coded, 8 bits


def intact_baseline_jpeg(data: bytes) -> bool:
    """A baseline JPEG whose one scan runs unbroken to the end-of-image marker that ends the
    data: the damage that OpenCV's libjpeg fills in grey and Pillow rejects (truncation, a
    flipped byte that reads as a marker) makes this false. Progressive JPEGs, whose markers
    between scans could hide such damage, are left to Pillow."""
    if not data.endswith(b"\xff\xd9"):
        return False
    at, baseline = 2, False  # after the start-of-image marker
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before a marker
            at += 1
            continue
        baseline = baseline or marker == _BASELINE_FRAME
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:  # the scan's entropy-coded data starts here
            return baseline and _MARKER_INSIDE_SCAN.search(data, at, len(data) - 2) is None
    return False


_IMREAD_AT_SCALE = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _opencv_jpeg(data: bytes, width: int, height: int, draft_size: int | None) -> np.ndarray | None:
    """The JPEG's BGR pixels at ``dct_scale``, or ``None`` where OpenCV fails or disagrees on
    the size (Pillow then decides)."""
    scale = dct_scale(width, height, draft_size)
    flags = _IMREAD_AT_SCALE[scale] | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    expected = (-(-height // scale), -(-width // scale), 3)
    return pixels if pixels is not None and pixels.shape == expected else None


def _pillow_decode(data: bytes, probe: Image.Image, draft_size: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """``probe`` decoded, and its full size as displayed: ``verify()`` first where the format's
    plugin implements one (PNG: its CRCs), on a handle of its own (a verified image is
    unusable); a full ``load()`` raises on truncated data."""
    image = probe
    if type(probe).verify is not ImageFile.ImageFile.verify:
        probe.verify()
        image = Image.open(io.BytesIO(data))
    width, height = image.size
    displayed = (height, width) if image.getexif().get(0x0112, 1) in _SWAPPING_ORIENTATIONS else (width, height)
    if draft_size is not None:
        image.draft(None, (draft_size, draft_size))  # a no-op for formats other than JPEG
    image.load()
    return image, displayed


def to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """EXIF orientation applied, first frame only, transparency flattened onto ``background``."""
    if image.getexif().get(0x0112, 1) != 1:  # exif_transpose copies the image even when upright
        image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB") if image.mode != "RGB" else image


def scale(pixels: np.ndarray, mode: str, size: int, only_downscale: bool) -> np.ndarray:
    """``pixels`` (H x W x 3) scaled as ``mode`` says, aspect kept, before any crop or border:
    OpenCV's ``INTER_AREA`` to shrink, ``INTER_LANCZOS4`` to enlarge (img2dataset's choice;
    area averaging is the alias-free downscale and costs a fraction of Pillow's LANCZOS)."""
    if mode == "no":
        return pixels
    height, width = pixels.shape[:2]
    side = max(width, height) if mode == "border" else min(width, height)
    factor = size / side
    if only_downscale:
        factor = min(factor, 1.0)
    new = (max(1, round(width * factor)), max(1, round(height * factor)))
    if new == (width, height):
        return pixels
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LANCZOS4
    return cv2.resize(pixels, new, interpolation=interpolation)


def frame(pixels: np.ndarray, mode: str, size: int, border_color: tuple[int, int, int]) -> np.ndarray:
    """The scaled BGR image cropped to its central square (``center_crop``) or padded to one
    with the RGB ``border_color`` (``border``); other modes unchanged."""
    height, width = pixels.shape[:2]
    if mode == "center_crop":
        crop_w, crop_h = min(size, width), min(size, height)
        left, top = (width - crop_w) // 2, (height - crop_h) // 2
        return pixels[top : top + crop_h, left : left + crop_w]
    if mode == "border":
        left, top = (size - width) // 2, (size - height) // 2
        return cv2.copyMakeBorder(
            pixels, top, size - height - top, left, size - width - left, cv2.BORDER_CONSTANT, value=border_color[::-1]
        )
    return pixels


def encode(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    """BGR ``pixels`` as ``fmt``: JPEG through OpenCV (the same libjpeg-turbo settings as
    Pillow's, byte for byte, without Pillow's copy of the pixels: ~0.3 against 0.4 ms for 256
    px); WebP and PNG through Pillow."""
    pil_format = OUTPUT_FORMATS[fmt]
    if pil_format == "JPEG":
        ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(pixels), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {pixels.shape} image as JPEG")
        return encoded.tobytes()
    image = Image.fromarray(cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2RGB))
    out = io.BytesIO()
    if pil_format == "PNG":
        image.save(out, "PNG", optimize=False)
    else:
        image.save(out, pil_format, quality=quality)
    return out.getvalue()


# The DCT-II basis of a 32-point signal (scipy.fftpack.dct's, up to a positive factor that a
# comparison with the median ignores).
_DCT32 = np.cos(np.pi * np.outer(np.arange(32), 2 * np.arange(32) + 1) / 64)


def phash64(pixels: np.ndarray) -> str:
    """imagehash's 64-bit DCT pHash (``imagehash.phash(hash_size=8)``) as its 16 hex digits:
    the 8 x 8 lowest frequencies of the DCT of a 32 x 32 grey thumbnail, each above their
    median or not. The thumbnail is OpenCV's area average (imagehash: Pillow's LANCZOS, ~1 ms on
    a 256 px image), so the bits agree with imagehash's within 2 on our test photos, and any
    copy of the image over ~64 px a side gives nearly the same bits: ``normalise_bytes`` passes
    the smaller of the decoded and the scaled image (``tests/test_images_decode.py``). ``pixels``
    are BGR."""
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    low = (_DCT32 @ thumb @ _DCT32.T)[:8, :8]
    median = np.sort(low, axis=None)[31:33].mean()  # np.median's value at a quarter of its cost
    return np.packbits(low > median).tobytes().hex()


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
