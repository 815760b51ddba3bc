"""The IETF AI-preferences vocabulary (draft-ietf-aipref-vocab) as ``Content-Usage`` carries it
(draft-ietf-aipref-attach): an HTTP response header and a robots.txt rule, both a Structured
Fields dictionary (RFC 9651) of category = ``y`` | ``n``, e.g. ``train-ai=n, search=y``.

A preference for a narrower category overrides a broader one, so the use we make of a page is
looked up from the most specific category to the most general and the first one stated
decides. The draft renamed its categories between revisions; both label sets are read.
"""

from __future__ import annotations

# Building a generative model's training set, from the narrowest category to the broadest:
# draft -00 labels (train-genai, train-ai, bots) and the later ones (genai, ai, tdm).
GENAI_TRAINING_CHAIN = ("train-genai", "genai", "train-ai", "ai", "tdm", "bots")


def parse_preferences(value: str) -> dict[str, bool]:
    """Category -> allowed, from one Content-Usage value (members after the first repeat win,
    as RFC 9651 §4.2.2 says; parameters after ``;`` are ignored; unknown values are skipped)."""
    preferences: dict[str, bool] = {}
    for member in value.split(","):
        key, _, rest = member.split(";", 1)[0].strip().partition("=")
        key, rest = key.strip().lower(), rest.strip().strip('"').lower()
        if not key:
            continue
        if rest in ("y", "?1"):
            preferences[key] = True
        elif rest in ("n", "?0"):
            preferences[key] = False
    return preferences


def reserved_category(values: list[str], chain: tuple[str, ...] = GENAI_TRAINING_CHAIN) -> str | None:
    """The category that reserves our use (``train-ai`` ...), or ``None`` when the values allow it
    or say nothing about it. Several header fields are one dictionary (RFC 9651 §4.2)."""
    preferences = parse_preferences(", ".join(values))
    for category in chain:
        if category in preferences:
            return None if preferences[category] else category
    return None
