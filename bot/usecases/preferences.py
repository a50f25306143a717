"""Settings, history and seeds: what users look up or change about their own use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot import results, settings_menu
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj.client import MjClient, MjError
from bot.mj.models import Outcome, TaskState
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import Store, TaskRow, UserSettings
from bot.usecases.base import Notice, clean
from bot.usecases.submitter import Spawn, title
from bot.views import View, clip

LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
# Settings menus a user can still press, newest last: each menu message is recorded as its
# opener's, and a settings press acts only on a menu of the presser's own.
MENUS_KEPT = 10

# /tasks: a finished task's icon by its state; anything else is still running.
_ICONS: dict[str, str] = {
    TaskState.SUCCESS: "✅",
    TaskState.FAILURE: "❌",
    TaskState.REJECTED: "❌",
    TaskState.TIMEOUT: "⌛",
}


def _menu(ref: MessageRef) -> str:
    return f"{ref.platform}|{ref.chat_id}|{ref.message_id}"  # not the kind: edits change it


class Preferences:
    """Settings, history and seeds: a plain use case handed what it uses (``Service`` builds
    it; the commands' gate is the facade's, ``@gated``)."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        policy: Policy | None,
        *,
        sources: results.Sources,  # where result media comes from (the runtime)
        spawn: Spawn,
        default_mode: str,
        who: Callable[[Requester], Awaitable[Requester]],
        user_settings: Callable[[Requester], Awaitable[UserSettings]],
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.reply = outbox.reply
        self.tell = outbox.tell
        self.policy = policy
        self.sources = sources
        self.spawn = spawn
        self.default_mode = default_mode
        self.who = who
        self.user_settings = user_settings

    async def settings_view(self, req: Requester) -> View:
        """The settings menu (bot/settings_menu.py): the state at a glance and its buttons."""
        req = await self.who(req)
        current = await self.user_settings(req)
        shown = replace(current, lang=current.lang or req.language)
        return settings_menu.menu(
            shown,
            req.language,
            default_mode=self.default_mode or "fast",
            turbo=self.client.profile.turbo,
        )

    async def open_settings(self, req: Requester) -> None:
        """/settings: the menu, recorded as the requester's (only they may press it)."""
        ref = await self.reply(req, await self.settings_view(req))
        menu = _menu(ref)

        def opened(settings: UserSettings) -> UserSettings:
            menus = [m for m in settings.menus if m != menu] + [menu]
            return replace(settings, menus=tuple(menus[-MENUS_KEPT:]))

        await self.store.change_user_settings(req.platform, req.user_id, opened)

    async def press_setting(self, req: Requester, name: str, value: str) -> Notice:
        """A settings-menu button: checked against the menu, saved, the menu redrawn.

        Only a menu the presser opened is redrawn, and only with a value it offers: settings
        data sent for someone else's message (a result, another person's menu) stores and
        edits nothing. A press without a message (the playground) answers with a new menu.
        """
        lang = req.language
        turbo_refused = name == "mode" and value == "turbo" and not self.client.profile.turbo
        if name == "refs" and value == "clear":  # the presser's own references, any message
            await self.store.change_user_settings(
                req.platform, req.user_id, lambda s: replace(s, references=())
            )
            return Notice(t("refs.cleared", lang))
        if name in settings_menu.CHAT_CHOICES:  # a chat's defaults: its admins only
            return await self._press_chat(req, name, value)
        if not settings_menu.offered(name, value) or turbo_refused:
            return Notice(t("settings.invalid", lang), alert=True)
        current = await self.store.user_settings(req.platform, req.user_id)
        on_menu = req.message is not None and _menu(req.message) in current.menus
        if name in ("preset", "pcode", "scode") and not on_menu:
            # the /preset and /personalize lists: the presser's own, from any message
            try:
                settings_menu.choose(current, name, value)
            except ValueError:
                return Notice(t("settings.invalid", lang), alert=True)
            await self.store.change_user_settings(
                req.platform, req.user_id, lambda s: settings_menu.choose(s, name, value)
            )
            if name in ("pcode", "scode"):
                return Notice(t("settings.saved", lang))
            return Notice(t("preset.applied", lang, name=current.presets[int(value)].name))
        if req.message is not None and not on_menu:
            return Notice(t("settings.not_yours", lang), alert=True)
        try:
            await self.store.change_user_settings(
                req.platform,
                req.user_id,
                lambda settings: settings_menu.choose(settings, name, value),
            )
        except ValueError:  # a preset that is gone
            return Notice(t("settings.invalid", lang), alert=True)
        req = await self.who(req)
        if req.message is not None:
            self.spawn(self.outbox.edit(req.message, await self.settings_view(req)))
        else:
            self.spawn(self.open_settings(req))
        return Notice(t("settings.saved", req.language))

    async def _press_chat(self, req: Requester, name: str, value: str) -> Notice:
        lang = req.language
        if self.policy is None or not self.policy.is_admin(req):
            return Notice(t("admin.only", lang), alert=True)
        if value not in settings_menu.CHAT_CHOICES[name]:
            return Notice(t("settings.invalid", lang), alert=True)
        chat = await self.store.change_chat_settings(
            req.platform, req.chat_id, lambda c: settings_menu.choose_chat(c, name, value)
        )
        if req.message is not None:
            self.spawn(self.outbox.edit(req.message, settings_menu.chat_menu(chat, lang)))
        return Notice(t("settings.saved", lang))

    async def set_mode(self, req: Requester, mode: str) -> None:
        """/fast and /relax: the speed mode (the API path prefix) for this user's next jobs."""
        await self.store.change_user_settings(
            req.platform, req.user_id, lambda settings: replace(settings, mode=mode)
        )
        await self.reply(
            req, View(t("settings.mode_set", req.language, mode=t(f"mode.{mode}", req.language)))
        )

    async def set_suffix(self, req: Requester, suffix: str) -> None:
        value = clean(suffix)[:200] or None
        await self.store.change_user_settings(
            req.platform, req.user_id, lambda settings: replace(settings, suffix=value)
        )
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
            icon = _ICONS.get(row.status, "⏳")
            what = clip(row.prompt or row.label, 40)
            lines.append(f"{icon} {title(row)} · {what}  /task {row.key}")
        return View("\n".join(lines))

    async def show(self, req: Requester, ref: str) -> None:
        """/task <id>: post a finished task again, with working buttons (like MJ's /show)."""
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
        view = await results.final_view(self.sources, row)
        ref_ = await self.reply(req, view)
        if row.chat_id == req.chat_id:
            await self.store.update(row.key, result_ref=ref_)

    async def seed(self, req: Requester, args: str = "") -> None:
        """/seed: the seed of a result (asked in the background: it may take a minute)."""
        target = args.strip()
        row = await self.store.task(target) if target else None
        if row is None and target:
            row = await self.store.task_by_id(target)
        if row is None and req.replied is not None:
            row = await self.store.task_by_message(req.replied)
        if row is None or not row.task_id or row.platform != req.platform:
            await self.tell(req, t("seed.which", req.language))
            return
        self.spawn(self.seed_of(req, row))

    async def seed_of(self, req: Requester, row: TaskRow) -> None:
        """Ask for the seed (the /seed command and the 🌱 button). A seed lets anyone remake
        the image exactly, so it is its owner's (and admins'), even where a chat shares the
        task's other buttons."""
        lang = req.language
        if not may_read_seed(self.policy, req, row):
            await self.tell(req, t("seed.not_owner", lang))
            return
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


def may_read_seed(policy: Policy | None, req: Requester, row: TaskRow) -> bool:
    """A seed lets anyone remake the image exactly: it is its owner's and admins' only."""
    return row.user_id == req.user_id or (policy is not None and policy.is_admin(req))
