"""Composition root: builds every part from the config and owns start and stop.

The one core module that knows adapters exist; it imports the configured ones lazily so a
deployment without Discord never loads discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from bot.config import Config
from bot.egress import Egress
from bot.hooks import HOOK_PATH, HookServer, hook_secret
from bot.media import Downloader, MediaCache
from bot.mj.client import MjClient
from bot.mj.probe import resolve_profile
from bot.mj.profiles import SIM_FLAVOURS
from bot.outbox import Outbox
from bot.policy import Policy
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
    if config.discord.enabled:
        from adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter(config.discord))
    return adapters


async def run_demo(host: str, port: int, config: Config | None) -> None:
    """``mjbot demo``: the web playground over the simulator (or ``config``'s API)."""
    from adapters.web import run_demo as serve_playground

    await serve_playground(host, port, config)


class App:
    def __init__(self, config: Config, adapters: list[Adapter] | None = None) -> None:
        self.config = config
        self.adapters = configured_adapters(config) if adapters is None else adapters
        self.simulator: Any = None
        # What start opened, closed in reverse order by stop (also after a failed start).
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Start every part; when one fails, what already started is stopped again (no
        open sockets, sessions or database left behind) and the error propagates."""
        try:
            await self._start()
        except BaseException:
            try:
                await self.stop()
            except Exception:
                log.exception("cleaning up after a failed start failed")
            raise

    async def _start(self) -> None:
        config = self.config
        stack = self._stack
        # First: a process refused the database (another one holds it) starts nothing else.
        self.store = await Store.open(config.storage.path)
        stack.push_async_callback(self.store.close)
        base_url = config.midjourney.base_url
        if base_url == "simulator":
            from mjsim import SimConfig, Simulator

            self.simulator = Simulator(
                SimConfig(
                    api_key=config.midjourney.api_key.reveal(),
                    time_scale=config.simulator.time_scale,
                    flavour=SIM_FLAVOURS[config.midjourney.provider],
                )
            )
            stack.push_async_callback(self.simulator.stop)
            base_url = await self.simulator.start()
            log.info("built-in simulator at %s", base_url)
        # The provider's profile; "auto" probes the API once, here (bot/mj/probe.py).
        profile, _ = await resolve_profile(
            config.midjourney.provider,
            base_url,
            config.midjourney.api_key.reveal(),
            config.midjourney.profile_overrides(),
            timeout_s=min(config.midjourney.timeout_s, 10.0),
        )
        log.info("Midjourney provider profile: %s", profile.name)
        # Result downloads reach public addresses, plus the origins configured here (the
        # simulator by its real URL) and the private hosts the operator listed (bot/egress.py).
        origins = (base_url, config.telegram.api_base_url, config.telegram.file_base_url)
        self.downloader = Downloader(
            Egress((*origins, config.discord.api_base_url), config.media.allow_private_hosts)
        )
        stack.push_async_callback(self.downloader.aclose)
        self.client = MjClient(
            base_url,
            config.midjourney.api_key.reveal(),
            profile=profile,
            mode=config.midjourney.mode,
            timeout_s=config.midjourney.timeout_s,
        )
        stack.push_async_callback(self.client.aclose)
        self.outbox = Outbox(
            {a.platform: a.port for a in self.adapters},
            edit_interval_s=config.tracking.edit_interval_s,
            send_interval_s=config.tracking.send_interval_s,
        )
        stack.push_async_callback(self.outbox.close)
        secret = await hook_secret(self.store)
        public = config.tracking.webhook_public_url.rstrip("/")
        self.service = Service(
            self.store,
            self.client,
            self.outbox,
            self.downloader,
            cache=MediaCache(Path(config.storage.path).parent / "media"),
            notify_hook=f"{public}{HOOK_PATH}{secret}" if public else "",
            default_mode=config.midjourney.mode,
            webapp_url=config.telegram.webapp_url,
            policy=Policy(self.store, config.access, config.quota),
        )
        stack.push_async_callback(self.service.close)
        self.hooks = HookServer(self.store, self.client, self.service, secret, self.status)
        self.tracker = Tracker(
            self.store,
            self.client,
            self.service,
            poll_interval_s=config.tracking.poll_interval_s,
            timeout_fast_s=config.tracking.timeout_fast_s,
            timeout_relax_s=config.tracking.timeout_relax_s,
            resend_after_s=config.tracking.resend_after_s,
            hooks_flowing=lambda: self.hooks.flowing,
        )
        stack.push_async_callback(self.hooks.stop)
        await self.hooks.start(config.tracking.listen)
        for adapter in self.adapters:
            adapter.attach(self.service)
            # Pushed before starting: an adapter that fails half way closes what it opened.
            stack.push_async_callback(self._stop_adapter, adapter)
            await adapter.start()
        tracking = asyncio.create_task(self.tracker.run())
        stack.push_async_callback(_cancel, tracking)

    async def stop(self) -> None:
        """Stop what started, newest first: the tracker, the adapters, the hook receiver,
        work in flight, the outbox, the HTTP clients, the store, the simulator. Safe to call
        after a failed or a partial start, and twice."""
        await self._stack.aclose()

    async def _stop_adapter(self, adapter: Adapter) -> None:
        try:
            await adapter.stop()
        except Exception:
            log.exception("stopping %s failed", adapter.platform)

    async def status(self) -> dict[str, Any]:
        """What `mjbot status` shows: tasks in flight, delivery sources, API health."""
        live = await self.store.live_tasks()
        now = time.time()
        return {
            "tasks_in_flight": len(live),
            "oldest_task_age_s": round(now - min((r.created_at for r in live), default=now), 1),
            "webhook": self.hooks.counters(),
            "polls": self.tracker.polls,
            "poll_errors": self.tracker.poll_errors,
            "api_requests": self.client.requests,
            "api_errors": dict(self.client.errors),
            "rate_limited": self.outbox.rate_limited,
            "adapters": [a.platform for a in self.adapters],
        }


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
