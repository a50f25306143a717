"""This instance's heartbeat: how the others sharing the database know it is alive.

Every ``every_s`` it says so for ``ttl_s`` more seconds (``Store.heartbeat``), which also
extends the lease of every task it follows, in one statement however many. Whatever an instance
claimed (a task it follows, a result it posts, a submit or an answer it sent) stays its own
while it beats; once it stops (kill -9, a lost network) its claims lapse after ``ttl_s`` and
the others take them over (``Tracker``: ``lease_tasks`` and ``Service.take_over``).

It beats in a task of its own, not between polls: a slow API request must not make a live
instance look dead. It starts before anything can claim and stops after everything else: a
clean stop then releases this instance's leases and ends its heartbeat, so the others take its
tasks at once instead of after ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.store import InstanceRow, Store

log = logging.getLogger("bot.lease")

LEASE_TTL_S = 10.0  # a dead instance's work is taken over this long after its last beat
HEARTBEAT_S = 3.0  # three beats per TTL: one lost beat (a slow database) costs nothing


class Heartbeat:
    def __init__(
        self,
        store: Store,
        instance: InstanceRow,
        *,
        ttl_s: float = LEASE_TTL_S,
        every_s: float = HEARTBEAT_S,
    ) -> None:
        self.store = store
        self.instance = instance
        self.ttl_s = ttl_s
        self.every_s = every_s
        self._beating: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Beat once (an error propagates: an instance that cannot say it is alive must not
        claim anything), then keep beating in the background."""
        await self.store.heartbeat(self.instance, self.ttl_s)
        self._beating = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.store.heartbeat(self.instance, self.ttl_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed; trying again in %.1fs", self.every_s)

    async def stop(self) -> None:
        """Stop beating and hand every lease over (a clean stop)."""
        if self._beating is None:
            return
        beating, self._beating = self._beating, None
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        try:
            await self.store.release_tasks(self.instance.id)
        except Exception:
            log.exception("handing the leases over failed; they lapse in %.0fs", self.ttl_s)
