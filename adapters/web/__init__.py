"""The web playground: a local chat page over the same Service (``mjbot demo``).

A third adapter beside Telegram and Discord: the page talks to ``server.py`` (HTTP and a
WebSocket), the service answers through ``WebPort``. The same static page carries the mask
editor that Telegram opens as a Mini App.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from bot.config import Config
from bot.service import Service
from bot.serving import UPLOAD_READ_TIMEOUT_S, serve

from .access import Access
from .port import PLATFORM, WebPort
from .server import InitDataCheck, Playground, build_app, build_mini_app, telegram_init_data

__all__ = ["PLATFORM", "MiniAppServer", "WebAdapter", "WebPort", "demo_config", "run_demo"]

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


class MiniAppServer:
    """The mask editor alone, as Telegram's Mini App for ``mjbot run``.

    Put it behind public HTTPS and set ``telegram.webapp_url`` to ``https://<host>/mask``.
    Only answers carrying Telegram's signed initData are accepted.
    """

    def __init__(self, listen: str, bot_token: str) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.http_port = host.strip("[]"), int(port)
        self.playground = Playground(
            WebPort(), check_init_data=telegram_init_data(bot_token), mini_app_only=True
        )
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


def demo_config(data_dir: str | Path) -> Config:
    """The no-account demo: the built-in simulator, fast, a throwaway database."""
    base = Config()
    return replace(
        base,
        midjourney=replace(base.midjourney, base_url="simulator"),
        simulator=replace(base.simulator, time_scale=0.3),
        storage=replace(base.storage, path=str(Path(data_dir) / "demo.db")),
        tracking=replace(
            base.tracking,
            poll_interval_s=1.0,
            edit_interval_s=1.0,
            send_interval_s=0.3,  # a browser has no flood limits; order is all that matters
            listen="127.0.0.1:0",  # the hook receiver must not collide with a running bot
        ),
    )


async def run_demo(host: str, port: int, config: Config | None = None) -> None:
    """Serve the playground (over the simulator unless ``config`` names an API) until cancelled."""
    from bot.app import App

    data_dir = None
    if config is None:
        data_dir = tempfile.mkdtemp(prefix="mjbot-demo-")
        config = demo_config(data_dir)
    adapter = WebAdapter(host, port)
    app = App(config, adapters=[adapter])
    adapter.playground.app = app
    try:
        await app.start()
        print(
            f"mjbot demo running at {adapter.admin_link}\n"
            f"  (that link opens the admin tab too; to share the chat alone: {adapter.chat_link})",
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await app.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
