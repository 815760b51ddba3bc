"""WebDataset tars: samples of an image plus a ``.txt`` or ``.json`` caption, read in memory.

Members are grouped by key (the name up to its first dot in the last path part, WebDataset's
convention). Nothing is ever written to disk, and members that could escape a folder if someone
did unpack the tar are refused: absolute names, ``..`` parts, symbolic and hard links, devices.
A refused member rejects its sample (``read.unsafe_tar_member``); a damaged tar ends in one
``read.corrupt_file`` quarantine record after the samples read before the damage.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator

from transforms.images.record import BODY, new_image_record
from transforms.readers.base import ReadResult, file_quarantine
from transforms.readers.input_stream import open_raw
from transforms.stage import Drop

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "avif")


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` must not be read, or ``None`` when it is a plain file with a safe name."""
    name = member.name
    if member.issym() or member.islnk():
        return f"{name!r} is a link"
    if not member.isfile():
        return f"{name!r} is not a regular file"
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        return f"{name!r} is an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return f"{name!r} climbs out of the archive"
    return None


def _split(name: str) -> tuple[str, str]:
    folder, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem), ext.lower()


def read_webdataset(path: str, max_member_bytes: int) -> Iterator[ReadResult]:
    samples: dict[str, dict[str, bytes]] = {}
    unsafe: dict[str, str] = {}
    order: list[str] = []
    damaged = None
    try:
        with open_raw(path) as handle, tarfile.open(fileobj=handle, mode="r:*") as tar:
            for member in tar:
                key, ext = _split(member.name)
                if key not in samples:
                    samples[key] = {}
                    order.append(key)
                reason = unsafe_reason(member)
                if reason is not None:
                    unsafe.setdefault(key, reason)
                    continue
                if member.size > max_member_bytes:
                    unsafe.setdefault(key, f"{member.name!r} is {member.size} bytes > {max_member_bytes}")
                    continue
                extracted = tar.extractfile(member)
                samples[key][ext] = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        damaged = f"{type(exc).__name__}: {exc}"
    for key in order:
        yield _sample(path, key, samples[key], unsafe.get(key))
    if damaged is not None:
        yield file_quarantine(path, "corrupt_file", damaged)


def _sample(path: str, key: str, members: dict[str, bytes], unsafe: str | None) -> ReadResult:
    meta: dict = {}
    if "json" in members:
        try:
            loaded = json.loads(members["json"])
            meta = loaded if isinstance(loaded, dict) else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    caption = None
    if "txt" in members:
        caption = members["txt"].decode("utf-8", errors="replace").strip()
    elif isinstance(meta.get("caption"), str):
        caption = meta["caption"]
    elif isinstance(meta.get("text"), str):
        caption = meta["text"]
    url = meta.get("url") if isinstance(meta.get("url"), str) else None
    record = new_image_record(path, f"tar:{key}", url=url, caption=caption)
    if unsafe is not None:
        return record, Drop("unsafe_tar_member", unsafe)
    image = next((members[ext] for ext in IMAGE_EXTENSIONS if ext in members), None)
    if image is None:
        return record, Drop("missing_image", f"sample {key!r} has no image member ({sorted(members)})")
    record[BODY] = image
    return record, None
