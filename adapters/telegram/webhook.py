"""Updates by webhook: Telegram (through a load balancer) posts each update to ``webhook_url``,
and this receiver, listening on ``webhook_listen``, hands it to python-telegram-bot.

PTB has a webhook server of its own (``Updater.start_webhook``), but it needs tornado (the
``webhooks`` extra) and has none of ``bot.serving``'s read deadlines. PTB documents the other
way (its ``customwebhookbot`` examples): any web server puts ``Update.de_json(body)`` on the
Application's ``update_queue`` (the queue the updater fills when polling) and answers at once.
That is this module, with what those examples leave out: the secret header is checked, the body
is bounded, a bad request gets a 4xx, and an accepted update is durable.

Answered fast, handled after: Telegram waits for the answer before it sends that chat's next
update, and redelivers on a timeout, but never after a 200. So the update is kept in the
store's inbox first (``adapters/telegram/inbox.py``: handled by the next start or another
instance if this one dies before handling it), then answered. A redelivery while it is kept is
answered 200 and not queued again; one after it was handled is stopped by the store's seen
events (``Requester.event`` is ``telegram:<update_id>``): nothing is submitted or charged twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import time
import urllib.parse
from typing import Any

from aiohttp import web
from telegram import Bot, Update
from telegram.constants import UpdateType
from telegram.error import RetryAfter, TelegramError
from telegram.ext import Application

from bot.config import TelegramConfig
from bot.metrics import UpdateCounts
from bot.serving import READ_TIMEOUT_S, serve
from bot.store import Store

from .inbox import Inbox

log = logging.getLogger("adapters.telegram.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The update types the handlers use (adapters/telegram/__init__.py's attach): commands, photos
# and replies come as messages, presses as callback queries. Nothing else is asked for, in
# webhook and polling mode alike: an edited_message would run an edited /imagine again.
ALLOWED_UPDATES: tuple[str, ...] = (UpdateType.MESSAGE, UpdateType.CALLBACK_QUERY)
MAX_UPDATE = 1024 * 1024  # a message update is a few KB; a reply quoting a long one a few more
REGISTER_TRIES = 5  # setWebhook answered "retry after N" (several instances starting at once)


class WebhookIntake:
    """The receiver for one bot: ``start`` listens, then registers the webhook."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        url: str,
        secret: str,
        counts: UpdateCounts | None = None,
        *,
        takeover_s: float = 10.0,
    ) -> None:
        self.app = app
        self.url = url
        self._secret = secret.encode()
        self.path = urllib.parse.urlsplit(url).path or "/"
        self.counts = counts or UpdateCounts()  # the App's metrics: `mjbot status` shows them
        self.inbox = Inbox(app, self.counts, takeover_s=takeover_s)
        self._runner: web.AppRunner | None = None
        self.port = 0
        web_app = web.Application(client_max_size=MAX_UPDATE)
        web_app.router.add_post(self.path, self._post)
        self.web_app = web_app

    def attach(self, store: Store) -> None:
        """The store whose inbox keeps accepted updates (before ``start``)."""
        self.inbox.attach(store)

    async def start(self, listen: str) -> None:
        """Listen first, then tell Telegram where to post: no update finds a closed door.
        Updates a dead instance left in the inbox are taken from the first round on."""
        if self.inbox.store is None:
            raise RuntimeError("WebhookIntake.attach(store) before start")
        host, _, port = listen.rpartition(":")
        self._runner, self.port = await serve(
            self.web_app, host.strip("[]"), int(port), read_timeout_s=READ_TIMEOUT_S
        )
        log.info("telegram webhook receiver on %s, path %s", listen, self.path)
        self.inbox.start()
        await self.register()

    async def register(self) -> None:
        """setWebhook with our secret and update types. Every instance of a deployment calls
        it with the same values (the same config), so the last one to start changes nothing."""
        for attempt in range(1, REGISTER_TRIES + 1):
            try:
                await self.app.bot.set_webhook(
                    self.url,
                    secret_token=self._secret.decode(),
                    allowed_updates=list(ALLOWED_UPDATES),
                    drop_pending_updates=False,
                )
                return
            except RetryAfter as exc:
                if attempt == REGISTER_TRIES:
                    raise
                wait = exc.retry_after
                seconds = wait if isinstance(wait, int | float) else wait.total_seconds()
                log.info("setWebhook: retry after %s s", seconds)
                await asyncio.sleep(seconds)

    async def stop(self) -> None:
        """Stop listening (the load balancer sends the next posts to another instance); the
        webhook stays registered: the other instances still serve it, and Telegram keeps what
        arrives while none does. Requests already being answered get serve's shutdown time."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.inbox.stop()

    async def _post(self, request: web.Request) -> web.Response:
        self.counts.received += 1
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), self._secret):
            self.counts.refused += 1
            # The header's value is not logged: a near miss could be the secret itself.
            log.warning(
                "refused a webhook post from %s: %s %s header",
                request.remote,
                "no" if given is None else "a wrong",
                SECRET_HEADER,
            )
            return web.Response(status=403, text="403: wrong or missing secret token\n")
        try:
            data = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return self._invalid(413, f"an update is at most {MAX_UPDATE} bytes")
        except Exception:  # not JSON, not UTF-8, a body cut off
            return self._invalid(400, "the body is not JSON")
        try:
            if not isinstance(data, dict) or type(data.get("update_id")) is not int:
                raise ValueError("no update_id")
            update = Update.de_json(data, self.app.bot)
        except Exception:
            return self._invalid(400, "not an update")
        try:
            # Re-encoded (ASCII, escapes kept): whatever encoding the body came in, the row is
            # valid text on both stores and reads back as the same update.
            new = await self.inbox.accept(update.update_id, json.dumps(data))
        except Exception:
            # Not kept, so not answered 200: Telegram sends it again (here or elsewhere).
            self.counts.unkept += 1
            log.exception("the inbox could not keep update %s", update.update_id)
            return web.Response(status=503, text="503: try again\n")
        if not new:
            # Telegram did not see our first answer in time: the first post is in hand
            # (here, on another instance, or the inbox's to hand on).
            self.counts.kept_already += 1
            log.info("update %s is in the inbox already: not queued again", update.update_id)
            return web.Response(status=200)
        await self.app.update_queue.put(update)
        self.counts.queued += 1
        return web.Response(status=200)

    def _invalid(self, status: int, why: str) -> web.Response:
        self.counts.invalid += 1
        log.info("a webhook post was not an update: %s", why)
        response = web.Response(status=status, text=f"{status}: {why}\n")
        response.force_close()  # its body may be half read
        return response

    def counters(self) -> dict[str, int]:
        return dataclasses.asdict(self.counts)


async def describe(config: TelegramConfig) -> list[str]:
    """What ``mjbot check`` says about how updates reach the bot, from getWebhookInfo (read
    only: it registers and deletes nothing). Telegram keeps a webhook's last delivery error:
    the first thing to read when updates stop arriving behind a load balancer."""
    token = config.token.reveal()
    bot = Bot(token, base_url=config.api_base_url, base_file_url=config.file_base_url)
    try:
        async with bot:  # getMe: the token is checked too
            info = await bot.get_webhook_info()
    except TelegramError as exc:
        message = f"{type(exc).__name__}: {exc}".replace(token, "***")
        return [f"telegram: FAIL {message}"]
    if not config.webhook:
        lines = [f"telegram: long polling as @{bot.username}"]
        if info.url:
            lines.append(f"  a webhook is registered ({info.url}): deleted when the bot starts")
        return lines
    lines = [f"telegram: webhook as @{bot.username} at {config.webhook_url}"]
    if info.url != config.webhook_url:
        lines.append(f"  registered: {info.url or 'nothing'} (the bot registers it when it starts)")
    else:
        kinds = ", ".join(info.allowed_updates or ()) or "every update type"
        lines.append(f"  registered: yes, for {kinds}")
    lines.append(f"  updates waiting at Telegram: {info.pending_update_count}")
    if info.last_error_date is not None:
        age = max(0, round(time.time() - info.last_error_date.timestamp()))
        lines.append(f"  last delivery error, {age} s ago: {info.last_error_message}")
    return lines
