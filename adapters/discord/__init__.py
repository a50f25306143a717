"""The Discord adapter: discord.py in (slash commands, buttons, modals), DiscordPort out."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord
from discord import app_commands

from bot.config import DiscordConfig
from bot.usecases import Service

from .commands import Translator, install
from .handlers import custom_id_of, submitted
from .ids import MODAL_PREFIX, PLATFORM
from .port import AskButton, DiscordPort, SettingSelect, TokenButton
from .seams import point_discord_at

__all__ = ["PLATFORM", "DiscordAdapter", "DiscordClient", "DiscordPort"]

log = logging.getLogger("adapters.discord")

READY_TIMEOUT_S = 60.0
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

    def __init__(self, config: DiscordConfig) -> None:
        self.config = config
        self.client = DiscordClient()
        self.port = DiscordPort(self.client)
        self.client.port = self.port
        self._runner: asyncio.Task[None] | None = None
        # discord.py logs request bodies and gateway events at DEBUG: user content and
        # interaction tokens. Keep them out unless someone asked for discord's logs explicitly.
        quiet = logging.getLogger("discord")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.INFO)

    def attach(self, service: Service) -> None:
        self.client.service = service
        install(self.client.tree, retexture=service.client.profile.retexture)

    async def start(self) -> None:
        point_discord_at(self.config.api_base_url, self.config.gateway_url)
        self._runner = asyncio.create_task(self.client.start(self.config.token.reveal()))
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait(
            {self._runner, ready}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            failed = self._runner.exception() if self._runner in done else None
            await self.stop()
            if failed is not None:
                raise failed  # the login error, as it happened (e.g. LoginFailure)
            raise RuntimeError(f"discord: not connected within {READY_TIMEOUT_S:.0f}s")
        synced = await self.client.tree.sync()
        log.info("discord ready as %s with %d commands", self.client.user, len(synced))

    async def stop(self) -> None:
        await self.client.close()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None

    async def close(self) -> None:
        """Nothing left: discord.py closes its gateway and its HTTP session together (stop)."""
