"""``CrawlConfig``: every setting of a crawl, frozen, with YAML as its serialized form.

Defaults are for crawling the public web politely: one request per second and two in flight
per host (Heritrix's and Nutch's defaults are of this order), robots.txt obeyed, private
addresses refused. Tests and benchmarks on loopback raise the rates and allow 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from transforms.consent.signals import AI_AGENT_TOKENS
from transforms.crawl.url_norm import HOST_SCOPE, MAX_URL_LENGTH, POLITENESS_SCOPES

TEXT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/avif")


@dataclass(frozen=True)
class CrawlConfig:
    # Sent with every request; robots.txt groups match its product token (before the "/").
    user_agent: str = "genai-dataprep/0.1 (+https://github.com/genai-dataprep/genai-dataprep)"

    # Politeness, per host (``politeness_scope`` "host") or per host:port ("authority").
    per_host_rate: float = 1.0  # requests per second; Crawl-delay may only lower it
    per_host_concurrency: int = 2
    politeness_scope: str = HOST_SCOPE
    # A Crawl-delay above this is not waited out: the host's URLs end crawl_delay_too_long.
    max_crawl_delay_s: float = 30.0
    # Opt-outs honoured from X-Robots-Tag and <meta name=robots>; "none" means "noindex".
    opt_out_directives: tuple[str, ...] = ("noindex", "none", "noai", "noimageai")
    # robots.txt groups honoured besides our own token's: a site that disallows the AI-training
    # crawlers has said no to AI training (docs/consent.md). Empty: our token's group only.
    robots_agent_tokens: tuple[str, ...] = AI_AGENT_TOKENS
    # TDMRep (the tdm-reservation header and /.well-known/tdmrep.json, fetched once per origin)
    # and IETF AI preferences (the Content-Usage header and robots.txt rule): on by default.
    honour_tdmrep: bool = True
    honour_content_usage: bool = True

    # Safety.
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0  # between two reads of the socket
    total_timeout_s: float = 60.0  # one request, from connect to the last body byte
    # The text reader's default record limit (ReadConfig.max_record_bytes), so no page fetched
    # is too big to read back.
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    content_types: tuple[str, ...] = TEXT_CONTENT_TYPES  # media types; "image/*" style allowed
    allow_private_addresses: bool = False
    allowed_networks: tuple[str, ...] = ()  # CIDRs exempt from the SSRF block
    max_url_length: int = MAX_URL_LENGTH

    # Retries of 429, 5xx, timeouts and connection errors within a run.
    max_retries: int = 2
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    # A Retry-After longer than this is not waited for: the URL ends http_429 / http_503,
    # retryable by a later ``--retry-failed`` run.
    max_retry_after_s: float = 120.0

    # Seed crawls: follow links up to ``depth`` (0: fetch the URL list only).
    depth: int = 0
    page_budget: int = 0  # URLs admitted for fetching over the whole run; 0: no limit
    allowed_hosts: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()

    # Throughput, per worker: host loops run concurrently in one asyncio event loop.
    max_hosts_in_flight: int = 64
    max_connections: int = 256
    # Compressed bytes per WARC file (Common Crawl's are ~1 GB); a worker holds one shard while
    # writing it.
    warc_shard_bytes: int = 256 * 1024 * 1024
    fetch_log_rows_per_shard: int = 1_000_000  # rows are small: no page text in the log
    url_field: str = "url"  # CSV column, JSONL key or Parquet column of URL lists

    def __post_init__(self) -> None:
        positive = {
            "per_host_rate": self.per_host_rate,
            "per_host_concurrency": self.per_host_concurrency,
            "connect_timeout_s": self.connect_timeout_s,
            "read_timeout_s": self.read_timeout_s,
            "total_timeout_s": self.total_timeout_s,
            "max_body_bytes": self.max_body_bytes,
            "max_hosts_in_flight": self.max_hosts_in_flight,
            "max_connections": self.max_connections,
            "warc_shard_bytes": self.warc_shard_bytes,
            "fetch_log_rows_per_shard": self.fetch_log_rows_per_shard,
            "max_url_length": self.max_url_length,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        non_negative = {
            "max_redirects": self.max_redirects,
            "max_retries": self.max_retries,
            "backoff_base_s": self.backoff_base_s,
            "backoff_max_s": self.backoff_max_s,
            "max_retry_after_s": self.max_retry_after_s,
            "max_crawl_delay_s": self.max_crawl_delay_s,
            "depth": self.depth,
            "page_budget": self.page_budget,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.politeness_scope not in POLITENESS_SCOPES:
            raise ValueError(f"politeness_scope must be one of {POLITENESS_SCOPES}, got {self.politeness_scope!r}")
        if not self.user_agent.strip():
            raise ValueError("user_agent must not be empty")
        if not self.content_types:
            raise ValueError("content_types must name at least one media type")
        for network in self.allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"allowed_networks: {network!r} is not a CIDR network") from exc
        if not self.url_field:
            raise ValueError("url_field must be a non-empty name")
        # YAML gives lists; keep the config hashable and comparable.
        for name in ("opt_out_directives", "robots_agent_tokens", "content_types", "allowed_networks", "allowed_hosts", "allowed_domains"):
            value = tuple(str(v).strip().lower() for v in getattr(self, name))
            object.__setattr__(self, name, value)

    def allows_content_type(self, media_type: str) -> bool:
        for allowed in self.content_types:
            if allowed == media_type or (allowed.endswith("/*") and media_type.startswith(allowed[:-1])):
                return True
        return False
