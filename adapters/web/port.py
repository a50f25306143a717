"""Rendering out: the ChatPort for the web playground.

Messages live in memory per chat (a chat is one browser session). Every change is pushed as a
JSON event to the session's open WebSockets; media bytes are kept here and served by URL, so
the page never sees anything but ids, text, buttons and links.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.chat import MessageGone, MessageRef
from bot.i18n import t
from bot.media import sniff as sniff_bytes
from bot.views import Media, View

log = logging.getLogger("adapters.web")

PLATFORM = "web"
HISTORY = 200  # messages kept per chat; older ones (and their media) are forgotten
# One budget for every byte of media held, whatever the number of sessions: kept images
# (results and uploads, oldest dropped first) plus uploads still being received (never dropped;
# a new upload that does not fit beside them is refused).
MEDIA_BUDGET = 64 * 1024 * 1024
IDLE_S = 30 * 60  # a session with no open page for this long is forgotten
MAX_SESSIONS = 100  # beyond this, the longest-idle sessions without an open page go first
SWEEP_S = 10.0  # idle sessions are looked for at most this often


class Client(Protocol):
    """A connected page (an aiohttp WebSocketResponse, or a fake in tests)."""

    @property
    def closed(self) -> bool: ...

    async def send_json(self, data: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    content_type: str
    filename: str
    chat_id: str


@dataclass
class WebMessage:
    id: int
    chat_id: str
    sender: str  # "bot" | "user"
    text: str = ""
    media: list[dict[str, str]] = field(default_factory=list)
    rows: list[list[dict[str, Any]]] = field(default_factory=list)
    ask: dict[str, str] | None = None
    answered: bool = False
    reply_to: int | None = None
    ephemeral: bool = False
    time: float = field(default_factory=time.time)
    edited: float | None = None

    @property
    def kind(self) -> str:
        return self.media[0]["kind"] if self.media else "text"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "text": self.text,
            "media": self.media,
            "rows": self.rows,
            "ask": self.ask,
            "answered": self.answered,
            "reply_to": self.reply_to,
            "ephemeral": self.ephemeral,
            "time": self.time,
            "edited": self.edited,
        }


# What a page shows inline; anything else is served as a download.
SHOWN = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm"})


def sniff(data: bytes, kind: str = "photo") -> str:
    """The content type to serve ``data`` with (by its bytes, bot.media.sniff)."""
    found = sniff_bytes(data)
    if found in SHOWN:
        return found
    return "video/mp4" if kind == "video" else "application/octet-stream"


# Buttons that are an emoji alone (the API's 🔄 and arrows, our 🌱 📎 ✂️): the name a tooltip
# and a screen reader give them, from the same i18n keys the derived labels use.
ICON_NAMES = {
    "🔄": "btn.reroll",
    "🌱": "btn.seed",
    "📎": "btn.file",
    "✂": "btn.split",
    "⬅": "btn.pan_left",
    "➡": "btn.pan_right",
    "⬆": "btn.pan_up",
    "⬇": "btn.pan_down",
}


# The studio's per-picture and per-clip buttons are an icon and the item's number ("✏️ 2",
# "➕ 1 high"): named "<what it does> <n>".
ITEM_NAMES = {
    "📎": "btn.file",
    "✏": "studio.name.edit",
    "🎬": "studio.name.animate",
    "🖼": "studio.name.prompt",
    "🔍": "studio.name.describe",
    "➕": "studio.name.extend",
    "🔁": "studio.name.loop",
}
_ITEM = re.compile(r"^(\S+) ([1-4])(?: (.+))?$")


def icon_name(label: str, lang: str) -> str:
    """The spoken name of an icon-only label; "" for labels that have words."""
    plain = label.replace("\ufe0f", "").strip()
    key = ICON_NAMES.get(plain)
    if key:
        return t(key, lang)
    item = _ITEM.match(plain)
    if item and item.group(1) in ITEM_NAMES:
        words = [t(ITEM_NAMES[item.group(1)], lang), item.group(2), item.group(3) or ""]
        return " ".join(w for w in words if w)
    return ""


def view_rows(view: View, lang: str = "en") -> list[list[dict[str, Any]]]:
    return [
        [
            {
                "label": choice.label,
                "title": icon_name(choice.label, lang),
                "token": choice.token,
                "url": choice.url,
                "style": str(choice.style),
                "webapp": choice.webapp,
            }
            for choice in row
        ]
        for row in view.rows
    ]


class WebPort:
    """ChatPort for the playground: in-memory chats, pushed to WebSockets as events."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        budget: int = MEDIA_BUDGET,
        idle_s: float = IDLE_S,
        max_sessions: int = MAX_SESSIONS,
        sweep_s: float = SWEEP_S,
    ) -> None:
        self._ids = itertools.count(1)
        self.chats: dict[str, OrderedDict[int, WebMessage]] = {}
        self.clients: dict[str, set[Client]] = {}
        self.langs: dict[str, str] = {}  # each session's language
        self.seen: dict[str, float] = {}  # each session's last activity (monotonic)
        self.blobs: OrderedDict[str, Blob] = OrderedDict()  # oldest first
        self.budget = budget
        self.kept = 0  # bytes of the blobs above
        self.receiving = 0  # bytes of uploads being read, reserved in the budget
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self.sweep_s = sweep_s
        self._swept = time.monotonic()
        self.events = 0  # pushed events, for the admin tab

    # --- ChatPort ----------------------------------------------------------------------------

    async def send(
        self, chat_id: str, view: View, reply_to: MessageRef | None = None
    ) -> MessageRef:
        message = WebMessage(next(self._ids), chat_id, "bot", ephemeral=view.ephemeral)
        if reply_to is not None and reply_to.chat_id == chat_id and reply_to.message_id.isdigit():
            message.reply_to = int(reply_to.message_id)
        self._fill(message, view)
        self._remember(message)
        await self.push(chat_id, {"type": "message", "message": message.to_json()})
        return self.ref(message)

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        message = self.find(ref.chat_id, ref.message_id)
        if message is None:
            raise MessageGone(f"web message {ref.message_id} is gone")
        self._drop_media(message)
        self._fill(message, view)
        message.edited = time.time()
        await self.push(ref.chat_id, {"type": "edit", "message": message.to_json()})
        return self.ref(message)

    async def delete(self, ref: MessageRef) -> None:
        chat = self.chats.get(ref.chat_id)
        if chat is None or not ref.message_id.isdigit():
            return
        message = chat.pop(int(ref.message_id), None)
        if message is None:
            return
        self._drop_media(message)
        await self.push(ref.chat_id, {"type": "delete", "message": {"id": message.id}})

    # --- the playground's own needs ----------------------------------------------------------

    async def record_user(
        self,
        chat_id: str,
        text: str,
        images: Sequence[bytes] = (),
        reply_to: int | None = None,
    ) -> MessageRef:
        """The user's own message, kept and shown so the bot's answers can quote it."""
        message = WebMessage(next(self._ids), chat_id, "user", text=text, reply_to=reply_to)
        message.media = [
            self._store(chat_id, Media("photo", data, f"upload{i + 1}"))
            for i, data in enumerate(images)
        ]
        self._remember(message)
        await self.push(chat_id, {"type": "message", "message": message.to_json()})
        return self.ref(message)

    async def mark_answered(self, chat_id: str, message_id: str | int) -> None:
        message = self.find(chat_id, str(message_id))
        if message is None or message.answered:
            return
        message.answered = True
        await self.push(chat_id, {"type": "edit", "message": message.to_json()})

    def find(self, chat_id: str, message_id: str) -> WebMessage | None:
        chat = self.chats.get(chat_id)
        if chat is None or not str(message_id).isdigit():
            return None
        return chat.get(int(message_id))

    def history(self, chat_id: str) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.chats.get(chat_id, {}).values()]

    def open_ask(self, chat_id: str) -> WebMessage | None:
        """The newest unanswered question in this chat: a message that is no command answers it."""
        for message in reversed(self.chats.get(chat_id, {}).values()):
            if message.ask is not None and not message.answered:
                return message
        return None

    def blob(self, blob_id: str) -> Blob | None:
        return self.blobs.get(blob_id)

    def ref(self, message: WebMessage) -> MessageRef:
        return MessageRef(PLATFORM, message.chat_id, str(message.id), message.kind)

    # --- clients -----------------------------------------------------------------------------

    def connect(self, chat_id: str, client: Client) -> None:
        self.clients.setdefault(chat_id, set()).add(client)
        self.touch(chat_id)

    def disconnect(self, chat_id: str, client: Client) -> None:
        clients = self.clients.get(chat_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.clients[chat_id]
        self.touch(chat_id)  # idle from the moment the last page closed

    async def push(self, chat_id: str, event: dict[str, Any]) -> None:
        """Send one event to every page open on this chat; a dead socket is dropped."""
        clients = list(self.clients.get(chat_id, ()))
        self.events += 1
        results = await asyncio.gather(
            *(self._push_one(client, event) for client in clients), return_exceptions=True
        )
        for client, result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                self.disconnect(chat_id, client)

    async def _push_one(self, client: Client, event: dict[str, Any]) -> None:
        if client.closed:
            raise ConnectionResetError("closed")
        await client.send_json(event)

    async def close_all(self) -> None:
        for chat_id in list(self.clients):
            for client in list(self.clients.get(chat_id, ())):
                close = getattr(client, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()
        self.clients.clear()

    # --- the memory budget and idle sessions --------------------------------------------------

    def reserve(self, size: int) -> bool:
        """Room for ``size`` more bytes of an upload being received; False when it cannot fit
        beside the uploads already being received (kept media is dropped to make room)."""
        if self.receiving + size > self.budget:
            return False
        self.receiving += size
        self._make_room(0)
        return True

    def release(self, size: int) -> None:
        """The end of a reservation (the bytes were dropped, or kept through ``record_user``)."""
        self.receiving = max(0, self.receiving - size)

    def touch(self, chat_id: str) -> None:
        self.seen[chat_id] = time.monotonic()

    def sweep(self, now: float | None = None, keep: str = "") -> list[str]:
        """Forget sessions idle for ``idle_s`` with no page open, and the longest-idle ones
        beyond ``max_sessions`` (never ``keep``, the one at work); returns their ids."""
        now = time.monotonic() if now is None else now
        self._swept = now
        sessions = set(self.chats) | set(self.langs) | set(self.seen)
        idle = sorted(
            (self.seen.get(s, 0.0), s) for s in sessions if not self.clients.get(s) and s != keep
        )  # longest idle first
        over = len(sessions) - self.max_sessions
        gone: list[str] = []
        for last, session in idle:
            if now - last > self.idle_s or len(gone) < over:
                self.forget(session)
                gone.append(session)
        if gone:
            log.info("forgot %d idle playground session(s)", len(gone))
        return gone

    def forget(self, chat_id: str) -> None:
        for message in self.chats.pop(chat_id, {}).values():
            self._drop_media(message)
        self.langs.pop(chat_id, None)
        self.seen.pop(chat_id, None)

    def _maybe_sweep(self, keep: str) -> None:
        now = time.monotonic()
        if now - self._swept >= self.sweep_s or len(self.seen) > self.max_sessions:
            self.sweep(now, keep)

    def _make_room(self, size: int) -> None:
        """Drop the oldest kept media until ``size`` more bytes fit in the budget."""
        while self.blobs and self.kept + self.receiving + size > self.budget:
            _, old = self.blobs.popitem(last=False)
            self.kept -= len(old.data)

    # --- internals ---------------------------------------------------------------------------

    def _fill(self, message: WebMessage, view: View) -> None:
        message.text = view.text
        message.media = [self._store(message.chat_id, m) for m in view.media]
        message.rows = view_rows(view, self.langs.get(message.chat_id, "en"))
        ask = view.ask
        message.ask = (
            {
                "placeholder": ask.placeholder,
                "prefill": ask.prefill,
                "title": ask.title,
                "kind": ask.kind,
                "ref": ask.ref,
            }
            if ask is not None
            else None
        )

    def _store(self, chat_id: str, media: Media) -> dict[str, str]:
        """One tile: its bytes kept under the budget, served by URL; a video's thumbnail is
        kept too (the tile's poster) and an item's own caption is shown under it."""
        item = {
            "kind": media.kind,
            "url": self._keep(chat_id, media.data, media.kind, media.filename),
            "filename": media.filename,
            "content_type": sniff(media.data, media.kind),
            "size": str(len(media.data)),
            "caption": media.caption,
            "poster": "",
        }
        if media.thumbnail:
            stem = media.filename.rsplit(".", 1)[0]
            item["poster"] = self._keep(chat_id, media.thumbnail, "photo", f"{stem}_thumb.jpg")
        return item

    def _keep(self, chat_id: str, data: bytes, kind: str, filename: str) -> str:
        blob_id = secrets.token_urlsafe(12)
        self._make_room(len(data))
        self.blobs[blob_id] = Blob(data, sniff(data, kind), filename, chat_id)
        self.kept += len(data)
        return f"/media/{blob_id}"

    def _drop_media(self, message: WebMessage) -> None:
        for item in message.media:
            for url in (item["url"], item.get("poster", "")):
                blob = self.blobs.pop(url.rsplit("/", 1)[-1], None) if url else None
                if blob is not None:
                    self.kept -= len(blob.data)

    def _remember(self, message: WebMessage) -> None:
        self.touch(message.chat_id)
        self._maybe_sweep(keep=message.chat_id)
        chat = self.chats.setdefault(message.chat_id, OrderedDict())
        chat[message.id] = message
        while len(chat) > HISTORY:
            _, old = chat.popitem(last=False)
            self._drop_media(old)
