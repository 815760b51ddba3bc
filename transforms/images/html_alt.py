"""Image-alt pairs from crawled HTML: every ``<img src alt>`` of every page in a WARC.

``src`` is resolved against the page URL (and its ``<base href>``) and normalised as the
crawler does; the page URL is kept on the record. Images without ``alt``, or whose ``src`` is
not an http(s) URL (``data:`` URIs, broken links), give no pair: they carry no caption to learn
from. Pages are read by the text job's WARC reader (``transforms.readers.warc``), so damaged
files are quarantined the same way. ``source_key`` is ``<WARC-Record-ID>#img<N>``. Each pair
carries its page's consent signals and licence (``consent_signals``, ``license``...), scored with
the default agent tokens: the images job's ``consent`` and ``license`` stages decide on them.
"""

from __future__ import annotations

from collections.abc import Iterator

import lxml.etree
import lxml.html

from transforms.crawl.html_scan import HTML_TYPES
from transforms.crawl.url_norm import MAX_URL_LENGTH, InvalidUrl, resolve_link
from transforms.filters.consent import ConsentFilter
from transforms.filters.license import LicenseFilter
from transforms.images.record import new_image_record
from transforms.readers.base import FILE_KEY, ReadResult
from transforms.readers.read_config import ReadConfig
from transforms.readers.warc import read_warc


def img_alt_pairs(body: bytes, page_url: str) -> list[tuple[str, str]]:
    """(absolute image URL, alt text) of every ``<img>`` with a non-empty alt, in page order."""
    if not body.strip():
        return []
    try:
        doc = lxml.html.document_fromstring(body, parser=lxml.html.HTMLParser(no_network=True))
    except (lxml.etree.ParserError, ValueError):
        return []
    base = page_url
    for tag in doc.iter("base"):
        if tag.get("href"):
            try:
                base = resolve_link(page_url, tag.get("href"), MAX_URL_LENGTH)
            except (InvalidUrl, ValueError):
                pass
            break
    pairs = []
    for img in doc.iter("img"):
        src, alt = img.get("src"), " ".join((img.get("alt") or "").split())
        if not src or not alt:
            continue
        try:
            url = resolve_link(base, src.strip(), MAX_URL_LENGTH)
        except (InvalidUrl, ValueError):
            continue
        pairs.append((url, alt))
    return pairs


def read_warc_alt_pairs(path: str) -> Iterator[ReadResult]:
    for page, drop in read_warc(path, ReadConfig()):
        if drop is not None:
            # A damaged file stands for pairs that could not be read; other WARC records
            # (requests, warcinfo, metadata) hold no pairs and are not inputs of this job.
            if page["source_key"] == FILE_KEY:
                yield new_image_record(path, FILE_KEY, url=None, caption=None), drop
            continue
        media = (page.get("content_type") or "").split(";", 1)[0].strip().lower()
        if media not in HTML_TYPES or not page.get("url") or not page.get("body"):
            continue
        pairs = img_alt_pairs(page["body"], page["url"])
        # The page's reservations and licence hold for every pair on it: scored once per page
        # here (the body leaves with the page), decided by the job's consent and license stages.
        page_signals = {**ConsentFilter().score(page), **LicenseFilter().score(page)} if pairs else {}
        for n, (url, alt) in enumerate(pairs):
            record = new_image_record(path, f"{page['source_key']}#img{n}", url=url, caption=alt, page_url=page["url"])
            yield {**record, **page_signals}, None
