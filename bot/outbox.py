"""Per-chat pacing of everything the bot posts: sends in order, progress edits coalesced.

Platforms limit messages per chat (Telegram: about one a second, twenty a minute in groups).
Each chat gets its own lock and clock, so a ``RateLimited`` from one chat delays only that
chat. Progress edits are "latest wins": while an edit waits for its slot, a newer view for the
same message replaces it, so a chat sees at most one edit per ``edit_interval_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.chat import ChatPort, MessageGone, MessageRef, RateLimited
from bot.views import View

log = logging.getLogger("bot.outbox")

OnEdited = Callable[[MessageRef], Awaitable[None]]


@dataclass
class _Chat:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_edit: float = 0.0
    last_send: float = 0.0
    paused_until: float = 0.0
    pending: dict[str, tuple[MessageRef, View, OnEdited | None]] = field(default_factory=dict)
    worker: asyncio.Task[None] | None = None


class Outbox:
    def __init__(
        self,
        ports: dict[str, ChatPort],
        *,
        edit_interval_s: float = 2.5,
        send_interval_s: float = 1.0,
        max_retries: int = 5,
    ) -> None:
        self.ports = ports
        self.edit_interval_s = edit_interval_s
        self.send_interval_s = send_interval_s
        self.max_retries = max_retries
        self._chats: dict[tuple[str, str], _Chat] = {}
        self.rate_limited = 0  # RateLimited answers seen (all were honoured and retried)

    def _chat(self, platform: str, chat_id: str) -> _Chat:
        return self._chats.setdefault((platform, chat_id), _Chat())

    async def _paced(self, chat: _Chat, gap: float, last: float) -> None:
        wait = max(last + gap, chat.paused_until) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _call(self, chat: _Chat, op: Callable[[], Awaitable[MessageRef | None]]):
        """Run one platform call, honouring RetryAfter for this chat only."""
        for attempt in range(self.max_retries + 1):
            try:
                return await op()
            except RateLimited as exc:
                self.rate_limited += 1
                if attempt == self.max_retries:
                    raise
                chat.paused_until = time.monotonic() + exc.retry_after
                log.info("chat rate limited, waiting %.1fs", exc.retry_after)
                await asyncio.sleep(exc.retry_after)
        return None

    async def send(
        self, platform: str, chat_id: str, view: View, reply_to: MessageRef | None = None
    ) -> MessageRef:
        """Post a new message, in order with everything else sent to this chat."""
        chat = self._chat(platform, chat_id)
        port = self.ports[platform]
        async with chat.lock:
            await self._paced(chat, self.send_interval_s, chat.last_send)
            try:
                return await self._call(chat, lambda: port.send(chat_id, view, reply_to))
            finally:
                chat.last_send = time.monotonic()

    async def edit(self, ref: MessageRef, view: View) -> MessageRef | None:
        """Edit now (still paced for the chat); None when the message is gone."""
        chat = self._chat(ref.platform, ref.chat_id)
        chat.pending.pop(ref.encode(), None)
        async with chat.lock:
            await self._paced(chat, self.send_interval_s, chat.last_send)
            try:
                return await self._call(chat, lambda: self.ports[ref.platform].edit(ref, view))
            except MessageGone:
                return None
            finally:
                chat.last_edit = chat.last_send = time.monotonic()

    async def delete(self, ref: MessageRef) -> None:
        chat = self._chat(ref.platform, ref.chat_id)
        chat.pending.pop(ref.encode(), None)
        async with chat.lock:
            try:
                await self._call(chat, lambda: self.ports[ref.platform].delete(ref))
            except MessageGone:
                pass

    def edit_later(self, ref: MessageRef, view: View, on_edited: OnEdited | None = None) -> None:
        """Queue a coalesced edit: only the newest view per message is ever sent."""
        chat = self._chat(ref.platform, ref.chat_id)
        chat.pending[ref.encode()] = (ref, view, on_edited)
        if chat.worker is None or chat.worker.done():
            chat.worker = asyncio.create_task(self._edit_worker(chat))

    def discard_edits(self, ref: MessageRef) -> None:
        """Forget queued edits of a message (its final state is about to be posted)."""
        self._chat(ref.platform, ref.chat_id).pending.pop(ref.encode(), None)

    async def _edit_worker(self, chat: _Chat) -> None:
        while chat.pending:
            await self._paced(chat, self.edit_interval_s, chat.last_edit)
            if not chat.pending:
                break
            first = next(iter(chat.pending))
            ref, view, on_edited = chat.pending.pop(first)
            try:
                async with chat.lock:
                    new_ref = await self._call(
                        chat, lambda ref=ref, view=view: self.ports[ref.platform].edit(ref, view)
                    )
                    chat.last_edit = time.monotonic()
                if on_edited is not None and new_ref is not None:
                    await on_edited(new_ref)
            except MessageGone:
                continue
            except Exception:
                log.exception("progress edit failed")

    async def close(self) -> None:
        for chat in self._chats.values():
            if chat.worker is not None:
                chat.worker.cancel()
        workers = [c.worker for c in self._chats.values() if c.worker is not None]
        await asyncio.gather(*workers, return_exceptions=True)
