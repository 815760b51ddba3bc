"""The image-caption record: base columns every reader sets, and the column conventions of
well-known caption datasets."""

from __future__ import annotations

from typing import Any

from transforms.readers.base import base_name
from transforms.record import registered_domain, stable_id

Record = dict[str, Any]

# (url column, caption column) of datasets people feed to image-caption jobs, tried in order when
# the config names no columns: LAION-400M/5B parquet (``URL``/``TEXT``), CC3M/CC12M and
# img2dataset's own examples (``url``/``caption``), DataComp / WebDataset json (``url``/``text``).
KNOWN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("URL", "TEXT"),
    ("url", "caption"),
    ("url", "text"),
    ("image_url", "caption"),
)

# The field that carries raw (undecoded) image bytes between reading/downloading and decoding.
BODY = "body"


def new_image_record(
    path: str,
    source_key: str,
    *,
    url: str | None,
    caption: str | None,
    page_url: str | None = None,
) -> Record:
    """A record with the base columns of ``schemas.images`` set."""
    return {
        "id": stable_id(base_name(path), source_key),
        "url": url,
        "domain": registered_domain(url),
        "page_url": page_url,
        "caption": caption,
        "source": path,
        "source_key": source_key,
        "synthetic": False,
        "parent_id": None,
        "generator": None,
        "template": None,
    }

