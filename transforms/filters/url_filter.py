"""URL filter: drop records whose registered domain is blocked or whose URL holds a banned word.

Cheap (no text needed), so the text pipeline runs it before extraction. The lists are plain
text files, one entry a line, so users swap in their own (FineWeb uses the UT1 blocklist).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import pyarrow as pa

from transforms.record import host_of
from transforms.stage import Drop, Filter, Record

_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class UrlFilterConfig:
    enabled: bool = True
    blocklist_path: str | None = None  # None: the starter list shipped in transforms/data
    banned_words_path: str | None = None


def _read_list(path: str | None, packaged: str) -> frozenset[str]:
    if path is None:
        text = resources.files("transforms.data").joinpath(packaged).read_text(encoding="utf-8")
    else:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as handle:
            text = handle.read().decode("utf-8")
    entries = (line.strip().lower() for line in text.splitlines())
    return frozenset(e for e in entries if e and not e.startswith("#"))


class UrlFilter(Filter):
    name = "url_filter"
    signal_fields = (
        pa.field("url_blocked_domain", pa.bool_()),
        pa.field("url_banned_word", pa.string()),
    )

    def __init__(self, config: UrlFilterConfig = UrlFilterConfig()):
        self.config = config
        self._domains: frozenset[str] = frozenset()
        self._words: frozenset[str] = frozenset()

    def setup(self) -> None:
        self._domains = _read_list(self.config.blocklist_path, "url_blocklist.txt")
        self._words = _read_list(self.config.banned_words_path, "url_banned_words.txt")

    def score(self, record: Record) -> Record:
        url = (record.get("url") or "").lower()
        host = host_of(url) or ""
        labels = host.split(".")
        # A listed domain blocks itself and every host under it.
        blocked = any(".".join(labels[i:]) in self._domains for i in range(len(labels)))
        banned = next((t for t in _TOKEN.findall(url) if t in self._words), None)
        return {"url_blocked_domain": blocked, "url_banned_word": banned}

    def decide(self, record: Record) -> Drop | None:
        if record["url_blocked_domain"]:
            return Drop("blocked_domain", host_of(record.get("url")) or "")
        if record["url_banned_word"]:
            return Drop("banned_word", record["url_banned_word"])
        return None
