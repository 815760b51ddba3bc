"""URL normalisation before dedup and fetching, and the scope rules of a seed crawl.

Normalised: scheme and host lower-cased, host IDNA-encoded (UTS 46) without a trailing dot,
IPv4 hosts in canonical dotted form (``0x7f.1`` and ``2130706433`` are 127.0.0.1 to a socket,
so they must be to the SSRF check as well), IPv6 hosts compressed, default port dropped,
credentials dropped (never sent), dot segments removed (RFC 3986 §5.2.4), percent-escapes
upper-cased and unreserved ones decoded, unsafe characters escaped, an empty path made ``/``,
the fragment dropped. The query keeps its order: reordering parameters can change a page.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import idna

from transforms.crawl import reasons

SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048

_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
# WHATWG URL parsing removes these anywhere in the input; browsers follow such links.
_STRIPPED = re.compile(r"[\t\n\r]")
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")


class InvalidUrl(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _normalise_escapes(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _ESCAPE.sub(fix, text)


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")[1:]
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/" + "/".join(output)
    if output and segments[-1] in (".", ".."):
        result += "/"
    return result


def _normalise_host(host: str) -> str:
    host = host.rstrip(".")
    if not host:
        raise InvalidUrl(reasons.INVALID_URL, "empty host")
    if ":" in host:
        try:
            return f"[{ipaddress.IPv6Address(host.split('%', 1)[0]).compressed}]"
        except ValueError as exc:
            raise InvalidUrl(reasons.INVALID_URL, f"bad IPv6 host {host!r}") from exc
    if _LEGACY_IPV4.match(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError as exc:
            raise InvalidUrl(reasons.INVALID_URL, f"bad IPv4 host {host!r}") from exc
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:
            # Hosts that UTS 46 refuses (underscores) are common and resolve.
            return host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise InvalidUrl(reasons.INVALID_URL, f"host {host!r} is not a valid domain name") from exc


def normalize_url(url: str, max_length: int = MAX_URL_LENGTH) -> str:
    """The normalised form of an absolute http(s) URL; raises ``InvalidUrl`` with a reason."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidUrl(reasons.INVALID_URL, f"not a URL: {url!r}")
    url = _STRIPPED.sub("", url.strip())
    if len(url) > max_length:
        raise InvalidUrl(reasons.URL_TOO_LONG, f"{len(url)} characters > {max_length}")
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:
        raise InvalidUrl(reasons.INVALID_URL, str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidUrl(reasons.UNSUPPORTED_SCHEME, f"scheme {scheme!r}" if scheme else "relative URL")
    if not hostname:
        raise InvalidUrl(reasons.INVALID_URL, "no host")
    host = _normalise_host(hostname)
    netloc = host if port in (None, SCHEMES[scheme]) else f"{host}:{port}"
    path = quote(_normalise_escapes(parts.path), safe=_PATH_SAFE) or "/"
    path = _remove_dot_segments(path) if path.startswith("/") else "/" + path
    query = quote(_normalise_escapes(parts.query), safe=_QUERY_SAFE)
    normalised = urlunsplit((scheme, netloc, path, query, ""))
    if len(normalised) > max_length:
        raise InvalidUrl(reasons.URL_TOO_LONG, f"{len(normalised)} characters > {max_length}")
    return normalised


def resolve_link(base_url: str, href: str, max_length: int = MAX_URL_LENGTH) -> str:
    """``href`` as found on ``base_url`` (or in a Location header), absolute and normalised."""
    return normalize_url(urljoin(base_url, href.strip()), max_length)


def host_port(url: str) -> tuple[str, int]:
    """Host (brackets stripped) and port, the default port filled in, of a normalised URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or SCHEMES[parts.scheme]


def origin(url: str) -> str:
    """``scheme://host[:port]``: the scope of one robots.txt (RFC 9309 §2.3)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


HOST_SCOPE = "host"
AUTHORITY_SCOPE = "authority"
POLITENESS_SCOPES = (HOST_SCOPE, AUTHORITY_SCOPE)


def politeness_key(url: str, scope: str = HOST_SCOPE) -> str:
    """What one fetch loop paces: the host name, or host and port (``authority``)."""
    host, port = host_port(url)
    return host if scope == HOST_SCOPE else f"{host}:{port}"


@dataclass(frozen=True)
class Scope:
    """Which URLs a crawl may fetch. Hosts match exactly (``host`` or ``host:port``), domains
    match themselves and their subdomains. Empty hosts and domains: URL lists are all in scope,
    and links are followed on the host of the page they were found on."""

    hosts: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    @property
    def restricted(self) -> bool:
        return bool(self.hosts or self.domains)

    def allows(self, url: str) -> bool:
        if not self.restricted:
            return True
        host, port = host_port(url)
        if host in self.hosts or f"{host}:{port}" in self.hosts:
            return True
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def follows(self, link: str, page_url: str) -> bool:
        """Whether a seed crawl follows ``link`` found on ``page_url``."""
        if self.restricted:
            return self.allows(link)
        return host_port(link)[0] == host_port(page_url)[0]
