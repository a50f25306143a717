"""The bot asks, the user answers: modal prompts (Custom Zoom, remix, picks), Vary (Region)
masks, and photos asked for in a conversation.

``Asker`` asks (the question the API answered a submit with, and again after a restart);
``Questions`` takes the answers and hands them on: to the Submitter (a modal's answer) or to
the command that asked for photos.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from bot import mask, media, prompt_check, results
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj import custom_ids
from bot.mj.client import MjClient
from bot.mj.custom_ids import ModalKind
from bot.mj.models import Submission, TaskState
from bot.mj.prompt import Bot, Target, blocking, check
from bot.outbox import Outbox
from bot.policy import OverQuota
from bot.store import AskRow, ModalRow, Store, TaskRow
from bot.usecases.asking import PENDING_MATCH_S
from bot.usecases.base import MAX_PROMPT, clean
from bot.usecases.jobs import Kind
from bot.usecases.kept import Kept
from bot.usecases.prompting import bot_of
from bot.usecases.runtime import Runtime
from bot.usecases.studio import PICTURE_ARG, kept_key
from bot.usecases.submitter import Submitter, over_quota
from bot.views import Ask, Choice, Media, View, clip

# Start the command of a kind with a requester, its text and photos (submitting.py).
Start = Callable[[Kind, Requester, str, Sequence[bytes]], Awaitable[None]]


class Asker:
    """Asks the user what the API asks (code 21) and shows the question again when needed;
    a plain class handed the store, the outbox and the runtime (``Service`` builds it)."""

    def __init__(self, store: Store, outbox: Outbox, runtime: Runtime, *, webapp_url: str) -> None:
        self.store = store
        self.outbox = outbox
        self.runtime = runtime
        self.webapp_url = webapp_url

    async def record(self, row: TaskRow, submission: Submission, kind: str, pick: str) -> str:
        """Code 21: the API waits for an answer (Custom Zoom, remix, region, a pick). The
        question is stored with its prefill (returned); the Submitter voids the charge, then
        ``ask`` asks it."""
        prefill = submission.final_prompt or pick or row.prompt
        if kind == ModalKind.ZOOM and "--zoom" not in prefill:
            prefill = f"{prefill} --zoom 2".strip()
        await self.store.update(
            row.key, task_id=submission.task_id, status=TaskState.MODAL, prompt=prefill
        )
        await self.store.add_modal(row.key, kind, prefill)
        return prefill

    async def ask(self, row: TaskRow, progress: MessageRef | None, kind: str, prefill: str) -> None:
        """Post the question in place of the progress message."""
        if progress is not None:
            await self.outbox.delete(progress)
        view = await self._modal_view(row, kind, prefill)
        ask = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        await self.store.set_modal_ask(row.key, ask)
        await self.store.update(row.key, progress_ref=None)

    async def ask_again(self, row: TaskRow, modal: ModalRow) -> None:
        """An answer that never reached the API (the bot was killed while submitting it),
        refunded already (bot.usecases.delivery): open the question again and ask it once
        more, saying why, with the lost answer as the prefill. The next answer claims and
        pays exactly as the first did."""
        lost = row.prompt or modal.prefill  # claim_modal wrote the answer to the task
        if not await self.store.reopen_modal(row.key, lost):
            return
        progress = row.ref("progress")
        if progress is not None:
            await self.outbox.delete(progress)
            await self.store.update(row.key, progress_ref=None)
        view = await self._modal_view(row, modal.kind, lost)
        notice = t("modal.interrupted", row.lang)
        view = replace(view, text=f"⚠️ {notice}\n\n{view.text}")
        ask = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        await self.store.set_modal_ask(row.key, ask)

    async def region_image(self, ref: str) -> bytes | None:
        """The image a Vary (Region) modal repaints (the parent's result)."""
        row = await self.store.task(ref)
        if row is None or not row.parent_key:
            return None
        parent = await self.store.task(row.parent_key)
        return await results.original(self.runtime, parent) if parent else None

    async def _modal_view(self, row: TaskRow, kind: str, prefill: str) -> View:
        lang = row.lang
        text = t(f"modal.ask.{kind}", lang, platform=row.platform, prompt=clip(prefill, 3000))
        ask = _modal_ask(row, kind, prefill, lang)
        if kind != ModalKind.REGION:
            return View(text, ask=ask)
        base = await self.region_image(row.key)
        grid = await self.runtime.convert(mask.labelled_grid, base) if base else None
        rows: tuple[tuple[Choice, ...], ...] = ()
        if self.webapp_url and row.platform == "telegram" and not row.chat_id.startswith("-"):
            url = f"{self.webapp_url}?ref={row.key}"
            rows = ((Choice(t("region.open_editor", lang), url=url, webapp=True),),)
        photo = (Media("photo", grid, "grid.jpg"),) if grid else ()
        return View(text, media=photo, rows=rows, ask=ask)


@dataclass(frozen=True)
class Asked:
    """What a reply answers: one of our stored questions (a modal) or a request for photos."""

    modal: ModalRow | None
    ask: AskRow | None
    message_id: str  # the message that asked


class Questions:
    """The user's answers: to a modal (submitted through the Submitter, claimed and paid
    once), a painted mask, or photos a command asked for (that command is started). A plain
    class handed what it uses; the facade's entrances run the gate before it."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        runtime: Runtime,
        submitter: Submitter,
        asker: Asker,
        *,
        kept: Kept,
        start: Start,
    ) -> None:
        self.store = store
        self.kept = kept
        self.client = client
        self.outbox = outbox
        self.tell = outbox.tell
        self.runtime = runtime
        self.submitter = submitter
        self.asker = asker
        self.start = start

    async def asked(self, req: Requester, reply_to_message_id: str) -> Asked | None:
        """The question of ours a reply answers; None when it answers nothing of ours (then it
        is no request to the bot, and the gate is not run for it)."""
        # Asked by that message, or asked but not recorded yet (answered in the instant
        # between sending the question and storing its id). Asked once more last: recording
        # may happen between the first two looks, and it only ever goes from none to one.
        by_message = (req.platform, req.chat_id, reply_to_message_id)
        modal = (
            await self.store.modal_for_reply(*by_message)
            or await self.store.unrecorded_modal(req.platform, req.chat_id, req.user_id)
            or await self.store.modal_for_reply(*by_message)
        )
        # The same for asks (bot/usecases/asking.py): stored under a pending id first.
        ask = (
            await self.store.ask(*by_message)
            or await self.store.unrecorded_ask(
                req.platform, req.chat_id, req.user_id, time.time() - PENDING_MATCH_S
            )
            or await self.store.ask(*by_message)
        )
        if modal is None and ask is None:
            return None
        return Asked(modal, ask, reply_to_message_id)

    async def answer(
        self, req: Requester, asked: Asked, text: str, images: Sequence[bytes] = ()
    ) -> None:
        """An admitted reply to one of our questions."""
        if asked.modal is not None:
            await self._answer_modal(req, asked.modal.key, text, images)
        else:
            assert asked.ask is not None  # one of the two is always found (Asked)
            await self._answer_ask(req, asked.ask, asked.message_id, text, images)

    async def _answer_ask(
        self,
        req: Requester,
        ask: AskRow,
        reply_to_message_id: str,
        text: str,
        images: Sequence[bytes],
    ) -> None:
        """Photos for a command that asked for them: run it with them, once."""
        if ask.user_id != req.user_id:
            await self.tell(req, t("modal.not_owner", req.language))
            return
        picture = ask.args.startswith(PICTURE_ARG)
        if picture and not images:  # ✏️/🖼 under a picture: it was kept, the reply is the prompt
            kept = await self._kept(ask.args.removeprefix(PICTURE_ARG))
            if kept is None:
                await self.tell(req, t("modal.expired", req.language))
                return
            images = [kept]
        if not images:
            await self.tell(req, t("ask.photo_needed", req.language, platform=req.platform))
            return
        # The command that asked, read back from the row as a typed kind: a name no command
        # has (an old or forged row) is an expired question, never looked up as a method.
        # The claim is this request's: its replay (the gate runs it again only when this
        # instance died before the command's task was stored) claims the ask again.
        kind = Kind.of(ask.command)
        if kind is None or not await self.store.claim_ask(
            req.platform, req.chat_id, reply_to_message_id, alias=ask.message_id, request=req.event
        ):
            await self.tell(req, t("modal.expired", req.language))
            return
        if picture:
            args = text.strip()
        else:
            held = ask.args.startswith(("face=", "start="))  # a photo kept, and the command
            args = ask.args if held else text.strip() or ask.args
        await self.start(kind, req, args, images)

    async def _kept(self, key: str) -> bytes | None:
        """A picture the studio kept for a question (bot/usecases/studio.py)."""
        if not key.isalnum():
            return None
        return await self.kept.get(kept_key(key))

    async def _answer_modal(
        self, req: Requester, key: str, text: str, images: Sequence[bytes] = ()
    ) -> None:
        modal = await self.store.modal(key)
        row = await self.store.task(key)
        lang = req.language
        if modal is None or row is None or modal.answered_at is not None:
            await self.tell(req, t("modal.expired", lang))
            return
        if row.user_id != req.user_id:
            await self.tell(req, t("modal.not_owner", lang))
            return
        if modal.kind == ModalKind.REGION:
            await self._answer_region(req, row, modal.prefill, text, images)
            return
        prompt = clean(text)
        if len(prompt) > MAX_PROMPT:
            await self.tell(req, t("prompt.too_long", lang, limit=MAX_PROMPT))
            return
        # The prompt check (bot.mj.prompt) before the answer is claimed and paid: a problem
        # Midjourney would refuse is told, and the question stays open for a fixed answer.
        bot = (bot_of(row) or Bot.MIDJOURNEY) if self.client.profile.bot_types else None
        problems = check(prompt or modal.prefill, Target(bot=bot))
        if blocking(problems):
            lines = [prompt_check.line(p, lang) for p in problems]
            await self.tell(req, "\n".join([*lines, t("check.answer_again", lang)]))
            return
        await self._submit_modal(req, row, prompt or modal.prefill, "")

    async def _answer_region(
        self, req: Requester, row: TaskRow, prefill: str, text: str, images: Sequence[bytes]
    ) -> None:
        lang = req.language
        base = await self.asker.region_image(row.key)
        if base is None:
            await self.tell(req, t("modal.expired", lang))
            return
        size = await self.runtime.convert(media.image_size, base)
        if images:
            try:
                png = await self.runtime.convert(mask.normalise_mask, images[0], size)
            except Exception:
                await self.tell(req, t("upload.not_image", lang))
                return
            prompt = clean(text) or prefill
        else:
            cells_text, prompt = mask.split_answer(text)
            cells = mask.parse_cells(cells_text)
            if not cells:
                await self.tell(req, t("region.cells_needed", lang))
                return
            png = await self.runtime.convert(mask.cells_mask, size, cells)
            prompt = prompt or prefill
        await self.answer_mask(req, row.key, png, prompt)

    async def answer_mask(self, req: Requester, ref: str, mask_png: bytes, prompt: str) -> bool:
        """Vary (Region): submit the painted mask (white = repaint) with the prompt (the
        requester admitted by the facade's entrance)."""
        lang = req.language
        row = await self.store.task(ref)
        modal = await self.store.modal(ref)
        if row is None or modal is None or modal.kind != ModalKind.REGION or modal.answered_at:
            await self.tell(req, t("modal.expired", lang))
            return False
        if row.user_id != req.user_id or row.platform != req.platform:
            await self.tell(req, t("modal.not_owner", lang))
            return False
        base = await self.asker.region_image(ref)
        try:
            size = await self.runtime.convert(media.image_size, base) if base else None
            png = await self.runtime.convert(mask.normalise_mask, mask_png, size or (1024, 1024))
        except Exception:
            await self.tell(req, t("upload.not_image", lang))
            return False
        if await self.runtime.convert(mask.is_empty, png):
            await self.tell(req, t("region.cells_needed", lang))
            return False
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        return await self._submit_modal(req, row, clean(prompt) or modal.prefill, uri)

    async def _submit_modal(self, req: Requester, row: TaskRow, prompt: str, mask_uri: str) -> bool:
        modal = await self.store.modal(row.key)
        action = custom_ids.answer_cost(modal.kind if modal else "")
        # Claim first and pay in the same transaction: of two answers one wins and pays;
        # the other pays nothing, so nothing of the winner's can be refunded by it.
        try:
            won = await self.submitter.claim_answer(
                req,
                row,
                action,
                prompt,
                req.message.encode() if req.message else row.request_ref,
            )
        except OverQuota as over:
            await self.tell(req, over_quota(req, over.refusal))
            return False
        if not won:
            await self.tell(req, t("modal.expired", req.language))
            return False
        fresh = await self.store.task(row.key)
        assert fresh is not None and fresh.task_id
        modal_id = fresh.task_id
        await self.submitter.submit(
            fresh, lambda: self.client.modal(modal_id, prompt, mask_base64=mask_uri)
        )
        return True

    async def question(
        self, req: Requester, message_id: str, ref: str = ""
    ) -> tuple[Ask, str] | None:
        """The question a message of ours asks, and the id of the user who may answer it;
        None when it is answered already or asks nothing. ``ref`` is the task key a modal
        question carries (platforms whose answers do not come as replies keep it on the
        message, e.g. in a button)."""
        if ref:
            modal = await self.store.modal(ref)
            row = await self.store.task(ref)
            if modal is None or row is None or modal.answered_at is not None:
                return None
            return _modal_ask(row, modal.kind, modal.prefill, req.language), row.user_id
        asked = await self.store.ask(req.platform, req.chat_id, message_id)
        if asked is None or asked.answered_at is not None:
            return None
        ask = Ask(t("ask.placeholder", req.language), title=asked.command)
        return ask, asked.user_id


def _modal_ask(row: TaskRow, kind: str, prefill: str, lang: str) -> Ask:
    return Ask(
        t(f"modal.placeholder.{kind}", lang),
        prefill=prefill,
        title=row.label,
        kind="mask" if kind == ModalKind.REGION else "text",
        ref=row.key,
    )
