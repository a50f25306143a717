"""Composition root: builds every part from the config and owns start and stop.

The one core module that knows adapters exist; it imports the configured ones lazily so a
deployment without Discord never loads discord.py. Where two adapters meet, they meet here:
Telegram's Mini App is the web adapter's mask editor guarded by the Telegram adapter's initData
check, and ``mjbot demo`` is the App around the web adapter. Adapters never import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from bot.config import Config, StorageConfig
from bot.egress import Egress
from bot.limiter import SharedLimiter
from bot.media import Downloader, MediaCache
from bot.metrics import Metrics
from bot.mj.client import MjClient
from bot.mj.probe import resolve_profile
from bot.mj.profiles import SIM_FLAVOURS
from bot.outbox import PER_SECOND, Outbox
from bot.policy import Policy
from bot.store import InstanceRow, Store, this_instance
from bot.store.sqlite import SQLiteStore
from bot.tracking import HOOK_PATH, HookServer, Tracker, hook_secret
from bot.tracking import status as status_document
from bot.tracking.lease import Heartbeat
from bot.tracking.tracker import WATCH_S
from bot.usecases import Service

log = logging.getLogger("bot.app")


class Server(Protocol):
    """A part that serves the Service: handed it once, then started and stopped."""

    def attach(self, service: Service) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Adapter(Server, Protocol):
    """A chat platform: a Server whose ChatPort the outbox sends through. ``stop`` ends the
    intake (no new updates); ``close`` releases what the port sends through, called once the
    work in flight and the outbox have drained, so their last sends still have a wire."""

    platform: str
    port: Any

    async def close(self) -> None: ...


def configured_adapters(config: Config, metrics: Metrics | None = None) -> list[Adapter]:
    adapters: list[Adapter] = []
    if config.telegram.enabled:
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(config.telegram, metrics))
    if config.discord.enabled:
        from adapters.discord import DiscordAdapter

        # On PostgreSQL several instances may run: the gateway session goes to a lease holder.
        adapters.append(DiscordAdapter(config.discord, shared=config.storage.kind == "postgresql"))
    return adapters


def configured_servers(config: Config) -> list[Server]:
    """Servers beside the chat adapters: Telegram's Mini App (the mask editor) when
    ``telegram.webapp_url`` is set."""
    if not (config.telegram.enabled and config.telegram.webapp_url):
        return []
    from adapters.telegram.initdata import init_data_check
    from adapters.web import MiniAppServer  # the same editor page as the playground

    check = init_data_check(config.telegram.token.reveal())
    return [MiniAppServer(config.telegram.webapp_listen, check)]


async def platform_checks(config: Config) -> list[str]:
    """``mjbot check``'s lines about the chat platforms (read only): how Telegram's updates
    reach the bot (long polling, or the webhook with its pending count and last error)."""
    if not config.telegram.enabled:
        return []
    from adapters.telegram.webhook import describe

    return await describe(config.telegram)


async def open_store(
    storage: StorageConfig, *, read_only: bool = False, instance: InstanceRow | None = None
) -> Store:
    """The configured store: PostgreSQL when ``storage.url`` names one (its driver loaded
    only then; several instances may share it), else the SQLite file, which alone takes the
    one-process file lock (bot/dblock.py). ``read_only``: ``mjbot status`` beside a running
    bot. ``instance``: who this process is among those sharing the database."""
    if storage.kind == "postgresql":
        from bot.store.postgres import PostgresStore

        return await PostgresStore.open(
            storage.url.reveal(), read_only=read_only, instance=instance
        )
    return await SQLiteStore.open(storage.sqlite_path, read_only=read_only, instance=instance)


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
    """``mjbot demo``: the web playground over the simulator (unless ``config`` names an API),
    until cancelled."""
    from adapters.web import WebAdapter

    data_dir = None
    if config is None:
        data_dir = tempfile.mkdtemp(prefix="mjbot-demo-")
        config = demo_config(data_dir)
    adapter = WebAdapter(host, port)
    app = App(config, adapters=[adapter])
    adapter.playground.app = app  # the admin tab's counters
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


class App:
    """Every part, built from ``config``. ``adapters`` (default: the configured ones) and
    ``tracker`` (default: :class:`Tracker`; the benchmark passes its naive poller) are the
    parts a caller may swap."""

    def __init__(
        self,
        config: Config,
        adapters: list[Adapter] | None = None,
        *,
        tracker: type[Tracker] = Tracker,
    ) -> None:
        self.config = config
        # What every part counts into; `status()` reads it (mjbot status, the admin tab).
        self.metrics = Metrics()
        self.adapters = configured_adapters(config, self.metrics) if adapters is None else adapters
        self.servers = configured_servers(config)
        self.tracker_class = tracker
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
        self.instance = this_instance()
        self.store: Store = await open_store(config.storage, instance=self.instance)
        stack.push_async_callback(self.store.close)
        log.info("instance %s", self.instance.id)
        # Alive before anything can claim, and until everything else has stopped (closed
        # just before the store): the others take over this instance's work only once it
        # is gone (bot/tracking/lease.py).
        self.heartbeat = Heartbeat(
            self.store,
            self.instance,
            ttl_s=config.tracking.lease_ttl_s,
            every_s=config.tracking.heartbeat_s,
        )
        stack.push_async_callback(self.heartbeat.stop)
        await self.heartbeat.start()
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
            metrics=self.metrics,
        )
        stack.push_async_callback(self.client.aclose)
        for adapter in self.adapters:  # closed after the outbox and the service (pushed first)
            stack.push_async_callback(self._close_adapter, adapter)
        self.outbox = Outbox(
            {a.platform: a.port for a in self.adapters},
            edit_interval_s=config.tracking.edit_interval_s,
            send_interval_s=config.tracking.send_interval_s,
            metrics=self.metrics,
            limiter=shared_limiter(config, self.store, self.metrics),
        )
        stack.push_async_callback(self.outbox.close)
        secret = await hook_secret(self.store)
        public = config.tracking.webhook_public_url.rstrip("/")
        self.service = Service(
            self.store,
            self.client,
            self.outbox,
            self.downloader,
            cache=MediaCache(Path(config.storage.sqlite_path).parent / "media"),
            notify_hook=f"{public}{HOOK_PATH}{secret}" if public else "",
            default_mode=config.midjourney.mode,
            webapp_url=config.telegram.webapp_url,
            policy=Policy(self.store, config.access, config.quota, metrics=self.metrics),
            photo_as_is_max_bytes=config.media.photo_as_is_max_kb * 1024,
        )
        stack.push_async_callback(self.service.close)
        self.hooks = HookServer(
            self.store,
            self.client,
            self.service,
            secret,
            self.status,
            metrics=self.metrics,
            confirm_wait_s=config.tracking.confirm_wait_s,
            prefetch=self.downloader.prefetch,
            # On PostgreSQL, final callbacks are confirmed for the fleet (see the tracker's
            # watch below for the same choice).
            shared=config.storage.kind == "postgresql",
        )
        self.tracker = self.tracker_class(
            self.store,
            self.client,
            self.service,
            poll_interval_s=config.tracking.poll_interval_s,
            timeout_fast_s=config.tracking.timeout_fast_s,
            timeout_relax_s=config.tracking.timeout_relax_s,
            resend_after_s=config.tracking.resend_after_s,
            hooks_flowing=lambda: self.hooks.flowing,
            heard_at=self.hooks.heard_at,
            metrics=self.metrics,
            lease_ttl_s=config.tracking.lease_ttl_s,
            take_over_every_s=config.tracking.heartbeat_s,
            # Several instances may share PostgreSQL: a step merged on one is shown by the
            # task's holder. On SQLite there is one instance, and it shows what it merges.
            watch_s=WATCH_S if config.storage.kind == "postgresql" else 0.0,
        )
        stack.push_async_callback(self.hooks.stop)
        await self.hooks.start(config.tracking.listen)
        for part in (*self.servers, *self.adapters):
            part.attach(self.service)
            # Pushed before starting: a part that fails half way closes what it opened.
            stack.push_async_callback(self._stop_part, part)
            await part.start()
        tracking = asyncio.create_task(self.tracker.run())
        stack.push_async_callback(_cancel, tracking)

    async def stop(self) -> None:
        """Stop what started, newest first: the tracker, the adapters' intake, the Mini App, the
        hook receiver, work in flight, the outbox, the adapters' wires, the HTTP clients, the
        simulator, the heartbeat (handing this instance's leases over), the store. Safe
        to call after a failed or a partial start, and twice."""
        await self._stack.aclose()

    async def _stop_part(self, part: Server) -> None:
        try:
            await part.stop()
        except Exception:
            log.exception("stopping %s failed", getattr(part, "platform", type(part).__name__))

    async def _close_adapter(self, adapter: Adapter) -> None:
        try:
            await adapter.close()
        except Exception:
            log.exception("closing %s failed", adapter.platform)

    async def status(self) -> dict[str, Any]:
        """What `mjbot status` shows: tasks in flight, then every counter (bot/metrics.py)."""
        adapters = [a.platform for a in self.adapters]
        return await status_document.document(self.store, self.metrics, adapters)


def shared_limiter(
    config: Config, store: Store, metrics: Metrics | None = None
) -> SharedLimiter | None:
    """The fleet's send limits from the store (``tracking.shared_limits``; "auto": on
    PostgreSQL, where several instances may share the database), or None: in memory."""
    where = config.tracking.shared_limits
    if where == "memory" or (where == "auto" and config.storage.kind != "postgresql"):
        return None
    return SharedLimiter(
        store,
        chat_interval_s=config.tracking.send_interval_s,
        per_second=PER_SECOND,
        edit_interval_s=config.tracking.edit_interval_s,
        counts=metrics.limiter if metrics is not None else None,
    )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
