"""Follows every live task until it is delivered.

One ``list-by-condition`` request asks for up to ``BATCH`` live ids at once (not one request
per task), and the answer goes through ``Service.on_tasks``, whose merge only moves forward.
Tasks live in the store, so a restart simply carries on: the first tick after start resumes
them, and results that finished while the bot was down are delivered once. A result whose
posting failed is tried again every ``resend_after_s``, for a day.

Each task is asked about once per interval. With more live tasks than one request holds, the
interval is cut into as many ticks as requests are needed and each tick asks for the tasks
waited on longest: the same requests as asking for everything at once, but the results of an
interval arrive in small groups instead of one burst that queues for image conversion and the
chats' send slots.

While notifyHook callbacks flow the poller is the safety net: it polls at a third of its pace
and skips the tasks that called back lately (``heard_at``), whose next callback is on its way;
a task that went quiet for ``quiet_s`` (a lost callback) is asked about again, and every task
at least every ``SAFETY_NET_S`` whatever its callbacks claim, so forged progress callbacks
cannot keep a task from being followed.

Several instances may share the database: each follows only the tasks it holds the lease of
(``Store.lease_tasks``: those it holds, and free or lapsed ones it takes), so each live task is
asked about by one instance, and the API requests per task stay those of one instance however
many run. Leases are kept alive by the heartbeat (``bot.tracking.lease``); a dead instance's
leases lapse after the TTL, and the next tick of another instance takes them. Callbacks reach
whichever instance the load balancer picks: there the merge (forward only, row-locked) and the
delivery claim make sure a result is handled once, whoever holds the lease. Progress is shown
by the holder alone: every ``watch_s`` it reads the rows of its tasks that changed (steps
another instance merged) and edits their progress messages (``Service.show_stored``). Every
``take_over_every_s`` the tracker also finishes what dead instances left half done
(``Service.take_over``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable

from bot.metrics import Metrics
from bot.mj.client import MjClient, MjError
from bot.store import Store, TaskRow
from bot.tracking.lease import HEARTBEAT_S, LEASE_TTL_S
from bot.usecases import Service

log = logging.getLogger("bot.tracker")

# Ids per list-by-condition request. Smaller slices spread the results found more evenly over
# the interval at the cost of more requests: in the benchmark (500 tasks in flight, 2 s), 100
# gave a p50 of 1.13-1.17 s from success to the chat and 0.27 requests per task; 50 gives
# 1.08-1.12 s and 0.5 requests per task, still 30x fewer than fetching each task every 3 s.
BATCH = 50
RECONCILE_FACTOR = 3  # poll this much slower while notifyHook callbacks are arriving
NEVER = float("-inf")  # the time of what has not happened yet
SAFETY_NET_S = 60.0  # every live task is asked about at least this often, callbacks or not
TAKE_PER_TICK = 500  # free or lapsed tasks one tick takes at most (a dead instance's, say)
TAKE_OVER_GRACE_S = 10.0  # how long a stop waits for a takeover under way (as work in flight)
# With several instances: how often the holder looks for steps merged elsewhere (what a
# progress message may lag behind a callback that reached another instance), and how far
# back each look reaches again (``updated_at`` is each writer's clock, and a transaction
# stamped earlier may commit later: what is seen twice is shown once).
WATCH_S = 1.0
WATCH_OVERLAP_S = 2.0


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
        resend_after_s: float = 30.0,
        hooks_flowing: Callable[[], bool] = lambda: False,
        heard_at: Callable[[str], float] = lambda task_id: NEVER,
        metrics: Metrics | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        take_over_every_s: float = HEARTBEAT_S,
        watch_s: float = 0.0,
    ) -> None:
        self.store = store
        self.client = client
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.timeout_fast_s = timeout_fast_s
        self.timeout_relax_s = timeout_relax_s
        self.resend_after_s = resend_after_s
        self._resent_at = time.monotonic()
        self.hooks_flowing = hooks_flowing
        self.heard_at = heard_at
        self.metrics = metrics if metrics is not None else Metrics()
        self.counts = self.metrics.tracking
        self._asked: dict[str, float] = {}  # task id -> when it was last asked about
        # task id -> the hashes of the stored snapshots it may have from this instance's hand
        # (as last read, or as its own poll's merge wrote it), and when it was seen to move by
        # another's (a callback on another instance)
        self._snapshots: dict[str, frozenset[int]] = {}
        self._moved: dict[str, float] = {}
        self._tick = -1  # which tick of the interval this is
        self.me = store.instance.id  # whose leases these are
        self.lease_ttl_s = lease_ttl_s
        self.take_over_every_s = take_over_every_s
        self._took_over_at = time.monotonic()
        self._taking_over: asyncio.Task[None] | None = None
        self.watch_s = watch_s  # 0: one instance, every step is merged (and shown) here

    async def run(self) -> None:
        """Resume, then poll forever (until cancelled), one slice of the live tasks per tick."""
        await self.service.resume()
        watching = asyncio.create_task(self._watch_forever()) if self.watch_s > 0 else None
        try:
            await self._poll_forever()
        finally:
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            # A takeover may be posting a dead instance's result: cut off, it would stay
            # claimed by this instance, and be posted again once this one's heartbeat ends.
            if self._taking_over is not None:
                await asyncio.wait({self._taking_over}, timeout=TAKE_OVER_GRACE_S)
                self._taking_over.cancel()
                await asyncio.gather(self._taking_over, return_exceptions=True)

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            ticks = 1
            try:
                ticks = await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poll failed")
            # While callbacks flow, polling is only the safety net: a lost callback then
            # costs a few intervals, not a task.
            factor = RECONCILE_FACTOR if self.hooks_flowing() else 1
            tick = self.poll_interval_s * factor / ticks
            await asyncio.sleep(max(0.0, started + tick - loop.time()))

    async def poll_once(self) -> int:
        """One tick: ask for the live tasks waited on longest; return the ticks per interval."""
        rows = await self.store.lease_tasks(self.me, self.lease_ttl_s, TAKE_PER_TICK)
        ids = [row.task_id for row in rows if row.task_id]
        for gone in self._asked.keys() - set(ids):
            del self._asked[gone]
        self._note_moves(rows)
        if self.hooks_flowing():
            ids = self._quiet(ids)
        ticks = max(1, math.ceil(len(ids) / BATCH))
        if ids:
            ids.sort(key=lambda task_id: self._asked.get(task_id, 0.0))
            # The shares of one interval's ticks add up to every task exactly once.
            self._tick = (self._tick + 1) % ticks
            share = len(ids) // ticks + (1 if self._tick < len(ids) % ticks else 0)
            batch = ids[:share]
            now = time.monotonic()
            for task_id in batch:
                self._asked[task_id] = now
            try:
                tasks = await self.client.list_by_condition(batch)
            except MjError as exc:
                self.counts.poll_errors += 1
                log.warning("poll failed: %s", exc.kind)
            else:
                self.counts.polls += 1
                await self.service.on_tasks(tasks)
                for task in tasks:  # what this poll's merge may have stored (rules.py)
                    mine = hash(json.dumps(task.raw, ensure_ascii=False))
                    self._snapshots[task.id] = self._snapshots.get(task.id, frozenset()) | {mine}
        await self._expire(rows)
        self._take_over()
        if time.monotonic() - self._resent_at >= self.resend_after_s:
            self._resent_at = time.monotonic()
            await self.service.retry_unsent(self.resend_after_s)
        return ticks

    async def _watch_forever(self) -> None:
        """Show the steps of this instance's tasks that other instances merged."""
        since = time.time() - WATCH_OVERLAP_S
        while True:
            await asyncio.sleep(self.watch_s)
            looked = time.time()
            try:
                rows = await self.store.moved_tasks(self.me, since)
            except Exception:
                log.exception("looking for steps merged elsewhere failed")
                continue
            since = looked - WATCH_OVERLAP_S
            self.service.show_stored(rows)

    def _take_over(self) -> None:
        """Now and then, in the background (it may post many results, and polls must not
        wait for that): what dead instances left half done."""
        if time.monotonic() - self._took_over_at < self.take_over_every_s:
            return
        if self._taking_over is not None and not self._taking_over.done():
            return
        self._took_over_at = time.monotonic()
        self._taking_over = asyncio.create_task(self._take_over_once())

    async def _take_over_once(self) -> None:
        try:
            await self.service.take_over()
        except Exception:
            log.exception("taking over a dead instance's work failed")

    def _note_moves(self, rows: list[TaskRow]) -> None:
        """Tasks whose stored snapshot moved since the last tick, though this instance did not
        poll them: a callback moved them, on whichever instance the balancer sent it to. They
        count as heard, so a fleet polls no more than one instance would (``_quiet``)."""
        now = time.monotonic()
        known: dict[str, frozenset[int]] = {}
        for row in rows:
            if not row.task_id:
                continue
            seen = hash(row.snapshot)
            before = self._snapshots.get(row.task_id)
            if before is not None and seen not in before:
                self._moved[row.task_id] = now
            known[row.task_id] = frozenset({seen})
        self._snapshots = known
        for gone in self._moved.keys() - known.keys():
            del self._moved[gone]

    def _quiet(self, ids: list[str]) -> list[str]:
        """The tasks worth a poll while callbacks flow: silent for a whole (slowed) interval,
        here or, as far as their stored state shows, on another instance; or not asked about
        for SAFETY_NET_S."""
        now = time.monotonic()
        quiet_s = self.poll_interval_s * RECONCILE_FACTOR
        return [
            task_id
            for task_id in ids
            if now - max(self.heard_at(task_id), self._moved.get(task_id, NEVER)) >= quiet_s
            # the safety net counts from when the task was first seen
            or now - self._asked.setdefault(task_id, now) >= SAFETY_NET_S
        ]

    async def _expire(self, rows: list[TaskRow]) -> None:
        now = time.time()
        for row in rows:
            limit = self.timeout_relax_s if "relax" in row.mode else self.timeout_fast_s
            if now - row.created_at > limit:
                fresh = await self.store.task(row.key)
                if fresh is not None and not fresh.is_final:
                    log.info("task %s timed out after %.0fs", row.key, now - row.created_at)
                    self.counts.timed_out += 1
                    await self.service.time_out(fresh)
