"""Caption filters before download: one assertion per drop reason, on real-looking alt texts."""

from __future__ import annotations

import pytest

from transforms.images.caption_boilerplate import CaptionBoilerplateFilter, boilerplate_kind
from transforms.images.caption_language import CaptionLanguageConfig, CaptionLanguageFilter
from transforms.images.caption_length import CaptionLengthFilter


def _decide(stage, caption):
    record = {"caption": caption}
    (drop,) = stage.process_batch([record])
    return drop.reason if drop else None


def test_caption_length_datacomp_basic():
    stage = CaptionLengthFilter()
    assert _decide(stage, "a red bus") is None  # 3 words, 9 characters
    assert _decide(stage, "red bus") == "too_few_words"
    assert _decide(stage, "a b c") == "too_short"
    assert _decide(stage, None) == "too_few_words"


@pytest.mark.parametrize(
    ("caption", "kind"),
    [
        ("DSC_1234", "camera_name"),
        ("IMG_20190101_123456.jpg", "camera_name"),
        ("P1010203", "camera_name"),
        ("banner-2.png", "file_name"),
        ("image", "generic"),
        ("Photo", "generic"),
        ("untitled image 3", "generic"),
        ("8f3a9c0d1e2b3c4d5e6f", "number"),
        ("DSC_0042 IMG_0043.JPG photo", "camera_name"),
        ("photo 2 of 10", None),
        ("A photo of a red bus in London", None),
        ("Sunset over the harbour, 2019", None),
    ],
)
def test_boilerplate_kinds(caption, kind):
    assert boilerplate_kind(caption) == kind


def test_boilerplate_filter_drops_with_kind():
    assert _decide(CaptionBoilerplateFilter(), "DSC_1234.JPG") == "camera_name"


def test_caption_language_lid176():
    stage = CaptionLanguageFilter()
    stage.setup()
    assert _decide(stage, "a red double decker bus on a london street") is None
    assert _decide(stage, "ein roter Bus fährt durch die Straße") == "language_not_allowed"
    assert _decide(stage, "") == "no_caption"
    strict = CaptionLanguageFilter(CaptionLanguageConfig(min_score=0.99))
    strict.setup()
    assert _decide(strict, "bus red") == "low_language_score"
