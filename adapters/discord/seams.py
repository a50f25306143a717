"""The one place that points discord.py at configurable URLs.

discord.py has no public base-URL option. Exactly two class attributes are the seams (see
platforms.md 4.3, verified with discord.py 2.7.1):

- ``discord.http.Route.BASE`` (default ``https://discord.com/api/v10``): every REST call, the
  interaction webhooks included;
- ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (default ``wss://gateway.discord.gg/``):
  the first gateway connection of a non-sharded client (later reconnects use the READY
  ``resume_gateway_url``).

Both are internal, so discord.py is pinned ``>=2.7,<2.8`` and a canary test fails loudly if either
disappears.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

_SEAMS = (
    (discord.http, "Route", "BASE"),
    (discord.gateway, "DiscordWebSocket", "DEFAULT_GATEWAY"),
)


def _check_seams() -> None:
    for module, cls_name, attr in _SEAMS:
        cls = getattr(module, cls_name, None)
        if cls is None or not hasattr(cls, attr):
            raise RuntimeError(
                f"discord.py {discord.__version__} has no {module.__name__}.{cls_name}.{attr}: "
                "the seam used to point it at a configurable Discord URL is gone "
                "(see adapters/discord/seams.py); pin discord.py to a version that has it"
            )


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Point every REST call at ``api_base_url`` (e.g. ``http://127.0.0.1:8080/api/v10``) and the
    gateway at ``gateway_url`` (e.g. ``ws://127.0.0.1:8080/gateway``).

    Patches ``discord.http.Route.BASE`` and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``
    (process-wide). Raises RuntimeError when a discord.py upgrade removed either seam.
    """
    _check_seams()
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
