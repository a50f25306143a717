"""Delivery: every forward step of a task merged, progress edited in place, the result posted
once, and what a restart left half done finished."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TypeVar

from bot import buttons, logs, media, results
from bot.chat import MessageRef
from bot.i18n import t
from bot.mj.client import MjClient
from bot.mj.models import Task, TaskState
from bot.outbox import Outbox
from bot.store import Store, TaskRow
from bot.usecases.base import log
from bot.usecases.questions import Asker
from bot.usecases.runtime import Runtime
from bot.usecases.submitter import Submitter, note, title
from bot.views import Choice, View, headline, progress_view

# Per-task caches, bounded (``_put``): the previews as JPEG (~30-60 KB each), and what was shown.
PREVIEWS_KEPT = 512
SHOWN_KEPT = 8192
K = TypeVar("K")
V = TypeVar("V")


class Delivery:
    """What the tracker and the notifyHook receiver report, shown in the chats: a plain class
    handed what it uses (``Service`` builds it)."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        runtime: Runtime,
        submitter: Submitter,
        asker: Asker,
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.runtime = runtime
        self.spawn = runtime.spawn
        self.submitter = submitter
        self.asker = asker
        self._previews: dict[str, tuple[str, bytes]] = {}  # key -> (url, jpeg)
        # task id -> (rank, preview url) last handled: a cache only, the store's merge decides
        self._last_seen: dict[str, tuple[tuple[int, int], str]] = {}
        # key -> the step and progress message last queued for showing (``show_stored``)
        self._shown: dict[str, tuple[tuple[tuple[int, int], str], str | None]] = {}
        self.me = store.instance.id

    async def on_tasks(self, tasks: Iterable[Task]) -> None:
        """Updates from the API (a poll, confirmed callbacks): merge them, show what changed.

        The merge is one transaction for all of them; progress edits are queued, and each
        result is posted in the background, so one slow chat holds up nothing else.
        """
        news = [task for task in tasks if self._last_seen.get(task.id) != _news(task)]
        if not news:
            return  # the same steps again (most polls): skip the database entirely
        merged = await self.store.merge(news)
        for task in news:
            if task.is_final:
                self._last_seen.pop(task.id, None)
            else:
                self._last_seen[task.id] = _news(task)
        for row, task in merged:
            if task.is_final:
                self._shown.pop(row.key, None)
                self.spawn(self._finish(row))
            elif self._holds(row):
                with logs.context(task=row.key, chat=row.chat_id):
                    self._show_progress(row, task)

    def show_stored(self, rows: Iterable[TaskRow]) -> None:
        """Steps of tasks this instance holds that another instance merged (the tracker's
        watch): shown here, so one instance edits each progress message."""
        for row in rows:
            task = row.task
            if task is None or task.is_final or not self._holds(row):
                continue
            if self._shown.get(row.key) == (_news(task), _encoded(row.ref("progress"))):
                continue  # shown already (this instance merged it, or an earlier watch)
            self._last_seen[task.id] = _news(task)
            with logs.context(task=row.key, chat=row.chat_id):
                self._show_progress(row, task)

    def _holds(self, row: TaskRow) -> bool:
        """Whether this instance shows the task's progress: the holder of its lease does, or
        anyone while nobody holds it. With several instances every callback's step is merged
        where it lands, but its progress message is edited by one of them: edited by each
        that heard a step, it took 2.5-12x the edits and every instance's idea of the message
        (text or photo) went stale (README, Performance)."""
        owner = row.lease_owner
        return owner is None or owner == self.me or (row.lease_until or 0.0) < time.time()

    async def _finish(self, row: TaskRow) -> None:
        """A final task: settle its charge and post its result. Both are safe to repeat, so
        whatever a crash cut off is simply done again (resume, retry_unsent)."""
        with logs.context(task=row.key, chat=row.chat_id):
            try:
                log.info("task %s: %s", row.task_id, row.status)
                # Independent of each other: the ledger need not hold up the result.
                await asyncio.gather(
                    self.submitter.settle(row.charge_id, success=row.status == TaskState.SUCCESS),
                    self.deliver(row),
                )
            except Exception:
                log.exception("finishing the task failed")

    def _show_progress(self, row: TaskRow, task: Task) -> None:
        ref = row.ref("progress")
        _put(self._shown, row.key, (_news(task), _encoded(ref)), SHOWN_KEPT)
        if ref is None:
            return
        percent = None if task.status in (TaskState.NOT_START, TaskState.MODAL) else task.progress

        async def view() -> View:
            # Built when the edit's turn comes: a step coalesced away costs no preview download.
            preview = await self._preview(row.key, task.image_url) if task.image_url else None
            typical = await self.submitter.typical_s(row) if percent is None else None
            return progress_view(
                row.prompt,
                title(row),
                row.lang,
                percent=percent,
                mode=row.mode,
                preview=preview,
                note=note(row),
                typical=typical,
            )

        async def remember(new_ref: MessageRef) -> None:
            if new_ref != ref:  # a text message became a photo: the same step, shown
                _put(self._shown, row.key, (_news(task), _encoded(new_ref)), SHOWN_KEPT)
                await self.store.update(row.key, progress_ref=new_ref)

        self.outbox.edit_later(ref, view, remember)

    async def _preview(self, key: str, url: str) -> bytes | None:
        cached = self._previews.get(key)
        if cached and cached[0] == url:
            return cached[1]
        try:
            data = await self.runtime.downloader.get(url)
            jpeg = await self.runtime.convert(media.to_preview, data)
        except media.MediaError:
            return cached[1] if cached else None
        _put(self._previews, key, (url, jpeg), PREVIEWS_KEPT)
        return jpeg

    async def deliver(self, row: TaskRow) -> None:
        """Post the final result exactly once (a new message, so people are notified)."""
        # The download and conversion start at once, beside the claim: they only cost time
        # when the claim is lost (a rare race), and they are most of the time a result takes.
        building = asyncio.ensure_future(self._final_view(row))
        if not await self.store.claim_delivery(row.key):
            building.cancel()
            await asyncio.gather(building, return_exceptions=True)  # nothing left unretrieved
            return
        self._previews.pop(row.key, None)
        # Read after the claim: a slow progress message may have been adopted since the row
        # was read (none is adopted after the claim).
        fresh = await self.store.task(row.key)
        progress = (fresh or row).ref("progress")
        if progress:
            self.outbox.discard_edits(progress)
        try:
            view = await building
            ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        except Exception:
            log.exception("posting the result failed; it will be tried again")
            await self.store.release_delivery(row.key)
            return
        await self.store.delivered(row.key, ref)
        self.outbox.metrics.deliveries.results += 1
        try:
            if row.status == TaskState.SUCCESS:
                settings = await self.store.user_settings(row.platform, row.user_id)
                if settings.delivery == "file":
                    original = await results.original(self.runtime, row)
                    if original:
                        await self.outbox.send(
                            row.platform, row.chat_id, results.file_view(row, original), ref
                        )
        finally:
            # Last: a delete waits for a spare slot (bot/outbox.py), the file need not.
            if progress:
                await self.outbox.delete(progress)
                await self.store.update(row.key, progress_ref=None)

    async def _final_view(self, row: TaskRow) -> View:
        failed = row.status != TaskState.SUCCESS
        money = await self.submitter.money_said(row) if failed else ""
        return await results.final_view(self.runtime, row, money)

    async def retry_unsent(self, idle_s: float) -> int:
        """Post again the results whose posting failed (the chat refused, the platform was
        down) at least ``idle_s`` ago; return how many were tried."""
        rows = await self.store.unsent(idle_s)
        for row in rows:
            self.spawn(self._finish(row))
        return len(rows)

    async def time_out(self, row: TaskRow) -> None:
        """A task the API never finished: tell the user instead of leaving it dangling."""
        await self.store.update(
            row.key, status=TaskState.TIMEOUT, error="timeout", finished_at=time.time()
        )
        fresh = await self.store.task(row.key)
        if fresh is not None:
            await self._finish(fresh)

    async def resume(self) -> None:
        """After a restart: finish what dead instances (the previous process) left half done
        (``take_over``), and remove the progress messages of delivered tasks."""
        await self.take_over()
        for row in await self.store.stale_progress():
            ref = row.ref("progress")
            if ref is not None:
                await self.outbox.delete(ref)
            await self.store.update(row.key, progress_ref=None)

    async def take_over(self) -> None:
        """Finish what instances that died (no live heartbeat) left half done; at start and
        now and then while running (``Tracker``), so a fleet loses nothing to kill -9.

        Results that finished but never reached their chat are posted (once: the delivery
        claim); a submit cut off before the API answered is reported with a retry button,
        since nobody can know whether it was accepted; an answer cut off the same way is
        looked up, since its task is known (_resume_answer). The store hands each of those
        two to one instance only.
        """
        for row in await self.store.undelivered():
            await self._finish(row)
        for row in await self.store.interrupted():
            await self._interrupted(row)
        for row in await self.store.answers_in_flight():
            with logs.context(task=row.key, chat=row.chat_id):
                await self._resume_answer(row)

    async def _interrupted(self, row: TaskRow) -> None:
        """A submit whose fate nobody knows: refunded, final, and said so (with 🔁 where
        the command can simply be run again)."""
        await self.store.update(
            row.key, status=TaskState.REJECTED, error="interrupted", finished_at=time.time()
        )
        await self.submitter.settle(row.charge_id, success=False)
        progress = row.ref("progress")
        money = await self.submitter.money_said(row)  # the same units before or after it
        text = headline(f"⚠️ {t('submit.interrupted', row.lang)}", row.prompt) + f"\n{money}"
        rows: tuple[tuple[Choice, ...], ...] = ()
        if row.kind == "imagine":
            rows = ((Choice(t("btn.retry", row.lang), buttons.encode(row.key, "retry")),),)
        view = View(text, rows=rows)
        ref = await self.outbox.edit(progress, view) if progress else None
        if ref is None:
            ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        await self.store.delivered(row.key, ref)
        await self.store.update(row.key, progress_ref=None)  # it is the notice now

    async def _resume_answer(self, row: TaskRow) -> None:
        """An answer the previous process claimed and paid for, killed before the API
        answered its submit. Unlike a new submit, its task is known (a modal goes on under
        the id of the task that asked), so the API is asked how far it is:

        - still waiting for an answer: the answer never arrived. It is refunded and the
          question asked again, with the lost answer as its prefill: answering is the retry.
        - moved on: the answer was accepted. The task is followed from here like any other
          and its charge stands (settled when it finishes).
        - unknown, or the API cannot be asked: nobody knows, as for a submit (refunded,
          reported).
        """
        assert row.task_id is not None  # asked by this task id (questions.Asker.record)
        try:
            task = await self.client.fetch(row.task_id)
        except Exception as exc:
            log.warning("an answer's task cannot be looked up: %s", type(exc).__name__)
            task = None
        if task is None or task.id != row.task_id:
            log.info("an answer cut off by the restart: its task is unknown; reported")
            await self._interrupted(row)
        elif task.status is TaskState.MODAL:
            log.info("an answer cut off by the restart never arrived; asking again")
            await self._ask_again(row)
        else:
            log.info("an answer cut off by the restart was accepted (%s); following", task.status)
            if row.ref("progress") is None and not task.is_final:
                view = progress_view(
                    row.prompt, title(row), row.lang, mode=row.mode, note=note(row)
                )
                ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
                await self.store.update(row.key, progress_ref=ref)
            await self.on_tasks([task])

    async def _ask_again(self, row: TaskRow) -> None:
        """An answer that never reached the API: refunded, and its question asked again
        (questions.Asker). Refunded first: a crash between the two leaves the answer in
        flight, and the next start comes here again (settling twice changes nothing); never
        an orphaned charge."""
        modal = await self.store.modal(row.key)
        if modal is None:
            return
        await self.submitter.settle(row.charge_id, success=False)
        await self.asker.ask_again(row, modal)


def _put(cache: dict[K, V], key: K, value: V, most: int) -> None:
    """Into a cache of at most ``most`` entries, the oldest going first. The entries of a
    task are dropped when this instance finishes it; one another instance finished (a fleet)
    stays until pushed out here."""
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > most:
        del cache[next(iter(cache))]


def _encoded(ref: MessageRef | None) -> str | None:
    return ref.encode() if ref is not None else None


def _news(task: Task) -> tuple[tuple[int, int], str]:
    """What makes an update worth a look: a further step or a new preview image."""
    return (task.rank, task.image_url)
