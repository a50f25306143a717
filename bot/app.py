"""Composition root: builds every part from the config and owns start and stop.

The one core module that knows adapters exist; it imports the configured ones lazily so a
deployment without Discord never loads discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Protocol

from bot.config import Config
from bot.media import Downloader, MediaCache
from bot.mj.client import MjClient
from bot.outbox import Outbox
from bot.service import Service
from bot.store import Store
from bot.tracker import Tracker

log = logging.getLogger("bot.app")


class Adapter(Protocol):
    platform: str
    port: Any

    def attach(self, service: Service) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def configured_adapters(config: Config) -> list[Adapter]:
    adapters: list[Adapter] = []
    if config.telegram.enabled:
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(config.telegram))
    return adapters


class App:
    def __init__(self, config: Config, adapters: list[Adapter] | None = None) -> None:
        self.config = config
        self.adapters = configured_adapters(config) if adapters is None else adapters
        self.simulator: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        config = self.config
        base_url = config.midjourney.base_url
        if base_url == "simulator":
            from bot.sim import SimConfig, Simulator

            self.simulator = Simulator(
                SimConfig(
                    api_key=config.midjourney.api_key.reveal(),
                    time_scale=config.simulator.time_scale,
                )
            )
            base_url = await self.simulator.start()
            log.info("built-in simulator at %s", base_url)
        self.store = await Store.open(config.storage.path)
        self.client = MjClient(
            base_url,
            config.midjourney.api_key.reveal(),
            auth_header=config.midjourney.auth_header,
            mode=config.midjourney.mode,
            timeout_s=config.midjourney.timeout_s,
        )
        self.downloader = Downloader()
        self.outbox = Outbox(
            {a.platform: a.port for a in self.adapters},
            edit_interval_s=config.tracking.edit_interval_s,
            send_interval_s=config.tracking.send_interval_s,
        )
        self.service = Service(
            self.store,
            self.client,
            self.outbox,
            self.downloader,
            cache=MediaCache(Path(config.storage.path).parent / "media"),
            default_mode=config.midjourney.mode,
            webapp_url=config.telegram.webapp_url,
        )
        self.tracker = Tracker(
            self.store,
            self.client,
            self.service,
            poll_interval_s=config.tracking.poll_interval_s,
            timeout_fast_s=config.tracking.timeout_fast_s,
            timeout_relax_s=config.tracking.timeout_relax_s,
        )
        for adapter in self.adapters:
            adapter.attach(self.service)
            await adapter.start()
        self._tasks.append(asyncio.create_task(self.tracker.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping %s failed", adapter.platform)
        await self.service.close()
        await self.outbox.close()
        await self.client.aclose()
        await self.downloader.aclose()
        await self.store.close()
        if self.simulator is not None:
            await self.simulator.stop()
