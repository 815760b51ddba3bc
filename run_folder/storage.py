"""Atomic file I/O over Beam's FileSystems, so the same code writes local folders and ``s3://``.

Locally a file is written under a hidden temporary name and renamed into place (``rename`` is
atomic on POSIX). On object stores a single upload is already atomic: the object appears only
when the upload completes, so it is written to its final key directly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_RAW = CompressionTypes.UNCOMPRESSED


def is_local(path: str) -> bool:
    return "://" not in path


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    if not is_local(path):
        with FileSystems.create(path, compression_type=_RAW) as handle:
            handle.write(data)
        return
    directory, name = FileSystems.split(path)
    temporary = join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    with FileSystems.create(temporary, compression_type=_RAW) as handle:
        handle.write(data)
    FileSystems.rename([temporary], [path])


class DigestingWriter:
    """A write-only file that passes bytes on, counting them and their sha256 (a file's facts)."""

    closed = False

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self._handle.write(data)
        self._sha256.update(data)
        size = memoryview(data).nbytes
        self.bytes += size
        return size

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        """Nothing to do: the bytes reach ``path`` when ``open_atomic`` completes."""

    def writable(self) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


@contextmanager
def open_atomic(path: str) -> Iterator[DigestingWriter]:
    """``write_atomic`` for a file too large to hold in memory: its bytes appear at ``path`` only
    if the block ends without error. Locally a temporary file is renamed into place; for an
    object store a local temporary file is uploaded once complete (an upload cut short by an
    error would publish a partial object)."""
    if not is_local(path):
        with tempfile.TemporaryFile() as spooled:
            yield DigestingWriter(spooled)
            spooled.seek(0)
            with FileSystems.create(path, compression_type=_RAW) as handle:
                shutil.copyfileobj(spooled, handle, 8 << 20)
        return
    directory, name = FileSystems.split(path)
    temporary = join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with FileSystems.create(temporary, compression_type=_RAW) as handle:
            yield DigestingWriter(handle)
    except BaseException:
        delete([temporary])
        raise
    FileSystems.rename([temporary], [path])


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=_RAW) as handle:
        return handle.read()


@contextmanager
def open_read(path: str) -> Iterator[BinaryIO]:
    """A seekable reader of ``path`` (a local file, or ranged GETs on an object store): for
    files read in parts, such as a spill file's footer, index and one range of blocks."""
    with FileSystems.open(path, compression_type=_RAW) as handle:
        yield handle


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def list_files(directory: str) -> list[str]:
    """Every file under ``directory``, recursively, as full paths (sorted)."""
    pattern = join(directory, "**")
    try:
        (result,) = FileSystems.match([pattern])
    except Exception:  # noqa: BLE001 - Beam raises when nothing matches
        return []
    return sorted(m.path for m in result.metadata_list)


def delete(paths: list[str]) -> None:
    if paths:
        FileSystems.delete(paths)


def delete_folder(directory: str) -> None:
    """Every file under ``directory``, and locally the emptied folders too (object stores have
    no folders to leave behind)."""
    delete(list_files(directory))
    if is_local(directory) and os.path.isdir(directory):
        shutil.rmtree(directory, ignore_errors=True)
