"""The notifyHook receiver (and the status endpoint beside it), on ``tracking.listen``.

The API family sends callbacks unauthenticated, lossy and out of order (mj-api.md §9). What
vouches for one is the URL it arrives on: an unguessable secret we hand only to the API with
each submit. Wrong secrets, unknown ids and bad bodies are dropped and counted; the body size
is bounded. What a callback may do depends on what it claims:

- **Progress** (NOT_START, SUBMITTED, IN_PROGRESS) through the secret URL is a hint worth
  showing as it is: its percentage and preview go to the progress message, batched over a
  short window, without asking the API. Only those fields are kept (no buttons, no prompt),
  and only for a task that is itself in progress (a task waiting for a question's answer is
  left alone). A forged one can show a wrong percentage or preview until the next real step;
  it cannot finish a task, post a result, or touch money.
- **Anything else** (SUCCESS, FAILURE, CANCEL, MODAL, a state we do not know) decides what
  users get and what they pay, so it is confirmed: the ids waiting are asked about together in
  one list request, sent when ``confirm_wait_s`` has passed since the first of them or when
  ``CONFIRM_BATCH`` are waiting. Only the API's answer is merged, so a forged SUCCESS posts
  nothing and settles nothing. The wait caps confirmations at about three requests a second
  however many tasks finish, which is what makes callbacks cheaper than polling (issue 14).
  Its price is latency: with ``n`` tasks finishing a second, a result waits about
  ``confirm_wait_s / 2`` on average and a confirmation covers ``1 + n * confirm_wait_s``
  tasks (at 10 a second: ~0.15 s, ~4 tasks, ~0.25 requests per task). Meanwhile the image a
  SUCCESS names is downloaded (``prefetch``), used only if the API's answer names it too.

With several instances (``shared``) a confirmation covers the whole fleet: each final
callback is also queued in the store. One queued when no other was queued within a window
opens the fleet's window: when it ends, its instance takes every one queued
(``Store.take_confirmations``), whoever heard them. A callback that joins an open window
waits for that take. If it is still queued ``BACKSTOP`` windows later (a take can miss one
queued while it ran; its instance may have died), its own instance takes the whole queue.
Before, that late take was of its own callbacks only, and what a take had missed stayed in
the queue: every callback after it joined a window nobody would take, and waited out its
backstop (0.4-1 s more for most results at 1,000 tasks, in some runs; README, Performance).
Confirmed per instance, three instances sent 1.8x the list requests of one; with every
instance's window taking the whole queue, 2.2x at 1,000 tasks (README, Performance). The
taker posts what it confirmed, so it fetches the images early itself. A queued callback whose
taker dies unconfirmed is found by the poller.

The tracker polls, while callbacks flow, only the tasks that have gone quiet (``heard_at``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable

from aiohttp import web

from bot.metrics import Metrics
from bot.mj.client import MjClient, MjError
from bot.mj.models import Task, TaskState, loads
from bot.serving import READ_TIMEOUT_S, serve
from bot.store import Store
from bot.tracking.status import Report, local_only
from bot.usecases import Service

log = logging.getLogger("bot.hooks")

MAX_BODY = 256 * 1024  # a task JSON is a few KB; anything bigger is not a callback
HOOK_PATH = "/mj/hook/"
# Final callbacks are confirmed together: at most this long after the first of a batch
# (what a result may wait for its confirmation), or at once when this many are waiting. In
# `bench.run --quick` (~6 tasks finishing a second) 0.25 s gave 0.38 tracking requests per
# task (2.7 tasks per confirmation); the full run finishes ~10 a second.
CONFIRM_WAIT_S = 0.3
CONFIRM_BATCH = 50
CONFIRM_LIST_MAX = 100  # ids one confirmation asks about at most (taken from the fleet's queue)
BACKSTOP = 3  # of confirm_wait_s: when a callback that joined another's window is taken here
HINT_WINDOW_S = 0.1  # progress callbacks this close together are merged in one transaction
NEVER = float("-inf")
HEARD_FOR_S = 3600.0  # how long a task's last callback time is kept (longer than any task)
# Shown as they come; everything else is confirmed first.
PROGRESS_STATES = frozenset({TaskState.NOT_START, TaskState.SUBMITTED, TaskState.IN_PROGRESS})


async def hook_secret(store: Store) -> str:
    """The secret path segment, kept in the store so in-flight tasks keep a valid URL."""
    return await store.keep_hook_secret(secrets.token_urlsafe(24))


def progress_hint(task: Task) -> Task | None:
    """What a progress callback may show: its id, state, percentage and preview, nothing
    else of what it claims (None for any other state)."""
    if task.status not in PROGRESS_STATES:
        return None
    raw = {"id": task.id, "status": task.status.value, "progress": task.raw.get("progress")}
    if task.image_url:
        raw["imageUrl"] = task.image_url
    return Task.from_json(raw)


class HookServer:
    def __init__(
        self,
        store: Store,
        client: MjClient,
        service: Service,
        secret: str,
        report: Report,
        *,
        metrics: Metrics | None = None,
        confirm_wait_s: float = CONFIRM_WAIT_S,
        prefetch: Callable[[str], None] = lambda url: None,
        read_timeout_s: float = READ_TIMEOUT_S,
        shared: bool = False,
    ) -> None:
        self.store = store
        self.client = client
        self.service = service
        self.secret = secret
        self.confirm_wait_s = confirm_wait_s
        # A SUCCESS names its image: fetching it while the confirmation waits takes the
        # download off the result's path (the bytes serve only the URL the API confirms).
        self.prefetch = prefetch
        self.metrics = metrics if metrics is not None else Metrics()
        self.counts = self.metrics.hooks
        self.last_hook_at = 0.0
        self._heard: dict[str, float] = {}  # task id -> its last callback (monotonic)
        self._hints: dict[str, Task] = {}  # progress to show, the furthest per task
        self._finals: set[str] = set()  # ids called back final, waiting to be confirmed
        self.shared = shared  # confirmations for the fleet: queued in the store (see above)
        self._queued: set[str] = set()  # of _finals, those queued there
        self._more = False  # the fleet's queue held more than one confirmation takes
        self._due = 0.0  # when the finals waiting here are confirmed (monotonic)
        self._wake = asyncio.Event()  # look again: CONFIRM_BATCH are waiting, or _due moved
        self._showing: asyncio.Task[None] | None = None
        self._confirming: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()  # confirmed batches being handled
        self._runner: web.AppRunner | None = None
        self.read_timeout_s = read_timeout_s
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(HOOK_PATH + "{secret}", self._hook)
        app.router.add_get("/status", local_only(report))
        self.app = app

    async def start(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self._runner, _ = await serve(
            self.app, host.strip("[]"), int(port), read_timeout_s=self.read_timeout_s
        )
        log.info("hook receiver and status on %s", listen)

    async def stop(self) -> None:
        for job in (self._showing, self._confirming, *self._handling):
            if job is not None:
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def flowing(self) -> bool:
        """Callbacks arrived recently: the poller may slow down to reconciliation pace."""
        return time.monotonic() - self.last_hook_at < 60

    def heard_at(self, task_id: str) -> float:
        """When this task last called back (``time.monotonic()``; -inf: never)."""
        return self._heard.get(task_id, NEVER)

    async def _hook(self, request: web.Request) -> web.Response:
        self.counts.received += 1
        if not hmac.compare_digest(request.match_info["secret"], self.secret):
            self.counts.dropped_secret += 1
            return web.Response(status=404)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._invalid(413, f"a callback is at most {MAX_BODY} bytes")
        except Exception as exc:  # a body that cannot be read (bad Content-Encoding, cut off)
            log.info("unreadable callback body: %s", type(exc).__name__)
            return self._invalid(400, "the body cannot be read")
        try:
            task = Task.from_json(loads(body))
        except Exception:  # nested beyond reason, or a type the parser did not foresee
            task = None
        if task is None:
            return self._invalid(400, "not a task object")
        row = await self.store.task_by_id(task.id)
        if row is None:
            self.counts.dropped_unknown += 1
            return web.Response(status=200)  # not ours: say nothing useful to a prober
        now = self.last_hook_at = time.monotonic()
        self._heard[task.id] = now
        # Answer at once; show or confirm after responding (the sender does not wait).
        hint = progress_hint(task)
        if hint is not None and row.status in PROGRESS_STATES:
            self._show(hint)
        elif not row.is_final:
            image = task.image_url if task.status is TaskState.SUCCESS else ""
            opens = True
            if self.shared:
                try:
                    opens = await self.store.queue_confirmation(task.id, image, self.confirm_wait_s)
                    self._queued.add(task.id)
                except Exception as exc:  # confirmed here alone, as one instance would
                    log.warning("queueing a confirmation failed: %s", type(exc).__name__)
            self._confirm(task.id, now, opens)
            if image:
                self.prefetch(image)
        return web.Response(status=200)

    def _invalid(self, status: int, why: str) -> web.Response:
        """A clear 4xx, and the connection closed: its body may be half read."""
        self.counts.dropped_invalid += 1
        response = web.Response(status=status, text=f"{status}: {why}\n")
        response.force_close()
        return response

    def _show(self, hint: Task) -> None:
        known = self._hints.get(hint.id)
        if known is None or hint.rank >= known.rank:
            self._hints[hint.id] = hint
        if self._showing is None or self._showing.done():
            self._showing = asyncio.create_task(self._show_soon())

    async def _show_soon(self) -> None:
        await asyncio.sleep(HINT_WINDOW_S)
        while self._hints:
            hints, self._hints = list(self._hints.values()), {}
            self.counts.shown += len(hints)
            try:
                await self.service.on_tasks(hints)
            except Exception:
                log.exception("showing progress callbacks failed")

    def _confirm(self, task_id: str, now: float, opens: bool = True) -> None:
        """Confirm ``task_id`` with the next batch: ``confirm_wait_s`` after the first of a
        window it ``opens``; one that joins the fleet's window opened elsewhere is confirmed
        by that instance's take, and only if it is still queued ``BACKSTOP`` times that long
        after (that instance died, or took the queue just before it came) is it taken here,
        with everything queued then."""
        if not self._finals:
            self._due = math.inf
        due = now + self.confirm_wait_s * (1 if opens else BACKSTOP)
        if due < self._due:
            self._due = due
            self._wake.set()  # a wait for a later due (a backstop) is cut short
        self._finals.add(task_id)
        if len(self._finals) >= CONFIRM_BATCH:
            self._wake.set()
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.create_task(self._confirm_soon())

    async def _confirm_soon(self) -> None:
        while self._finals or self._more:
            while (wait := self._due - time.monotonic()) > 0 and len(self._finals) < CONFIRM_BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            ids, self._finals = sorted(self._finals), set()
            if self.shared:
                ids = await self._fleet_batch(ids)
                if not ids:
                    continue  # another instance took them: confirmed there
            try:
                tasks = await self.client.list_by_condition(ids)
            except MjError as exc:
                self.metrics.tracking.confirm_errors += 1
                log.info("confirming callbacks failed (%s); the poller will ask", exc.kind)
                for task_id in ids:  # not quiet for the poller: ask about them soon
                    self._heard.pop(task_id, None)
                continue
            self.metrics.tracking.confirms += 1
            self.counts.confirmed += len(tasks)
            self._forget(task.id for task in tasks if task.is_final)
            # Handled beside the next window, not before it: a window opened here is the
            # fleet's, and its take should not wait for this batch's merge (merges only move
            # a task forward, so two batches handled at once cannot undo each other).
            job = asyncio.create_task(self._handle(tasks))
            self._handling.add(job)
            job.add_done_callback(self._handling.discard)

    async def _handle(self, tasks: list[Task]) -> None:
        try:
            await self.service.on_tasks(tasks)
        except Exception:
            log.exception("handling confirmed callbacks failed")

    async def _fleet_batch(self, mine: list[str]) -> list[str]:
        """What this confirmation asks about: every queued one in the fleet, and those of
        ``mine`` that could not be queued (the store was unreachable then)."""
        alone = [task_id for task_id in mine if task_id not in self._queued]
        self._queued.difference_update(mine)
        try:
            taken = await self.store.take_confirmations(CONFIRM_LIST_MAX)
        except Exception as exc:  # then only ours; what stays queued goes with a later take
            log.warning("taking the fleet's confirmations failed: %s", type(exc).__name__)
            self._more = False  # (or the poller finds it): no round at once, no busy loop
            return mine
        heard_here = set(mine)
        for task_id, image in taken:
            if image and task_id not in heard_here:
                self.prefetch(image)  # posted here once confirmed: fetched early here too
        self._more = len(taken) == CONFIRM_LIST_MAX  # more queued: the next round at once
        return sorted({task_id for task_id, _ in taken} | set(alone))

    def _forget(self, finished: Iterable[str]) -> None:
        """Drop what is kept per task for finished ones, and for any not heard of lately."""
        for task_id in finished:
            self._heard.pop(task_id, None)
        if len(self._heard) > 1000:
            old = time.monotonic() - HEARD_FOR_S
            for task_id in [k for k, at in self._heard.items() if at < old]:
                del self._heard[task_id]
