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
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.chat import MessageGone, MessageRef
from bot.views import Media, View

log = logging.getLogger("adapters.web")

PLATFORM = "web"
HISTORY = 200  # messages kept per chat; older ones (and their media) are forgotten
MEDIA_LIMIT = 400  # media blobs kept per chat


class Client(Protocol):
    """A connected page (an aiohttp WebSocketResponse, or a fake in tests)."""

    closed: bool

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


def sniff(data: bytes, kind: str = "photo") -> str:
    """Content type by magic bytes (uploads and results are never trusted by name)."""
    head = data[:16]
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "video/webm"
    return "video/mp4" if kind == "video" else "application/octet-stream"


def view_rows(view: View) -> list[list[dict[str, Any]]]:
    return [
        [
            {
                "label": choice.label,
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

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.chats: dict[str, OrderedDict[int, WebMessage]] = {}
        self.clients: dict[str, set[Client]] = {}
        self.blobs: OrderedDict[str, Blob] = OrderedDict()
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

    def disconnect(self, chat_id: str, client: Client) -> None:
        clients = self.clients.get(chat_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.clients[chat_id]

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

    # --- internals ---------------------------------------------------------------------------

    def _fill(self, message: WebMessage, view: View) -> None:
        message.text = view.text
        message.media = [self._store(message.chat_id, m) for m in view.media]
        message.rows = view_rows(view)
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
        blob_id = secrets.token_urlsafe(12)
        content_type = sniff(media.data, media.kind)
        self.blobs[blob_id] = Blob(media.data, content_type, media.filename, chat_id)
        while len(self.blobs) > MEDIA_LIMIT * max(1, len(self.chats)):
            self.blobs.popitem(last=False)
        return {
            "kind": media.kind,
            "url": f"/media/{blob_id}",
            "filename": media.filename,
            "content_type": content_type,
            "size": str(len(media.data)),
        }

    def _drop_media(self, message: WebMessage) -> None:
        for item in message.media:
            self.blobs.pop(item["url"].rsplit("/", 1)[-1], None)

    def _remember(self, message: WebMessage) -> None:
        chat = self.chats.setdefault(message.chat_id, OrderedDict())
        chat[message.id] = message
        while len(chat) > HISTORY:
            _, old = chat.popitem(last=False)
            self._drop_media(old)
