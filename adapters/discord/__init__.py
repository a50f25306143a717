"""The Discord adapter: discord.py in (slash commands, buttons, modals), DiscordPort out.

Discord allows one gateway session per shard. With several instances on one database
(``shared``: PostgreSQL), the session belongs to whichever holds the ``discord-gateway`` lease in
the store (``Store.hold_singleton``); the others log in over REST only, so their outbox still
posts and edits (results of the tasks they track), and they try for the lease every third of
its time. A holder that dies stops renewing: another connects once the lease runs out, and
buttons on old messages keep working there (their state is in the store, their handlers parse
the custom_id). A holder that cannot renew steps down before its lease could run out, so two
sessions never overlap on purpose. One instance (SQLite) connects at once, without a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Coroutine
from typing import Any

import discord
from discord import app_commands

from bot.config import DiscordConfig
from bot.store import Store
from bot.usecases import Service

from .commands import Translator, install
from .handlers import custom_id_of, submitted
from .ids import MODAL_PREFIX, PLATFORM
from .port import AskButton, DiscordPort, SettingSelect, TokenButton
from .seams import point_discord_at

__all__ = ["PLATFORM", "DiscordAdapter", "DiscordClient", "DiscordPort"]

log = logging.getLogger("adapters.discord")

READY_TIMEOUT_S = 60.0
GATEWAY_LEASE = "discord-gateway:0"  # the store's singleton for shard 0 (we run one shard)
GUILD_READY_TIMEOUT_S = 0.1  # on_ready need not wait for every GUILD_CREATE: we never list guilds


class DiscordClient(discord.Client):
    """The discord.py client, carrying what the handlers need (the service and the port)."""

    service: Service
    port: DiscordPort

    def __init__(self) -> None:
        # No voice here: skip discord.py's warnings about its optional voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=discord.Intents(guilds=True),
            guild_ready_timeout=GUILD_READY_TIMEOUT_S,
            # Nobody is pinged by accident (a prompt saying "@everyone"); sends opt in per user.
            allowed_mentions=discord.AllowedMentions.none(),
            # Longer waits surface as RateLimited, so the outbox pauses that channel only.
            max_ratelimit_timeout=30.0,
        )
        self.tree: app_commands.CommandTree[DiscordClient] = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        # Buttons are parsed from their custom_id on every click: old messages keep working.
        self.add_dynamic_items(TokenButton, AskButton, SettingSelect)
        await self.tree.set_translator(Translator())

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Answers to our questions are handled here, not by a Modal object in memory: the
        # question is in the store, so a submit that comes after a restart (or after the
        # modal's interaction expired) is answered like any other.
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        if custom_id_of(interaction).startswith(MODAL_PREFIX):
            await submitted(interaction)


class DiscordAdapter:
    """Owns the discord.py client: gateway, slash commands and the ChatPort."""

    platform = PLATFORM

    def __init__(self, config: DiscordConfig, *, shared: bool = False) -> None:
        self.config = config
        self.client = DiscordClient()
        self.port = DiscordPort(self.client)
        self.client.port = self.port
        self.shared = shared  # several instances may share the database: lease the gateway
        # Who this adapter is in the lease row: host, process and a random tail (a restarted
        # process with a reused pid is someone else).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.store: Store | None = None
        self.holds_gateway = False
        self._held_until = 0.0  # monotonic: the lease surely runs until then
        self._runner: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        # discord.py logs request bodies and gateway events at DEBUG: user content and
        # interaction tokens. Keep them out unless someone asked for discord's logs explicitly.
        quiet = logging.getLogger("discord")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.INFO)

    def attach(self, service: Service) -> None:
        self.client.service = service
        self.store = service.store
        install(self.client.tree, retexture=service.client.profile.retexture)

    async def start(self) -> None:
        point_discord_at(self.config.api_base_url, self.config.gateway_url)
        try:
            if not self.shared:
                token = self.config.token.reveal()
                await self._connect(self.client.start(token), self.client.wait_until_ready())
                return
            # REST first: a wrong token fails here, and the port works without the gateway.
            await self.client.login(self.config.token.reveal())
            if await self._take():
                await self._connect_leased()
            else:
                log.info("discord gateway held by another instance: serving without it")
            self._keeper = asyncio.create_task(self._keep())
        except BaseException:
            await self.stop()
            raise

    async def _connect_leased(self) -> None:
        # READY of this session (the client's ready flag may still be set from an earlier one).
        await self._connect(
            self.client.connect(reconnect=True), self.client.wait_for("ready", timeout=None)
        )

    async def _connect(
        self, running: Coroutine[Any, Any, None], ready_: Coroutine[Any, Any, Any]
    ) -> None:
        """Run the gateway (``running``) until READY (``ready_``), then sync the commands."""
        # The runner first: it sets the client up (login) before the waiter looks.
        self._runner = asyncio.create_task(running)
        ready = asyncio.create_task(ready_)
        done, _ = await asyncio.wait(
            {self._runner, ready}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            failed = self._runner.exception() if self._runner in done else None
            if failed is not None:
                raise failed  # the login error, as it happened (e.g. LoginFailure)
            raise RuntimeError(f"discord: not connected within {READY_TIMEOUT_S:.0f}s")
        synced = await self.client.tree.sync()
        log.info("discord ready as %s with %d commands", self.client.user, len(synced))

    async def _take(self) -> bool:
        """Take or renew the gateway lease; True while this instance holds it."""
        assert self.store is not None, "attach() first"
        asked = time.monotonic()  # the lease runs at least ttl from before the question
        held = await self.store.hold_singleton(
            GATEWAY_LEASE, self.owner, self.config.gateway_lease_s
        )
        if held:
            self._held_until = asked + self.config.gateway_lease_s
            if not self.holds_gateway:
                log.info("discord gateway lease taken by %s", self.owner)
            self.holds_gateway = True
        return held

    async def _keep(self) -> None:
        """Renew the lease while holding it; else try for it: connect when it is ours, step
        down when it is not (or cannot be proven ours before it would run out)."""
        every = self.config.gateway_lease_s / 3
        while True:
            await asyncio.sleep(every)
            try:
                if self._runner is not None and self._runner.done() and self.holds_gateway:
                    # The session ended for good (a fatal close): let another instance try.
                    log.warning("discord gateway session ended; giving the lease up")
                    await self._step_down()
                    continue
                was = self.holds_gateway
                if await self._take():
                    if not was:
                        await self._connect_leased()
                elif was:
                    log.warning("discord gateway lease lost to another instance")
                    await self._step_down(release=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("discord gateway lease: renewal or connecting failed")
                if self._runner is None or self._runner.done():
                    await self._step_down()  # not connected: another instance may try
                elif self.holds_gateway and time.monotonic() > self._held_until - every:
                    await self._step_down(release=False)

    async def _drop_gateway(self) -> None:
        """Close the gateway session, keeping the REST client (the port still sends)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
        ws = self.client.ws
        if ws is not None and ws.open:
            await ws.close(code=1000)

    async def _step_down(self, *, release: bool = True) -> None:
        self.holds_gateway = False
        await self._drop_gateway()
        if release and self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.release_singleton(GATEWAY_LEASE, self.owner)

    async def stop(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if self.holds_gateway:
            # The session closes first, then the lease goes: another instance connects at once.
            await self._step_down()
        await self.client.close()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None

    async def close(self) -> None:
        """Nothing left: discord.py closes its gateway and its HTTP session together (stop)."""
