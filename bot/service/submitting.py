"""Commands that spend money: validate, charge, submit once, show the outcome."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import assert_never

from bot import logs, media
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj.client import MjError
from bot.mj.custom_ids import ModalKind
from bot.mj.failures import Reason
from bot.mj.models import Outcome, Submission, TaskState
from bot.policy import OverQuota, Refusal
from bot.service.base import (
    BLEND_DIMENSIONS,
    MAX_PROMPT,
    ServiceBase,
    Submit,
    clean,
    log,
)
from bot.service.jobs import Kind
from bot.store import Ledger, Pay, TaskRow, new_key
from bot.views import Ask, View, clip, headline, progress_view

# How long a submit waits for its progress message before going ahead without it.
PROGRESS_WAIT_S = 3.0


def cause(exc: BaseException) -> str:
    """An exception for the log: its class and message, clipped (secrets are redacted by
    the log filter, bot.logs)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {clip(text, 200)}" if text else type(exc).__name__


class Submitting(ServiceBase):
    async def start_kind(
        self, kind: Kind, req: Requester, args: str, images: Sequence[bytes] = ()
    ) -> None:
        """The command of ``kind`` with its text and photos (a typed dispatch: the commands'
        table and an answered question name a kind, never a method)."""
        match kind:
            case Kind.IMAGINE:
                await self.imagine(req, args, images)
            case Kind.DESCRIBE:
                await self.describe(req, args, images)
            case Kind.BLEND:
                await self.blend(req, args, images)
            case Kind.SWAP:
                await self.swap(req, args, images)
            case Kind.SHORTEN:
                await self.shorten(req, args)
            case Kind.VIDEO:
                await self.video(req, args, images)
            case Kind.EDIT:
                await self.edit(req, args, images)
            case _:
                assert_never(kind)

    async def imagine(self, req: Requester, prompt: str, images: Sequence[bytes] = ()) -> None:
        """/imagine: validate, submit, show progress; the tracker does the rest."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        settings = await self.user_settings(req)
        prompt = clean(prompt)
        if not await self._prompt_ok(req, prompt):
            return
        suffix = settings.suffix or ""
        if suffix and suffix not in prompt:
            prompt = f"{prompt} {suffix}"
        uris = await self._uploads(req, images, "imagine", prompt, least=0, most=5)
        if uris is None:
            return
        await self._start(
            req,
            "imagine",
            prompt,
            lambda key, mode: self.client.imagine(
                prompt, uris, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def describe(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/describe: four prompts Midjourney would write for a photo."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        uris = await self._uploads(req, images, "describe", args, least=1, most=1)
        if uris is None:
            return
        await self._start(
            req,
            "describe",
            "",
            lambda key, mode: self.client.describe(
                uris[0], mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def blend(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/blend [portrait|square|landscape]: mix 2-5 photos into one grid."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        word = args.strip().lower()
        if word and word not in BLEND_DIMENSIONS:
            await self.tell(req, t("blend.dimensions", req.language))
            return
        uris = await self._uploads(req, images, "blend", args, least=2, most=5)
        if uris is None:
            return
        dimensions = BLEND_DIMENSIONS.get(word, "SQUARE")
        await self._start(
            req,
            "blend",
            "",
            lambda key, mode: self.client.blend(
                uris, dimensions, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def swap(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/swap: put the face of the first photo onto the second."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        face = re.fullmatch(r"face=([a-z2-9]{10})", args.strip())
        if face and self.cache is not None:
            # The second half of the conversation: the face came first, this is the target.
            kept = await asyncio.to_thread(self.cache.get, f"face-{face.group(1)}")
            images = [kept, *images] if kept else list(images)
        elif len(images) == 1 and self.cache is not None:
            # One photo: keep it as the face and ask for the photo to put it on.
            key = new_key()
            await asyncio.to_thread(self.cache.put, f"face-{key}", images[0])
            ask = await self.reply(
                req,
                View(
                    t("ask.swap_target", req.language),
                    ask=Ask(t("ask.placeholder", req.language), title="swap"),
                ),
            )
            await self.store.add_ask(ask, req.user_id, "swap", f"face={key}", req.language)
            return
        if len(images) == 2 and images[0] == images[1]:
            await self.tell(req, t("swap.same", req.language))
            return
        uris = await self._uploads(req, images, "swap", args, least=2, most=2)
        if uris is None:
            return
        await self._start(
            req,
            "swap",
            "",
            lambda key, mode: self.client.swap_face(
                uris[0], uris[1], mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def shorten(self, req: Requester, prompt: str) -> None:
        """/shorten: which words of a prompt matter, and five shorter versions."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        prompt = clean(prompt)
        if not await self._prompt_ok(req, prompt, command="shorten"):
            return
        await self._start(
            req,
            "shorten",
            prompt,
            lambda key, mode: self.client.shorten(
                prompt, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def video(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/video [--motion high|low] <prompt> with a photo: four short videos."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        motion_match = re.search(r"--motion\s+(high|low)\b", args, re.I)
        motion = motion_match.group(1).lower() if motion_match else "low"
        prompt = clean(re.sub(r"--motion\s+\S+", "", args))
        if images and not await self._prompt_ok(req, prompt, command="video"):
            return
        uris = await self._uploads(req, images, "video", args, least=1, most=1)
        if uris is None:
            return
        await self._start(
            req,
            "video",
            prompt,
            lambda key, mode: self.client.video(
                prompt, uris[0], motion=motion, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def edit(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/edit <prompt> with a photo: four edited versions of it."""
        if (entered := await self.enter(req)) is None:
            return
        req = entered
        prompt = clean(args)
        if images and not await self._prompt_ok(req, prompt, command="edit"):
            return
        uris = await self._uploads(req, images, "edit", args, least=1, most=1)
        if uris is None:
            return
        await self._start(
            req,
            "edit",
            prompt,
            lambda key, mode: self.client.edits(
                prompt, uris[0], mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def _prompt_ok(self, req: Requester, prompt: str, command: str = "imagine") -> bool:
        if not prompt:
            await self.tell(req, t(f"{command}.empty", req.language))
            return False
        if len(prompt) > MAX_PROMPT:
            await self.tell(req, t("prompt.too_long", req.language, limit=MAX_PROMPT))
            return False
        word = self.policy.banned_word(prompt) if self.policy else None
        if word:
            await self.tell(req, t("refused.banned", req.language, word=word))
            return False
        return True

    async def _uploads(
        self,
        req: Requester,
        images: Sequence[bytes],
        command: str,
        args: str,
        *,
        least: int,
        most: int,
    ) -> list[str] | None:
        """Validated data URIs, or None after telling the user what is wrong.

        No photo at all for a photo command starts a short conversation instead: the bot asks
        for the photos with a ForceReply, which works in groups under privacy mode.
        """
        lang = req.language
        if not images and least > 0:
            ask = await self.reply(
                req,
                View(
                    t(f"ask.{command}", lang),
                    ask=Ask(t("ask.placeholder", lang), title=command),
                ),
            )
            await self.store.add_ask(ask, req.user_id, command, args, lang)
            return None
        if len(images) < least or len(images) > most:
            text = t("upload.count", lang, least=least, most=most, got=len(images))
            await self.reply(req, View(text))
            return None
        try:
            return [await self.convert(media.upload_data_uri, data) for data in images]
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", lang))
            return None

    async def _start(
        self,
        req: Requester,
        kind: str,
        prompt: str,
        call: Callable[[str, str], Awaitable[Submission]],
    ) -> None:
        if not await self.store.first_time(req.event):
            log.info("ignoring a redelivered update %s", req.event)
            return
        mode = (await self.user_settings(req)).mode or self.default_mode
        row = TaskRow(
            key=new_key(),
            platform=req.platform,
            chat_id=req.chat_id,
            user_id=req.user_id,
            lang=req.language,
            kind=kind,
            label=kind,
            prompt=prompt,
            mode=mode,
            request_ref=req.message.encode() if req.message else None,
        )
        try:
            await self.store.add_task(row, self._payment(req, row.key, kind))
        except OverQuota as over:
            await self.tell(req, self._over_quota(req, over.refusal))
            return
        await self._submit(row, lambda: call(row.key, mode))

    def _payment(self, req: Requester, key: str, action: str) -> Pay | None:
        """What a claim pays with, inside its own transaction: the quota checked and one
        charge recorded for this attempt (None without a policy: nothing is counted)."""
        policy = self.policy
        if policy is None:
            return None

        async def pay(ledger: Ledger) -> str:
            return await policy.charge_in(ledger, req, key, action)

        return pay

    def _over_quota(self, req: Requester, refusal: Refusal) -> str:
        return t(refusal.key, req.language, **refusal.fields)

    async def _settle(self, charge_id: str | None, success: bool) -> None:
        """An attempt ended: keep or refund its own charge (never another attempt's)."""
        if self.policy is not None:
            await self.policy.settle(charge_id, success)

    async def _void(self, charge_id: str | None) -> None:
        """An attempt that turned into a question: its charge is void; the answer pays."""
        if self.policy is not None:
            await self.policy.void(charge_id)

    async def _submit(
        self, row: TaskRow, call: Submit, modal_kind: str = "", pick: str = ""
    ) -> None:
        """Show the progress message, call the API once, record and show the outcome."""
        with logs.context(task=row.key, chat=row.chat_id, user=row.user_id):
            log.info("submitting %s", row.kind)
            await self._submit_logged(row, call, modal_kind, pick)

    async def _submit_logged(self, row: TaskRow, call: Submit, modal_kind: str, pick: str) -> None:
        lang = row.lang
        title = self._title(row)
        progress = await self._progress_message(row, title)
        try:
            submission = await call()
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
            await self._ask_modal(row, progress, submission, modal_kind or ModalKind.REMIX, pick)
            return
        # EXISTS (Java OSS code 21): that job was done before; its id is already tracked
        if outcome.is_accepted and outcome is not Outcome.EXISTS and submission.task_id:
            await self.store.update(row.key, task_id=submission.task_id, status=TaskState.NOT_START)
            if submission.queue_position and progress is not None:
                view = progress_view(row.prompt, title, lang, queue=submission.queue_position)
                await self.outbox.edit(progress, view)
            return
        await self._reject(row, progress, self._refusal(submission, lang))

    async def _progress_message(self, row: TaskRow, title: str) -> MessageRef | None:
        """Post the progress message, waiting for it PROGRESS_WAIT_S at most: the submit
        goes ahead without it when the chat is slow (a busy group's pacing, a platform slow
        to confirm). A message confirmed later is adopted while the task still runs, and
        deleted otherwise, so no "waiting" message is left behind that nobody edits."""
        sending = asyncio.ensure_future(
            self.outbox.send(
                row.platform,
                row.chat_id,
                progress_view(row.prompt, title, row.lang),
                MessageRef.decode(row.request_ref),
            )
        )
        done, _ = await asyncio.wait({sending}, timeout=PROGRESS_WAIT_S)
        if not done:
            log.info("the progress message is slow (task %s); submitting meanwhile", row.key)
            self.spawn(self._late_progress(row.key, sending))
            return None
        try:
            progress = sending.result()
        except Exception as exc:
            # Unreachable or refusing right now: submit anyway; the result is still
            # delivered (and retried) when it is done.
            log.warning(
                "no progress message (task %s): %s; submitting without one", row.key, cause(exc)
            )
            return None
        await self.store.update(row.key, progress_ref=progress)
        return progress

    async def _late_progress(self, key: str, sending: asyncio.Future[MessageRef]) -> None:
        try:
            ref = await sending
        except Exception as exc:
            log.warning("no progress message (task %s): %s", key, cause(exc))
            return
        if not await self.store.adopt_progress(key, ref):
            # The task moved on without it (posted, refused, asking a question).
            log.info("a late progress message is not needed any more (task %s)", key)
            await self.outbox.delete(ref)

    async def _reject(self, row: TaskRow, progress: MessageRef | None, text: str) -> None:
        await self.store.update(
            row.key, status=TaskState.REJECTED, error=text, finished_at=time.time()
        )
        # Final now, so no late progress message is adopted any more; one that was is used.
        progress = progress or await self._adopted_progress(row.key)
        await self._settle(row.charge_id, success=False)
        view = View(headline(f"❌ {text}", row.prompt))
        shown = await self.outbox.edit(progress, view) if progress is not None else None
        if shown is None:
            shown = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        await self.store.delivered(row.key, shown)
        await self.store.update(row.key, progress_ref=None)

    async def _adopted_progress(self, key: str) -> MessageRef | None:
        """The progress message a slow send delivered after the submit went ahead."""
        row = await self.store.task(key)
        return row.ref("progress") if row else None

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
            case Outcome.UNSUPPORTED:
                return t("refused.unsupported", lang)
            case Outcome.EXISTS:
                return t("refused.exists", lang)
        if submission.outcome is Outcome.FAILED and submission.reason is Reason.QUEUE_FULL:
            # a full queue said in words under a generic failure code (trueai's 9, P3)
            return t("refused.queue_full", lang)
        return t("refused.failed", lang, detail=detail)

    def _title(self, row: TaskRow) -> str:
        return t(f"kind.{row.kind}", row.lang, label=row.label)
