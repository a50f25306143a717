"""The "naive" baseline: one fetch per task every 3 s, what most existing bots do.

:class:`NaiveTracker` is a drop-in replacement for :class:`bot.tracking.Tracker` (same
constructor, same ``run``/``poll_once`` surface, same counters). Instead of asking
``list-by-condition`` for all live ids at once, it gives every live task its own loop::

    while the task is live:
        sleep 3 s
        task = GET /mj/task/{id}/fetch
        service.on_tasks([task])

Everything else in the bot is the real code: the same Service, merge, delivery, Outbox and
Telegram adapter. ``python -m bench.naive_bot`` hands the class to the App it runs (the App's
``tracker`` parameter); nothing under ``bot/`` is edited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bot.mj.client import MjClient, MjError
from bot.store import Store
from bot.tracking import Tracker
from bot.usecases import Service

log = logging.getLogger("bench.naive")

FETCH_EVERY_S = 3.0  # per task
SCAN_EVERY_S = 0.5  # how often the store is checked for newly submitted tasks (no API call)


class NaiveTracker(Tracker):
    def __init__(self, store: Store, client: MjClient, service: Service, **settings: Any) -> None:
        # poll_interval_s is ignored: the naive poller has its own per-task pace
        super().__init__(store, client, service, **settings)
        self.fetch_every_s = FETCH_EVERY_S
        self._followers: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Resume, then start one follower per live task as tasks appear (until cancelled)."""
        await self.service.resume()
        try:
            while True:
                try:
                    await self.poll_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("naive scan failed")
                await asyncio.sleep(SCAN_EVERY_S)
        finally:
            for follower in self._followers.values():
                follower.cancel()
            await asyncio.gather(*self._followers.values(), return_exceptions=True)

    async def poll_once(self) -> int:
        """Start followers for new live tasks; returns how many tasks are followed."""
        rows = await self.store.live_tasks()
        for row in rows:
            if row.task_id and row.task_id not in self._followers:
                self._followers[row.task_id] = asyncio.create_task(self._follow(row.task_id))
        await self._expire_naive(rows)
        return len(self._followers)

    async def _follow(self, task_id: str) -> None:
        try:
            while True:
                await asyncio.sleep(self.fetch_every_s)
                row = await self.store.task_by_id(task_id)
                if row is None or row.is_final:
                    return
                try:
                    task = await self.client.fetch(task_id)
                except MjError as exc:
                    self.counts.poll_errors += 1
                    log.warning("fetch failed: %s", exc.kind)
                    continue
                self.counts.polls += 1
                if task is None:
                    continue
                try:
                    await self.service.on_tasks([task])
                except Exception:
                    log.exception("handling task update failed (task %s)", task.id)
                if task.is_final:
                    return
        finally:
            self._followers.pop(task_id, None)

    async def _expire_naive(self, rows: list) -> None:
        # the same timeout rule as the real tracker, without its extra store reads per scan
        now = time.time()
        fast, relax = self.timeout_fast_s, self.timeout_relax_s
        if any(now - r.created_at > (relax if "relax" in r.mode else fast) for r in rows):
            await self._expire(rows)
