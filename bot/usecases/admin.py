"""Quotas shown to users, and the admin commands that decide who may use the bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot import settings_menu
from bot.chat import Requester
from bot.i18n import t
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import Stats, Store, UserSettings
from bot.usecases.base import MODES, clean
from bot.views import View


class Admin:
    """A plain use case handed what it uses (the facade, ``bot.usecases.Service``, builds it):
    the policy decides, the store keeps chat settings, the outbox answers."""

    def __init__(
        self,
        store: Store,
        policy: Policy | None,
        outbox: Outbox,
        *,
        default_mode: str,
        who: Callable[[Requester], Awaitable[Requester]],
        user_settings: Callable[[Requester], Awaitable[UserSettings]],
    ) -> None:
        self.store = store
        self.policy = policy
        self.outbox = outbox
        self.reply = outbox.reply
        self.tell = outbox.tell
        self.default_mode = default_mode
        self.who = who
        self.user_settings = user_settings

    async def quota_view(self, req: Requester, user_id: str = "") -> View:
        """/quota and /info: what a user has used and what is left, like Midjourney's /info."""
        lang = req.language
        if self.policy is None:
            return View(t("quota.unlimited", lang))
        q = self.policy.quota
        usage = await self.policy.usage(req.platform, user_id or req.user_id)
        mode = (await self.user_settings(req)).mode or self.default_mode or "fast"

        def limit(value: int) -> str:
            return str(value) if value else "∞"

        def left(value: int, used: int) -> str:
            return str(max(0, value - used)) if value else "∞"

        return View(
            t(
                "quota.info",
                lang,
                user=user_id or req.user_id,
                mode=t(f"mode.{mode}", lang) if mode in MODES else mode,
                today=usage.today,
                daily=limit(q.daily_units),
                daily_left=left(q.daily_units, usage.today),
                month=usage.month,
                monthly=limit(q.monthly_units),
                monthly_left=left(q.monthly_units, usage.month),
                running=usage.running,
                concurrency=limit(q.concurrency),
                jobs=usage.jobs,
                refunded=usage.refunded,
            )
        )

    async def admin(self, req: Requester, name: str, args: str) -> None:
        """/allow /deny /ban /unban /stats /usage /buttons: admins only."""
        req = await self.who(req)
        lang = req.language
        if self.policy is None or not self.policy.is_admin(req):
            await self.tell(req, t("admin.only", lang))
            return
        if name == "stats":
            await self.reply(req, View(self._stats_text(await self.policy.stats(), lang)))
            return
        if name == "chatsettings":
            await self._chat_settings(req, args)
            return
        if name == "buttons":
            value = args.strip().lower()
            if value not in ("chat", "owner"):
                await self.tell(req, t("admin.buttons_usage", lang))
                return
            await self.store.change_chat_settings(
                req.platform, req.chat_id, lambda chat: replace(chat, buttons=value)
            )
            await self.reply(req, View(t(f"admin.buttons_{value}", lang)))
            return
        target = await self._target(req, args)
        if name == "usage":
            if not target:
                await self.tell(req, t("admin.who", lang))
                return
            await self.reply(req, await self.quota_view(req, target))
            return
        rule = {"allow": "allow", "deny": "deny", "ban": "ban", "unban": None}[name]
        if target:
            await self.policy.set_rule(req, "user", target, rule)
            await self.reply(req, View(t(f"admin.user_{name}", lang, user=target)))
        elif name in ("allow", "deny") and not req.is_private:
            await self.policy.set_rule(req, "chat", req.chat_id, rule)
            await self.reply(req, View(t(f"admin.chat_{name}", lang)))
        else:
            await self.tell(req, t("admin.who", lang))

    async def _chat_settings(self, req: Requester, args: str) -> None:
        """/chatsettings: the chat's prompting defaults (menu); with text, its default suffix."""
        suffix = clean(args)[:200]
        if suffix:
            await self.store.change_chat_settings(
                req.platform, req.chat_id, lambda chat: replace(chat, suffix=suffix)
            )
        chat = await self.store.chat_settings(req.platform, req.chat_id)
        await self.reply(req, settings_menu.chat_menu(chat, req.language))

    async def _target(self, req: Requester, args: str) -> str:
        """The user an admin names: by reply, @handle or id."""
        word = args.strip().split()[0] if args.strip() else ""
        if word.startswith("@") and self.policy is not None:
            return await self.policy.find_user(req.platform, word) or ""
        if word.isdigit():
            return word
        return req.replied_user if not word else ""

    def _stats_text(self, stats: Stats, lang: str) -> str:
        names = [f"@{row.handle}" if row.handle else row.user_id for row in stats.top]
        top = (
            "\n".join(
                f"  {i}. {name}: {row.units}"
                for i, (name, row) in enumerate(zip(names, stats.top, strict=True), start=1)
            )
            or "  —"
        )
        return t(
            "admin.stats",
            lang,
            today=stats.today,
            jobs_today=stats.jobs_today,
            week=stats.week,
            jobs_week=stats.jobs_week,
            failures=stats.failures_week,
            top=top,
        )
