"""SSRF defence: never connect to private, loopback, link-local, reserved or metadata addresses.

A URL on the web can name any host, and a host name can resolve to any address (an attacker's
DNS can answer ``127.0.0.1``), so the check runs on addresses, after DNS: every address a name
resolves to must pass, or none is used. ``CheckedResolver`` plugs the check into aiohttp's
connector, so the socket connects to exactly the addresses that were checked (no second lookup
that DNS rebinding could answer differently); IP-literal hosts never reach a resolver, so the
fetcher checks them with ``check_literal``. Redirect targets pass through the same two paths.

Blocked unless ``allowed_networks`` names the address: anything not globally routable
(``ipaddress``'s ``is_global``: private, loopback, link-local, shared, reserved, documentation
ranges), multicast, unspecified, and the cloud metadata endpoints. ``allow_private`` lets
non-global unicast addresses through (tests on loopback, intranet crawls), but still never
metadata, multicast or unspecified addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# AWS/GCP/Azure/OpenStack IMDS, AWS IMDS over IPv6, AWS ECS task metadata, Alibaba Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)


class SsrfBlocked(OSError):
    """A host resolved (or is) an address the policy refuses. An ``OSError`` so that aiohttp
    reports it from a resolver as a connection error carrying this exception."""


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address embeds (``::ffff:a.b.c.d``, 6to4 ``2002::/16``)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()

    @cached_property
    def _networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)

    def blocked_reason(self, address: str | IPAddress) -> str | None:
        """Why ``address`` is refused (``loopback``, ``private``, ``metadata``...), or ``None``."""
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        for candidate in {ip, _unwrap(ip)}:
            if any(candidate.version == net.version and candidate in net for net in self._networks):
                return None
        ip = _unwrap(ip)
        if ip in METADATA_ADDRESSES:
            return "metadata"
        if ip.is_multicast:
            return "multicast"
        if ip.is_unspecified:
            return "unspecified"
        if self.allow_private or ip.is_global:
            return None
        for kind in ("loopback", "link_local", "reserved", "private"):
            if getattr(ip, f"is_{kind}"):
                return kind
        return "not_global"

    def check(self, host: str, addresses: list[str]) -> None:
        """Raise ``SsrfBlocked`` unless every address of ``host`` passes."""
        if not addresses:
            raise SsrfBlocked(f"{host} resolved to no address")
        for address in addresses:
            why = self.blocked_reason(address)
            if why is not None:
                kind = why.replace("_", "-")
                if address == host:
                    raise SsrfBlocked(f"{host} is a {kind} address")
                raise SsrfBlocked(f"{host} resolves to {address}, a {kind} address")

    def check_literal(self, host: str) -> bool:
        """For an IP-literal host (brackets optional): raise if refused. ``False`` for names."""
        try:
            ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        self.check(host, [host.strip("[]")])
        return True


class CheckedResolver(AbstractResolver):
    """aiohttp resolver that resolves with ``getaddrinfo`` and refuses per ``AddressPolicy``."""

    # Hosts whose first checked address is remembered (for WARC-IP-Address); then forgotten.
    MAX_REMEMBERED = 100_000

    def __init__(self, policy: AddressPolicy):
        self._policy = policy
        self._resolver = ThreadedResolver()
        self.addresses: dict[str, str] = {}

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        results = await self._resolver.resolve(host, port, family)
        self._policy.check(host, [r["host"] for r in results])
        if len(self.addresses) >= self.MAX_REMEMBERED:
            self.addresses.clear()
        self.addresses[host] = results[0]["host"]
        return results

    async def close(self) -> None:
        await self._resolver.close()
