"""Record identity and helpers shared by readers and stages.

A record is a plain dict conforming to the stage's pyarrow schema (``schemas/``): cheap to
pickle between Beam workers and to batch into Arrow.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

ID_SEPARATOR = "\x1f"


def stable_id(*parts: str) -> str:
    """A 32-hex-digit id from parts that identify a record in its input.

    Parts must not depend on where the input lives (local or ``s3://``), so readers pass the
    file's base name and a key inside the file (WARC-Record-ID, line number, row index).
    """
    joined = ID_SEPARATOR.join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


def host_of(url: str | None) -> str | None:
    """The lower-cased host name of ``url``, or ``None`` when it has none."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


_TLD_EXTRACT = None


def registered_domain(url: str | None) -> str | None:
    """The registered domain (``bbc.co.uk`` for ``news.bbc.co.uk``) from tldextract's bundled
    public-suffix snapshot: ``suffix_list_urls=()`` so it never reaches the network."""
    global _TLD_EXTRACT
    host = host_of(url)
    if host is None:
        return None
    if _TLD_EXTRACT is None:
        import tldextract

        _TLD_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    parts = _TLD_EXTRACT(host)
    return parts.top_domain_under_public_suffix or host
