"""robots.txt rules (RFC 9309, parsed by Protego) and page-level opt-outs.

How a robots.txt fetch maps to rules (RFC 9309 §2.3.1): 2xx parses the file (the first
``MAX_ROBOTS_BYTES``); 4xx ("unavailable") allows everything; 5xx, 429 and network failures
("unreachable") disallow everything, so those URLs end ``robots_unavailable`` and a later
``--retry-failed`` run tries again. Crawl-delay and Request-rate become the host's interval.

Opt-outs: ``X-Robots-Tag`` headers and ``<meta name="robots">`` (or ``<meta name=TOKEN>``)
directives. ``noindex`` and ``none`` are the search-engine opt-outs; ``noai`` and ``noimageai``
are the AI-training ones introduced by DeviantArt (2022) and honoured by several crawlers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from protego import Protego

from run_folder.storage import exists, join, read_bytes, write_atomic

# RFC 9309 §2.5: crawlers must parse at least the first 500 KiB.
MAX_ROBOTS_BYTES = 500 * 1024

# X-Robots-Tag directives whose value contains a colon; anything else before a colon is a
# user agent that the rest of the value is scoped to ("googlebot: noindex").
_VALUED_DIRECTIVES = frozenset({"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"})
_SCOPED = re.compile(r"^\s*([A-Za-z0-9_.*-]+)\s*:\s*(.*)$")


def _cache_path(cache_dir: str, origin: str) -> str:
    return join(cache_dir, hashlib.sha1(origin.encode()).hexdigest() + ".json")


def cache_robots(cache_dir: str, origin: str, rules: RobotsRules) -> None:
    """Keep what ``origin`` answered for the rest of the run. An unreachable robots.txt is not
    kept: a later round (or ``--retry-failed``) asks again."""
    if rules.unavailable is not None:
        return
    entry = {"origin": origin, "text": rules.text}  # text None: allow all (a 4xx answer)
    write_atomic(_cache_path(cache_dir, origin), json.dumps(entry).encode())


def load_cached_robots(cache_dir: str, origin: str) -> RobotsRules | None:
    path = _cache_path(cache_dir, origin)
    if not exists(path):
        return None
    entry = json.loads(read_bytes(path))
    return RobotsRules.allow_all() if entry["text"] is None else RobotsRules.parse(entry["text"].encode())


def robots_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against (``name`` of ``name/1.0 (...)``)."""
    token = re.split(r"[/\s]", user_agent.strip(), maxsplit=1)[0]
    return token.lower() or "*"


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt says to one user agent token."""

    parser: Protego | None = None
    # Set when robots.txt could not be fetched: everything is disallowed. ``reason`` is the
    # fetch failure's (``ssrf_blocked`` stays itself; anything else is ``robots_unavailable``).
    unavailable: str | None = None
    reason: str | None = None
    text: str | None = None  # the parsed robots.txt, kept for the run's cache

    @classmethod
    def parse(cls, content: bytes) -> RobotsRules:
        text = content[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        return cls(parser=Protego.parse(text), text=text)

    @classmethod
    def allow_all(cls) -> RobotsRules:
        return cls()

    @classmethod
    def unreachable(cls, reason: str, detail: str) -> RobotsRules:
        return cls(unavailable=detail, reason=reason)

    def allows(self, url: str, token: str) -> bool:
        if self.unavailable is not None:
            return False
        return self.parser is None or self.parser.can_fetch(url, token)

    def interval_s(self, token: str) -> float:
        """Seconds between requests asked for by Crawl-delay or Request-rate (0 when none)."""
        if self.parser is None:
            return 0.0
        delay = self.parser.crawl_delay(token) or 0.0
        rate = self.parser.request_rate(token)
        if rate is not None and rate.requests > 0:
            delay = max(delay, rate.seconds / rate.requests)
        return float(delay)


def x_robots_directives(values: Iterable[str], token: str) -> set[str]:
    """Directives of ``X-Robots-Tag`` header values that apply to ``token`` (lower-cased)."""
    directives: set[str] = set()
    for value in values:
        scope, rest = None, value
        match = _SCOPED.match(value)
        if match and match.group(1).lower() not in _VALUED_DIRECTIVES:
            scope, rest = match.group(1).lower(), match.group(2)
        if scope is not None and scope not in (token, "*"):
            continue
        directives.update(d.strip().lower() for d in rest.split(",") if d.strip())
    return directives


def opt_out(directives: Iterable[str], honoured: Iterable[str]) -> str | None:
    """The first honoured opt-out among ``directives`` (``none`` means ``noindex``), or ``None``."""
    present = {"noindex" if d == "none" else d for d in directives}
    for directive in honoured:
        directive = "noindex" if directive == "none" else directive
        if directive in present:
            return directive
    return None
