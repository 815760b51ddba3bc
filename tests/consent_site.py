"""A loopback site that serves every consent and licence signal on real article pages, and a
WARC written from its responses as a crawler would have archived them.

``PAGES``: path -> (response headers, tags added to the head, tags added to the body, the reject
reason the text job must give, or None when the page is kept, and its licence). ``SITE_WIDE``:
pages reserved by robots.txt or tdmrep.json, which only the crawler can see.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from conftest import aeb_pages

CC_BY_SA = "https://creativecommons.org/licenses/by-sa/4.0/"

PAGES: dict[str, tuple[dict[str, str], str, str, str | None, str | None]] = {
    "/plain.html": ({}, "", "", None, None),
    "/xrt-noai.html": ({"X-Robots-Tag": "noai"}, "", "", "consent.x_robots_tag_noai", None),
    "/xrt-none.html": ({"X-Robots-Tag": "none"}, "", "", "consent.x_robots_tag_noindex", None),
    "/xrt-googlebot.html": ({"X-Robots-Tag": "googlebot: noindex"}, "", "", None, None),
    "/xrt-gptbot.html": ({"X-Robots-Tag": "GPTBot: noai"}, "", "", "consent.x_robots_tag_noai", None),
    "/xrt-noimageai.html": ({"X-Robots-Tag": "noimageai"}, "", "", None, None),
    "/meta-noai.html": ({}, '<meta name="robots" content="noai, noimageai">', "", "consent.meta_robots_noai", None),
    "/meta-noindex.html": ({}, '<meta name="robots" content="noindex">', "", "consent.meta_robots_noindex", None),
    "/meta-ccbot.html": ({}, '<meta name="CCBot" content="nofollow, noindex">', "", "consent.meta_robots_noindex", None),
    "/tdm-header.html": ({"tdm-reservation": "1", "tdm-policy": "https://example.org/policy.json"}, "", "",
                         "consent.tdm_reservation_header", None),
    "/tdm-header-0.html": ({"tdm-reservation": "0"}, "", "", None, None),
    "/tdm-meta.html": ({}, '<meta name="tdm-reservation" content="1">', "", "consent.tdm_reservation_meta", None),
    "/cu-train-ai.html": ({"Content-Usage": "train-ai=n"}, "", "", "consent.content_usage_header", None),
    "/cu-genai-allowed.html": ({"Content-Usage": "train-ai=n, train-genai=y"}, "", "", None, None),
    "/cu-search.html": ({"Content-Usage": "search=n"}, "", "", None, None),
    "/lic-rel.html": ({}, "", f'<p><a rel="license" href="{CC_BY_SA}">CC BY-SA 4.0</a></p>', None, "CC-BY-SA-4.0"),
    "/lic-meta.html": ({}, '<meta name="license" content="CC BY 4.0">', "", None, "CC-BY-4.0"),
    "/lic-dcterms.html": ({}, '<meta name="dcterms.license" content="https://creativecommons.org/licenses/by-nc/3.0/de/">',
                          "", None, "CC-BY-NC-3.0-DE"),
    "/lic-jsonld.html": ({}, '<script type="application/ld+json">{"@context": "https://schema.org", "@type": '
                         '"Article", "license": "https://creativecommons.org/publicdomain/zero/1.0/"}</script>',
                         "", None, "CC0-1.0"),
    "/lic-header.html": ({"Link": '<https://creativecommons.org/licenses/by-nc/4.0/>; rel="license"'}, "", "",
                         None, "CC-BY-NC-4.0"),
}
# Site-wide rules a crawler reads once per origin (a WARC of the pages does not hold them).
ROBOTS_TXT = (b"User-agent: *\nAllow: /\nContent-Usage: /cu-robots/ train-ai=n\n\n"
              b"User-agent: GPTBot\nDisallow: /gpt-blocked/\n")
TDMREP_JSON = b'[{"location": "/tdmrep/*", "tdm-reservation": 1, "tdm-policy": "https://example.org/p.json"}]'
SITE_WIDE = {"/gpt-blocked/page.html": "robots_disallowed", "/cu-robots/page.html": "opt_out_content_usage",
             "/tdmrep/page.html": "opt_out_tdm_reservation"}
# What the crawler says of each page of PAGES that it does not fetch (it reads no tdm-reservation
# meta tag and meta tags only for robots and its own token: the text job's consent stage does).
CRAWL_REASONS = {
    "/xrt-noai.html": "opt_out_noai", "/xrt-none.html": "opt_out_noindex", "/xrt-gptbot.html": "opt_out_noai",
    "/xrt-noimageai.html": "opt_out_noimageai", "/meta-noai.html": "opt_out_noai",
    "/meta-noindex.html": "opt_out_noindex", "/tdm-header.html": "opt_out_tdm_reservation",
    "/cu-train-ai.html": "opt_out_content_usage", **SITE_WIDE,
}
_HEAD = re.compile(rb"<head[^>]*>", re.IGNORECASE)
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def _with_tags(html: bytes, head: str, body: str) -> bytes:
    match = _HEAD.search(html)
    at = match.end() if match else 0
    html = html[:at] + head.encode() + html[at:]
    end = _BODY_END.search(html)
    at = end.start() if end else len(html)
    return html[:at] + body.encode() + html[at:]


def site_routes() -> dict[str, Callable]:
    """Each page of ``PAGES`` on a different real article, with its headers and tags."""
    articles = aeb_pages(len(PAGES) + len(SITE_WIDE))
    pages = {**PAGES, **{path: ({}, "", "", None, None) for path in SITE_WIDE}}
    routes = {
        "/robots.txt": lambda h: h.send_body(200, ROBOTS_TXT, "text/plain"),
        "/.well-known/tdmrep.json": lambda h: h.send_body(200, TDMREP_JSON, "application/json"),
    }
    for (path, (headers, head, body, _, _)), (_, html, _) in zip(pages.items(), articles, strict=True):
        page = _with_tags(html, head, body)
        routes[path] = lambda h, page=page, headers=headers: h.send_body(200, page, "text/html; charset=utf-8", headers)
    return routes


def warc_of_responses(site_url: str, path: Path) -> Path:
    """Fetch every page of the site and archive each response (status, headers, body) in a WARC."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for page in PAGES:
            with urllib.request.urlopen(site_url + page) as response:
                body = response.read()
                headers = StatusAndHeaders(f"{response.status} {response.reason}", response.getheaders(),
                                           protocol="HTTP/1.1")
            record = writer.create_warc_record(site_url + page, "response", payload=BytesIO(body),
                                               http_headers=headers)
            writer.write_record(record)
    return path
