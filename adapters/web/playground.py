"""The playground's shared state and what a user can do in it: a message typed, a question
answered, a button pressed. The routes (``server.py``) and the admin tab (``admin.py``) both
work on one :class:`Playground`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot import commands
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.usecases import Service
from bot.views import View

from .access import Access, Level
from .port import PLATFORM, WebPort

__all__ = ["InitDataCheck", "Playground", "command_list"]

log = logging.getLogger("adapters.web")

ANSWER_GRACE_S = 2.0  # how long a just-sent question may take to be registered
ANSWER_RETRIES = 20

# Telegram Mini App: initData -> the Telegram user it proves (None when it proves nothing).
# The composition root passes the Telegram adapter's check; this package never imports it.
InitDataCheck = Callable[[str], Awaitable[Requester | None]]


@dataclass
class Playground:
    """The state the handlers share: the port, the service, the access tokens."""

    port: WebPort
    service: Service | None = None
    app: Any = None  # the running App (bot.app builds the demo): counters for the admin tab
    check_init_data: InitDataCheck | None = None
    mini_app_only: bool = False  # serving only the editor for Telegram: signed initData only
    access: Access = field(default_factory=Access)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    started: float = field(default_factory=time.time)
    health_cache: tuple[float, dict[str, Any]] | None = None

    @property
    def langs(self) -> dict[str, str]:
        return self.port.langs

    @property
    def svc(self) -> Service:
        if self.service is None:
            raise web.HTTPServiceUnavailable(text="not attached")
        return self.service

    def requester(self, session: str, message: MessageRef | None = None) -> Requester:
        return Requester(
            platform=PLATFORM,
            chat_id=session,
            user_id=session,
            language=self.langs.get(session, "en"),
            user_name="you",
            is_private=True,
            message=message,
        )

    def spawn(self, coro: Awaitable[None], session: str) -> None:
        """Run one user action in the background, so a socket keeps reading while it works."""

        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("web action failed")
                await self.port.push(session, {"type": "error", "text": "internal error"})

        task = asyncio.create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # --- what a user can do ------------------------------------------------------------------

    async def on_text(
        self,
        session: str,
        text: str,
        images: Sequence[bytes] = (),
        reply_to: int | None = None,
    ) -> None:
        """A message typed (maybe with files): a command, or an answer to one of our questions."""
        text = text.strip()
        if not text and not images:
            return
        replied = self.port.find(session, str(reply_to)) if reply_to else None
        ref = await self.port.record_user(session, text, images, reply_to)
        req = self.requester(session, ref)
        parsed = commands.parse(text)
        if parsed is None:
            # Not a command: it answers the question it replies to, or the one still open.
            asked = replied if replied is not None and replied.ask else self.port.open_ask(session)
            if asked is not None:
                await self.answer(req, asked.id, text, images)
                return
            if not images:
                await self.svc.reply(req, self.svc.help(req))
                return
            # Files alone: one image is a describe, several are a blend.
            parsed = ("describe" if len(images) == 1 else "blend", text)
        name, args = parsed
        await commands.run(self.svc, req, name, args, images)

    async def answer(
        self, req: Requester, ask_id: int, text: str, images: Sequence[bytes] = ()
    ) -> None:
        # The service records which message asked only after the page has it: an answer
        # typed at once (a script, a test) may come first, so a fresh question gets a moment.
        asked = self.port.find(req.chat_id, str(ask_id))
        for _ in range(ANSWER_RETRIES):
            if await self.svc.answer(req, str(ask_id), text, images):
                await self.port.mark_answered(req.chat_id, ask_id)
                return
            if asked is None or time.time() - asked.time > ANSWER_GRACE_S:
                break
            await asyncio.sleep(ANSWER_GRACE_S / ANSWER_RETRIES)
        await self.svc.reply(req, View(t("modal.expired", req.language)))

    async def press(self, session: str, token: str) -> dict[str, Any]:
        notice = await self.svc.press(self.requester(session), token)
        return {"type": "notice", "text": notice.text, "alert": notice.alert}

    def hello(self, session: str, level: Level = Level.CHAT) -> dict[str, Any]:
        lang = self.langs.get(session, "en")
        return {
            "type": "hello",
            "session": session,
            "admin": level >= Level.ADMIN,  # the page shows the admin tab only then
            "lang": lang,
            "commands": command_list(lang),
            "messages": self.port.history(session),
        }


def command_list(lang: str) -> list[dict[str, str]]:
    """The shared command table with its menu descriptions, for the input's hints."""
    out = []
    for name in commands.COMMANDS:
        key = f"cmd.{name}"
        text = t(key, lang)
        out.append({"name": name, "description": "" if text == key else text})
    return out
