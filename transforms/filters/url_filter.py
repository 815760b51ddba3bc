"""URL filter: drop adult and other unwanted sites by their URL alone, as FineWeb does.

Cheap (no text needed), so the text pipeline runs it before extraction. Its rules, in order,
each its own rejection reason (``transforms/filters/url_lists.py`` says where the lists come
from; docs/harm.md what they cover):

- ``blocked_domain``: the host or one of its parent domains is listed (UT1 ``adult``);
- ``blocked_url``: the URL itself is listed (UT1 ``adult`` URLs);
- ``banned_word``: a word of the URL (split on everything but letters and digits) is banned;
- ``soft_banned_words``: ``soft_word_threshold`` or more distinct soft-banned words in the URL;
- ``banned_subword``: a banned subword inside the URL with separators removed ("bigtits").

Hosts on the allow-list (or under an allowed domain) pass every rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from transforms.filters.url_lists import ListPaths, UrlLists, load_lists, normalise, url_key
from transforms.record import host_of
from transforms.stage import Drop, Filter, Record, SignalRules

_SEPARATORS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class UrlFilterConfig:
    enabled: bool = True
    # Each list: None for FineWeb's (datatrove 0.10.1's assets), or your own file / s3:// URI.
    blocklist_path: str | None = None  # domains (UT1 adult)
    blocked_urls_path: str | None = None  # full URLs (UT1 adult)
    banned_words_path: str | None = None
    banned_subwords_path: str | None = None
    soft_banned_words_path: str | None = None
    # FineWeb's value (datatrove URLFilter): one soft word ("sex", "girls") alone is common.
    soft_word_threshold: int = 2
    # Domains that pass every rule (subdomains too), inline and/or from a file.
    allowed_domains: tuple[str, ...] = ()
    allowlist_path: str | None = None

    def __post_init__(self) -> None:
        if self.soft_word_threshold < 1:
            raise ValueError(f"soft_word_threshold must be >= 1, got {self.soft_word_threshold}")

    def list_paths(self) -> ListPaths:
        return ListPaths(
            domains=self.blocklist_path,
            urls=self.blocked_urls_path,
            banned_words=self.banned_words_path,
            banned_subwords=self.banned_subwords_path,
            soft_banned_words=self.soft_banned_words_path,
            allowlist=self.allowlist_path,
        )


def parent_domains(host: str) -> list[str]:
    """The host and every domain above it: ``a.b.com``, ``b.com``, ``com``. An IPv4 address
    has no parents (UT1 lists 6,390 addresses; ``0.0.1`` is not a domain above ``10.0.0.1``)."""
    labels = host.split(".")
    if labels[-1].isdigit():
        return [host]
    return [".".join(labels[i:]) for i in range(len(labels))]


class UrlFilter(Filter):
    name = "url_filter"
    config_class = UrlFilterConfig
    reasons = ("blocked_domain", "blocked_url", "banned_word", "soft_banned_words", "banned_subword")
    signal_rules = SignalRules(
        # One soft-banned word alone is kept (it takes soft_word_threshold of them).
        nullable=("url_soft_banned_words",),
        must_be_null=("url_banned_word", "url_banned_subword"),
        value_sets={"url_blocked_domain": (False,), "url_blocked_url": (False,)},
    )
    signal_fields = (
        pa.field("url_allowed", pa.bool_()),
        pa.field("url_blocked_domain", pa.bool_()),
        pa.field("url_blocked_url", pa.bool_()),
        pa.field("url_banned_word", pa.string()),
        pa.field("url_soft_banned_words", pa.string()),
        pa.field("url_banned_subword", pa.string()),
    )

    def __init__(self, config: UrlFilterConfig = UrlFilterConfig()):
        self.config = config
        self._lists: UrlLists | None = None
        self._allowed: frozenset[str] = frozenset()

    def setup(self) -> None:
        self._lists = load_lists(self.config.list_paths())
        inline = (d.strip().lower() for d in self.config.allowed_domains)
        self._allowed = self._lists.allowed | {d for d in inline if d}

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        lists = self._lists
        if lists is None:
            raise RuntimeError("UrlFilter.setup() was not called")
        urls = [(record.get("url") or "").strip() for record in records]
        candidates = [parent_domains(host_of(url) or "") for url in urls]
        # One hash lookup for every candidate domain of the batch.
        listed = iter(lists.domains.contains([d for domains in candidates for d in domains]).tolist())
        signals = []
        for url, domains in zip(urls, candidates, strict=True):
            blocked = any([next(listed) for _ in domains])
            if self._allowed.intersection(domains):
                signals.append(_allowed_signals())
                continue
            words = set(_SEPARATORS.split(url.lower())) - {""}
            soft = sorted(words & lists.soft_banned_words)
            signals.append(
                {
                    "url_allowed": False,
                    "url_blocked_domain": blocked,
                    "url_blocked_url": url_key(url) in lists.urls,
                    "url_banned_word": min(words & lists.banned_words, default=None),
                    "url_soft_banned_words": " ".join(soft) or None,
                    "url_banned_subword": lists.subwords.first(normalise(url)),
                }
            )
        return signals

    def decide(self, record: Record) -> Drop | None:
        url = record.get("url") or ""
        if record["url_blocked_domain"]:
            return Drop("blocked_domain", host_of(url) or "")
        if record["url_blocked_url"]:
            return Drop("blocked_url", url)
        if record["url_banned_word"]:
            return Drop("banned_word", record["url_banned_word"])
        soft = (record["url_soft_banned_words"] or "").split()
        if len(soft) >= self.config.soft_word_threshold:
            return Drop("soft_banned_words", " ".join(soft))
        if record["url_banned_subword"]:
            return Drop("banned_subword", record["url_banned_subword"])
        return None


def _allowed_signals() -> Record:
    return {
        "url_allowed": True,
        "url_blocked_domain": False,
        "url_blocked_url": False,
        "url_banned_word": None,
        "url_soft_banned_words": None,
        "url_banned_subword": None,
    }
