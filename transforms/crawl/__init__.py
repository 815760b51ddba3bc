"""The crawler's building blocks, each with a pure core testable without Beam.

``url_norm`` (normalise, scope), ``ssrf`` (address policy, checked DNS), ``robots`` (robots.txt
and opt-out directives), ``html_scan`` (meta robots, links), ``politeness`` (per-host pacing,
backoff), ``fetcher`` (the async per-host fetch loop), ``fetch_hosts`` (its Beam wrapper),
``warc_writer`` (gzipped WARC shards), ``fetch_log`` (one row per URL), ``url_inputs`` (URL
lists), ``frontier`` (dedup, budget, next depth), ``crawl_facts`` (per-round counts),
``config`` (``CrawlConfig``) and ``reasons`` (the stable outcome names).
"""
