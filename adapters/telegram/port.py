"""Rendering out: the ChatPort for Telegram, turning Views into Bot API calls."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    ReplyParameters,
    WebAppInfo,
)
from telegram.constants import FloodLimit, MediaGroupLimit, MessageLimit, ReplyLimit
from telegram.error import BadRequest, RetryAfter

from bot.chat import MessageGone, MessageRef, RateLimited
from bot.views import Media, View, clip

log = logging.getLogger("adapters.telegram")

PLATFORM = "telegram"
# Telegram's limits, by python-telegram-bot's names for them.
TEXT_LIMIT = MessageLimit.MAX_TEXT_LENGTH
CAPTION_LIMIT = MessageLimit.CAPTION_LENGTH
PLACEHOLDER_LIMIT = ReplyLimit.MAX_INPUT_FIELD_PLACEHOLDER
GROUP_PER_MINUTE = FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP
ALBUM_LIMIT = MediaGroupLimit.MAX_MEDIA_LENGTH
# How long a send waits for Telegram's answer. Giving up early (PTB's default is 5 s) does not
# unsend the message: it stays in the chat with nobody knowing its id. The core does not wait
# for a slow progress message (it submits meanwhile), so patience here costs nothing.
SEND_TIMEOUT_S = 30.0


def keyboard(view: View) -> InlineKeyboardMarkup | None:
    if not view.rows:
        return None
    rows = []
    for row in view.rows:
        buttons = []
        for choice in row:
            if choice.webapp and choice.url:
                buttons.append(InlineKeyboardButton(choice.label, web_app=WebAppInfo(choice.url)))
            elif choice.url:
                buttons.append(InlineKeyboardButton(choice.label, url=choice.url))
            else:
                buttons.append(InlineKeyboardButton(choice.label, callback_data=choice.token))
        rows.append(buttons)
    return InlineKeyboardMarkup(rows)


def _ref(message: Message, kind: str) -> MessageRef:
    return MessageRef(PLATFORM, str(message.chat_id), str(message.message_id), kind)


class TelegramPort:
    platform = PLATFORM

    def __init__(self, bot: Bot, group_per_minute: int = GROUP_PER_MINUTE) -> None:
        self.bot = bot
        self.group_per_minute = group_per_minute

    def per_minute(self, chat_id: str) -> int:
        """Telegram allows about 20 messages a minute in a group (negative chat ids)."""
        return self.group_per_minute if chat_id.startswith("-") else 0

    async def send(
        self, chat_id: str, view: View, reply_to: MessageRef | None = None
    ) -> MessageRef:
        reply = (
            ReplyParameters(int(reply_to.message_id), allow_sending_without_reply=True)
            if reply_to and reply_to.chat_id == chat_id
            else None
        )
        markup: InlineKeyboardMarkup | ForceReply | None = keyboard(view)
        if view.ask is not None and markup is None:
            placeholder = clip(view.ask.placeholder, PLACEHOLDER_LIMIT)
            markup = ForceReply(selective=True, input_field_placeholder=placeholder)
        caption = clip(view.text, CAPTION_LIMIT)
        chat = int(chat_id)
        with _translated_errors():
            if len(view.media) > 1:
                return await self._send_album(chat, view, markup, reply)
            if view.media:
                item = view.media[0]
                senders: dict[str, Callable[..., Awaitable[Message]]] = {
                    "photo": self.bot.send_photo,
                    "video": self.bot.send_video,
                    "document": self.bot.send_document,
                }
                send = senders[item.kind]
                file = InputFile(item.data, filename=item.filename)
                extra = _video_extras(item) if item.kind == "video" else {}
                message = await send(
                    chat,
                    file,
                    caption=caption,
                    reply_markup=markup,
                    reply_parameters=reply,
                    read_timeout=SEND_TIMEOUT_S,
                    **extra,
                )
                return _ref(message, item.kind)
            message = await self.bot.send_message(
                chat,
                clip(view.text, TEXT_LIMIT),
                reply_markup=markup,
                reply_parameters=reply,
                read_timeout=SEND_TIMEOUT_S,
            )
            return _ref(message, "text")
        # _translated_errors swallows only "not modified", which Telegram says to edits alone.
        raise AssertionError("a send was answered 'message is not modified'")

    async def _send_album(self, chat: int, view: View, markup, reply) -> MessageRef:
        """Up to ten photos/videos as one album; buttons follow in their own message (an album
        cannot carry a keyboard)."""
        items = [
            _album_item(m, view.text if i == 0 else "")
            for i, m in enumerate(view.media[:ALBUM_LIMIT])
        ]
        messages = await self.bot.send_media_group(
            chat, items, reply_parameters=reply, read_timeout=SEND_TIMEOUT_S
        )
        if markup is None:
            return _ref(messages[-1], view.media[0].kind)
        head = clip(view.text.splitlines()[0] if view.text else "⬆️", TEXT_LIMIT)
        message = await self.bot.send_message(
            chat,
            f"⬆️ {head}",
            reply_markup=markup,
            reply_parameters=reply,
            read_timeout=SEND_TIMEOUT_S,
        )
        return _ref(message, "text")

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        chat_id, message_id = int(ref.chat_id), int(ref.message_id)
        markup = keyboard(view)
        photo = view.photo
        with _translated_errors():
            if photo is not None:
                # Bot API 10.1: editMessageMedia also turns a text message into a photo.
                await self.bot.edit_message_media(
                    InputMediaPhoto(
                        # attach=True: inside InputMedia a file travels as attach://<name>
                        InputFile(photo.data, filename=photo.filename, attach=True),
                        caption=clip(view.text, CAPTION_LIMIT),
                    ),
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=markup,
                )
                return MessageRef(ref.platform, ref.chat_id, ref.message_id, "photo")
            if ref.kind == "text":
                await self.bot.edit_message_text(
                    clip(view.text, TEXT_LIMIT),
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=markup,
                )
            else:
                await self.bot.edit_message_caption(
                    chat_id=chat_id,
                    message_id=message_id,
                    caption=clip(view.text, CAPTION_LIMIT),
                    reply_markup=markup,
                )
        return ref

    async def delete(self, ref: MessageRef) -> None:
        try:
            with _translated_errors():
                await self.bot.delete_message(int(ref.chat_id), int(ref.message_id))
        except MessageGone:
            pass


def _video_extras(item: Media) -> dict[str, Any]:
    """What sendVideo / InputMediaVideo take beside the clip: its thumbnail (uploaded with
    it: Telegram accepts a thumbnail only as an upload) and that it can stream."""
    extras: dict[str, Any] = {"supports_streaming": True}
    if item.thumbnail:
        name = item.filename.rsplit(".", 1)[0] + "_thumb.jpg"
        extras["thumbnail"] = InputFile(item.thumbnail, filename=name, attach=True)
    return extras


def _album_item(
    item: Media, album_text: str
) -> InputMediaPhoto | InputMediaVideo | InputMediaDocument:
    """One picture or clip of an album: its own caption, else (on the first) the album's."""
    text = "\n".join(part for part in (album_text, item.caption) if part)
    caption = clip(text, CAPTION_LIMIT) if text else None
    file = InputFile(item.data, filename=item.filename, attach=True)
    if item.kind == "video":
        return InputMediaVideo(file, caption=caption, **_video_extras(item))
    if item.kind == "photo":
        return InputMediaPhoto(file, caption=caption)
    return InputMediaDocument(file, caption=caption)


class _translated_errors:
    """Map PTB's errors to the port's: RetryAfter -> RateLimited, vanished -> MessageGone."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, RetryAfter):
            retry = exc.retry_after
            seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
            raise RateLimited(seconds) from exc
        if isinstance(exc, BadRequest):
            text = str(exc).lower()
            if "not modified" in text:
                return True  # the same content is already there: nothing to do
            if "not found" in text or "can't be edited" in text or "can't be deleted" in text:
                raise MessageGone(str(exc)) from exc
        return False
