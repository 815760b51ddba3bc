"""NSFW stage: NudeNet's shipped 320n detector, batched; the documented image-level mapping."""

from __future__ import annotations

import numpy as np
import pytest
from image_fixtures import photo

from transforms.images.decode import DecodeConfig, normalise_bytes
from transforms.images.nsfw import NUDENET_LABELS, NsfwConfig, NsfwFilter, image_level, model_input


def test_preprocessing_matches_nudenet():
    from nudenet.nudenet import _read_image

    ours = model_input(photo("china"))
    theirs = _read_image(photo("china"), 320)[0][0]
    assert ours.shape == theirs.shape == (3, 320, 320)
    assert np.abs(ours - theirs).mean() < 0.015  # Pillow vs OpenCV resampling and JPEG decoding


def _output(scores: dict[str, float]) -> np.ndarray:
    out = np.zeros((22, 2100), dtype=np.float32)
    for i, (label, score) in enumerate(scores.items()):
        out[4 + NUDENET_LABELS.index(label), i] = score
    return out


def test_image_level_mapping():
    score, labels = image_level(
        _output({"FACE_FEMALE": 0.9, "FEMALE_BREAST_COVERED": 0.6, "FEET_EXPOSED": 0.1}), 0.2
    )
    assert score == 0.0 and labels == ["FACE_FEMALE", "FEMALE_BREAST_COVERED"]
    score, labels = image_level(_output({"FEMALE_BREAST_EXPOSED": 0.7, "BUTTOCKS_EXPOSED": 0.4}), 0.2)
    assert score == pytest.approx(0.7) and labels == ["FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED"]


def test_real_photos_are_safe_and_threshold_decides():
    images = [normalise_bytes(photo(n), DecodeConfig())["image"] for n in ("china", "flower")]
    stage = NsfwFilter()
    stage.setup()
    records = [{"image": image} for image in images]
    assert stage.process_batch(records) == [None, None]
    assert all(0.0 <= r["nsfw_score"] < 0.5 for r in records)
    strict = NsfwFilter(NsfwConfig(threshold=0.0))
    strict.setup()
    assert [d.reason for d in strict.process_batch([{"image": i} for i in images])] == ["explicit", "explicit"]


def test_input_size_is_configurable_and_checked():
    images = [normalise_bytes(photo(n), DecodeConfig())["image"] for n in ("china", "flower")]
    assert model_input(images[0], 256).shape == (3, 256, 256)
    stage = NsfwFilter(NsfwConfig(input_size=256))  # the 256 px output as it is, not upscaled
    stage.setup()
    records = [{"image": image} for image in images]
    assert stage.process_batch(records) == [None, None]
    assert all(0.0 <= r["nsfw_score"] < 0.5 for r in records)
    with pytest.raises(ValueError, match="multiple of 32"):
        NsfwConfig(input_size=300)
