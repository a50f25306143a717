"""Follows every live task until it is delivered.

One ``list-by-condition`` request per interval asks for all live ids at once (not one request
per task), and every task found goes through ``Service.on_task``, whose merge only moves
forward. Tasks live in the store, so a restart simply carries on: the first tick after start
resumes them, and results that finished while the bot was down are delivered once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.mj.client import MjClient, MjError
from bot.service import Service
from bot.store import Store, TaskRow

log = logging.getLogger("bot.tracker")

BATCH = 100  # ids per list-by-condition request
RECONCILE_FACTOR = 3  # poll this much slower while notifyHook callbacks are arriving


class Tracker:
    def __init__(
        self,
        store: Store,
        client: MjClient,
        service: Service,
        *,
        poll_interval_s: float = 4.0,
        timeout_fast_s: float = 900.0,
        timeout_relax_s: float = 3600.0,
        hooks_flowing: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.client = client
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.timeout_fast_s = timeout_fast_s
        self.timeout_relax_s = timeout_relax_s
        self.hooks_flowing = hooks_flowing
        self.polls = 0
        self.poll_errors = 0
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Resume, then poll forever (until cancelled)."""
        await self.service.resume()
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poll failed")
            # While callbacks flow, polling is only the safety net: a lost callback then
            # costs a few intervals, not a task.
            interval = self.poll_interval_s * (RECONCILE_FACTOR if self.hooks_flowing() else 1)
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass
            self._wake.clear()

    def wake(self) -> None:
        """Poll now instead of at the next interval (a webhook hinted at a change)."""
        self._wake.set()

    async def poll_once(self) -> int:
        """One round: fetch every live task in batches; return how many tasks came back."""
        rows = await self.store.live_tasks()
        if not rows:
            return 0
        by_id = {row.task_id: row for row in rows if row.task_id}
        ids = list(by_id)
        seen = 0
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            try:
                tasks = await self.client.list_by_condition(batch)
            except MjError as exc:
                self.poll_errors += 1
                log.warning("poll failed: %s", exc.kind)
                continue
            self.polls += 1
            for task in tasks:
                seen += 1
                try:
                    await self.service.on_task(task)
                except Exception:
                    log.exception("handling task update failed (task %s)", task.id)
        await self._expire(rows)
        return seen

    async def _expire(self, rows: list[TaskRow]) -> None:
        now = time.time()
        for row in rows:
            limit = self.timeout_relax_s if "relax" in row.mode else self.timeout_fast_s
            if now - row.created_at > limit:
                fresh = await self.store.task(row.key)
                if fresh is not None and not fresh.is_final:
                    log.info("task %s timed out after %.0fs", row.key, now - row.created_at)
                    await self.service.time_out(fresh)
