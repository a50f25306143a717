"""Button presses: a token resolved, checked, acted on once, acknowledged at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot import buttons, results, studio
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj import custom_ids
from bot.mj.client import MjClient, MjError
from bot.mj.models import Button, Outcome, Submission, Task, TaskState
from bot.mj.prompt import without_draft
from bot.outbox import Outbox
from bot.policy import OverQuota, Policy, action_of
from bot.store import Store, TaskRow, UserSettings, new_key
from bot.usecases.base import Notice, button_of, log, pick_text
from bot.usecases.kept import Kept
from bot.usecases.preferences import may_read_seed
from bot.usecases.prompting import bot_of
from bot.usecases.runtime import Runtime
from bot.usecases.studio import StudioPresses
from bot.usecases.submitter import Submitter, over_quota
from bot.views import View

# A finished U pressed again is posted again; presses within this long of that copy (a burst,
# everyone in a chat pressing at once) point to it instead of posting more copies.
SHOWN_AGAIN_FOR_S = 10.0


# A settings-menu press (preferences.py) and the 🌱 button's seed lookup (preferences.py).
PressSetting = Callable[[Requester, str, str], Awaitable[Notice]]
# The families remix mode asks a new prompt for (the official bot's: V, Vary, 🔄, pan).
REMIXED = frozenset({"variation", "reroll", "pan"})
# A button under a prompt the check held: (requester, held key, verb) (prompting.py).
PressHeld = Callable[[Requester, str, str], Awaitable[Notice]]
SeedOf = Callable[[Requester, TaskRow], Coroutine[Any, Any, None]]


class Presses:
    """Button presses: a plain class handed what it uses (``Service`` builds it; its
    ``press`` entrance runs the gate, quietly: a refused press is told in its own notice)."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        policy: Policy | None,
        runtime: Runtime,
        submitter: Submitter,
        *,
        kept: Kept,
        press_setting: PressSetting,
        press_held: PressHeld,
        seed_of: SeedOf,
        notify_hook: str,
        default_mode: str,
        user_settings: Callable[[Requester], Awaitable[UserSettings]],
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.policy = policy
        self.runtime = runtime
        self.spawn = runtime.spawn
        self.submitter = submitter
        self.press_setting = press_setting
        self.press_held = press_held
        self.seed_of = seed_of
        self.notify_hook = notify_hook
        self.default_mode = default_mode
        self.user_settings = user_settings
        # Which copies are posted (a U shown again, 📎, ✂️...) is the store's (``claim_copy``):
        # the presses of one burst may reach different instances.
        self.studio = StudioPresses(
            store,
            client,
            outbox,
            runtime,
            submitter,
            kept=kept,
            claim=self._claim,
            post_once=self.post_once,
            notify_hook=notify_hook,
        )

    async def press(self, req: Requester, data: str) -> Notice:
        """A button press by an admitted requester: resolve the token, act once, acknowledge
        at once."""
        lang = req.language
        setting = buttons.decode_setting(data)
        if setting is not None:
            return await self.press_setting(req, *setting)
        held = buttons.decode_held(data)
        if held is not None:
            return await self.press_held(req, *held)
        token = buttons.decode(data)
        row = await self.store.task(token.key) if token else None
        if token is None or row is None or row.platform != req.platform:
            return Notice(t("press.expired", lang), alert=True)
        if row.chat_id != req.chat_id:
            return Notice(t("press.foreign", lang), alert=True)
        if row.user_id != req.user_id and not await self._anyone_may_press(req):
            return Notice(t("press.not_owner", lang), alert=True)
        if token.index is None:
            return await self._press_extra(req, row, token.slot)
        task = row.task
        button = button_of(task, token)
        if task is None or task.status is not TaskState.SUCCESS or button is None:
            return Notice(t("press.expired", lang), alert=True)
        return await self._press(req, row, task, token.slot, button)

    async def _press(
        self, req: Requester, parent: TaskRow, task: Task, slot: str, button: Button
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
        # Claim the button and pay in one transaction. An upscale of one grid image (a U) is
        # done once: pressed again, its result is shown again (as the official bot does); every
        # other button may be pressed again for a new job once the last one finished.
        family = custom_ids.family(button.custom_id)
        # Remix mode (/settings): V, Vary, 🔄 and pan ask for the new prompt first (code 21).
        remix = family.cost in REMIXED and bool((await self.user_settings(req)).remix)
        return await self._claim(
            req,
            child,
            slot,
            action_of(button.custom_id),
            label,
            lambda: self.submitter.submit(
                child,
                lambda: self.client.action(
                    task.id,
                    button.custom_id,
                    mode=parent.mode,
                    notify_hook=self.notify_hook,
                    state=child.key,
                    enable_remix=remix,
                ),
                modal_kind=family.question,
                pick=pick_text(task, button.custom_id),
            ),
            again=not family.once,
        )

    async def _claim(
        self,
        req: Requester,
        child: TaskRow,
        slot: str,
        action: str,
        label: str,
        submit: Callable[[], Coroutine[Any, Any, None]],
        *,
        again: bool = True,
    ) -> Notice:
        """Claim the parent's button ``slot`` for ``child`` and pay for it in one transaction,
        then submit in the background; the notice says what happened."""
        try:
            claim = await self.submitter.claim_button(req, child, slot, action, again=again)
        except OverQuota as over:
            return Notice(over_quota(req, over.refusal), alert=True)
        if claim.held_by is not None:
            return await self._held(req, claim.held_by, label)
        self.spawn(submit())
        key = "press.again" if claim.again else "press.submitted"
        return Notice(t(key, req.language, label=label))

    async def _held(self, req: Requester, earlier: TaskRow, label: str) -> Notice:
        """The button's earlier task keeps it: show a finished U again, or say how far the
        earlier task is. Nothing is submitted and nothing is charged."""
        lang = req.language
        if earlier.is_final and earlier.delivered_at is not None:
            # Claimed in the store: ten presses at once post one copy, also when they reach
            # different instances, or arrive after the copy is out (they point to it).
            shown = await self.store.claim_copy(_again(earlier.key), fresh_for=SHOWN_AGAIN_FOR_S)
            if shown.mine:
                self.spawn(self._show_again(req, earlier))
            where = shown.ref or earlier.ref("result")
            return Notice(t("press.shown_again", lang, label=label), where=where)
        if earlier.is_final:  # done, its result not posted yet (or the chat refuses it)
            return Notice(t("press.unsent", lang, label=label))
        if earlier.status == TaskState.MODAL:
            modal = await self.store.modal(earlier.key)
            where = None
            if modal is not None and modal.ask_chat and modal.ask_message:
                platform, chat_id = modal.ask_chat.split(":", 1)
                where = MessageRef(platform, chat_id, modal.ask_message)
            return Notice(t("press.asked", lang, label=label), where=where)
        return await self._already_running(earlier.key, lang)

    async def _show_again(self, req: Requester, row: TaskRow) -> None:
        """Post a finished result again with working buttons, below the pressed message."""
        slot = _again(row.key)
        try:
            view = await results.final_view(self.runtime, row)
            ref = await self.outbox.send(row.platform, row.chat_id, view, req.message)
            await self.store.update(row.key, result_ref=ref)
        except Exception:
            await self.store.drop_copy(slot)  # not posted: the next press tries again
            log.exception("posting a result again failed (task %s)", row.key)
            return
        await self.store.copy_posted(slot, ref)

    async def _anyone_may_press(self, req: Requester) -> bool:
        """Buttons belong to the task's owner, unless the chat (or the config) shares them."""
        chat = await self.store.chat_settings(req.platform, req.chat_id)
        default = self.policy.access.buttons if self.policy else "owner"
        return (default if chat.buttons is None else chat.buttons) == "chat"

    async def _already_running(self, key: str, lang: str) -> Notice:
        """Somebody pressed this button before: how far that task is, and where it shows."""
        row = await self.store.task(key)
        if row is None:
            return Notice(t("press.running", lang))
        where = row.ref("progress") or row.ref("result")
        return Notice(t("press.running_at", lang, percent=row.progress), where=where)

    async def _press_extra(self, req: Requester, row: TaskRow, verb: str) -> Notice:
        """Our own buttons beside the API's: seed, original file, split grid, retry; and the
        studio's per-picture and per-clip buttons (edit2, exth0: bot/usecases/studio.py)."""
        lang = req.language
        item = studio.parse_slot(verb)
        if item is not None:
            return await self.studio.press(req, row, *item)
        match verb:
            case "seed":
                if not may_read_seed(self.policy, req, row):  # said before anything is asked
                    return Notice(t("seed.not_owner", lang), alert=True)
                self.spawn(self.seed_of(req, row))
                return Notice(t("seed.asking", lang))
            case "file" | "split":
                return await self._post_extra(req, row, verb)
            case "retry":
                if not results.offers_retry(row):  # a forged 🔁 under a grid that succeeded
                    return Notice(t("press.expired", lang), alert=True)
                return await self._retry(req, row)
            case "full":
                if not results.offers_full_quality(row):  # a forged ✨ under anything else
                    return Notice(t("full.not_draft", lang), alert=True)
                return await self._full_quality(req, row)
        return Notice(t("press.expired", lang), alert=True)

    async def _post_extra(self, req: Requester, row: TaskRow, verb: str) -> Notice:
        """📎 the original file or ✂️ the four images, posted once per result."""
        label = t("btn.file" if verb == "file" else "btn.split", req.language)

        async def make() -> View | None:
            original = await results.original(self.runtime, row)
            if original is None:
                return None
            if verb == "file":
                return results.file_view(row, original)
            return await self.runtime.convert(results.split_view, row, original)

        return await self.post_once(req, row, verb, label, make)

    async def post_once(
        self,
        req: Requester,
        row: TaskRow,
        name: str,
        label: str,
        make: Callable[[], Awaitable[View | None]],
    ) -> Notice:
        """A copy of something of a result (📎, ✂️, a picture's or clip's file), posted once
        per result. A burst of presses (or everyone in a chat that shares buttons), on any
        instance, posts no more copies; pressed again later, it points to the copy (the
        store's ``claim_copy``). ``make`` gives None when there is nothing to post any more."""
        lang = req.language
        slot = f"{row.key}:{name}"
        claim = await self.store.claim_copy(slot)
        if not claim.mine:
            if claim.ref is None:
                return Notice(t("press.sending", lang))
            return Notice(t("press.posted", lang, label=label), where=claim.ref)
        try:
            view = await make()
        except BaseException:
            await self.store.drop_copy(slot)
            raise
        if view is None:
            await self.store.drop_copy(slot)
            return Notice(t("press.expired", lang), alert=True)
        self.spawn(self._send_extra(slot, row, view))
        return Notice(t("press.sending", lang))

    async def _send_extra(self, slot: str, row: TaskRow, view: View) -> None:
        try:
            ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("result"))
        except Exception:
            await self.store.drop_copy(slot)  # not posted: the next press tries again
            log.exception("posting %s failed (task %s)", slot, row.key)
            return
        await self.store.copy_posted(slot, ref)

    async def _retry(self, req: Requester, failed: TaskRow) -> Notice:
        """🔁 under a failed or interrupted imagine: the same prompt once more, a button like
        any other (one job at a time, charged when claimed, pressed again for a new job)."""
        lang = req.language
        label = t("btn.retry", lang)
        prompt = failed.prompt  # the user's suffix was added when it was first submitted
        word = self.policy.banned_word(prompt) if self.policy else None
        if word:
            return Notice(t("refused.banned", lang, word=word), alert=True)
        mode = (await self.user_settings(req)).mode or self.default_mode
        child = TaskRow(
            key=new_key(),
            platform=failed.platform,
            chat_id=failed.chat_id,
            user_id=req.user_id,
            lang=lang,
            kind="imagine",
            label="imagine",
            prompt=prompt,
            mode=mode,
            parent_key=failed.key,
            request_ref=failed.result_ref,
        )
        return await self._claim(
            req,
            child,
            "retry",
            "imagine",
            label,
            lambda: self.submitter.submit(
                child,
                lambda: self.client.imagine(
                    prompt, [], mode=mode, notify_hook=self.notify_hook, state=child.key
                ),
            ),
        )

    async def _full_quality(self, req: Requester, draft: TaskRow) -> Notice:
        """✨ under a draft grid: the same prompt without --draft, with the draft's seed (asked
        of the API after the claim; sent without it when there is none), on the draft's bot.
        A button like 🔁: claimed and charged once per press, pressed again for a new job."""
        lang = req.language
        label = t("btn.full_quality", lang)
        prompt = without_draft(draft.prompt)
        mode = (await self.user_settings(req)).mode or self.default_mode
        if mode == "turbo" and not self.client.profile.turbo:
            mode = "fast"
        bot = bot_of(draft) if self.client.profile.bot_types else None
        child = TaskRow(
            key=new_key(),
            platform=draft.platform,
            chat_id=draft.chat_id,
            user_id=req.user_id,
            lang=lang,
            kind="imagine",
            label="imagine",
            prompt=prompt,
            mode=mode,
            parent_key=draft.key,
            request_ref=draft.result_ref,
        )

        async def submit() -> Submission:
            seed = await self._seed(draft)
            return await self.client.imagine(
                without_draft(draft.prompt, seed),
                [],
                mode=mode,
                notify_hook=self.notify_hook,
                state=child.key,
                bot_type=bot.value if bot else "",
            )

        return await self._claim(
            req, child, "full", "imagine", label, lambda: self.submitter.submit(child, submit)
        )

    async def _seed(self, row: TaskRow) -> str:
        """The seed of a finished task, or "" when the API has none to give."""
        if not row.task_id:
            return ""
        try:
            answer = await self.client.image_seed(row.task_id)
        except MjError as exc:
            log.info("no seed for %s: %s", row.key, exc)
            return ""
        return answer.task_id if answer.outcome is Outcome.ACCEPTED else ""


def _again(key: str) -> str:
    """The copy slot of a finished result posted again (a U pressed again)."""
    return f"{key}:again"
