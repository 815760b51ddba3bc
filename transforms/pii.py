"""PII redaction: replace emails, phone numbers, IP addresses, card numbers and secrets in
``text`` by placeholder tokens. Never drops a record; counts what it replaced.

Detection is by pattern plus a check in Python where a pattern alone is too loose: card
numbers must pass the Luhn check and fall in a major network's issuer range and length, IP
addresses must parse (``ipaddress``), international phone numbers must have 8-15 digits
(E.164), ``sk-`` keys must look random.

Speed: a regex that starts with a look-behind (as these must, to not start inside a word) is
tried at every position of the text, ~3 MB/s for all of them as one alternation. Instead, cheap
scans find where a candidate can start (digit runs, ``@``, key prefixes, hex-colon runs) and
the full patterns run only there, ~28 MB/s on real article text. Where candidates of several
kinds overlap, the earliest start wins, then the order keys, email, IPv6, IPv4, card, phone.

What is deliberately not matched, to keep ordinary text intact:
- phone numbers without a ``+`` country code other than North American ones
  (``(415) 555-2671``, ``415-555-2671``, ``1 415 555 2671``), and North American numbers
  without separators (``4155552671``): national formats are indistinguishable from other
  numbers;
- digit runs that are dates, years, ranges, ISBNs, prices or plain numbers (none has a valid
  phone shape, a card issuer prefix with a valid Luhn digit, or four IP octets);
- with ``only_public_ips`` (the default; turned off, every valid IP shape is redacted):
  - non-public addresses (loopback, private, link-local, documentation, unallocated IPv6):
    they identify no one, and code and documentation are full of them (datatrove's PII
    formatter and BigCode's StarCoder redaction also leave them);
  - IPv4 shapes with at most one number >= 20 (``1.4.0.33``, ``3.1.1.1``, ``8.8.8.8``): in
    real text these are version numbers (Debian's changelogs hold thousands) or well-known
    public resolvers (which BigCode also leaves); a random public address has this shape
    0.2% of the time;
  - IPv6 shapes with fewer than three non-empty groups (``D::f`` in C++, ``2000::``);
- card-like digit runs inside URLs (after ``/`` or ``=``: ticket and record ids);
- obfuscated emails (``name [at] example [dot] com``) and secrets without a known shape
  (a password in prose).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import COUNT, Drop, Record, SignalRules, Stage

KINDS = ("email", "phone", "ip", "credit_card", "api_key")
SIGNAL_OF_KIND = {
    "email": "pii_emails",
    "phone": "pii_phones",
    "ip": "pii_ips",
    "credit_card": "pii_credit_cards",
    "api_key": "pii_api_keys",
}


@dataclass(frozen=True)
class RedactPiiConfig:
    enabled: bool = True
    redact_emails: bool = True
    redact_phones: bool = True
    redact_ips: bool = True
    redact_credit_cards: bool = True
    redact_api_keys: bool = True
    only_public_ips: bool = True  # as datatrove's PIIFormatter (only_remove_public_ips)
    email_token: str = "<EMAIL>"
    phone_token: str = "<PHONE>"
    ip_token: str = "<IP_ADDRESS>"
    credit_card_token: str = "<CREDIT_CARD>"
    api_key_token: str = "<API_KEY>"

    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in KINDS if getattr(self, f"redact_{kind}s"))

    def token(self, kind: str) -> str:
        return getattr(self, f"{kind}_token")


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"

# (pattern name, kind, pattern). Where two can start at the same position the earlier one is
# tried first. Look-arounds keep every pattern from starting or ending inside a longer token;
# separators between digit groups are mandatory or unambiguous, so no pattern can backtrack
# exponentially.
_PATTERNS: tuple[tuple[str, str, str], ...] = (
    # PEM private keys, with their END line; a truncated key up to its last base64 line.
    (
        "pem",
        "api_key",
        (
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
            r"(?:[\s\S]{0,16384}?-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|(?:\s+[A-Za-z0-9+/=]{16,})*)"
        ),
    ),
    # The token after "Bearer " (the word stays): tried only right after that word.
    ("bearer", "api_key", r"[A-Za-z0-9._~+/-]{20,}=*(?![A-Za-z0-9._~+/=-])"),
    ("aws", "api_key", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    (
        "github",
        "api_key",
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])",
    ),
    ("slack", "api_key", r"(?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,250}"),
    ("google", "api_key", r"(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"),
    ("openai", "api_key", r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,255}(?![A-Za-z0-9_-])"),
    ("jwt", "api_key", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("email", "email", r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])"),
    (
        "ipv6",
        "ip",
        rf"(?<![\w:.])[0-9A-Fa-f]{{0,4}}(?::[0-9A-Fa-f]{{0,4}}){{2,7}}(?::{_IPV4})?(?![\w:]|\.\d)",
    ),
    ("ipv4", "ip", rf"(?<![\w.]){_IPV4}(?![\w]|\.\d)"),
    # 13-19 digits, bare or in the printed groupings (4-4-4-4[-3], 4-6-5, 4-6-4) with one
    # separator throughout; not inside a URL, not next to another group of 3+ digits (a table).
    (
        "card",
        "credit_card",
        (
            r"(?<![\w./=-])(?<!\d{3}[ -])"
            r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{4,5})"
            r"(?!\w|\.\d|[ -]\d{3})"
        ),
    ),
    # North American: area code and exchange start with 2-9; separators required; no digit
    # group just before or after (a table of numbers).
    (
        "nanp",
        "phone",
        (
            r"(?<![\w+.-])(?<!\d[ .-])(?:\+1[ .-]?|1[ .-])?"
            r"(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![\w-]|[ .]\d)"
        ),
    ),
    # International: +country code, then digit groups each after a separator or "(..)".
    (
        "intl",
        "phone",
        r"(?<![\w+])\+(?:\d{8,15}|\d{1,4}(?:(?:[ .-]|[ .-]?\(\d{1,5}\)[ .-]?)\d{1,8}){1,7})(?!\w|[.-]\d)",
    ),
)
_KIND_OF = {name: kind for name, kind, _ in _PATTERNS}
_SINGLE = {name: re.compile(pattern) for name, _, pattern in _PATTERNS}


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)  # also other scripts' digits, which ``\d`` matches
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_issuer_valid(digits: str) -> bool:
    """Issuer (IIN) prefix and length of a major network: Visa, Mastercard, Amex, Diners,
    JCB, Discover, UnionPay, Maestro."""
    n = len(digits)
    p1, p2, p3, p4 = (int(digits[:k]) for k in (1, 2, 3, 4))
    return (
        (p1 == 4 and n in (13, 16, 19))
        or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)
        or (p2 in (34, 37) and n == 15)
        or ((p2 in (36, 38, 39) or 300 <= p3 <= 305) and 14 <= n <= 19)
        or (3528 <= p4 <= 3589 and 16 <= n <= 19)
        or ((p2 == 50 or 56 <= p2 <= 69) and 13 <= n <= 19)
    )


def _card_end(candidate: str) -> int | None:
    """Length of the card number at the start of ``candidate``: all of it, or its first 16
    digits when a 4-4-4-4-3 shape is a 16-digit card followed by a 3-digit code."""
    for prefix in (candidate, candidate[:19]):
        digits = prefix.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and card_issuer_valid(digits):
            return len(prefix)
    return None


def _e164_end(candidate: str) -> int | None:
    return len(candidate) if 8 <= sum(c.isdigit() for c in candidate) <= 15 else None


def _random_key_end(candidate: str) -> int | None:
    """An ``sk-`` key is random base62: digits and both cases (``sk-learn-...`` is not)."""
    body = candidate[3:]
    random = (
        any(c.isdigit() for c in body) and any(c.isupper() for c in body) and any(c.islower() for c in body)
    )
    return len(candidate) if random else None


# Cheap scans that find where a candidate can start, so the full patterns run only there
# (a scan led by a literal or a character class skips ahead in C; one led by a look-behind
# would test every position of the text).
_KEY_TRIGGER = re.compile(
    r"-----BEGIN|Bearer[ \t]+|bearer[ \t]+|AKIA|ASIA|ABIA|ACCA|gh[pousr]_|github_pat_|xox[abposr]-|AIza|sk-|eyJ"
)
_LOCAL_PART_END = re.compile(r"[\w.%+-]{1,64}\Z")  # an email's local part ending at the "@"
_IPV6_HINT = re.compile(r"[0-9A-Fa-f:]:[0-9A-Fa-f]{0,4}:")
_DIGIT_RUN = re.compile(r"\d+")

# All public IPv6 unicast space is allocated from here; ``is_global`` also passes unallocated
# space, where shapes like "2:4:6:8:10:12:14:16" fall.
_UNICAST_V6 = ipaddress.ip_network("2000::/3")

_KEY_NAMES = tuple(name for name, kind, _ in _PATTERNS if kind == "api_key" and name != "bearer")
_DIGIT_NAMES = ("ipv4", "card", "nanp", "intl")


class PiiRedactor:
    """The pure core: ``redact(text)`` returns the redacted text and counts per kind."""

    def __init__(self, config: RedactPiiConfig = RedactPiiConfig()):
        self.config = config
        kinds = config.kinds()
        self._keys = "api_key" in kinds
        self._emails = "email" in kinds
        self._ipv6 = "ip" in kinds
        self._digit_names = tuple(name for name in _DIGIT_NAMES if _KIND_OF[name] in kinds)
        self._checks: dict[str, Callable[[str], int | None]] = {
            "card": _card_end,
            "ipv4": self._ip_end,
            "ipv6": self._ip_end,
            "intl": _e164_end,
            "openai": _random_key_end,
        }

    def _ip_end(self, candidate: str) -> int | None:
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            return None
        if not self.config.only_public_ips:
            return len(candidate)
        if not address.is_global or (address.version == 6 and address not in _UNICAST_V6):
            return None
        if address.version == 4 and sum(int(octet) >= 20 for octet in candidate.split(".")) <= 1:
            return None  # a version number (1.4.0.33) or a public resolver (8.8.8.8); see above
        if address.version == 6 and sum(1 for group in candidate.split(":") if group) < 3:
            return None  # C++ scopes (D::f), times (2000::); real addresses show 3+ groups
        return len(candidate)

    def _first_at(self, text: str, start: int, names: tuple[str, ...]) -> tuple[int, int, str] | None:
        """The first of ``names`` that matches at ``start`` and passes its check, as a span."""
        for name in names:
            match = _SINGLE[name].match(text, start)
            if match is None:
                continue
            check = self._checks.get(name)
            length = len(match.group()) if check is None else check(match.group())
            if length:
                return start, start + length, _KIND_OF[name]
        return None

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, kind)`` of the PII in ``text``, in order."""
        found: list[tuple[int, int, int, str]] = []  # start, family rank, end, kind
        if self._keys:
            for hit in _KEY_TRIGGER.finditer(text):
                bearer = hit.group()[0] in "Bb"
                span = self._first_at(
                    text, hit.end() if bearer else hit.start(), ("bearer",) if bearer else _KEY_NAMES
                )
                if span:
                    found.append((span[0], 0, span[1], span[2]))
        if self._emails:
            at = text.find("@")
            while at != -1:
                local = _LOCAL_PART_END.search(text, max(0, at - 64), at)
                if local and (span := self._first_at(text, local.start(), ("email",))):
                    found.append((span[0], 1, span[1], span[2]))
                at = text.find("@", at + 1)
        if self._ipv6 and _IPV6_HINT.search(text):
            for match in _SINGLE["ipv6"].finditer(text):
                if self._ip_end(match.group()):
                    found.append((match.start(), 2, match.end(), "ip"))
        if self._digit_names:
            done = 0
            for run in _DIGIT_RUN.finditer(text):
                start = run.start()
                # Phone numbers may start just before their first digit: "(415) ...", "+44 ...".
                starts = (start - 1, start) if start and text[start - 1] in "(+" else (start,)
                for candidate in starts:
                    if candidate >= done and (span := self._first_at(text, candidate, self._digit_names)):
                        found.append((span[0], 3, span[1], span[2]))
                        done = span[1]
                        break
        found.sort()
        spans: list[tuple[int, int, str]] = []
        end = 0
        for start, _, stop, kind in found:
            if start >= end:
                spans.append((start, stop, kind))
                end = stop
        return spans

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts = dict.fromkeys(KINDS, 0)
        spans = self.spans(text)
        if not spans:
            return text, counts
        parts: list[str] = []
        done = 0
        for start, end, kind in spans:
            parts += (text[done:start], self.config.token(kind))
            counts[kind] += 1
            done = end
        parts.append(text[done:])
        return "".join(parts), counts


class RedactPii(Stage):
    name = "pii"
    config_class = RedactPiiConfig
    reasons = ()
    signal_rules = SignalRules(
        ranges={
            name: COUNT
            for name in ("pii_emails", "pii_phones", "pii_ips", "pii_credit_cards", "pii_api_keys", "pii_redactions")
        }
    )
    signal_fields = tuple(pa.field(signal, pa.int32()) for signal in SIGNAL_OF_KIND.values()) + (
        pa.field("pii_redactions", pa.int32()),
    )

    def __init__(self, config: RedactPiiConfig = RedactPiiConfig()):
        self.config = config
        self._redactor = PiiRedactor(config)

    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        for record in records:
            text = record.get("text")
            counts = dict.fromkeys(KINDS, 0)
            if text:
                record["text"], counts = self._redactor.redact(text)
            record.update({SIGNAL_OF_KIND[kind]: n for kind, n in counts.items()})
            record["pii_redactions"] = sum(counts.values())
        return [None] * len(records)
