"""Decode and normalise with hard limits, on real photos and on hostile files made here."""

from __future__ import annotations

import io
import random

import imagehash
import numpy as np
import pytest
from image_fixtures import corrupt_png, jpeg, photo, png_bomb, truncated, variant
from PIL import Image

from transforms.images.decode import Decode, DecodeConfig, normalise_bytes
from transforms.images.normalise import ImageRejected, decode_checked, encode, hamming, intact_baseline_jpeg


def _reason(data, config=DecodeConfig()):
    with pytest.raises(ImageRejected) as info:
        normalise_bytes(data, config)
    return info.value.reason


def test_real_photo_metadata_and_default_border_resize():
    out = normalise_bytes(photo("china"), DecodeConfig())
    assert (out["original_width"], out["original_height"], out["original_format"]) == (640, 427, "JPEG")
    assert (out["width"], out["height"], out["format"]) == (256, 256, "jpeg")
    assert out["original_bytes"] == len(photo("china")) and len(out["sha256"]) == 64 and len(out["phash"]) == 16
    decoded = Image.open(io.BytesIO(out["image"]))
    assert decoded.format == "JPEG" and decoded.size == (256, 256) and out["bytes"] == len(out["image"])
    assert decoded.getpixel((128, 5)) == pytest.approx((255, 255, 255), abs=3)  # the white border


@pytest.mark.parametrize(
    ("mode", "size"),
    [("keep_ratio", (384, 256)), ("center_crop", (256, 256)), ("border", (256, 256)), ("no", (640, 427))],
)
def test_resize_modes(mode, size):
    out = normalise_bytes(photo("flower"), DecodeConfig(resize_mode=mode, image_size=256))
    assert (out["width"], out["height"]) == size


@pytest.mark.parametrize("quality", [60, 95])
@pytest.mark.parametrize("name", ["china", "flower"])
def test_jpeg_output_is_pillows_byte_for_byte(name, quality):
    out = normalise_bytes(photo(name), DecodeConfig(quality=quality))
    pixels = Image.open(io.BytesIO(out["image"])).convert("RGB")  # any 256 px image of the photo
    reencoded = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).save(reencoded, "JPEG", quality=quality)
    assert encode(np.asarray(pixels)[:, :, ::-1], "jpeg", quality) == reencoded.getvalue()  # BGR in


def test_webp_output_and_quality():
    small = normalise_bytes(photo("china"), DecodeConfig(output_format="webp", quality=30))
    large = normalise_bytes(photo("china"), DecodeConfig(output_format="webp", quality=95))
    assert Image.open(io.BytesIO(small["image"])).format == "WEBP" and small["bytes"] < large["bytes"]


def test_exif_orientation_applied():
    image = Image.open(io.BytesIO(photo("china")))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    rotated = jpeg(image, exif=exif.tobytes())
    out = normalise_bytes(rotated, DecodeConfig(resize_mode="no"))
    assert (out["original_width"], out["original_height"]) == (427, 640)
    upright = normalise_bytes(jpeg(image.transpose(Image.Transpose.ROTATE_270)), DecodeConfig(resize_mode="no"))
    assert hamming(out["phash"], upright["phash"]) <= 4


@pytest.mark.parametrize("name", ["china", "flower"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_fast_jpeg_decode_gives_the_same_metadata_and_phash(name, orientation):
    """A 1920 px photo decoded at a reduced scale (libjpeg's DCT scaling) keeps its true size,
    its orientation and (on these photos) its pHash; the output has the same size."""
    image = Image.open(io.BytesIO(photo(name))).resize((1920, 1281), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg(image, exif=exif.tobytes())
    fast = normalise_bytes(data, DecodeConfig())
    full = normalise_bytes(data, DecodeConfig(fast_jpeg_decode=False))
    size = (1920, 1281) if orientation == 1 else (1281, 1920)
    assert (fast["original_width"], fast["original_height"]) == (full["original_width"], full["original_height"]) == size
    assert (fast["width"], fast["height"]) == (full["width"], full["height"]) == (256, 256)
    assert hamming(fast["phash"], full["phash"]) <= 2
    assert fast["sha256"] == full["sha256"]  # of the input bytes


@pytest.mark.parametrize("name", ["china", "flower"])
@pytest.mark.parametrize("size", [(640, 427), (1920, 1281), (3000, 2000), (160, 107)])
@pytest.mark.parametrize("mode", ["border", "center_crop", "keep_ratio"])
def test_phash_agrees_with_imagehash_on_the_full_size_decode(name, size, mode):
    """The stored pHash comes from the smaller of the decoded and the scaled image; it stays
    within 2 bits of imagehash's pHash of the same photo decoded at full size."""
    image = Image.open(io.BytesIO(photo(name))).resize(size, Image.Resampling.BICUBIC)
    data = jpeg(image)
    full = str(imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB"), hash_size=8))
    assert hamming(normalise_bytes(data, DecodeConfig(resize_mode=mode))["phash"], full) <= 2


def test_rgba_png_flattened_to_rgb():
    image = Image.open(io.BytesIO(photo("flower"))).convert("RGBA")
    image.putalpha(128)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    out = normalise_bytes(buf.getvalue(), DecodeConfig(resize_mode="no"))
    assert Image.open(io.BytesIO(out["image"])).mode == "RGB" and out["original_format"] == "PNG"


def test_decompression_bomb_refused_before_decoding():
    assert _reason(png_bomb()) == "too_many_pixels"
    # Below Pillow's own limit but above ours: our check refuses it from the header alone.
    assert _reason(png_bomb(5000, 5000), DecodeConfig(max_pixels=1_000_000)) == "too_many_pixels"


def test_truncated_corrupt_and_not_images():
    assert _reason(truncated(photo("china"))) == "corrupt"
    assert _reason(corrupt_png()) == "corrupt"
    assert _reason(b"<html>not found</html>") == "not_an_image"
    assert _reason(photo("china"), DecodeConfig(max_bytes=1000)) == "too_large"
    assert _reason(photo("china"), DecodeConfig(allowed_formats=("PNG",))) == "unsupported_format"


def test_phash_near_for_copies_far_for_other_photos():
    base = normalise_bytes(photo("china"), DecodeConfig())["phash"]
    resized = normalise_bytes(variant("china", size=(320, 213), quality=60), DecodeConfig())["phash"]
    other = normalise_bytes(photo("flower"), DecodeConfig())["phash"]
    crop = normalise_bytes(variant("china", box=(0, 0, 320, 427)), DecodeConfig())["phash"]
    assert hamming(base, resized) <= 10 < hamming(base, other)
    assert hamming(base, crop) > 10


def test_stage_drops_raw_bytes_and_keeps_sha_on_rejection():
    stage = Decode()
    stage.setup()
    good, bad = {"id": "a", "body": photo("china")}, {"id": "b", "body": truncated(photo("china"))}
    drops = stage.process_batch([good, bad])
    assert drops[0] is None and drops[1].reason == "corrupt"
    assert "body" not in good and "body" not in bad and bad["sha256"] and good["image"]


def _encodings(name: str) -> dict[str, bytes]:
    """The photo as shipped and re-encoded as web JPEGs come: other sizes, chroma subsamplings,
    grey, progressive."""
    image = Image.open(io.BytesIO(photo(name)))
    grey = io.BytesIO()
    image.convert("L").save(grey, "JPEG")
    return {
        "as shipped": photo(name),
        "1920 px": jpeg(image.resize((1920, 1281))),
        "4:4:4": jpeg(image.resize((257, 300)), subsampling=0),
        "4:2:2, 100 px": jpeg(image.resize((100, 80)), subsampling=1),
        "grey": grey.getvalue(),
        "progressive": jpeg(image.resize((1030, 513)), progressive=True),
    }


@pytest.mark.parametrize("draft", [None, 256])
@pytest.mark.parametrize("name", ["china", "flower"])
def test_jpeg_pixels_are_pillows_whichever_library_decodes(name, draft):
    """Baseline JPEGs decode through OpenCV, the rest through Pillow; both give the pixels of
    Pillow's own decode (at the DCT scale Pillow's ``draft`` picks), in BGR order."""
    for label, data in _encodings(name).items():
        reference = Image.open(io.BytesIO(data))
        if draft:
            reference.draft(None, (draft, draft))
        expected = np.asarray(reference.convert("RGB"))[:, :, ::-1]
        pixels, fmt, _ = decode_checked(data, 10**8, 10**9, ("JPEG",), (255, 255, 255), draft)
        assert fmt == "JPEG" and pixels.shape == expected.shape, label
        assert np.array_equal(pixels, expected), label
    assert intact_baseline_jpeg(photo(name)) and not intact_baseline_jpeg(_encodings(name)["progressive"])


def _damaged(data: bytes, rng: random.Random, kind: int) -> bytes:
    damaged = bytearray(data)
    if kind == 0:  # bytes changed in transit
        for _ in range(rng.randint(1, 20)):
            damaged[rng.randrange(300, len(data) - 2)] = rng.randrange(256)
    elif kind == 1:  # a 0xFF that reads as a marker
        damaged[rng.randrange(300, len(data) - 2)] = 0xFF
    elif kind == 2:  # cut short, then an end-of-image marker
        damaged = damaged[: rng.randrange(300, len(data) - 2)] + b"\xff\xd9"
    else:  # cut short
        damaged = damaged[: rng.randrange(100, len(data))]
    return bytes(damaged)


def _pillow_loads(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - whatever Pillow raises is a rejection
        return False
    return True


@pytest.mark.parametrize("name", ["china", "flower"])
def test_damaged_jpegs_are_rejected_exactly_where_pillow_rejects_them(name):
    """OpenCV's libjpeg fills damaged data in grey; Pillow refuses much of it. Whichever
    library decodes, a damaged JPEG is rejected exactly when Pillow alone would reject it."""
    rng = random.Random(7)
    rejected = 0
    for base in (photo(name), _encodings(name)["progressive"], _encodings(name)["grey"]):
        for i in range(120):
            data = _damaged(base, rng, i % 4)
            try:
                decode_checked(data, 10**8, 10**9, ("JPEG",), (255, 255, 255), None)
                accepted = True
            except ImageRejected as exc:
                assert exc.reason in ("corrupt", "not_an_image"), exc.reason
                accepted, rejected = False, rejected + 1
            assert accepted == _pillow_loads(data), (i % 4, data[-4:])
    assert 60 < rejected < 300  # both outcomes are exercised
