"""An origin's rules, checked before any page of it is fetched: robots.txt (RFC 9309: allow,
Crawl-delay, Content-Usage) and TDMRep's tdmrep.json, each fetched once per run and cached in the
run folder, so later rounds of a seed crawl and other workers reuse them."""

from __future__ import annotations

import asyncio

from transforms.consent.site_rules import TDMREP_PATH, TdmRep, robots_content_usage
from transforms.crawl import reasons
from transforms.crawl.fetch_outcome import FetchFailure, HostState, UrlProgress
from transforms.crawl.robots import RobotsRules, cache_robots, load_cached_robots
from transforms.crawl.ssrf import SsrfBlocked
from transforms.crawl.url_norm import InvalidUrl, host_port, origin, resolve_link

MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 §2.3.1.2
ROBOTS = "robots"  # the purpose of a request for an origin's rules: its body is read truncated


class OriginRules:
    """The robots.txt and tdmrep.json checks of ``Fetcher`` (which provides the configuration,
    the address policy, the robots cache and ``_get_with_retries``)."""

    async def _check_robots(self, url: str, state: HostState) -> None:
        try:
            self._policy.check_literal(host_port(url)[0])
        except SsrfBlocked as exc:
            raise FetchFailure(reasons.SSRF_BLOCKED, str(exc)) from exc
        key = origin(url)
        task = state.robots.get(key)
        if task is None:
            task = state.robots[key] = asyncio.ensure_future(self._fetch_robots(key, state))
        rules = await asyncio.shield(task)
        if rules.unavailable is not None:
            reason = reasons.SSRF_BLOCKED if rules.reason == reasons.SSRF_BLOCKED else reasons.ROBOTS_UNAVAILABLE
            raise FetchFailure(reason, rules.unavailable)
        interval = rules.interval_s(self._token)
        if interval > self._config.max_crawl_delay_s:
            raise FetchFailure(
                reasons.CRAWL_DELAY_TOO_LONG,
                f"{key} asks for {interval:g} s between requests > {self._config.max_crawl_delay_s:g}",
            )
        state.pacer.widen(interval)
        for token in (self._token, *self._config.robots_agent_tokens):
            if not rules.allows(url, token):
                raise FetchFailure(reasons.ROBOTS_DISALLOWED, f"{key}/robots.txt disallows it for {token}")
        if self._config.honour_content_usage:
            evidence = robots_content_usage(rules.text, url, (self._token, *self._config.robots_agent_tokens))
            if evidence is not None:
                raise FetchFailure(reasons.OPT_OUT_PREFIX + "content_usage", evidence)
        if self._config.honour_tdmrep:
            task = state.tdmrep.get(key)
            if task is None:
                task = state.tdmrep[key] = asyncio.ensure_future(self._fetch_tdmrep(key, state))
            evidence = (await asyncio.shield(task)).reservation(url)
            if evidence is not None:
                raise FetchFailure(reasons.OPT_OUT_PREFIX + "tdm_reservation", evidence)

    async def _fetch_tdmrep(self, key: str, state: HostState) -> TdmRep:
        """``key``'s tdmrep.json, once per run: cached beside robots.txt (under its own key)."""
        cache_key = key + TDMREP_PATH
        if self._robots_cache is not None:
            cached = await asyncio.to_thread(load_cached_robots, self._robots_cache, cache_key)
            if cached is not None:
                return TdmRep.parse(cached.text)
        url = key + TDMREP_PATH
        try:
            response = await self._get_with_retries(url, state, UrlProgress(url, [url]), ROBOTS)
        except FetchFailure:
            return TdmRep()  # unreachable: no reservation read (retried with the next run)
        found = 200 <= response.status < 300 and response.location is None
        text = response.body.decode("utf-8", errors="replace") if found else None
        if self._robots_cache is not None:
            rules = RobotsRules(text=text)
            await asyncio.to_thread(cache_robots, self._robots_cache, cache_key, rules)
        return TdmRep.parse(text)

    async def _fetch_robots(self, key: str, state: HostState) -> RobotsRules:
        """The rules of ``key``: from the run's robots cache when an earlier round (or another
        worker) fetched them, otherwise from the host, then cached for the rest of the run."""
        if self._robots_cache is None:
            return await self._fetch_robots_from_host(key, state)
        cached = await asyncio.to_thread(load_cached_robots, self._robots_cache, key)
        if cached is not None:
            return cached
        rules = await self._fetch_robots_from_host(key, state)
        await asyncio.to_thread(cache_robots, self._robots_cache, key, rules)
        return rules

    async def _fetch_robots_from_host(self, key: str, state: HostState) -> RobotsRules:
        url = f"{key}/robots.txt"
        progress = UrlProgress(url, [url])
        for _ in range(MAX_ROBOTS_REDIRECTS + 1):
            try:
                response = await self._get_with_retries(progress.url, state, progress, ROBOTS)
            except FetchFailure as failure:
                return RobotsRules.unreachable(failure.reason, f"{url}: {failure.reason}: {failure.detail}")
            if response.location is None:
                if 200 <= response.status < 300:
                    return RobotsRules.parse(response.body)
                # 4xx: "unavailable", crawl without restriction (RFC 9309 §2.3.1.3).
                return RobotsRules.allow_all()
            try:
                progress.url = resolve_link(progress.url, response.location, self._config.max_url_length)
            except InvalidUrl:
                return RobotsRules.allow_all()
        return RobotsRules.allow_all()
