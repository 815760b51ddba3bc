"""Takedown blocklists: what a run must not publish, and why.

A blocklist is a text file, one entry a line, ``<kind> <value> [why...]``; ``#`` starts a
comment line. Kinds:

    url     https://example.com/page      that URL exactly (the record's ``url`` or ``page_url``)
    prefix  https://example.com/blog/     every URL that starts so
    domain  example.com                   the host and every host under it
    id      0f3a...                       a record id (32 hex digits)
    sha256  9b1c...                       an image's sha256 (the bytes as served)
    phash   c3d2...                       an image's 64-bit pHash, within ``phash_max_distance``

The same file drives the per-run ``takedown`` stage and ``dataprep retract`` on published runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transforms.record import host_of

KINDS = ("url", "prefix", "domain", "id", "sha256", "phash")


class BlocklistError(ValueError):
    """A line of a blocklist that cannot be read: nothing is removed on a guess."""


@dataclass(frozen=True)
class Blocklist:
    urls: dict[str, str] = field(default_factory=dict)  # value -> why
    prefixes: dict[str, str] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    sha256s: dict[str, str] = field(default_factory=dict)
    phashes: dict[int, str] = field(default_factory=dict)
    phash_max_distance: int = 0

    def __len__(self) -> int:
        return sum(map(len, (self.urls, self.prefixes, self.domains, self.ids, self.sha256s, self.phashes)))

    def match(self, record: dict[str, Any]) -> tuple[str, str] | None:
        """``(kind, detail)`` of the first entry that ``record`` matches, or ``None``."""
        if record.get("id") in self.ids:
            return "id", f"id {record['id']}: {self.ids[record['id']]}"
        for url in (record.get("url"), record.get("page_url")):
            if not url:
                continue
            if url in self.urls:
                return "url", f"url {url}: {self.urls[url]}"
            prefix = next((p for p in self.prefixes if url.startswith(p)), None)
            if prefix is not None:
                return "prefix", f"prefix {prefix}: {self.prefixes[prefix]}"
            labels = (host_of(url) or "").split(".")
            domain = next((".".join(labels[i:]) for i in range(len(labels)) if ".".join(labels[i:]) in self.domains), None)
            if domain is not None:
                return "domain", f"domain {domain}: {self.domains[domain]}"
        sha256 = record.get("sha256")
        if sha256 and sha256 in self.sha256s:
            return "sha256", f"sha256 {sha256}: {self.sha256s[sha256]}"
        phash = record.get("phash")
        if phash and self.phashes:
            value = int(phash, 16)
            for listed, why in self.phashes.items():
                if (value ^ listed).bit_count() <= self.phash_max_distance:
                    return "phash", f"phash {listed:016x}: {why}"
        return None


def parse_blocklist(text: str, phash_max_distance: int = 0) -> Blocklist:
    tables: dict[str, dict] = {kind: {} for kind in KINDS}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        kind = parts[0].lower()
        if kind not in KINDS or len(parts) < 2:
            raise BlocklistError(f"line {number}: {line!r} is not '<kind> <value> [why]' with kind in {KINDS}")
        value, why = parts[1], parts[2] if len(parts) > 2 else "listed"
        if kind == "domain":
            value = value.lower().strip(".")
        elif kind in ("id", "sha256"):
            value = value.lower()
        elif kind == "phash":
            try:
                value = int(value, 16)
            except ValueError as exc:
                raise BlocklistError(f"line {number}: phash {value!r} is not hexadecimal") from exc
        tables[kind][value] = why
    return Blocklist(
        urls=tables["url"], prefixes=tables["prefix"], domains=tables["domain"], ids=tables["id"],
        sha256s=tables["sha256"], phashes=tables["phash"], phash_max_distance=phash_max_distance,
    )


def load_blocklist(path: str, phash_max_distance: int = 0) -> Blocklist:
    """The blocklist at ``path`` (local or ``s3://``)."""
    from run_folder.storage import read_bytes

    return parse_blocklist(read_bytes(path).decode("utf-8"), phash_max_distance)
