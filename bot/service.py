"""Use cases: what a user can ask of mjbot, independent of any chat platform.

Adapters call ``imagine``, ``press`` and ``answer`` with a ``Requester``; the tracker calls
``on_task`` with every forward step of a task. The service decides, stores, submits and
answers through the ``Outbox`` (which talks to the adapters' ChatPorts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot import buttons, media
from bot.buttons import Token
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj.client import MjClient, MjError
from bot.mj.models import Button, Outcome, Status, Submission, Task
from bot.outbox import Outbox
from bot.store import REJECTED, Store, TaskRow, new_key
from bot.views import Ask, Media, View, clip, headline, progress_view, result_caption

log = logging.getLogger("bot.service")

MAX_PROMPT = 4000  # longer prompts are refused by MJ; say so before spending anything
MODAL_KINDS = {"MJ::CustomZoom::": "zoom", "MJ::Inpaint::": "region"}


@dataclass(frozen=True)
class Notice:
    """A short answer to a button press (a toast), optionally linking to a message."""

    text: str
    alert: bool = False


class Service:
    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        downloader: media.Downloader,
        *,
        notify_hook: str = "",
        default_mode: str = "",
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.downloader = downloader
        self.notify_hook = notify_hook
        self.default_mode = default_mode
        self._previews: dict[str, tuple[str, bytes]] = {}  # key -> (url, jpeg)
        self._background: set[asyncio.Task[None]] = set()

    def spawn(self, coro) -> None:
        """Run work after answering the user (a press is acknowledged before the submit)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)

    # --- commands ----------------------------------------------------------------------------

    def help(self, req: Requester) -> View:
        return View(t("help", req.language))

    async def reply(self, req: Requester, view: View) -> MessageRef:
        return await self.outbox.send(req.platform, req.chat_id, view, req.message)

    async def imagine(self, req: Requester, prompt: str, images: Sequence[str] = ()) -> None:
        """/imagine: validate, submit, show progress; the tracker does the rest."""
        prompt = " ".join(prompt.split())
        if not prompt:
            await self.reply(req, View(t("imagine.empty", req.language)))
            return
        if len(prompt) > MAX_PROMPT:
            await self.reply(req, View(t("imagine.too_long", req.language, limit=MAX_PROMPT)))
            return
        mode = await self.mode_for(req)
        row = TaskRow(
            key=new_key(),
            platform=req.platform,
            chat_id=req.chat_id,
            user_id=req.user_id,
            lang=req.language,
            kind="imagine",
            label="Imagine",
            prompt=prompt,
            mode=mode,
            request_ref=req.message.encode() if req.message else None,
        )
        await self.store.add_task(row)
        await self._submit(
            row,
            lambda: self.client.imagine(
                prompt, images, mode=mode, notify_hook=self.notify_hook, state=row.key
            ),
        )

    async def mode_for(self, req: Requester) -> str:
        settings = await self.store.settings(f"user:{req.user_key}")
        return settings.get("mode", self.default_mode)

    # --- buttons -----------------------------------------------------------------------------

    async def press(self, req: Requester, data: str) -> Notice:
        """A button press: resolve the token, submit the action once, acknowledge at once."""
        lang = req.language
        token = buttons.decode(data)
        row = await self.store.task(token.key) if token else None
        if token is None or row is None or row.platform != req.platform:
            return Notice(t("press.expired", lang), alert=True)
        if row.chat_id != req.chat_id:
            return Notice(t("press.foreign", lang), alert=True)
        if row.user_id != req.user_id:
            return Notice(t("press.not_owner", lang), alert=True)
        task = row.task
        button = _button(task, token)
        if task is None or task.status is not Status.SUCCESS or button is None:
            return Notice(t("press.expired", lang), alert=True)
        return await self._press(req, row, task, token, button)

    async def _press(
        self, req: Requester, parent: TaskRow, task: Task, token: Token, button: Button
    ) -> Notice:
        lang = req.language
        label = buttons.label(button, lang)
        child = TaskRow(
            key=new_key(),
            platform=parent.platform,
            chat_id=parent.chat_id,
            user_id=req.user_id,
            lang=lang,
            kind="action",
            label=label,
            prompt=task.display_prompt or parent.prompt,
            mode=parent.mode,
            parent_key=parent.key,
            request_ref=parent.result_ref,
        )
        running = await self.store.add_child(child, parent.key, token.slot)
        if running is not None:
            return Notice(t("press.running", lang))
        self.spawn(
            self._submit(
                child,
                lambda: self.client.action(
                    task.id,
                    button.custom_id,
                    mode=parent.mode,
                    notify_hook=self.notify_hook,
                    state=child.key,
                ),
                modal_kind=_modal_kind(button.custom_id),
            )
        )
        return Notice(t("press.submitted", lang, label=label))

    # --- modals ------------------------------------------------------------------------------

    async def answer(self, req: Requester, reply_to_message_id: str, text: str) -> bool:
        """A reply to one of our questions (ForceReply); False when it answers nothing of ours."""
        modal = await self.store.modal_for_reply(req.platform, req.chat_id, reply_to_message_id)
        if modal is None:
            return False
        row = await self.store.task(modal.key)
        lang = req.language
        if row is None or modal.answered_at is not None:
            await self.reply(req, View(t("modal.expired", lang)))
            return True
        if row.user_id != req.user_id:
            await self.reply(req, View(t("modal.not_owner", lang)))
            return True
        prompt = " ".join(text.split())
        if len(prompt) > MAX_PROMPT:
            await self.reply(req, View(t("imagine.too_long", lang, limit=MAX_PROMPT)))
            return True
        if not await self.store.claim_modal(modal.key):
            await self.reply(req, View(t("modal.expired", lang)))
            return True
        await self.store.update(
            row.key,
            prompt=prompt or row.prompt,
            request_ref=req.message.encode() if req.message else row.request_ref,
            progress_ref=None,
        )
        row = await self.store.task(row.key)
        assert row is not None and row.task_id
        modal_id = row.task_id
        await self._submit(row, lambda: self.client.modal(modal_id, prompt))
        return True

    # --- submitting --------------------------------------------------------------------------

    async def _submit(self, row: TaskRow, call, modal_kind: str = "") -> None:
        """Show the progress message, call the API once, record and show the outcome."""
        lang = row.lang
        title = self._title(row)
        progress = await self.outbox.send(
            row.platform,
            row.chat_id,
            progress_view(row.prompt, title, lang),
            MessageRef.decode(row.request_ref),
        )
        await self.store.update(row.key, progress_ref=progress)
        try:
            submission: Submission = await call()
        except MjError as exc:
            log.warning("submit failed: %s (task %s)", exc.kind, row.key)
            await self._reject(row, progress, t(f"api.{exc.kind}", lang))
            return
        except Exception:
            log.exception("submit crashed (task %s)", row.key)
            await self._reject(row, progress, t("api.bad_response", lang))
            return
        outcome = submission.outcome
        if outcome is Outcome.MODAL and submission.task_id:
            await self._ask_modal(row, progress, submission, modal_kind or "remix")
            return
        if outcome.is_accepted and submission.task_id:
            status = Status.NOT_START.value
            await self.store.update(row.key, task_id=submission.task_id, status=status)
            if submission.queue_position:
                view = progress_view(row.prompt, title, lang, queue=submission.queue_position)
                await self.outbox.edit(progress, view)
            return
        await self._reject(row, progress, self._refusal(submission, lang))

    async def _reject(self, row: TaskRow, progress: MessageRef, text: str) -> None:
        await self.store.update(row.key, status=REJECTED, error=text, finished_at=time.time())
        await self.store.claim_delivery(row.key)
        await self.outbox.edit(progress, View(headline(f"❌ {text}", row.prompt)))

    def _refusal(self, submission: Submission, lang: str) -> str:
        detail = clip(submission.description, 300)
        match submission.outcome:
            case Outcome.BANNED:
                return t("refused.banned", lang, word=submission.banned_word or "?")
            case Outcome.QUEUE_FULL:
                return t("refused.queue_full", lang)
            case Outcome.INVALID:
                return t("refused.invalid", lang, detail=detail)
            case Outcome.NOT_FOUND:
                return t("refused.not_found", lang)
        if submission.code == 9 and ("队列已满" in detail or "queue full" in detail.lower()):
            return t("refused.queue_full", lang)
        return t("refused.failed", lang, detail=detail)

    async def _ask_modal(
        self, row: TaskRow, progress: MessageRef, submission: Submission, kind: str
    ) -> None:
        """Code 21: the API waits for a prompt (Custom Zoom, remix...): ask the user."""
        lang = row.lang
        prefill = submission.final_prompt or row.prompt
        if kind == "zoom" and "--zoom" not in prefill:
            prefill = f"{prefill} --zoom 2".strip()
        await self.store.update(row.key, task_id=submission.task_id, status=Status.MODAL.value)
        await self.store.add_modal(row.key, kind, prefill)
        await self.outbox.delete(progress)
        ask = await self.outbox.send(
            row.platform,
            row.chat_id,
            View(
                t(f"modal.ask.{kind}", lang, prompt=clip(prefill, 3000)),
                ask=Ask(t(f"modal.placeholder.{kind}", lang), prefill=prefill, title=row.label),
            ),
            MessageRef.decode(row.request_ref),
        )
        await self.store.set_modal_ask(row.key, ask)
        await self.store.update(row.key, progress_ref=None)

    def _title(self, row: TaskRow) -> str:
        return t(f"kind.{row.kind}", row.lang, label=row.label)

    # --- following tasks ---------------------------------------------------------------------

    async def on_task(self, task: Task) -> None:
        """One update from the API (poll or webhook): merge it, then show what changed."""
        row = await self.store.task_by_id(task.id)
        if row is None:
            return
        merged = await self.store.merge(row.key, task)
        if merged is None:
            return
        if task.is_final:
            await self.deliver(merged)
        else:
            await self._show_progress(merged, task)

    async def _show_progress(self, row: TaskRow, task: Task) -> None:
        ref = row.ref("progress")
        if ref is None:
            return
        preview = await self._preview(row.key, task.image_url) if task.image_url else None
        percent = None if task.status in (Status.NOT_START, Status.MODAL) else task.progress
        view = progress_view(
            row.prompt, self._title(row), row.lang, percent=percent, mode=row.mode, preview=preview
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
            jpeg = await asyncio.to_thread(media.to_jpeg, data, 640, 70)
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
            view = await self._final_view(row)
            ref = await self.outbox.send(
                row.platform, row.chat_id, view, MessageRef.decode(row.request_ref)
            )
        except Exception:
            log.exception("delivery failed (task %s); will retry", row.key)
            await self.store.release_delivery(row.key)
            return
        await self.store.update(row.key, result_ref=ref)
        if progress:
            await self.outbox.delete(progress)

    async def _final_view(self, row: TaskRow) -> View:
        task = row.task
        lang = row.lang
        if task is None or task.status is not Status.SUCCESS:
            reason = describe_failure(task.fail_reason if task else row.error or "", lang)
            return View(headline(f"❌ {reason}", row.prompt))
        seconds = _elapsed(task, row)
        caption = result_caption(
            task.display_prompt or row.prompt,
            self._title(row),
            lang,
            mode=row.mode or task.mode,
            seconds=seconds,
        )
        rows = buttons.layout(row.key, task.buttons, lang)
        try:
            original = await self.downloader.get(task.image_url)
            photo = await asyncio.to_thread(media.to_jpeg, original)
        except media.MediaError as exc:
            log.warning("result download failed (task %s): %s", row.key, exc.reason)
            text = f"{caption}\n\n{t('result.link', lang, url=task.image_url)}"
            return View(text, rows=rows)
        return View(caption, media=(Media("photo", photo, f"{row.key}.jpg"),), rows=rows)

    async def time_out(self, row: TaskRow) -> None:
        """A task the API never finished: tell the user instead of leaving it dangling."""
        await self.store.update(row.key, status="TIMEOUT", error="timeout", finished_at=time.time())
        fresh = await self.store.task(row.key)
        if fresh is not None:
            await self.deliver(fresh)

    async def resume(self) -> None:
        """After a restart: post every result that finished but never reached its chat."""
        for row in await self.store.undelivered():
            await self.deliver(row)


def _button(task: Task | None, token: Token) -> Button | None:
    index = token.index
    if task is None or index is None or index >= len(task.buttons):
        return None
    return task.buttons[index]


def _modal_kind(custom_id: str) -> str:
    return next((kind for prefix, kind in MODAL_KINDS.items() if custom_id.startswith(prefix)), "")


def _elapsed(task: Task, row: TaskRow) -> float:
    if task.finish_time and task.submit_time:
        return max(0.0, (task.finish_time - task.submit_time) / 1000)
    return max(0.0, time.time() - row.created_at)


_FAILURE_BUCKETS = (
    ("moderation", ("banned prompt", "敏感词", "filters", "community standards", "违规")),
    ("invalid", ("invalid",)),
    ("timeout", ("超时", "timeout", "timed out")),
    ("account", ("queue full", "队列已满", "subscription", "实例不可用", "blocked")),
)


def describe_failure(reason: str, lang: str) -> str:
    """The failReason in the user's words: a bucket headline plus the raw text as detail."""
    low = reason.lower()
    bucket = next((b for b, words in _FAILURE_BUCKETS if any(w in low for w in words)), "generic")
    text = t(f"failure.{bucket}", lang)
    detail = clip(reason.strip(), 300)
    return f"{text}\n{detail}" if detail and reason != "timeout" else text
