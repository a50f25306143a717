"""Albums in: Telegram sends each photo of an album (a media group) as its own update, and
behind a load balancer the updates of one album may reach different instances. They gather
in the store (``join_album``/``take_album``), not in this process: whichever instance holds
the album's last part when the window ends takes every part, once, and runs the one command
(one blend, one swap, one charge) with all the photos in order.

Taking the album is not yet its work: an instance killed after the take and before the work's
paid write leaves the taking part's update undone, and Telegram's inbox replays it
(adapters/telegram/inbox.py). The album is recorded as that part's, so the replay takes it
again (``Store.retake_album``) and the gate (bot/usecases/gate.py) runs it once; every other
part's redelivery is still dropped.
"""

from __future__ import annotations

import asyncio
import json

from telegram import Bot, Message

from bot.store import Store

from .port import PLATFORM

ALBUM_WINDOW_S = 1.5  # the parts of an album arrive as separate updates within about a second


async def collect(store: Store, bot: Bot, message: Message) -> list[Message] | None:
    """The messages of ``message``'s album, in order, for the part that completes it (and for
    that part's update again, replayed); None for every other part (another one, here or on
    another instance, takes the album) and for a part redelivered after its album was taken.
    A message of no album is its own."""
    group = message.media_group_id
    if not group:
        return [message]
    album = f"{PLATFORM}:{message.chat_id}:{group}"
    # The whole message, as Telegram sent it: the instance that takes the album downloads
    # the photos by their file ids and reads captions and replies from it.
    part = str(message.message_id)
    arrivals = await store.join_album(album, part, message.to_json())
    if arrivals:
        await asyncio.sleep(ALBUM_WINDOW_S)
        bodies = await store.take_album(album, arrivals, part)
        if bodies is None:
            return None  # a later part arrived: its instance takes the album
    else:
        # Taken already. By this very part: its update is replayed (its instance died after
        # taking the album, before the album's work was stored), and the gate decides whether
        # it runs again. By another part: this one is a redelivery, dropped.
        bodies = await store.retake_album(album, part)
        if bodies is None:
            return None
    parts = [Message.de_json(json.loads(body), bot) for body in bodies]
    return sorted(parts, key=lambda m: m.message_id)
