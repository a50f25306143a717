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
from bot.mj.models import Task
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
        self._busy: set[str] = set()  # task ids whose last update is still being handled
        self._jobs: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Resume, then poll forever (until cancelled), one round per interval."""
        await self.service.resume()
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                try:
                    await self.poll_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("poll failed")
                # While callbacks flow, polling is only the safety net: a lost callback then
                # costs a few intervals, not a task.
                factor = RECONCILE_FACTOR if self.hooks_flowing() else 1
                wait = max(0.0, started + self.poll_interval_s * factor - loop.time())
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            for job in self._jobs:
                job.cancel()
            await asyncio.gather(*self._jobs, return_exceptions=True)

    def wake(self) -> None:
        """Poll now instead of at the next interval (a webhook hinted at a change)."""
        self._wake.set()

    async def poll_once(self) -> int:
        """One round: every live task in batched requests; return how many came back.

        Each update is handled in its own asyncio task: a result waiting for its chat's send
        slot must not hold up the other chats or the next round. A task still being handled
        from the previous round is skipped (the merge only moves forward anyway).
        """
        rows = await self.store.live_tasks()
        if not rows:
            return 0
        ids = [row.task_id for row in rows if row.task_id]
        batches = [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]
        answers = await asyncio.gather(*(self._list(batch) for batch in batches))
        seen = 0
        for tasks in answers:
            for task in tasks:
                seen += 1
                if task.id in self._busy:
                    continue
                self._busy.add(task.id)
                job = asyncio.create_task(self._handle(task))
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)
        await self._expire(rows)
        return seen

    async def _list(self, batch: list[str]) -> list[Task]:
        try:
            tasks = await self.client.list_by_condition(batch)
        except MjError as exc:
            self.poll_errors += 1
            log.warning("poll failed: %s", exc.kind)
            return []
        self.polls += 1
        return tasks

    async def _handle(self, task: Task) -> None:
        try:
            await self.service.on_task(task)
        except Exception:
            log.exception("handling task update failed (task %s)", task.id)
        finally:
            self._busy.discard(task.id)

    async def _expire(self, rows: list[TaskRow]) -> None:
        now = time.time()
        for row in rows:
            limit = self.timeout_relax_s if "relax" in row.mode else self.timeout_fast_s
            if now - row.created_at > limit:
                fresh = await self.store.task(row.key)
                if fresh is not None and not fresh.is_final:
                    log.info("task %s timed out after %.0fs", row.key, now - row.created_at)
                    await self.service.time_out(fresh)
