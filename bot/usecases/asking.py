"""Asking a user for something by reply (photos for a command, a prompt for a picture).

The ask is stored before its message is sent, under a pending id, and given the message's
id once it is: a reply typed the instant the question appears (or handled by another
instance before this one recorded the id) still finds it. ``Questions.asked`` looks a
pending ask up by its asker for ``PENDING_MATCH_S``; after that, a reply to anything else
is not taken for an answer to a question whose sending failed.
"""

from __future__ import annotations

from bot.chat import MessageRef, Requester
from bot.outbox import Outbox
from bot.store import PENDING_ASK, Store, new_key
from bot.views import View

PENDING_MATCH_S = 60.0


async def ask_by_reply(
    store: Store, outbox: Outbox, req: Requester, view: View, command: str, args: str
) -> None:
    """Post ``view`` (it carries an ``Ask``) and run ``command args`` with the reply."""
    pending = f"{PENDING_ASK}{new_key()}"
    await store.add_ask(
        MessageRef(req.platform, req.chat_id, pending), req.user_id, command, args, req.language
    )
    try:
        ref = await outbox.reply(req, view)
    except Exception:  # never shown: close it, so no reply is taken for its answer
        await store.claim_ask(req.platform, req.chat_id, pending)
        raise
    await store.record_ask(req.platform, req.chat_id, pending, ref.message_id)
