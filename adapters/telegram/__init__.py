"""The Telegram adapter: python-telegram-bot in, TelegramPort out.

The Mini App's initData check is here too (``initdata.py``); the mask editor page it guards is
the web adapter's, and the composition root (``bot.app``) puts the two together.
"""

from __future__ import annotations

import logging

from telegram import BotCommand
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.commands import ADMIN_COMMANDS, COMMANDS, menu
from bot.config import TelegramConfig
from bot.i18n import LANGUAGES, t
from bot.metrics import Metrics
from bot.usecases import Service

from . import handlers
from .inbox import Inbox, InboxQueue
from .port import PLATFORM, TelegramPort
from .request import AiohttpRequest
from .webhook import ALLOWED_UPDATES, WebhookIntake

__all__ = ["PLATFORM", "TelegramAdapter", "TelegramPort"]

log = logging.getLogger("adapters.telegram")


class TelegramAdapter:
    """Owns the PTB Application: updates in (long polling, or a webhook when
    ``webhook_url`` is set), handlers and the ChatPort."""

    platform = PLATFORM

    def __init__(self, config: TelegramConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.menu: tuple[str, ...] = COMMANDS
        # Our own HTTP clients (PTB's defaults: a pool of 256, and one connection for long
        # polling), so stop() closes them whatever state a failed start left PTB in; over
        # aiohttp, not PTB's httpx (adapters/telegram/request.py says why).
        self._http = (
            AiohttpRequest(connection_pool_size=256),
            AiohttpRequest(connection_pool_size=1, read_timeout=40),
        )
        # Polling: the update queue keeps each update in the store's inbox before PTB's
        # Updater confirms it to Telegram (adapters/telegram/inbox.py); the webhook receiver
        # keeps them itself, before it answers.
        queue = None if config.webhook else InboxQueue()
        builder = (
            ApplicationBuilder()
            .token(config.token.reveal())
            .base_url(config.api_base_url)
            .base_file_url(config.file_base_url)
            .concurrent_updates(True)
            .request(self._http[0])
            .get_updates_request(self._http[1])
        )
        self.app = (builder if queue is None else builder.update_queue(queue)).build()
        self.port = TelegramPort(self.app.bot, config.group_messages_per_minute)
        counts = (metrics or Metrics()).updates
        takeover_s = config.inbox_takeover_s
        self.intake = (
            WebhookIntake(
                self.app, config.webhook_url, config.webhook_token(), counts, takeover_s=takeover_s
            )
            if config.webhook
            else None
        )
        self.inbox = (
            self.intake.inbox if self.intake else Inbox(self.app, counts, takeover_s=takeover_s)
        )
        if queue is not None:
            queue.inbox = self.inbox

    def attach(self, service: Service) -> None:
        app = self.app
        app.bot_data["service"] = service
        self.inbox.attach(service.store)  # updates taken from Telegram survive a kill
        self.menu = menu(service.client.profile)  # what the provider can do
        app.add_handler(CommandHandler(["start", "help"], handlers.start))
        names = [c for c in (*COMMANDS, *ADMIN_COMMANDS, "info") if c != "help"]
        app.add_handler(CommandHandler(names, handlers.command))
        app.add_handler(CallbackQueryHandler(handlers.press))
        app.add_handler(MessageHandler(filters.PHOTO | filters.Document.ALL, handlers.media))
        app.add_handler(
            MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, handlers.reply)
        )
        app.add_error_handler(handlers.error)

    async def start(self) -> None:
        await self.app.initialize()
        await self._register_commands()
        await self.app.start()
        if self.intake is not None:
            # After app.start: what the receiver queues is handled at once.
            await self.intake.start(self.config.webhook_listen)
            log.info("telegram webhook as @%s", self.app.bot.username)
            return
        assert self.app.updater is not None
        self.inbox.start()  # also takes what the previous run kept and did not handle
        # start_polling calls deleteWebhook first: a bot moved back from webhooks polls again.
        await self.app.updater.start_polling(
            allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False, timeout=30
        )
        log.info("telegram polling as @%s", self.app.bot.username)

    async def _register_commands(self) -> None:
        """The command menu: cosmetic, so a refusal costs one warning and the bot runs on."""
        refused = []
        for lang in LANGUAGES:
            menu = [BotCommand(name, t(f"cmd.{name}", lang)) for name in self.menu]
            code = None if lang == "en" else lang
            try:
                await self.app.bot.set_my_commands(menu, language_code=code)
            except TelegramError as exc:
                refused.append(f"{lang}: {type(exc).__name__}: {exc}")
        if refused:
            log.warning("telegram: the command menu was not set (%s)", "; ".join(refused))

    async def stop(self) -> None:
        """Stop taking updates; also after a start that failed half way. The Bot API client
        stays open for what is still being sent (``close``)."""
        if self.intake is not None:
            await self.intake.stop()  # first: new posts go to the other instances
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.inbox.stop()

    async def close(self) -> None:
        """Close the Bot API client, once nothing is sent through it any more: a request
        still in flight when its pool closed would leave its socket open."""
        try:
            await self.app.shutdown()
        finally:
            for request in self._http:
                await request.shutdown()
