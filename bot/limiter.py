"""Send limits shared by every instance on one database: the fleet stays under a platform's
per-chat, per-group and per-bot limits together, not each instance on its own.

The outbox paces each chat in memory (order, gaps, coalesced edits); with several instances
behind a load balancer, each would allow a chat its one message a second and the bot its thirty
a second, so three of them send three times as much. ``SharedLimiter`` asks the store for every
call's slot instead (``Store.take_slot``: a GCRA bucket per scope, all of a call's scopes
charged at one moment in one transaction) and sleeps until it. On PostgreSQL that is one
statement, one round trip; on SQLite (one process) the in-memory pacing already is the whole
truth, so the limiter is used there only when asked for (``tracking.shared_limits``).

Scopes, per platform: ``<platform>:chat:<id>`` (every call to a chat: one per
``send_interval_s``, in bursts of 3 made shorter by ``ARRIVAL_MARGIN_S``, see ``SendRule``),
``<platform>:minute:<id>`` (a group's messages a minute, an album counting its pictures,
progress edits leaving ``EDIT_RESERVE`` for results), ``<platform>:second`` (calls a second
over all chats, edits leaving a reserve too) and ``<platform>:edits:<id>``, a chat's progress
edits (one per ``edit_interval_s``, and in a group at most what its minute leaves beside
``EDIT_RESERVE``). Each leaves a margin below the platform's real limit, for the jitter between
a slot and its request's arrival.

Messages book their slots ahead, in order. Calls that can wait (progress edits, deletes) do
not: they take a slot only when one is free now with ``CHAT_RESERVE`` left (``spare_slot``),
so a result never queues behind an edit booked before it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.metrics import LimiterCounts
from bot.store import SendRule, Store

log = logging.getLogger("bot.limiter")

CHAT_BURST = 3  # Telegram allows short bursts per chat (~3, the fake's bucket)
ARRIVAL_MARGIN_S = 0.3  # how late a call may reach the platform after its slot (see SendRule)
CHAT_RESERVE = 1  # of a chat's burst, left to new messages by edits and deletes
MINUTE_MARGIN = 1  # a group's per-minute burst, one below the platform's
EDIT_RESERVE = 5  # of a group's minute, left to new messages (as the outbox's own window)
SECOND_SHARE = 2 / 3  # of the per-second limit, the burst the fleet may use at once
EDIT_SECOND_RESERVE = 1 / 3  # of that burst, left to new messages
FORGET_EVERY = 1000  # slots between two clean-ups of idle scopes (one row per chat ever seen)
IDLE_S = 3600.0  # a scope idle this long is a full bucket: its row can go


def _turns(platform: str, chat_id: str) -> str:
    return f"{platform}:edits:{chat_id}"


class SharedLimiter:
    """Slots for platform calls from the store, shared by every instance on it."""

    def __init__(
        self,
        store: Store,
        *,
        chat_interval_s: float,
        per_second: int,
        edit_interval_s: float = 0.0,
        counts: LimiterCounts | None = None,
    ) -> None:
        self.store = store
        self.chat_interval_s = chat_interval_s
        self.per_second = per_second
        self.edit_interval_s = edit_interval_s
        self.counts = counts if counts is not None else LimiterCounts()

    def rules(
        self, platform: str, chat_id: str, per_minute: int, *, kind: str, cost: int = 1
    ) -> list[SendRule]:
        """The limits one call fits. ``kind``: send | edit | delete (deletes count per chat
        and per bot, not in a group's minute: Telegram counts only new messages there)."""
        edit = kind == "edit"
        rules: list[SendRule] = []
        if self.chat_interval_s > 0:
            rules.append(
                SendRule(
                    f"{platform}:chat:{chat_id}",
                    self.chat_interval_s,
                    CHAT_BURST,
                    reserve=0 if kind == "send" else CHAT_RESERVE,
                    ordered=kind == "send",
                    margin_s=ARRIVAL_MARGIN_S,
                )
            )
        if per_minute > 0 and kind != "delete":
            rules.append(
                SendRule(
                    f"{platform}:minute:{chat_id}",
                    60.0 / per_minute,
                    max(1, per_minute - MINUTE_MARGIN),
                    cost=cost,
                    reserve=EDIT_RESERVE if edit else 0,
                    ordered=kind == "send",
                )
            )
        if self.per_second > 0:
            burst = max(1, int(self.per_second * SECOND_SHARE))
            rules.append(
                SendRule(
                    f"{platform}:second",
                    1.0 / self.per_second,
                    burst,
                    reserve=int(burst * EDIT_SECOND_RESERVE) if edit else 0,
                    ordered=kind == "send",
                )
            )
        return rules

    async def edit_turn(self, platform: str, chat_id: str, per_minute: int) -> None:
        """Wait for this chat's next progress edit, for the fleet: one per ``edit_interval_s``
        and, in a group, no more than the ``per_minute - EDIT_RESERVE`` a minute one instance
        allows itself. The outbox's own pacing counts this instance's edits only: three
        instances following tasks in one chat edited two to three times as often, and their
        edits (and previews) took the chat's slots and the CPU from the results. Taken before
        the chat's lock: a send need not wait for it."""
        interval = self._turn_s(per_minute)
        if interval > 0:
            await self._wait([SendRule(_turns(platform, chat_id), interval, 1)], "turn")

    def _turn_s(self, per_minute: int) -> float:
        """The time between two progress edits in a chat, for the fleet."""
        if per_minute > EDIT_RESERVE:
            return max(self.edit_interval_s, 60.0 / (per_minute - EDIT_RESERVE))
        return self.edit_interval_s

    async def slot(
        self, platform: str, chat_id: str, per_minute: int, *, kind: str, cost: int = 1
    ) -> None:
        """Wait for this call's slot (taken for the whole fleet)."""
        await self._wait(self.rules(platform, chat_id, per_minute, kind=kind, cost=cost), kind)

    async def spare_slot(self, platform: str, chat_id: str, per_minute: int, *, kind: str) -> float:
        """A slot for a call that can wait (a progress edit, a delete), taken only if one is
        free now with the reserves left to messages: 0 when taken, else the seconds until the
        caller should look again (nothing taken). A slot booked ahead would hold back every
        call after it, a result included; this one waits without a place in the queue."""
        wait = await self._ask(self.rules(platform, chat_id, per_minute, kind=kind), kind, True)
        return wait or 0.0

    async def _wait(self, rules: list[SendRule], kind: str) -> None:
        wait = await self._ask(rules, kind, False)
        if wait:
            await asyncio.sleep(wait)

    async def _ask(self, rules: list[SendRule], kind: str, spare: bool) -> float | None:
        """The store's answer (``take_slot``, or ``try_slot`` for a ``spare`` call), counted;
        None when there is nothing to ask or the store cannot answer."""
        if not rules:
            return None
        asked = time.perf_counter()
        try:
            wait = await (self.store.try_slot if spare else self.store.take_slot)(rules)
        except Exception:
            # A limiter must not turn a message into a failure: without the database the
            # instance paces alone (in memory), and a 429 is still waited out by the outbox.
            self.counts.unavailable += 1
            log.warning("shared send limits unavailable; pacing this instance alone", exc_info=True)
            return None
        self.counts.store_s += time.perf_counter() - asked
        if wait > 0:
            self.counts.waited_s += wait
            by_kind = self.counts.waited_by_kind
            by_kind[kind] = by_kind.get(kind, 0.0) + wait
        if spare and wait > 0:
            self.counts.refused += 1
        else:  # taken
            self.counts.slots += 1
            if self.counts.slots % FORGET_EVERY == 0:
                self.counts.forgotten += await self.store.forget_slots(IDLE_S)
        return wait
