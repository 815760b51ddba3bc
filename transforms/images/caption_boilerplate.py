"""Boilerplate alt text: captions that say nothing about the image.

Flagged: file names (``IMG_0042.jpg``, ``banner-2.png``), camera and phone default names
(``DSC_1234``, ``IMG_20190101_123456``, ``DCIM``, ``P1010203``, ``GOPR0042``), bare numbers or
hashes, and generic words alone (``image``, ``photo``, ``picture``, ``logo``, ``thumbnail``,
``untitled``, ``placeholder``...). Such alt text is what CMSs and cameras fill in by default;
LAION-5B's paper notes alt text of this kind as the main noise of Common Crawl pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import Drop, Filter, Record, SignalRules

GENERIC_WORDS = frozenset(
    "image images img photo photos photograph picture pic pics thumbnail thumb logo icon banner "
    "untitled placeholder screenshot graphic default no alt alt text spacer blank null none "
    "click here view larger loading avatar profile".split()
)
_EXTENSIONS = r"jpe?g|png|gif|webp|bmp|tiff?|svg|heic|avif"
_FILE_NAME = re.compile(rf"^\S+\.(?:{_EXTENSIONS})$", re.IGNORECASE)
_CAMERA = re.compile(
    r"^(?:dsc[fn]?|img|pxl|dcim|mvc|sam|gopr|gp|dji|p|pict|cimg|imag|photo|vid|screenshot)[\s_-]?\d[\d_\s-]*"
    r"(?:\.\w+)?$",
    re.IGNORECASE,
)
_PRIORITY = ("camera_name", "file_name", "generic", "number")
_NUMBER_OR_HASH = re.compile(r"^(?:[\d\s_.:-]+|[0-9a-f]{16,})$", re.IGNORECASE)


def boilerplate_kind(caption: str) -> str | None:
    """Which kind of boilerplate ``caption`` is (``file_name``, ``camera_name``, ``number``,
    ``generic``), or ``None`` when it reads as a description."""
    text = " ".join(caption.split())
    if not text:
        return None
    tokens = text.split(" ")
    if len(tokens) > 1:
        # "DSC_0042 DSC_0043", "IMG_1.jpg photo": every token boilerplate on its own.
        kinds = [_single_kind(token) for token in tokens]
        if all(kinds):
            return min(kinds, key=_PRIORITY.index)
    return _single_kind(text)


def _single_kind(text: str) -> str | None:
    if _CAMERA.match(text):
        return "camera_name"
    if _FILE_NAME.match(text):
        return "file_name"
    if _NUMBER_OR_HASH.match(text):
        return "number"
    words = [w for w in re.split(r"[\W_]+", text.lower()) if w]
    if words and all(w in GENERIC_WORDS or w.isdigit() for w in words):
        return "generic"
    return None


@dataclass(frozen=True)
class CaptionBoilerplateConfig:
    enabled: bool = True


class CaptionBoilerplateFilter(Filter):
    name = "caption_boilerplate"
    config_class = CaptionBoilerplateConfig
    reasons = ("file_name", "camera_name", "number", "generic")
    signal_rules = SignalRules(must_be_null=("caption_boilerplate",))
    signal_fields = (pa.field("caption_boilerplate", pa.string()),)

    def __init__(self, config: CaptionBoilerplateConfig = CaptionBoilerplateConfig()):
        self.config = config

    def score(self, record: Record) -> Record:
        return {"caption_boilerplate": boilerplate_kind(record.get("caption") or "")}

    def decide(self, record: Record) -> Drop | None:
        kind = record["caption_boilerplate"]
        return None if kind is None else Drop(kind, (record.get("caption") or "")[:100])
