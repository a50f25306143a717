"""Where downloads may connect: public addresses, the operator's own origins, listed hosts.

Result URLs arrive inside API answers (and a hostile or compromised API, or a redirect from
its CDN, can point anywhere), so every connection a download opens is checked after DNS
resolution: loopback, private, link-local (cloud metadata), shared, multicast and reserved
addresses are refused unless the host is one the operator configured (the API's base_url,
Telegram's and Discord's URLs, the built-in simulator) or listed in
``media.allow_private_hosts``. The check lives in the connection itself (an httpcore network
backend): the address that was checked is the address connected to, so a DNS answer that
changes between the check and the connect (rebinding) cannot slip through, and every
redirect hop opens its connection through the same check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

log = logging.getLogger("bot.egress")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6-only networks reach IPv4 through it


class Refused(Exception):
    """A connection the rule does not allow; the message names the host and the address."""


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: what any stranger on the internet could also reach."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, host normalised as connections see it; else None."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.host.lower().rstrip("."), port


def parse_host_rule(entry: str) -> str | IPNetwork:
    """One ``allow_private_hosts`` entry: an address or network (CIDR), else a host name."""
    text = entry.strip().lower().rstrip(".")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    if not text or any(c in text for c in "/:@ ") or text.startswith("-"):
        raise ValueError(f"not a host name, address or network: {entry!r}")
    return text


class Egress:
    """The rule: which (host, port) a download may open a connection to."""

    def __init__(self, origins: Iterable[str] = (), private_hosts: Iterable[str] = ()) -> None:
        self._origins = {e for e in (endpoint(url) for url in origins) if e is not None}
        rules = [parse_host_rule(entry) for entry in private_hosts]
        self._names = {rule for rule in rules if isinstance(rule, str)}
        self._networks = [rule for rule in rules if not isinstance(rule, str)]

    def trust(self, url: str) -> None:
        """Add an origin the operator runs (the built-in simulator once it has its port)."""
        found = endpoint(url)
        if found is not None:
            self._origins.add(found)

    async def address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; raises Refused when the rule says no."""
        host = host.lower().rstrip(".")
        if (host, port) in self._origins:
            return host  # the operator's own: connect exactly as configured
        addresses = await _resolve(host, port)
        if not addresses:
            raise Refused(f"{host} has no address")
        for ip in addresses:  # every answer: a mixed answer must not win by ordering
            if not await self._allows(host, ip, port):
                raise Refused(f"{host} resolves to {ip}, a private address")
        return str(addresses[0])

    async def _allows(self, host: str, ip: IPAddress, port: int) -> bool:
        if is_public(ip) or host in self._names or any(ip in net for net in self._networks):
            return True
        # The same socket as a configured origin under another name (localhost vs 127.0.0.1:
        # relays put their own name into the image URLs they serve).
        for origin_host, origin_port in self._origins:
            if origin_port == port and ip in await _resolve(origin_host, port):
                return True
        return False


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone
        if ip not in found:
            found.append(ip)
    return found


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the rule in front of every TCP connect."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # TLS still verifies the certificate against the URL's host name: httpcore passes it
        # to start_tls separately; only the TCP connect uses the checked address.
        address = await self._egress.address(host, port)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("unix sockets are not downloads")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def checked_client(egress: Egress, *, timeout_s: float) -> httpx.AsyncClient:
    """An httpx client whose every connection passes ``egress``; no redirects, no env proxy
    (a proxy would resolve names itself, after our check)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public way to hand httpcore a network backend: its pool is rebuilt with
    # one (tests/test_downloads.py fails loudly if a new httpx changes this).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_CheckedBackend(egress),
    )
    return httpx.AsyncClient(
        transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
    )
