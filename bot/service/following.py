"""Following tasks: every forward step merged, progress edited in place, the result posted
once, and what a restart left half done finished."""

from __future__ import annotations

import time

from bot import buttons, logs, media, results
from bot.chat import MessageRef
from bot.i18n import t
from bot.mj.models import Status, Task
from bot.service.base import ServiceBase, log
from bot.store import REJECTED, TaskRow
from bot.views import Choice, View, headline, progress_view


class Following(ServiceBase):
    async def on_task(self, task: Task) -> None:
        """One update from the API (poll or webhook): merge it, then show what changed."""
        news = (task.rank, task.image_url)
        if self._last_seen.get(task.id) == news:
            return  # the same step again (most polls): skip the database entirely
        row = await self.store.task_by_id(task.id)
        if row is None:
            return
        with logs.context(task=row.key, chat=row.chat_id):
            await self._on_task(row, task)
        if task.is_final:
            self._last_seen.pop(task.id, None)
        else:
            self._last_seen[task.id] = news

    async def _on_task(self, row: TaskRow, task: Task) -> None:
        merged = await self.store.merge(row.key, task)
        if merged is None:
            return
        if task.is_final:
            log.info("task %s: %s", task.id, task.status)
            await self._settle(row.key, success=task.status is Status.SUCCESS)
            await self.deliver(merged)
        else:
            await self._show_progress(merged, task)

    async def _show_progress(self, row: TaskRow, task: Task) -> None:
        ref = row.ref("progress")
        if ref is None:
            return
        percent = None if task.status in (Status.NOT_START, Status.MODAL) else task.progress

        async def view() -> View:
            # Built when the edit's turn comes: a step coalesced away costs no preview download.
            preview = await self._preview(row.key, task.image_url) if task.image_url else None
            return progress_view(
                row.prompt,
                self._title(row),
                row.lang,
                percent=percent,
                mode=row.mode,
                preview=preview,
            )

        async def remember(new_ref: MessageRef) -> None:
            if new_ref != ref:
                await self.store.update(row.key, progress_ref=new_ref)

        self.outbox.edit_later(ref, view, remember)

    async def _preview(self, key: str, url: str) -> bytes | None:
        cached = self._previews.get(key)
        if cached and cached[0] == url:
            return cached[1]
        try:
            data = await self.downloader.get(url)
            jpeg = await self.convert(media.to_jpeg, data, 640, 70)
        except media.MediaError:
            return cached[1] if cached else None
        self._previews[key] = (url, jpeg)
        return jpeg

    async def deliver(self, row: TaskRow) -> None:
        """Post the final result exactly once (a new message, so people are notified)."""
        if not await self.store.claim_delivery(row.key):
            return
        self._previews.pop(row.key, None)
        progress = row.ref("progress")
        if progress:
            self.outbox.discard_edits(progress)
        try:
            view = await results.final_view(self, row)
            ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        except Exception:
            log.exception("delivery failed (task %s); will retry", row.key)
            await self.store.release_delivery(row.key)
            return
        await self.store.delivered(row.key, ref)
        if progress:
            await self.outbox.delete(progress)
            await self.store.update(row.key, progress_ref=None)
        if row.status == "SUCCESS":
            settings = await self.store.settings(f"user:{row.platform}:{row.user_id}")
            if settings.get("delivery") == "file":
                original = await results.original(self, row)
                if original:
                    await self.outbox.send(
                        row.platform, row.chat_id, results.file_view(row, original), ref
                    )

    async def time_out(self, row: TaskRow) -> None:
        """A task the API never finished: tell the user instead of leaving it dangling."""
        await self.store.update(row.key, status="TIMEOUT", error="timeout", finished_at=time.time())
        await self._settle(row.key, success=False)
        fresh = await self.store.task(row.key)
        if fresh is not None:
            await self.deliver(fresh)

    async def resume(self) -> None:
        """After a restart: finish what the previous process left half done.

        Results that finished but never reached their chat are posted (once); progress
        messages of delivered tasks are removed; a submit cut off before the API answered is
        reported with a retry button, since nobody can know whether it was accepted.
        """
        for row in await self.store.undelivered():
            await self.deliver(row)
        for row in await self.store.interrupted():
            await self.store.update(
                row.key, status=REJECTED, error="interrupted", finished_at=time.time()
            )
            await self._settle(row.key, success=False)
            progress = row.ref("progress")
            text = headline(f"⚠️ {t('submit.interrupted', row.lang)}", row.prompt)
            rows = ()
            if row.kind == "imagine":
                rows = ((Choice(t("btn.retry", row.lang), buttons.encode(row.key, "retry")),),)
            view = View(text, rows=rows)
            ref = await self.outbox.edit(progress, view) if progress else None
            if ref is None:
                ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
            await self.store.delivered(row.key, ref)
            await self.store.update(row.key, progress_ref=None)  # it is the notice now
        for row in await self.store.stale_progress():
            ref = row.ref("progress")
            if ref is not None:
                await self.outbox.delete(ref)
            await self.store.update(row.key, progress_ref=None)
