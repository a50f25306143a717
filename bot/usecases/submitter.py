"""The one path that spends money: charge -> store -> call the API once -> outcome -> settle.

``Submitter`` is a plain object handed its collaborators; the use cases (commands, presses,
answers to questions) say what to submit and hand it here, and nothing else charges, submits
or settles. The charge is taken in the same transaction that stores the task (a new task, a
claimed button, a claimed question); the API is called once; the outcome is recorded and
shown; the charge is kept or refunded when the task ends, or voided when the API asks a
question first (the answer pays).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from bot import logs
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj.client import MjClient, MjError
from bot.mj.custom_ids import ModalKind
from bot.mj.failures import Reason
from bot.mj.models import Outcome, Submission, TaskState
from bot.outbox import Outbox
from bot.policy import Policy, Refusal
from bot.store import Ledger, Pay, Slot, Store, TaskRow
from bot.views import View, clip, headline, progress_view

log = logging.getLogger("bot.service")  # the name log readers already filter on

# How long a submit waits for its progress message before going ahead without it.
PROGRESS_WAIT_S = 3.0
# The estimate a waiting task shows: the median duration of the same kind and mode that
# succeeded over this window, asked of the store at most once a TYPICAL_TTL_S per pair.
TYPICAL_WINDOW_S = 86400.0
TYPICAL_TTL_S = 60.0

Submit = Callable[[], Awaitable[Submission]]
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Asking(Protocol):
    """Who asks the question the API answered a submit with (code 21): bot.usecases.questions.
    The Submitter keeps the money part (the void) between recording and asking."""

    async def record(self, row: TaskRow, submission: Submission, kind: str, pick: str) -> str:
        """Record the question; its prefill."""
        ...

    async def ask(
        self, row: TaskRow, progress: MessageRef | None, kind: str, prefill: str
    ) -> None: ...


def cause(exc: BaseException) -> str:
    """An exception for the log: its class and message, clipped (secrets are redacted by
    the log filter, bot.logs)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {clip(text, 200)}" if text else type(exc).__name__


def title(row: TaskRow) -> str:
    """What a task is called in its messages ("Imagine", "Upscale (2)"...)."""
    return t(f"kind.{row.kind}", row.lang, label=row.label)


def note(row: TaskRow) -> str:
    """The line an imagine's progress shows under its title: its active references (kept in
    its label, which an imagine's title does not show)."""
    return row.label if row.kind == "imagine" and row.label.startswith("🎯") else ""


def over_quota(req: Requester, refusal: Refusal) -> str:
    return t(refusal.key, req.language, **refusal.fields)


class Submitter:
    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        policy: Policy | None,
        *,
        spawn: Spawn,
        asker: Asking,
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.policy = policy
        self.spawn = spawn
        self.asker = asker
        self._typical: dict[tuple[str, str], tuple[float, float]] = {}  # -> (at, seconds)
        self.typical_ttl_s = TYPICAL_TTL_S

    # -- charge and store, in one transaction (OverQuota when the policy refuses) --
    # The same transaction marks the request (``req.event``) done (bot.usecases.gate): a
    # replay after a kill -9 that came after it is a redelivery, and the submit it may have
    # made is recovered by Delivery.take_over, never made again. RequestTaken (the request
    # is another instance's now) writes and charges nothing.

    async def add(self, req: Requester, row: TaskRow, action: str = "") -> None:
        """Store a new task and charge ``action`` for it ("": its kind; bot.policy.OverQuota:
        nothing stored)."""
        await self.store.add_task(
            row, self.payment(req, row.key, action or row.kind), request=req.event
        )

    async def claim_button(
        self, req: Requester, child: TaskRow, slot: str, action: str, *, again: bool
    ) -> Slot:
        """Claim the parent's button ``slot`` for ``child`` and charge ``action`` for it."""
        assert child.parent_key is not None
        pay = self.payment(req, child.key, action)
        return await self.store.add_child(
            child, child.parent_key, slot, again=again, pay=pay, request=req.event
        )

    async def claim_answer(
        self,
        req: Requester,
        row: TaskRow,
        action: str,
        prompt: str,
        request_ref: MessageRef | str | None,
    ) -> bool:
        """Claim a question's answer and charge ``action`` for it: of two answers one wins
        and pays; the other pays nothing, so nothing of the winner's can be refunded by it."""
        return await self.store.claim_modal(
            row.key,
            self.payment(req, row.key, action),
            request=req.event,
            prompt=prompt,
            request_ref=request_ref,
        )

    def payment(self, req: Requester, key: str, action: str) -> Pay | None:
        """What a claim pays with, inside its own transaction: the quota checked and one
        charge recorded for this attempt (None without a policy: nothing is counted)."""
        policy = self.policy
        if policy is None:
            return None

        async def pay(ledger: Ledger) -> str:
            return await policy.charge_in(ledger, req, key, action)

        return pay

    # -- settle --

    async def settle(self, charge_id: str | None, success: bool) -> None:
        """An attempt ended: keep or refund its own charge (never another attempt's)."""
        if self.policy is not None:
            await self.policy.settle(charge_id, success)

    async def void(self, charge_id: str | None) -> None:
        """An attempt that turned into a question: its charge is void; the answer pays."""
        if self.policy is not None:
            await self.policy.void(charge_id)

    async def typical_s(self, row: TaskRow) -> float | None:
        """How long a task like this one (kind and mode) takes here: the median over the
        last day of those that succeeded; None without any. Cached (only once known), so a
        progress edit costs no query."""
        pair = (row.kind, row.mode)
        now = time.monotonic()
        cached = self._typical.get(pair)
        if cached is not None and now - cached[0] < self.typical_ttl_s:
            return cached[1]
        taken = await self.store.durations(row.kind, row.mode, time.time() - TYPICAL_WINDOW_S)
        if not taken:
            return None
        seconds = statistics.median(taken)
        self._typical[pair] = (now, seconds)
        return seconds

    async def money_said(self, row: TaskRow) -> str:
        """The last line of a failed or refused task's message: what its charge came to.
        Only said, never decided here: a failure's charge is refunded by ``settle``."""
        units = await self.store.refunded_units(row.charge_id) if row.charge_id else 0
        if self.policy is None or units <= 0:
            return t("money.nothing_charged", row.lang)
        if units == 1:
            return t("money.refunded_one", row.lang)
        return t("money.refunded", row.lang, units=units)

    # -- call once, outcome --

    async def submit(
        self, row: TaskRow, call: Submit, modal_kind: str = "", pick: str = ""
    ) -> None:
        """Show the progress message, call the API once, record and show the outcome."""
        with logs.context(task=row.key):  # chat and user: the request's (bot.usecases.gate)
            log.info("submitting %s", row.kind)
            await self._submit_logged(row, call, modal_kind, pick)

    async def _submit_logged(self, row: TaskRow, call: Submit, modal_kind: str, pick: str) -> None:
        lang = row.lang
        shown_as = title(row)
        typical = await self.typical_s(row)
        progress = await self._progress_message(row, shown_as, typical)
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
            await self._ask(row, progress, submission, modal_kind or ModalKind.REMIX, pick)
            return
        # EXISTS (Java OSS code 21): that job was done before; its id is already tracked
        if outcome.is_accepted and outcome is not Outcome.EXISTS and submission.task_id:
            await self.store.update(row.key, task_id=submission.task_id, status=TaskState.NOT_START)
            if submission.queue_position and progress is not None:
                view = progress_view(
                    row.prompt,
                    shown_as,
                    lang,
                    queue=submission.queue_position,
                    note=note(row),
                    typical=typical,
                )
                await self.outbox.edit(progress, view)
            return
        await self._reject(row, progress, refusal_text(submission, lang))

    async def _ask(
        self,
        row: TaskRow,
        progress: MessageRef | None,
        submission: Submission,
        kind: str,
        pick: str,
    ) -> None:
        """Code 21: the API waits for an answer (Custom Zoom, remix, region, a pick): ask."""
        prefill = await self.asker.record(row, submission, kind, pick)
        # Nothing runs until the answer: the press's own charge is void, the answer pays. Only
        # that charge: an answer may already have claimed the question and paid.
        await self.void(row.charge_id)
        progress = progress or await self.adopted_progress(row.key)  # MODAL: none adopted now
        await self.asker.ask(row, progress, kind, prefill)

    async def _progress_message(
        self, row: TaskRow, shown_as: str, typical: float | None
    ) -> MessageRef | None:
        """Post the progress message, waiting for it PROGRESS_WAIT_S at most: the submit
        goes ahead without it when the chat is slow (a busy group's pacing, a platform slow
        to confirm). A message confirmed later is adopted while the task still runs, and
        deleted otherwise, so no "waiting" message is left behind that nobody edits."""
        sending = asyncio.ensure_future(
            self.outbox.send(
                row.platform,
                row.chat_id,
                progress_view(row.prompt, shown_as, row.lang, note=note(row), typical=typical),
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
        progress = progress or await self.adopted_progress(row.key)
        money = await self.money_said(row)  # read before the refund: the same units either way
        await self.settle(row.charge_id, success=False)
        view = View(f"{headline(f'❌ {text}', row.prompt)}\n{money}")
        shown = await self.outbox.edit(progress, view) if progress is not None else None
        if shown is None:
            shown = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        await self.store.delivered(row.key, shown)
        await self.store.update(row.key, progress_ref=None)

    async def adopted_progress(self, key: str) -> MessageRef | None:
        """The progress message a slow send delivered after the submit went ahead."""
        row = await self.store.task(key)
        return row.ref("progress") if row else None


def refusal_text(submission: Submission, lang: str) -> str:
    """What the user is told about a submit the API did not take."""
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
