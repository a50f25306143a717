"""The web playground: a local chat page over the same Service (``mjbot demo``).

A third adapter beside Telegram and Discord: the page talks to ``server.py`` (HTTP and a
WebSocket), the service answers through ``WebPort``. The same static page carries the mask
editor that Telegram opens as a Mini App (:class:`MiniAppServer`). The composition root
(``bot.app``) builds both: the demo around a :class:`WebAdapter`, and the Mini App with the
Telegram adapter's initData check.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.serving import UPLOAD_READ_TIMEOUT_S, serve
from bot.usecases import Service

from .access import Access
from .playground import InitDataCheck, Playground
from .port import PLATFORM, WebPort
from .server import build_app, build_mini_app

__all__ = ["PLATFORM", "InitDataCheck", "MiniAppServer", "WebAdapter", "WebPort"]

log = logging.getLogger("adapters.web")


class WebAdapter:
    """Owns the aiohttp server of the playground and its ChatPort."""

    platform = PLATFORM

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        check_init_data: InitDataCheck | None = None,
    ) -> None:
        self.host = host
        self.http_port = port
        self.port = WebPort()
        self.playground = Playground(
            self.port, check_init_data=check_init_data, access=Access(host=host)
        )
        self.url = ""  # the base URL, once listening; the links below carry a token
        self._runner: web.AppRunner | None = None

    def attach(self, service: Service) -> None:
        self.playground.service = service

    async def start(self) -> None:
        self._runner, bound = await serve(
            build_app(self.playground),
            self.host,
            self.http_port,
            read_timeout_s=UPLOAD_READ_TIMEOUT_S,
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{bound}"
        self.playground.access.port = bound
        log.info("web playground at %s", self.url)  # never the links: they carry the tokens

    @property
    def admin_link(self) -> str:
        """The operator's URL: the chat and the admin tab."""
        return self.playground.access.link(self.url, admin=True)

    @property
    def chat_link(self) -> str:
        """A URL to share: the chat only (the admin tab shows everyone's prompts)."""
        return self.playground.access.link(self.url, admin=False)

    async def stop(self) -> None:
        await self.playground.close()
        await self.port.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        """Nothing left: the port writes to the browsers' sockets, closed at stop."""


class MiniAppServer:
    """The mask editor alone, as Telegram's Mini App for ``mjbot run``.

    Put it behind public HTTPS and set ``telegram.webapp_url`` to ``https://<host>/mask``.
    Only answers carrying Telegram's signed initData are accepted: ``check_init_data`` (the
    Telegram adapter's, handed over by the composition root) says whom they name.
    """

    def __init__(self, listen: str, check_init_data: InitDataCheck) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.http_port = host.strip("[]"), int(port)
        self.playground = Playground(WebPort(), check_init_data=check_init_data, mini_app_only=True)
        self._runner: web.AppRunner | None = None

    def attach(self, service: Service) -> None:
        self.playground.service = service

    async def start(self) -> None:
        self._runner, _ = await serve(
            build_mini_app(self.playground),
            self.host,
            self.http_port,
            read_timeout_s=UPLOAD_READ_TIMEOUT_S,
        )
        log.info("mask editor Mini App on %s:%s", self.host, self.http_port)

    async def stop(self) -> None:
        await self.playground.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
