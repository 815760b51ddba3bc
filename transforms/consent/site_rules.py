"""Site-wide reservations a crawler reads once per origin: TDMRep's ``/.well-known/tdmrep.json``
and ``Content-Usage`` rules in robots.txt.

TDMRep (W3C Community Group final report, 2024) lists rules ``{"location": "/path/*",
"tdm-reservation": 1, "tdm-policy": URL}``; ``location`` is a path pattern (``*`` any run of
characters, a final ``$`` the end); the first rule whose location matches applies.

``Content-Usage`` in robots.txt (draft-ietf-aipref-attach) is a group line
``Content-Usage: [path] preferences``: the rule with the longest matching path, in the groups our
tokens read (each its own group, else the ``*`` group), applies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from transforms.consent.content_usage import GENAI_TRAINING_CHAIN, reserved_category

TDMREP_PATH = "/.well-known/tdmrep.json"


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _pattern(location: str) -> re.Pattern[str]:
    anchored = location.endswith("$")
    body = re.escape(location.rstrip("$")).replace(r"\*", ".*")
    return re.compile(body + ("$" if anchored else ""))


@dataclass(frozen=True)
class TdmRep:
    rules: tuple[tuple[str, int, str | None], ...] = ()  # (location, reservation, policy)

    @classmethod
    def parse(cls, content: bytes | str | None) -> TdmRep:
        """The rules of a tdmrep.json body; anything unreadable reserves nothing."""
        try:
            data = json.loads(content) if content else []
        except (ValueError, UnicodeDecodeError):
            return cls()
        rules = []
        for rule in data if isinstance(data, list) else []:
            if isinstance(rule, dict) and isinstance(rule.get("location"), str):
                reservation = rule.get("tdm-reservation")
                policy = rule.get("tdm-policy")
                rules.append((rule["location"], 1 if reservation in (1, "1") else 0,
                              policy if isinstance(policy, str) else None))
        return cls(tuple(rules))

    def reservation(self, url: str) -> str | None:
        """The evidence when the first rule matching ``url``'s path reserves it, else ``None``."""
        path = _path_of(url)
        for location, reserved, policy in self.rules:
            if _pattern(location).match(path):
                if not reserved:
                    return None
                note = f', "tdm-policy": "{policy}"' if policy else ""
                return f'{TDMREP_PATH}: {{"location": "{location}", "tdm-reservation": 1{note}}}'
        return None


_LINE = re.compile(r"^\s*([A-Za-z-]+)\s*:\s*(.*?)\s*(?:#.*)?$")


def robots_content_usage(robots_text: str | None, url: str, tokens: tuple[str, ...],
                         chain: tuple[str, ...] = GENAI_TRAINING_CHAIN) -> str | None:
    """The evidence when robots.txt's Content-Usage rules reserve ``url`` for our use, else ``None``."""
    if not robots_text:
        return None
    groups: list[tuple[set[str], list[tuple[str, str]]]] = []
    agents: set[str] = set()
    in_rules = False
    for line in robots_text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        field, value = match.group(1).lower(), match.group(2)
        if field == "user-agent":
            if in_rules or not groups:
                agents = set()
                groups.append((agents, []))
                in_rules = False
            agents.add(value.lower())
        elif groups:
            in_rules = True
            if field == "content-usage":
                path, _, prefs = value.partition(" ") if value.startswith("/") else ("/", "", value)
                groups[-1][1].append((path, prefs.strip()))
    # Each token reads its own group, or the ``*`` group when it has none (RFC 9309 §2.2.1).
    named = {token for token in tokens if any(token in agents for agents, _ in groups)}
    wanted = [g for g in groups if g[0] & named]
    if set(tokens) - named:
        wanted += [g for g in groups if "*" in g[0]]
    path = _path_of(url)
    rules = [(p, prefs) for _, group_rules in wanted for p, prefs in group_rules if path.startswith(p)]
    if not rules:
        return None
    best, prefs = max(rules, key=lambda rule: len(rule[0]))
    category = reserved_category([prefs], chain)
    return None if category is None else f"robots.txt Content-Usage: {best} {prefs} ({category}=n)"
