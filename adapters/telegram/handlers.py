"""Handlers in: one idea per handler, each turning an update into one Service call."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Document, Message, PhotoSize, Update
from telegram.constants import CallbackQueryLimit, FileSizeLimit
from telegram.ext import ContextTypes

from bot import commands
from bot.chat import MessageRef, Requester
from bot.i18n import normalize, t
from bot.usecases import Service
from bot.views import View

from . import albums
from .port import PLATFORM

log = logging.getLogger("adapters.telegram")


def service_of(context: ContextTypes.DEFAULT_TYPE) -> Service:
    service: Service = context.application.bot_data["service"]  # put there by attach()
    return service


def _ref(message: Message) -> MessageRef:
    kind = "photo" if message.photo else "text"
    return MessageRef(PLATFORM, str(message.chat_id), str(message.message_id), kind)


def requester(update: Update, message: Message | None = None) -> Requester:
    """Who asked: the user, the chat, their language and the message to reply to."""
    message = message or update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    replied = message.reply_to_message if message else None
    return Requester(
        platform=PLATFORM,
        chat_id=str(chat.id),
        user_id=str(user.id),
        language=normalize(user.language_code),
        user_name=user.full_name,
        is_private=chat.type == "private",
        message=_ref(message) if message else None,
        replied=_ref(replied) if replied else None,
        replied_user=str(replied.from_user.id) if replied and replied.from_user else "",
        handle=user.username or "",
        event=f"{PLATFORM}:{update.update_id}",
    )


async def download(message: Message) -> bytes | None:
    """The photo (largest size) or image document of a message; None when there is none."""
    item: PhotoSize | Document
    if message.photo:
        item = message.photo[-1]
    elif message.document:
        item = message.document
    else:
        return None
    if item.file_size and item.file_size > FileSizeLimit.FILESIZE_DOWNLOAD:
        raise TooBig()
    file = await item.get_file()
    return bytes(await file.download_as_bytearray())


class TooBig(Exception):
    """Over Telegram's 20 MB getFile limit: the bot cannot even download it."""


async def _images(service: Service, req: Requester, messages: Sequence[Message]) -> list[bytes]:
    images = []
    for message in messages:
        try:
            data = await download(message)
        except TooBig:
            await service.reply(req, View(t("upload.too_big", req.language)))
            raise
        if data is not None:
            images.append(data)
    return images


# --- handlers -------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the bot can do."""
    await commands.run(service_of(context), requester(update), "help", "")


async def command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text command; a reply to a photo lends it that photo (``/describe`` on a picture)."""
    message = update.effective_message
    assert message is not None
    parsed = commands.parse(message.text or "")
    if parsed is None:
        return
    name, args = parsed
    service = service_of(context)
    req = requester(update)
    images: list[bytes] = []
    replied = message.reply_to_message
    # The entrance opened before downloading: outsiders and banned users cost nothing, and
    # the command run inside passes the same gate (once).
    async with service.entrance(req) as entered:
        if entered is None:
            return
        if replied is not None and name in (
            "imagine",
            "describe",
            "blend",
            "swap",
            "video",
            "edit",
            "retexture",
            "oref",  # references: the photo replied to (a result is found by its message)
            "sref",
            "ref",
        ):
            try:
                images = await _images(service, entered, [replied])
            except TooBig:
                return
        await commands.run(service, entered, name, args, images)


async def media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or file: a captioned command, or the answer to one of our questions."""
    message = update.effective_message
    assert message is not None
    service = service_of(context)
    messages = await albums.collect(service.store, context.bot, message)
    if not messages:
        return
    first = messages[0]
    req = requester(update, first)
    caption = next((m.caption for m in messages if m.caption), "") or ""
    replied = next((m.reply_to_message for m in messages if m.reply_to_message), None)
    parsed = commands.parse(caption)
    if parsed is None and replied is None:
        return  # a photo for someone else in the group
    if (
        parsed is None
        and replied is not None
        and not await service.asks(req, str(replied.message_id))
    ):
        return  # a reply to something that asked nothing: not for us, nothing downloaded
    # The entrance opened before downloading: outsiders and banned users cost no bandwidth.
    # A reply enters quietly: the outsider hears about it only if it answers one of our
    # questions (the answer's entrance, inside this one, tells them: still one gate run).
    async with service.entrance(req, quiet=parsed is None) as entered:
        if entered is None:
            if parsed is None and replied is not None:
                await service.answer(req, str(replied.message_id), caption)
            return
        try:
            images = await _images(service, entered, messages)
        except TooBig:
            return
        if parsed is not None:
            await commands.run(service, entered, parsed[0], parsed[1], images)
            return
        assert replied is not None
        await service.answer(entered, str(replied.message_id), caption, images)


async def press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button press: answered at once with a short notice, the work continues after."""
    query = update.callback_query
    assert query is not None
    notice = await service_of(context).press(requester(update), query.data or "")
    limit = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH
    await query.answer(notice.text[:limit], show_alert=notice.alert)


async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text reply: the answer to one of our questions (Custom Zoom, remix, region...)."""
    message = update.effective_message
    if message is None or message.reply_to_message is None:
        return
    await service_of(context).answer(
        requester(update), str(message.reply_to_message.message_id), message.text or ""
    )


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log handler errors without the update's text (user content stays out of logs)."""
    log.error("handler failed: %s", type(context.error).__name__, exc_info=context.error)
