"""Machine-readable reservations of one page, from its HTTP response headers and its HTML head.

Each reservation found is a ``(signal, evidence)`` pair: ``signal`` is a stable snake_case name
(a reject reason of the consent stage), ``evidence`` the header line or tag that says it. Read:

- ``X-Robots-Tag`` header and ``<meta name="robots">`` (or ``name=<agent token>``) directives
  ``noai``, ``noimageai`` (DeviantArt, 2022) and ``noindex`` / ``none`` (Google's robots meta
  specification; ``none`` is ``noindex, nofollow``); an X-Robots-Tag value scoped to a user
  agent (``googlebot: noindex``) counts only for the tokens we answer to;
- TDMRep (W3C Community Group report, 2024): the ``tdm-reservation: 1`` header and
  ``<meta name="tdm-reservation" content="1">``; ``tdm-policy`` is kept as evidence;
- ``Content-Usage`` (IETF AI preferences), see ``content_usage``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import lxml.etree
import lxml.html

from transforms.consent.content_usage import GENAI_TRAINING_CHAIN, reserved_category
from transforms.crawl.robots import x_robots_directives

# The response headers readers keep on a record (as ``http_headers``) for this module and the
# licence stage (``Link: <...>; rel="license"``); every other header is left in the WARC.
KEPT_HEADERS = frozenset({"x-robots-tag", "tdm-reservation", "tdm-policy", "content-usage", "link"})
HTTP_HEADERS = "http_headers"

# The product tokens of the AI-training crawlers, used by publishers to opt out of AI training
# (robots.txt groups, meta tags); the Data Provenance Initiative's "Consent in Crisis" audit
# (2024) found these the agents most often restricted. A reservation addressed to one of them
# is taken as addressed to us.
AI_AGENT_TOKENS = ("ccbot", "gptbot", "google-extended", "claudebot", "anthropic-ai", "applebot-extended")
ROBOTS_DIRECTIVES = ("noai", "noimageai", "noindex")
# Every signal this module can report, in the order a record's reservations are listed.
PAGE_SIGNALS = (
    *(f"x_robots_tag_{d}" for d in ROBOTS_DIRECTIVES),
    *(f"meta_robots_{d}" for d in ROBOTS_DIRECTIVES),
    "tdm_reservation_header",
    "tdm_reservation_meta",
    "content_usage_header",
)
MAX_HEAD_BYTES = 256 * 1024
_HEAD_END = re.compile(rb"</head\s*>|<body[\s>]", re.IGNORECASE)

Headers = Iterable[tuple[str, str]]


def kept_headers(headers: Headers) -> list[tuple[str, str]]:
    """The headers of ``KEPT_HEADERS``, in their order, names as sent."""
    return [(name, value) for name, value in headers if name.lower() in KEPT_HEADERS]


def header_values(headers: Headers | None, name: str) -> list[str]:
    name = name.lower()
    return [value for key, value in headers or () if key.lower() == name]


def head_metas(body: bytes | None) -> list[tuple[str, str]]:
    """``(name, content)`` of every ``<meta name>`` in the page's head (names lower-cased).
    Only the head is parsed: robots and TDMRep meta tags belong there."""
    if not body:
        return []
    match = _HEAD_END.search(body, 0, MAX_HEAD_BYTES)
    head = body[: match.start()] if match else body[:MAX_HEAD_BYTES]
    if not head.strip():
        return []
    try:
        doc = lxml.html.document_fromstring(head, parser=lxml.html.HTMLParser(no_network=True))
    except (lxml.etree.ParserError, ValueError):
        return []
    return [
        ((meta.get("name") or "").strip().lower(), (meta.get("content") or "").strip())
        for meta in doc.iter("meta")
        if meta.get("name")
    ]


def _robots(directives: set[str]) -> list[str]:
    present = {"noindex" if d == "none" else d for d in directives}
    return [d for d in ROBOTS_DIRECTIVES if d in present]


def find_reservations(
    headers: Headers | None,
    metas: list[tuple[str, str]],
    agent_tokens: tuple[str, ...],
    content_usage_chain: tuple[str, ...] = GENAI_TRAINING_CHAIN,
) -> list[tuple[str, str]]:
    """Every reservation the headers and head meta tags make, as ``(signal, evidence)``."""
    found: list[tuple[str, str]] = []
    x_robots = header_values(headers, "x-robots-tag")
    directives: set[str] = set()
    for token in agent_tokens or ("*",):
        directives |= x_robots_directives(x_robots, token)
    for directive in _robots(directives):
        found.append((f"x_robots_tag_{directive}", "X-Robots-Tag: " + ", ".join(x_robots)))

    robots_names = {"robots", *agent_tokens}
    robots_metas = [(n, c) for n, c in metas if n in robots_names]
    meta_directives = {d.strip().lower() for _, c in robots_metas for d in c.split(",") if d.strip()}
    for directive in _robots(meta_directives):
        tags = "; ".join(f'<meta name="{n}" content="{c}">' for n, c in robots_metas)
        found.append((f"meta_robots_{directive}", tags))

    policy = header_values(headers, "tdm-policy")
    policy_note = f" (tdm-policy: {policy[0]})" if policy else ""
    reservation = header_values(headers, "tdm-reservation")
    if any(v.strip() == "1" for v in reservation):
        found.append(("tdm_reservation_header", f"tdm-reservation: {reservation[0].strip()}{policy_note}"))
    meta_reservation = [c for n, c in metas if n == "tdm-reservation"]
    if any(c == "1" for c in meta_reservation):
        meta_policy = [c for n, c in metas if n == "tdm-policy"]
        note = f' <meta name="tdm-policy" content="{meta_policy[0]}">' if meta_policy else ""
        found.append(("tdm_reservation_meta", f'<meta name="tdm-reservation" content="1">{note}'))

    usage = header_values(headers, "content-usage")
    category = reserved_category(usage, content_usage_chain)
    if category is not None:
        found.append(("content_usage_header", f"Content-Usage: {', '.join(usage)} ({category}=n)"))
    return found
