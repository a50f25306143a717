"""Settings, history and seeds: what users look up or change about their own use."""

from __future__ import annotations

from bot import buttons, results
from bot.chat import Requester
from bot.i18n import t
from bot.mj.client import MjError
from bot.mj.models import Outcome
from bot.service.base import MODES, ServiceBase, clean
from bot.store import REJECTED, TaskRow
from bot.views import Choice, View, clip


class Preferences(ServiceBase):
    async def settings_view(self, req: Requester) -> View:
        req = await self.who(req)
        lang = req.language
        current = await self.user_settings(req)
        mode = current.get("mode", self.default_mode) or "fast"
        delivery = current.get("delivery", "photo")

        def mark(on: bool, label: str) -> str:
            return f"✅ {label}" if on else label

        rows = (
            tuple(
                Choice(mark(mode == m, t(f"mode.{m}", lang)), buttons.setting("mode", m))
                for m in MODES
            ),
            tuple(
                Choice(
                    mark(delivery == d, t(f"settings.delivery.{d}", lang)),
                    buttons.setting("delivery", d),
                )
                for d in ("photo", "file")
            ),
            (
                Choice(mark(lang == "en", "English"), buttons.setting("lang", "en")),
                Choice(mark(lang == "zh", "中文"), buttons.setting("lang", "zh")),
            ),
            (Choice(t("settings.suffix.clear", lang), buttons.setting("suffix", "-")),),
        )
        text = t(
            "settings.text",
            lang,
            mode=t(f"mode.{mode}", lang) if mode in MODES else mode,
            suffix=current.get("suffix") or "—",
        )
        return View(text, rows=rows)

    async def set_mode(self, req: Requester, mode: str) -> None:
        """/fast and /relax: the speed mode (the API path prefix) for this user's next jobs."""
        req = await self.enter(req)
        if req is None:
            return
        await self.store.set_setting(f"user:{req.user_key}", "mode", mode)
        await self.reply(
            req, View(t("settings.mode_set", req.language, mode=t(f"mode.{mode}", req.language)))
        )

    async def set_suffix(self, req: Requester, suffix: str) -> None:
        req = await self.enter(req)
        if req is None:
            return
        value = clean(suffix)[:200] or None
        await self.store.set_setting(f"user:{req.user_key}", "suffix", value)
        await self.reply(req, View(t("settings.suffix_set", req.language, suffix=value or "—")))

    async def tasks_view(self, req: Requester) -> View:
        """/tasks: the user's recent tasks, newest first."""
        req = await self.who(req)
        lang = req.language
        rows = await self.store.recent_tasks(req.platform, req.user_id, limit=10)
        if not rows:
            return View(t("tasks.none", lang))
        lines = [t("tasks.title", lang)]
        for row in rows:
            icon = {"SUCCESS": "✅", "FAILURE": "❌", REJECTED: "❌", "TIMEOUT": "⌛"}.get(
                row.status, "⏳"
            )
            what = clip(row.prompt or row.label, 40)
            lines.append(f"{icon} {self._title(row)} · {what}  /task {row.key}")
        return View("\n".join(lines))

    async def show(self, req: Requester, ref: str) -> None:
        """/task <id>: post a finished task again, with working buttons (like MJ's /show)."""
        req = await self.enter(req)
        if req is None:
            return
        ref = ref.strip()
        row = await self.store.task(ref) or (await self.store.task_by_id(ref) if ref else None)
        if row is None and req.replied is not None:
            row = await self.store.task_by_message(req.replied)
        if row is None or row.platform != req.platform or not row.is_final:
            await self.tell(req, t("task.unknown", req.language))
            return
        if row.chat_id != req.chat_id and row.user_id != req.user_id:
            await self.tell(req, t("task.unknown", req.language))
            return
        view = await results.final_view(self, row)
        ref_ = await self.reply(req, view)
        if row.chat_id == req.chat_id:
            await self.store.update(row.key, result_ref=ref_)

    async def seed(self, req: Requester, args: str = "") -> None:
        """/seed: the seed of a result (asked in the background: it may take a minute)."""
        req = await self.enter(req)
        if req is None:
            return
        target = args.strip()
        row = await self.store.task(target) if target else None
        if row is None and target:
            row = await self.store.task_by_id(target)
        if row is None and req.replied is not None:
            row = await self.store.task_by_message(req.replied)
        if row is None or not row.task_id or row.platform != req.platform:
            await self.tell(req, t("seed.which", req.language))
            return
        self.spawn(self._seed(req, row))

    async def _seed(self, req: Requester, row: TaskRow) -> None:
        lang = req.language
        assert row.task_id
        try:
            submission = await self.client.image_seed(row.task_id)
        except MjError as exc:
            await self.reply(req, View(t(f"api.{exc.kind}", lang)))
            return
        if submission.outcome is Outcome.ACCEPTED and submission.task_id:
            await self.reply(req, View(t("seed.value", lang, seed=submission.task_id)))
        else:
            await self.reply(
                req, View(t("seed.none", lang, detail=clip(submission.description, 200)))
            )
