"""Why a URL was not fetched: stable snake_case names, part of the fetch log's contract.

Every URL of a crawl ends in the fetch log either ``fetched`` or ``rejected`` with one of these
reasons (or ``http_<status>`` for an HTTP error status). ``RETRYABLE`` are the transient ones
that ``--retry-failed`` fetches again; renaming a reason is a schema change.
"""

from __future__ import annotations

FETCHED = "fetched"
REJECTED = "rejected"

# Before any request.
INVALID_URL = "invalid_url"
UNSUPPORTED_SCHEME = "unsupported_scheme"
URL_TOO_LONG = "url_too_long"
OUT_OF_SCOPE = "out_of_scope"
PAGE_BUDGET = "page_budget"
# robots.txt (RFC 9309).
ROBOTS_DISALLOWED = "robots_disallowed"
ROBOTS_UNAVAILABLE = "robots_unavailable"
CRAWL_DELAY_TOO_LONG = "crawl_delay_too_long"
# Safety.
SSRF_BLOCKED = "ssrf_blocked"
TOO_LARGE = "too_large"
BAD_CONTENT_TYPE = "bad_content_type"
REDIRECT_LOOP = "redirect_loop"
TOO_MANY_REDIRECTS = "too_many_redirects"
REDIRECT_INVALID = "redirect_invalid"
REDIRECT_OUT_OF_SCOPE = "redirect_out_of_scope"
# Network.
DNS_ERROR = "dns_error"
CONNECTION_ERROR = "connection_error"
TIMEOUT = "timeout"
TLS_ERROR = "tls_error"
BAD_RESPONSE = "bad_response"
FETCH_ERROR = "fetch_error"
# Opt-outs: ``opt_out_<directive>`` from X-Robots-Tag or <meta name=robots> (``none`` counts as
# ``noindex``), ``opt_out_tdm_reservation`` (TDMRep header or tdmrep.json) and
# ``opt_out_content_usage`` (Content-Usage header or robots.txt rule).
OPT_OUT_PREFIX = "opt_out_"

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_RETRYABLE = frozenset({DNS_ERROR, CONNECTION_ERROR, TIMEOUT, BAD_RESPONSE, FETCH_ERROR, ROBOTS_UNAVAILABLE})


def http_reason(status: int) -> str:
    return f"http_{status}"


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def is_retryable(reason: str | None) -> bool:
    """Whether a later run may succeed where this one failed (``--retry-failed``)."""
    if reason is None:
        return False
    if reason.startswith("http_"):
        code = reason[5:]
        return code.isdigit() and is_retryable_status(int(code))
    return reason in _RETRYABLE
