"""Button presses: a token resolved, checked, acted on once, acknowledged at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot import buttons, results
from bot.chat import Requester
from bot.i18n import t
from bot.mj.models import Button, Status, Task
from bot.policy import action_of
from bot.service.base import Notice, ServiceBase, button_of, modal_kind, pick_text
from bot.store import REJECTED, TaskRow, new_key


class Presses(ServiceBase):
    async def press(self, req: Requester, data: str) -> Notice:
        """A button press: resolve the token, act once, acknowledge at once."""
        entered = await self.enter(req, quiet=True)
        if entered is None:
            return Notice(t("access.denied", req.language), alert=True)
        req = entered
        lang = req.language
        setting = buttons.decode_setting(data)
        if setting is not None:
            return await self._press_setting(req, *setting)
        token = buttons.decode(data)
        row = await self.store.task(token.key) if token else None
        if token is None or row is None or row.platform != req.platform:
            return Notice(t("press.expired", lang), alert=True)
        if row.chat_id != req.chat_id:
            return Notice(t("press.foreign", lang), alert=True)
        if row.user_id != req.user_id and not await self._anyone_may_press(req):
            return Notice(t("press.not_owner", lang), alert=True)
        if not await self.store.first_time(req.event):
            return Notice(t("press.running", lang))
        if token.index is None:
            return await self._press_extra(req, row, token.slot)
        task = row.task
        button = button_of(task, token)
        if task is None or task.status is not Status.SUCCESS or button is None:
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
        running = await self.store.add_child(child, parent.key, slot)
        if running is not None:
            return await self._already_running(running, lang)
        refusal = await self._charge(req, child.key, action_of(button.custom_id))
        if refusal is not None:
            # Nothing was submitted: close the child so the button can be pressed again.
            await self.store.update(child.key, status=REJECTED, error="quota")
            await self.store.delivered(child.key, None)
            return Notice(refusal, alert=True)
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
                modal_kind=modal_kind(button.custom_id),
                pick=pick_text(task, button.custom_id),
            )
        )
        return Notice(t("press.submitted", lang, label=label))

    async def _anyone_may_press(self, req: Requester) -> bool:
        """Buttons belong to the task's owner, unless the chat (or the config) shares them."""
        chat = await self.store.settings(f"chat:{req.chat_key}")
        default = self.policy.access.buttons if self.policy else "owner"
        return chat.get("buttons", default) == "chat"

    async def _already_running(self, key: str, lang: str) -> Notice:
        """Somebody pressed this button before: how far that task is, and where it shows."""
        row = await self.store.task(key)
        if row is None:
            return Notice(t("press.running", lang))
        where = row.ref("progress") or row.ref("result")
        return Notice(t("press.running_at", lang, percent=row.progress), where=where)

    async def _press_extra(self, req: Requester, row: TaskRow, verb: str) -> Notice:
        """Our own buttons beside the API's: seed, original file, split grid, retry."""
        lang = req.language
        match verb:
            case "seed":
                self.spawn(self._seed(req, row))
                return Notice(t("seed.asking", lang))
            case "file" | "split":
                original = await results.original(self, row)
                if original is None:
                    return Notice(t("press.expired", lang), alert=True)
                view = (
                    results.file_view(row, original)
                    if verb == "file"
                    else await asyncio.to_thread(results.split_view, row, original)
                )
                self.spawn(self.outbox.send(row.platform, row.chat_id, view, row.ref("result")))
                return Notice(t("press.sending", lang))
            case "retry":
                if row.kind != "imagine" or not row.prompt:
                    return Notice(t("press.expired", lang), alert=True)
                # A submission of its own: the press's event is spent (it guarded the press),
                # so the imagine gets one derived from it, still one per press.
                again = replace(req, message=row.ref("result"), event=f"{req.event}:retry")
                self.spawn(self.imagine(again, row.prompt))
                return Notice(t("press.submitted", lang, label="🔁"))
        return Notice(t("press.expired", lang), alert=True)

    async def _press_setting(self, req: Requester, name: str, value: str) -> Notice:
        lang = req.language
        scope = f"user:{req.user_key}"
        if name == "suffix":
            await self.store.set_setting(scope, "suffix", None)
        elif name in ("mode", "delivery", "lang"):
            await self.store.set_setting(scope, name, value)
        else:
            return Notice(t("press.expired", lang), alert=True)
        req = await self.who(req)
        view = await self.settings_view(req)
        # The menu the button sits on is redrawn in place (req.message is that message).
        if req.message is not None:
            self.spawn(self.outbox.edit(req.message, view))
        else:
            self.spawn(self.reply(req, view))
        return Notice(t("settings.saved", req.language))
