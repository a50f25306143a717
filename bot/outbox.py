"""Per-chat pacing of everything the bot posts: sends in order, progress edits coalesced.

Platforms limit messages per chat (Telegram: about one a second, twenty a minute in groups,
thirty a second overall). Each chat gets its own lock and clock, so a ``RateLimited`` from
one chat delays only that chat; a port may declare ``per_minute(chat_id)`` for its chats.
Progress edits are "latest wins": while an edit waits for its slot, a newer view for the same
message replaces it, so a chat sees at most one edit per ``edit_interval_s``.

With several instances on one database, a ``SharedLimiter`` (bot/limiter.py) also gives every
platform call its slot for the whole fleet; the in-memory pacing stays (order, gaps, coalescing).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.chat import ChatPort, MessageGone, MessageRef, RateLimited, Requester
from bot.limiter import SharedLimiter
from bot.metrics import Metrics
from bot.views import View

_R = TypeVar("_R")

log = logging.getLogger("bot.outbox")

EDIT_RESERVE = 5  # per-minute slots progress edits leave free, so results are never starved
PER_SECOND = 30  # calls a second over all chats (Telegram: about 30)
EDIT_GLOBAL_RESERVE = 10  # of the per-second slots over all chats, likewise
SPARE_BACKOFF = 8  # a spare call waits at most this many times what the limiter said
GONE_KEPT = 64  # deleted messages remembered per chat, so that no late edit goes to one

OnEdited = Callable[[MessageRef], Awaitable[None]]
# An edit is a View, or a function that builds it when the edit's turn comes (so work for
# views that get coalesced away is never done).
Edit = View | Callable[[], Awaitable[View]]


@dataclass
class _Chat:
    platform: str
    chat_id: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_edit: float = 0.0
    last_send: float = 0.0
    paused_until: float = 0.0
    pending: dict[str, tuple[MessageRef, Edit, OnEdited | None]] = field(default_factory=dict)
    # The message whose edit the worker has taken from ``pending`` (it may be building its
    # view), and whether its edits were discarded since: then that edit is not sent.
    editing: str | None = None
    discarded: bool = False
    # Messages deleted here (the newest GONE_KEPT): an edit of one is never sent, however
    # late it comes (a progress step merged just before its task finished, a question's
    # message deleted without a discard); it would be a 404 "Unknown Message" on Discord.
    gone: dict[str, None] = field(default_factory=dict)
    worker: asyncio.Task[None] | None = None
    recent: collections.deque[float] = field(default_factory=collections.deque)  # last minute
    per_minute: int = 0  # 0 = no per-minute limit for this chat


class Outbox:
    def __init__(
        self,
        ports: dict[str, ChatPort],
        *,
        edit_interval_s: float = 2.5,
        send_interval_s: float = 1.0,
        max_retries: int = 5,
        per_second: int = PER_SECOND,
        metrics: Metrics | None = None,
        limiter: SharedLimiter | None = None,
    ) -> None:
        self.ports = ports
        self.edit_interval_s = edit_interval_s
        self.send_interval_s = send_interval_s
        self.max_retries = max_retries
        self._chats: dict[tuple[str, str], _Chat] = {}
        self.per_second = per_second
        self._global: collections.deque[float] = collections.deque()
        # Whoever posts through the outbox counts into the same object (``metrics.deliveries``).
        self.metrics = metrics if metrics is not None else Metrics()
        self.counts = self.metrics.outbox
        self.limiter = limiter  # the fleet's slots (None: this process is the whole fleet)

    async def reply(self, req: Requester, view: View) -> MessageRef:
        """Answer the requester in their chat, replying to their message."""
        return await self.send(req.platform, req.chat_id, view, req.message)

    async def tell(self, req: Requester, text: str) -> MessageRef:
        """A message only the requester needs (a refusal, a hint): private where possible."""
        return await self.reply(req, View(text, ephemeral=True))

    def private_replies(self, platform: str) -> bool:
        """Whether a message meant for one person (``View.ephemeral``) is seen by that person
        alone on this platform (a port says so with ``private_replies = True``)."""
        return bool(getattr(self.ports.get(platform), "private_replies", False))

    def _chat(self, platform: str, chat_id: str) -> _Chat:
        chat = self._chats.get((platform, chat_id))
        if chat is None:
            limit = getattr(self.ports[platform], "per_minute", None)
            chat = _Chat(platform, chat_id, per_minute=limit(chat_id) if limit else 0)
            self._chats[(platform, chat_id)] = chat
        return chat

    async def _paced(self, chat: _Chat, gap: float, last: float, reserve: int = 0) -> None:
        """Wait for this chat's next slot: the gap since the last call, a RetryAfter pause,
        and the per-minute window (edits leave ``reserve`` slots free for new messages)."""
        while True:
            now = time.monotonic()
            while chat.recent and chat.recent[0] < now - 60:
                chat.recent.popleft()
            wait = max(last + gap, chat.paused_until) - now
            if chat.per_minute and len(chat.recent) >= max(1, chat.per_minute - reserve):
                wait = max(wait, chat.recent[0] + 60 - now)
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        chat.recent.append(time.monotonic())
        await self._global_slot(EDIT_GLOBAL_RESERVE if reserve else 0)

    async def _global_slot(self, reserve: int = 0) -> None:
        """At most ``per_second`` calls a second over all chats (Telegram: about 30); edits
        leave ``reserve`` of them to new messages. Waiters look again after every sleep, so a
        crowd woken together cannot burst past the limit."""
        if not self.per_second:
            return
        limit = max(1, self.per_second - reserve)
        while True:
            now = time.monotonic()
            while self._global and self._global[0] <= now - 1:
                self._global.popleft()
            if len(self._global) < limit:
                self._global.append(now)
                return
            await asyncio.sleep(self._global[0] + 1 - now)

    async def _call(
        self,
        chat: _Chat,
        op: Callable[[], Awaitable[_R]],
        kind: str,
        cost: int = 1,
        *,
        slotted: bool = False,
    ) -> _R:
        """Run one platform call, honouring RetryAfter for this chat only. With a shared
        limiter each attempt first takes its slot for the fleet (``kind``: send, edit or
        delete; ``cost``: the messages it posts), the first one unless ``slotted`` already."""
        attempt = 0
        while True:
            if self.limiter is not None and not (slotted and attempt == 0):
                await self.limiter.slot(
                    chat.platform, chat.chat_id, chat.per_minute, kind=kind, cost=cost
                )
            try:
                return await op()
            except RateLimited as exc:
                self.counts.rate_limited += 1
                if attempt == self.max_retries:
                    raise
                attempt += 1
                chat.paused_until = time.monotonic() + exc.retry_after
                log.info("chat rate limited, waiting %.1fs", exc.retry_after)
                await asyncio.sleep(exc.retry_after)

    async def _spare(self, chat: _Chat, op: Callable[[], Awaitable[_R]], kind: str) -> _R:
        """Run a call that can wait (a progress edit, a delete) in the chat's order. With a
        shared limiter it goes only when the fleet has a slot free now with room left for
        messages, and it waits for one outside the chat's lock: a result is never queued
        behind it, here or on another instance. Each refusal doubles the wait before it looks
        again (up to ``SPARE_BACKOFF``): in a busy chat every look is a transaction, and a
        progress edit that goes later shows the newer view anyway."""
        refused = 0
        while self.limiter is not None:
            async with chat.lock:
                wait = await self.limiter.spare_slot(
                    chat.platform, chat.chat_id, chat.per_minute, kind=kind
                )
                if wait <= 0:
                    return await self._call(chat, op, kind, slotted=True)
            await asyncio.sleep(wait * min(2**refused, SPARE_BACKOFF))
            refused += 1
        async with chat.lock:
            return await self._call(chat, op, kind)

    async def send(
        self, platform: str, chat_id: str, view: View, reply_to: MessageRef | None = None
    ) -> MessageRef:
        """Post a new message, in order with everything else sent to this chat."""
        chat = self._chat(platform, chat_id)
        port = self.ports[platform]
        async with chat.lock:
            await self._paced(chat, self.send_interval_s, chat.last_send)
            try:
                ref = await self._call(
                    chat, lambda: port.send(chat_id, view, reply_to), "send", len(view.media) or 1
                )
                self.counts.sends += 1
                return ref
            finally:
                chat.last_send = time.monotonic()

    async def edit(self, ref: MessageRef, view: View) -> MessageRef | None:
        """Edit now (still paced for the chat); None when the message is gone."""
        chat = self._chat(ref.platform, ref.chat_id)
        chat.pending.pop(ref.encode(), None)
        async with chat.lock:
            await self._paced(chat, self.send_interval_s, chat.last_send)
            try:
                edited = await self._call(
                    chat, lambda: self.ports[ref.platform].edit(ref, view), "edit"
                )
                self.counts.edits += 1
                return edited
            except MessageGone:
                return None
            finally:
                chat.last_edit = chat.last_send = time.monotonic()

    async def delete(self, ref: MessageRef) -> None:
        chat = self._chat(ref.platform, ref.chat_id)
        self.discard_edits(ref)
        chat.gone[ref.encode()] = None
        while len(chat.gone) > GONE_KEPT:
            del chat.gone[next(iter(chat.gone))]
        try:
            await self._spare(chat, lambda: self.ports[ref.platform].delete(ref), "delete")
            self.counts.deletes += 1
        except MessageGone:
            pass

    def edit_later(self, ref: MessageRef, view: Edit, on_edited: OnEdited | None = None) -> None:
        """Queue a coalesced edit: only the newest view per message is ever sent."""
        chat = self._chat(ref.platform, ref.chat_id)
        key = ref.encode()
        if key in chat.gone:
            return  # deleted already: nothing to edit
        if key in chat.pending:
            self.counts.coalesced += 1  # the newer view replaces it, in its place
        chat.pending[key] = (ref, view, on_edited)
        if chat.worker is None or chat.worker.done():
            chat.worker = asyncio.create_task(self._edit_worker(chat))

    def discard_edits(self, ref: MessageRef) -> None:
        """Forget queued edits of a message (its final state is about to be posted), also
        the one being prepared: it would go after the message is deleted."""
        chat = self._chat(ref.platform, ref.chat_id)
        chat.pending.pop(ref.encode(), None)
        if chat.editing == ref.encode():
            chat.discarded = True

    async def _edit_worker(self, chat: _Chat) -> None:
        while chat.pending:
            await self._paced(chat, self.edit_interval_s, chat.last_edit, reserve=EDIT_RESERVE)
            if self.limiter is not None:
                await self.limiter.edit_turn(chat.platform, chat.chat_id, chat.per_minute)
            if not chat.pending:
                break
            first = next(iter(chat.pending))
            ref, edit, on_edited = chat.pending.pop(first)
            chat.editing, chat.discarded = first, False
            try:
                view = edit if isinstance(edit, View) else await edit()
                new_ref = await self._spare(
                    chat, functools.partial(self._edit_unless_discarded, chat, ref, view), "edit"
                )
                chat.last_edit = time.monotonic()
                self.counts.edits += 1
                if on_edited is not None and new_ref is not None:
                    await on_edited(new_ref)
            except MessageGone:
                continue
            except Exception:
                log.exception("progress edit failed")
            finally:
                chat.editing = None

    async def _edit_unless_discarded(
        self, chat: _Chat, ref: MessageRef, view: View
    ) -> MessageRef | None:
        """The worker's edit, looked at once more in the chat's turn (after its view was
        built and a slot waited for): not sent when the message was finished meanwhile."""
        if chat.discarded or ref.encode() in chat.gone:
            raise MessageGone("finished while its edit was prepared")
        return await self.ports[ref.platform].edit(ref, view)

    async def close(self) -> None:
        for chat in self._chats.values():
            if chat.worker is not None:
                chat.worker.cancel()
        workers = [c.worker for c in self._chats.values() if c.worker is not None]
        await asyncio.gather(*workers, return_exceptions=True)
