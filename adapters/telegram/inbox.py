"""The inbox: Telegram updates kept in the store from the moment the bot takes them from
Telegram until they are handled, so that a kill -9 in between loses none.

Telegram forgets an update once the bot took it: a webhook post answered 200 is never sent
again, and a batch of ``getUpdates`` is confirmed by the next call's ``offset``, which
python-telegram-bot's Updater makes right after putting the batch on the update queue, before
any of it is handled. So each update is written to the store's inbox first (one INSERT keyed
by the gate's event, ``telegram:<update_id>``): by the webhook receiver before it answers
(``Inbox.accept``), and when polling by the update queue itself (``InboxQueue``: the Updater
awaits its ``put`` before it asks for the next batch). A handler in a group after every other
(``HANDLED_GROUP``) deletes the row once the update was handled, if it is still this
instance's: one taken over meanwhile is the taker's to handle and delete.

An instance killed in between leaves its rows behind. While alive, an instance says every
third of ``takeover_s`` that it still has its rows (``keep_updates``); rows nobody said so of
for ``takeover_s`` are taken by another instance, or by the next start (``take_updates``), and
handled there. An update handled twice (a take-over after its handling began, a redelivery
after it ended) is stopped by the store's seen events (``bot.usecases.gate``) once the first
handling made it durable (its paid write, or its end): it submits and charges nothing twice.
One whose instance died before that runs on the instance that took it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.metrics import UpdateCounts
from bot.store import InboxRow, Store

from .port import PLATFORM

log = logging.getLogger("adapters.telegram.inbox")

# The handlers' group (adapters/telegram attach: 0) is done before this one is run: the
# update's handling has ended, well or not (an error goes to the error handler first).
HANDLED_GROUP = 1_000
TAKE_AT_ONCE = 50  # updates taken over per round
# An update whose handling killed every instance that had it (or never ends) is dropped at
# its fifth take-over (``takes`` counts its receiver too), with an error logged, rather than
# taking the fleet down in turn.
MAX_TAKES = 5
RETRY_MAX_S = 5.0  # polling: how long the queue waits at most between tries to keep an update


class Inbox:
    """One bot's updates in the store's inbox: kept, handed to the handlers, taken off."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        counts: UpdateCounts | None = None,
        *,
        takeover_s: float = 10.0,
    ) -> None:
        self.app = app
        self.counts = counts or UpdateCounts()
        self.takeover_s = takeover_s
        # Who holds this process's inbox rows: the store's instance id once attached. Rows
        # are kept alive by this inbox's own round (``keep_updates``), not by the tracker's
        # heartbeat: an instance whose update handling hangs loses its updates, not its tasks.
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.store: Store | None = None
        self._in_hand: set[int] = set()  # update ids kept by us, not handled yet
        self._keeper: asyncio.Task[None] | None = None
        app.add_handler(TypeHandler(Update, self._handled), group=HANDLED_GROUP)

    def attach(self, store: Store) -> None:
        """The store whose inbox keeps the updates (before ``start``)."""
        self.store = store
        self.owner = store.instance.id

    def start(self) -> None:
        """Say every few seconds that we still have our updates, and take those a silent
        instance left (from the first round on: the previous run's)."""
        if self.store is None:
            raise RuntimeError("Inbox.attach(store) before start")
        self._keeper = asyncio.create_task(self._keep(self.store))

    async def stop(self) -> None:
        """Updates still being handled finish (PTB's stop waits for them) and leave the inbox;
        one that does not is another instance's after takeover_s."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None

    async def accept(self, update_id: int, body: str) -> bool:
        """Keep an update (``body``: its JSON) before Telegram is told we have it: True when
        it is new (queue it), False when kept already. Raises when the store cannot keep it."""
        assert self.store is not None, "attach a store first"
        if not await self.store.accept_update(_event(update_id), body, self.owner):
            return False
        self._in_hand.add(update_id)
        return True

    async def _handled(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        """Run after the handlers (``HANDLED_GROUP``): the update leaves the inbox."""
        if update.update_id not in self._in_hand or self.store is None:
            return
        self._in_hand.discard(update.update_id)
        try:
            await self.store.update_handled(_event(update.update_id), self.owner)
        except Exception:
            # Left in the inbox: taken again after takeover_s, and the gate's seen events stop
            # it from running twice.
            log.warning("update %s handled, but not taken off the inbox", update.update_id)

    async def _keep(self, store: Store) -> None:
        while True:
            try:
                if self._in_hand:
                    await store.keep_updates(self.owner)
                for row in await store.take_updates(self.owner, self.takeover_s, TAKE_AT_ONCE):
                    await self._take(store, row)
            except Exception:  # the database away for a moment: the next round tries again
                log.warning("the inbox round failed", exc_info=True)
            await asyncio.sleep(self.takeover_s / 3)

    async def _take(self, store: Store, row: InboxRow) -> None:
        update_id = int(row.event.rpartition(":")[2])
        if update_id in self._in_hand:
            return  # ours and still being handled (this loop was late to keep it): keep it
        if row.takes > MAX_TAKES:
            log.error(
                "dropping update %s from the inbox: taken over %d times, its handling never ended",
                update_id,
                row.takes - 1,
            )
            await store.update_handled(row.event, self.owner)
            return
        try:
            update = Update.de_json(json.loads(row.body), self.app.bot)
        except Exception:
            log.error("dropping update %s from the inbox: unreadable", update_id)
            await store.update_handled(row.event, self.owner)
            return
        log.info(
            "handling update %s accepted %.1f s ago by %s, which did not finish it",
            update_id,
            time.time() - row.received_at,
            row.owner,
        )
        self.counts.taken_over += 1
        self._in_hand.add(update_id)
        # Straight to the handlers' queue: an InboxQueue would keep it a second time.
        await asyncio.Queue.put(self.app.update_queue, update)


class InboxQueue(asyncio.Queue[object]):
    """The Application's update queue when polling: an update is kept in the inbox before it
    is queued, and PTB's Updater awaits ``put`` before its next ``getUpdates`` confirms the
    batch, so Telegram forgets nothing the store does not have."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox: Inbox | None = None  # set once the Application that reads it exists

    async def put(self, item: object) -> None:
        inbox = self.inbox
        if inbox is None or inbox.store is None or not isinstance(item, Update):
            await super().put(item)  # PTB's own signals, or no inbox
            return
        body = json.dumps(item.to_dict())
        wait = 0.5
        while True:
            try:
                new = await inbox.accept(item.update_id, body)
                break
            except Exception:
                # Not confirmed to Telegram while we wait: nothing is lost, handling pauses.
                log.warning("the inbox could not keep update %s; trying again", item.update_id)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_MAX_S)
        if new:  # (polling gets an update again only when this process asks for it again)
            await super().put(item)


def _event(update_id: int) -> str:
    """The inbox's key: the gate's event for this update (``handlers.requester``)."""
    return f"{PLATFORM}:{update_id}"
