"""A page's licence: where publishers state it, normalised to an SPDX identifier.

Forms read, most explicit first: the ``Link: <...>; rel="license"`` header (RFC 8288), ``rel=
"license"`` on ``<link>``/``<a>`` (HTML standard; the form Creative Commons' chooser emits),
``<meta name="license">`` / ``dcterms.license`` / ``dc.rights``-style Dublin Core tags, JSON-LD
``license`` (schema.org), ccREL RDF (``<license rdf:resource>``, which Creative Commons' chooser
emitted for years, often inside a comment), and last any plain link to a Creative Commons
licence deed (a CC URL carries the licence and its version; such a link is also how photo
credits are written, hence last and optional: docs/consent.md has its measured precision).

Normalisation: Creative Commons URLs and names (``CC BY-SA 4.0``, ``Attribution-NonCommercial
3.0``), CC0, and a few common open licences by URL or SPDX id. A CC licence ported to a
jurisdiction keeps its port where SPDX lists it (``CC-BY-3.0-DE``), else it is
``LicenseRef-CC-<...>``: the ports are separate legal texts. Unrecognised statements have no id
but keep their raw value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import lxml.etree
import lxml.html

from transforms.consent.signals import header_values

# SPDX License List 3.24: the ported CC licences it has ids for.
_SPDX_PORTS = frozenset({
    "CC-BY-2.5-AU", "CC-BY-3.0-AT", "CC-BY-3.0-AU", "CC-BY-3.0-DE", "CC-BY-3.0-IGO", "CC-BY-3.0-NL",
    "CC-BY-3.0-US", "CC-BY-NC-3.0-DE", "CC-BY-NC-ND-3.0-DE", "CC-BY-NC-ND-3.0-IGO",
    "CC-BY-NC-SA-2.0-DE", "CC-BY-NC-SA-2.0-FR", "CC-BY-NC-SA-2.0-UK", "CC-BY-NC-SA-3.0-DE",
    "CC-BY-NC-SA-3.0-IGO", "CC-BY-ND-3.0-DE", "CC-BY-SA-2.0-UK", "CC-BY-SA-2.1-JP", "CC-BY-SA-3.0-AT",
    "CC-BY-SA-3.0-DE", "CC-BY-SA-3.0-IGO",
})
_CC_VERSIONS = frozenset({"1.0", "2.0", "2.5", "3.0", "4.0"})
_CC_CODES = {"by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd", "by-nd-nc"}
_CC_URL = re.compile(
    r"creativecommons\.org/(?:licenses/([a-z-]+)/(\d\.\d)(?:/([a-z]{2,3})(?![a-z.]))?|publicdomain/(zero|mark)/(\d\.\d))",
    re.IGNORECASE,
)
# "CC BY-NC-SA 4.0", "CC-BY 3.0", "cc by sa 2.5"; and the long names of the deeds.
_CC_SHORT = re.compile(r"\bcc[\s_-]*(by(?:[\s_-]*(?:nc|nd|sa)){0,2})[\s_-]*v?(\d\.\d)\b", re.IGNORECASE)
_CC_LONG = re.compile(
    r"creative\s+commons\s+(?:license\s*:?\s*)?(attribution(?:[\s-]*(?:non-?commercial|share-?alike|no-?deriv(?:ative)?s))*)"
    r"[\s,-]*(?:license\s*)?(?:v(?:ersion)?\s*)?(\d\.\d)",
    re.IGNORECASE,
)
_CC0 = re.compile(r"\bcc[\s_-]?0\b|\bcc[\s_-]zero\b", re.IGNORECASE)
_LONG_PARTS = {"noncommercial": "nc", "non-commercial": "nc", "sharealike": "sa", "share-alike": "sa",
               "noderivatives": "nd", "noderivs": "nd", "no-derivatives": "nd", "no-derivs": "nd"}
# Other licences by a stable URL fragment. GNU's recommended notices say "or (at your option)
# any later version", hence -or-later.
_URLS = (
    (re.compile(r"gnu\.org/(?:licenses|copyleft)/fdl(?:-(\d\.\d))?", re.I), "GFDL-{}-or-later", "1.3"),
    (re.compile(r"gnu\.org/licenses/lgpl(?:-(\d\.\d))?", re.I), "LGPL-{}-or-later", "3.0"),
    (re.compile(r"gnu\.org/licenses/agpl(?:-(\d\.\d))?", re.I), "AGPL-{}-or-later", "3.0"),
    (re.compile(r"gnu\.org/licenses/gpl(?:-(\d\.\d))?", re.I), "GPL-{}-or-later", "3.0"),
    (re.compile(r"apache\.org/licenses/LICENSE-(\d\.\d)", re.I), "Apache-{}", "2.0"),
    (re.compile(r"opensource\.org/licenses?/MIT\b", re.I), "MIT", None),
    (re.compile(r"opendatacommons\.org/licenses/odbl(?:/(\d\.\d))?", re.I), "ODbL-{}", "1.0"),
    (re.compile(r"opendatacommons\.org/licenses/by(?:/(\d\.\d))?", re.I), "ODC-By-{}", "1.0"),
    (re.compile(r"opendatacommons\.org/licenses/pddl(?:/(\d\.\d))?", re.I), "PDDL-{}", "1.0"),
)
_SPDX_WORDS = {s.lower(): s for s in ("MIT", "Apache-2.0", "CC0-1.0", "ODbL-1.0", "PDDL-1.0", "Unlicense")}
_META_NAMES = frozenset({"license", "licence", "dcterms.license", "dc.license", "dcterms:license",
                         "dc:license", "dc.rights.license", "dcterms.rights", "dc.rights"})
FORMS = ("link_header", "rel_license", "meta", "json_ld", "cc_rdf", "cc_link")
# ccREL's RDF (Creative Commons' licence chooser emitted it for years, often inside a comment):
# <license rdf:resource="http://creativecommons.org/licenses/..."/> in a Work.
_CC_RDF = re.compile(rb"<(?:cc:)?license\s+rdf:resource=[\"']([^\"']+)[\"']", re.IGNORECASE)
_MENTION = re.compile(rb"licen[cs]e")


def _mentions_license(body: bytes) -> bool:
    """``licen[cs]e`` or ``creativecommons`` in any case: the cheap gate before parsing.

    Lower case first, then literal searches: a case-insensitive alternation made ``re`` try
    every byte of the page (~3 ms per 80 KB page against ~0.15 ms).
    """
    lowered = body.lower()
    return b"creativecommons" in lowered or (b"licen" in lowered and _MENTION.search(lowered) is not None)


@dataclass(frozen=True)
class License:
    spdx: str | None  # None: a licence statement we cannot name
    form: str  # one of FORMS
    value: str  # the URL or text as the page states it


def _cc(code: str, version: str, port: str | None = None) -> str | None:
    code = code.lower().replace("_", "-").replace(" ", "-")
    code = "by-nc-nd" if code == "by-nd-nc" else code
    if code not in _CC_CODES or version not in _CC_VERSIONS:
        return None
    spdx = f"CC-{code.upper()}-{version}"
    if port:
        ported = f"{spdx}-{port.upper()}"
        return ported if ported in _SPDX_PORTS else f"LicenseRef-{ported}"
    return spdx


def to_spdx(value: str) -> str | None:
    """The SPDX id (or ``LicenseRef-`` id) of a licence URL or name, or ``None``."""
    value = value.strip()
    match = _CC_URL.search(value)
    if match:
        if match.group(4):
            return "CC0-1.0" if match.group(4).lower() == "zero" else f"LicenseRef-PDM-{match.group(5)}"
        return _cc(match.group(1), match.group(2), match.group(3))
    for pattern, template, default in _URLS:
        found = pattern.search(value)
        if found:
            return template.format(found.group(1) or default) if default else template
    if value.lower() in _SPDX_WORDS:
        return _SPDX_WORDS[value.lower()]
    short = _CC_SHORT.search(value)
    if short:
        return _cc(re.sub(r"[\s_]+", "-", short.group(1)), short.group(2))
    long = _CC_LONG.search(value)
    if long:
        parts = re.findall(r"non-?commercial|share-?alike|no-?deriv(?:ative)?s", long.group(1), re.I)
        code = "-".join(["by", *(_LONG_PARTS[p.lower()] for p in parts)])
        return _cc(code, long.group(2))
    if _CC0.search(value):
        return "CC0-1.0"
    return None


def _json_ld_licenses(node: object) -> list[str]:
    if isinstance(node, list):
        return [v for item in node for v in _json_ld_licenses(item)]
    if not isinstance(node, dict):
        return []
    found = []
    for key, value in node.items():
        if key.lower() in ("license", "schema:license", "http://schema.org/license"):
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict):
                found.extend(str(value[k]) for k in ("url", "@id", "name") if isinstance(value.get(k), str))
            elif isinstance(value, list):
                found.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, (dict, list)):
            found.extend(_json_ld_licenses(value))
    return found


def _page_statements(body: bytes) -> list[tuple[str, str]]:
    """``(form, value)`` of every licence statement in the HTML, most explicit forms first."""
    try:
        doc = lxml.html.document_fromstring(body, parser=lxml.html.HTMLParser(no_network=True))
    except (lxml.etree.ParserError, ValueError):
        return []
    rel, meta, json_ld, cc_links = [], [], [], []
    for element in doc.iter("a", "link", "area", "meta", "script"):
        tag = element.tag
        if tag == "meta":
            name = (element.get("name") or element.get("property") or "").strip().lower()
            if name in _META_NAMES and element.get("content"):
                meta.append(("meta", element.get("content").strip()))
        elif tag == "script":
            if (element.get("type") or "").strip().lower() == "application/ld+json" and element.text:
                try:
                    data = json.loads(element.text)
                except ValueError:
                    continue
                json_ld += [("json_ld", v) for v in _json_ld_licenses(data)]
        else:
            href = (element.get("href") or "").strip()
            rels = (element.get("rel") or "").lower().split()
            if href and ("license" in rels or "dcterms.license" in rels):
                rel.append(("rel_license", href))
                text = " ".join(element.itertext()).strip()
                if text and to_spdx(href) is None:  # a licence page of the site's own, named in the link
                    rel.append(("rel_license", text))
            elif href and _CC_URL.search(href):
                cc_links.append(("cc_link", href))
    rdf = [("cc_rdf", m.group(1).decode("ascii", "replace")) for m in _CC_RDF.finditer(body)]
    return rel + meta + json_ld + rdf + cc_links


def _link_header_licenses(headers: list[tuple[str, str]] | None) -> list[tuple[str, str]]:
    found = []
    for value in header_values(headers, "link"):
        for part in value.split(","):
            target = re.match(r"\s*<([^>]*)>(.*)", part)
            if target and re.search(r"""rel\s*=\s*"?[^";]*\blicense\b""", target.group(2), re.I):
                found.append(("link_header", target.group(1).strip()))
    return found


def find_license(headers: list[tuple[str, str]] | None, body: bytes | None,
                 plain_cc_links: bool = True) -> License | None:
    """The page's licence: the first statement that names one, else the first statement."""
    statements = _link_header_licenses(headers)
    if body and _mentions_license(body):
        statements += [s for s in _page_statements(body) if plain_cc_links or s[0] != "cc_link"]
    if not statements:
        return None
    for form, value in statements:
        spdx = to_spdx(value)
        if spdx is not None:
            return License(spdx, form, value[:500])
    form, value = statements[0]
    return License(None, form, value[:500])
