"""Who may use the playground: two tokens made at start, and the Origin and Host checks.

As Jupyter does: ``mjbot demo`` prints a URL carrying a token; the first visit trades it for an
HttpOnly, SameSite=Strict cookie and redirects to the clean URL. Every other route wants that
cookie (or the token as ``Authorization: Bearer``, for scripts). There are two tokens: the
*admin* token (the URL the CLI prints first, for the operator) opens the chat and the admin
tab, whose data is every user's prompts; the *chat* token opens the chat alone, for sharing.

A browser attaches the cookie to requests that other pages on the same site make (another
port on 127.0.0.1 is the same site), and a DNS-rebinding page reaches us under a foreign
Host; so the socket and every POST also need an Origin that is this server, and every request
a Host that names it: a loopback name, or the ``--host`` it was started with.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from enum import IntEnum

from aiohttp import web
from yarl import URL

__all__ = ["COOKIE", "Access", "Level", "unauthorised"]

COOKIE = "mjbot_token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"", "0.0.0.0", "::"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Level(IntEnum):
    NONE = 0
    CHAT = 1
    ADMIN = 2


@dataclass
class Access:
    """The tokens of one playground run and the host names it answers to."""

    host: str = "127.0.0.1"  # what it was asked to listen on
    port: int = 0  # the bound port, set once listening
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    # --- tokens -------------------------------------------------------------------------------

    def level_of(self, presented: str) -> Level:
        if presented and hmac.compare_digest(presented, self.admin_token):
            return Level.ADMIN
        if presented and hmac.compare_digest(presented, self.token):
            return Level.CHAT
        return Level.NONE

    def level(self, request: web.Request) -> Level:
        """The best level any credential on the request proves (cookie or bearer header)."""
        auth = request.headers.get("Authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return max(self.level_of(bearer), self.level_of(request.cookies.get(COOKIE, "")))

    # --- where requests come from -------------------------------------------------------------

    def host_ok(self, netloc: str) -> bool:
        """``Host`` (or an origin's host:port) names this server: right name, right port."""
        try:
            url = URL(f"http://{netloc}")
            name, port = (url.host or "").lower().strip("[]"), url.port
        except ValueError:
            return False
        if port != self.port:
            return False
        if name in LOOPBACK or name == self.host.lower().strip("[]"):
            return True
        # Listening on every interface: the machine's addresses are not known here, but an IP
        # literal cannot be a DNS-rebinding name, so any IP is taken; names are not.
        return self.host in WILDCARD and _is_ip(name)

    def origin_ok(self, request: web.Request) -> bool:
        """No Origin (not a browser: curl, scripts) or exactly the origin of this request's Host."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        try:
            url = URL(origin)
        except ValueError:
            return False
        if url.scheme not in ("http", "https") or not url.host:
            return False  # "null" (sandboxed frames, file://) and anything odd
        return _netloc(f"{_bracket(url.host)}:{url.port}") == _netloc(request.host)

    def refusal(self, request: web.Request) -> web.HTTPForbidden | None:
        """Why this request may not reach the playground at all (Host, then Origin)."""
        if not self.host_ok(request.host):
            return web.HTTPForbidden(
                text=f"403: this playground answers only to {self.origin_hint()},"
                f" not to Host {request.host!r}.\n"
            )
        if (request.method not in SAFE_METHODS or _is_socket(request)) and not self.origin_ok(
            request
        ):
            return web.HTTPForbidden(
                text="403: cross-origin request refused; only pages served by this playground"
                f" ({self.origin_hint()}) may use it.\n"
            )
        return None

    def origin_hint(self) -> str:
        host = self.host if self.host not in WILDCARD else "127.0.0.1"
        return f"http://{_bracket(host)}:{self.port}"

    # --- the links the CLI prints -------------------------------------------------------------

    def link(self, base: str, *, admin: bool) -> str:
        return f"{base}/?token={self.admin_token if admin else self.token}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_socket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _netloc(host_header: str) -> str:
    """``Host`` with its port spelt out, lower-case, as an origin would carry it."""
    try:
        url = URL(f"http://{host_header}")
    except ValueError:
        return ""
    name = url.host or ""
    return f"{_bracket(name).lower()}:{url.port}"


def unauthorised(admin: bool = False) -> web.HTTPException:
    """401 without any token, 403 with the chat token where the admin token is needed."""
    if admin:
        return web.HTTPForbidden(
            text="403: the admin tab needs the admin token: open the first URL `mjbot demo`"
            " printed.\n"
        )
    return web.HTTPUnauthorized(
        text="401: this playground needs its access token: open the URL `mjbot demo` printed"
        " (it ends in ?token=...). Tokens change at every start.\n"
    )
