"""Where downloads may connect: public addresses, the operator's own origins, listed hosts.

Result URLs arrive inside API answers (and a hostile or compromised API, or a redirect from
its CDN, can point anywhere), so every connection a download opens is checked after DNS
resolution: loopback, private, link-local (cloud metadata), shared, multicast and reserved
addresses are refused unless the host is one the operator configured (the API's base_url,
Telegram's and Discord's URLs, the built-in simulator) or listed in
``media.allow_private_hosts``.

The check lives where connections get their address: a host name is resolved by the checked
resolver of the downloads' aiohttp session (``CheckedSession``), which hands aiohttp only the
addresses it checked, so a DNS answer that changes between the check and the connect
(rebinding) cannot slip through. aiohttp connects to an address written in the URL without
asking any resolver: ``CheckedSession.get`` checks those itself before the request, with the
same test aiohttp uses to tell them apart. Every redirect hop is a new ``get``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

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
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.lower().rstrip("."), port


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

    def is_origin(self, host: str, port: int) -> bool:
        """One of the operator's own (host, port): connected to exactly as configured."""
        return (host.lower().rstrip("."), port) in self._origins

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host`` (not an origin), all allowed; raises Refused when the
        rule says no to any of them."""
        host = host.lower().rstrip(".")
        addresses = await _resolve(host, port)
        if not addresses:
            raise Refused(f"{host} has no address")
        for ip in addresses:  # every answer: a mixed answer must not win by ordering
            if not await self._allows(host, ip, port):
                raise Refused(f"{host} resolves to {ip}, a private address")
        return addresses

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


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver with the rule in it: a name is resolved and every address checked,
    and aiohttp gets exactly the addresses that were checked to connect to."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._plain = DefaultResolver()  # for the operator's own origins, as configured

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # ``family`` is the connector's: AF_UNSPEC (CheckedSession leaves the default), so
        # every checked address, IPv4 and IPv6, is offered
        if self._egress.is_origin(host, port):
            return await self._plain.resolve(host, port, family)
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in await self._egress.addresses(host, port)
        ]

    async def close(self) -> None:
        await self._plain.close()


def _is_literal(host: str) -> bool:
    """aiohttp's own test (``helpers.is_ip_address``) for a host it connects to without a
    resolver; kept the same so that nothing it skips the resolver for goes unchecked."""
    return ":" in host or host.replace(".", "").isdigit()


class CheckedSession:
    """An aiohttp session whose every connection passes ``egress``: no redirects followed,
    no proxy from the environment (a proxy would resolve names itself, after our check)."""

    def __init__(self, egress: Egress, *, timeout_s: float) -> None:
        self._egress = egress
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                resolver=_CheckedResolver(egress),
                limit=100,
                # certifi's roots, as the Telegram calls: a slim image may have no system store
                ssl=ssl.create_default_context(cafile=certifi.where()),
            ),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    @asynccontextmanager
    async def get(self, url: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET ``url`` (an http(s) URL: see ``endpoint``) without following a redirect;
        raises Refused when the rule says no, before anything is sent."""
        found = endpoint(url)
        if found is None:
            raise Refused(f"not an http(s) URL: {url[:80]!r}")
        host, port = found
        if _is_literal(host) and not self._egress.is_origin(host, port):
            await self._egress.addresses(host, port)  # an address: nothing to rebind
        async with self._session.get(url, allow_redirects=False) as response:
            yield response

    async def aclose(self) -> None:
        await self._session.close()
