"""Handlers in: one idea per handler, each turning an update into one Service call."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.chat import MessageRef, Requester
from bot.i18n import normalize
from bot.service import Service

from .port import PLATFORM

log = logging.getLogger("adapters.telegram")


def service_of(context: ContextTypes.DEFAULT_TYPE) -> Service:
    return context.application.bot_data["service"]


def requester(update: Update) -> Requester:
    """Who asked: the user, the chat, their language and the message to reply to."""
    message = update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    return Requester(
        platform=PLATFORM,
        chat_id=str(chat.id),
        user_id=str(user.id),
        language=normalize(user.language_code),
        user_name=user.full_name,
        is_private=chat.type == "private",
        message=(
            MessageRef(PLATFORM, str(chat.id), str(message.message_id), "text") if message else None
        ),
    )


def command_text(message: Message) -> str:
    """Everything after the command word (``/imagine@BotName a fox`` -> ``a fox``)."""
    text = message.text or message.caption or ""
    parts = text.split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the bot can do."""
    req = requester(update)
    service = service_of(context)
    await service.reply(req, service.help(req))


async def imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/imagine <prompt>: submit and follow a new image."""
    message = update.effective_message
    assert message is not None
    await service_of(context).imagine(requester(update), command_text(message))


async def press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button press: answered at once with a short notice, the work continues after."""
    query = update.callback_query
    assert query is not None
    notice = await service_of(context).press(requester(update), query.data or "")
    await query.answer(notice.text[:200], show_alert=notice.alert)


async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text reply: the answer to one of our questions (Custom Zoom, remix...)."""
    message = update.effective_message
    if message is None or message.reply_to_message is None:
        return
    await service_of(context).answer(
        requester(update), str(message.reply_to_message.message_id), message.text or ""
    )


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log handler errors without the update's text (user content stays out of logs)."""
    log.error("handler failed: %s", type(context.error).__name__, exc_info=context.error)
