"""The port the core talks through, and the values that cross it.

The core defines what it needs from a chat platform (``ChatPort``); each adapter implements it.
Adapters hand the service a ``Requester`` and plain inputs; the service answers with
``bot.views.View`` values. Nothing here knows Telegram, Discord or the web playground.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.views import View


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a message lives: enough for the adapter to edit, delete or reply to it.

    ``kind`` records what the platform message is ("text", "photo", "video", ...) because some
    platforms can only edit a message within its kind.
    """

    platform: str
    chat_id: str
    message_id: str
    kind: str = "text"

    def encode(self) -> str:
        return f"{self.platform}|{self.chat_id}|{self.message_id}|{self.kind}"

    @classmethod
    def decode(cls, text: str | None) -> MessageRef | None:
        if not text:
            return None
        parts = text.split("|")
        if len(parts) != 4:
            return None
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, where, and in which language: the identity every use case starts from."""

    platform: str
    chat_id: str
    user_id: str
    language: str = "en"
    user_name: str = ""
    handle: str = ""  # the platform's @username, when it has one
    is_private: bool = False
    message: MessageRef | None = None  # the user's message, to reply to
    replied: MessageRef | None = None  # the message the user's message replies to, if any
    replied_user: str = ""  # who wrote that message (admins name people by replying)
    event: str = ""  # the platform's unique id of this update, to ignore redeliveries

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def chat_key(self) -> str:
        return f"{self.platform}:{self.chat_id}"


class RateLimited(Exception):
    """The platform asked us to wait before touching this chat again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class MessageGone(Exception):
    """The message to edit or delete no longer exists (deleted by a user, chat left)."""


@runtime_checkable
class ChatPort(Protocol):
    """What the service needs from a chat platform.

    Implementations translate a View into platform calls. They raise ``RateLimited`` when the
    platform says to slow down (the outbox retries that chat only) and ``MessageGone`` when the
    target message has disappeared; "not modified" answers are swallowed by the adapter.
    """

    platform: str

    async def send(
        self, chat_id: str, view: View, reply_to: MessageRef | None = None
    ) -> MessageRef:
        """Post a new message (a media group counts as one; the returned ref is the last)."""
        ...

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        """Replace a message's content in place; may return a new ref if it had to re-post."""
        ...

    async def delete(self, ref: MessageRef) -> None:
        """Remove a message; a message already gone is not an error."""
        ...
