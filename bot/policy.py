"""Who may do what, and how much: access rules, quotas, the ledger. Rules only: what is kept
is read and written through the store (``bot.store.Store``), which holds every SQL statement.

Every submit spends the operator's money. Access comes from the config (the base) and from
admin commands stored in the database (which win). Quotas are counted in cost units from a
per-action weight table; the check and the charge are one transaction, so two presses at the
same instant cannot both pass a quota of one. Rejected and failed tasks are refunded.

Each charge is a ledger row of its own, an attempt with an id: whoever charges settles that id
and nothing else, so one attempt's refund can never undo another's charge. A charge can also be
made inside a claim's transaction (``charge_in``): claiming a button, a question or a task and
paying for it then happen together or not at all.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

from bot.chat import Requester
from bot.config import AccessConfig, QuotaConfig
from bot.metrics import Metrics
from bot.mj import custom_ids
from bot.store import Charge, Ledger, Outcome, Stats, Store, Usage, new_key


def action_of(custom_id: str) -> str:
    """The action a button press is weighed as (``bot.mj.custom_ids``' table)."""
    return custom_ids.family(custom_id).cost


@dataclass(frozen=True)
class Refusal:
    """Why a submit may not go ahead: an i18n key and its fields."""

    key: str
    fields: dict[str, Any]


class OverQuota(Exception):
    """A charge refused inside a claim's transaction: the claim is rolled back with it."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.key)
        self.refusal = refusal


def _today(now: float) -> tuple[str, str]:
    day = dt.datetime.fromtimestamp(now, dt.UTC)
    return day.strftime("%Y-%m-%d"), day.strftime("%Y-%m")


def _next_midnight(now: float) -> str:
    day = dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=1)
    return f"{day.isoformat()} 00:00 UTC"


class Policy:
    def __init__(
        self,
        store: Store,
        access: AccessConfig,
        quota: QuotaConfig,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.access = access
        self.quota = quota
        self.counts = (metrics if metrics is not None else Metrics()).ledger
        self._banned = [
            (word, re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.I))
            for word in quota.banned_words
            if word.strip()
        ]

    # --- who ------------------------------------------------------------------------------------

    def is_admin(self, req: Requester) -> bool:
        return _listed(self.access.admins, req.platform, req.user_id)

    async def _rule(self, platform: str, subject: str, ident: str) -> str | None:
        return await self.store.access_rule(platform, subject, ident)

    async def admitted(self, req: Requester) -> bool:
        """May this person use the bot here? Admins always may."""
        if self.is_admin(req):
            return True
        user_rule = await self._rule(req.platform, "user", req.user_id)
        if user_rule == "ban" or (
            user_rule is None and _listed(self.access.banned_users, req.platform, req.user_id)
        ):
            return False
        if user_rule == "allow":
            return True
        if user_rule == "deny":
            return False
        chat_rule = await self._rule(req.platform, "chat", req.chat_id)
        if chat_rule == "deny":
            return False
        mode = self.access.mode
        if mode == "everyone":
            return True
        if mode == "private_only":
            return req.is_private
        return (
            chat_rule == "allow"
            or _listed(self.access.allowed_chats, req.platform, req.chat_id)
            or _listed(self.access.allowed_users, req.platform, req.user_id)
        )

    async def set_rule(self, req: Requester, subject: str, ident: str, rule: str | None) -> None:
        await self.store.set_access_rule(req.platform, subject, ident, rule, req.user_id)

    def banned_word(self, prompt: str) -> str | None:
        return next((word for word, pattern in self._banned if pattern.search(prompt)), None)

    # --- how much -------------------------------------------------------------------------------

    def units(self, action: str) -> int:
        if action == "imagine_all":
            return 4 * self.quota.weights.imagine
        return int(getattr(self.quota.weights, action, self.quota.weights.other))

    async def charge(self, req: Requester, task_key: str, action: str) -> str | Refusal:
        """Check every limit and record the charge, in one transaction of its own: the
        charge's id, or the Refusal when over a limit."""

        async def pay(ledger: Ledger) -> str:
            return await self.charge_in(ledger, req, task_key, action)

        try:
            charge_id = await self.store.charge(pay)
        except OverQuota as over:
            return over.refusal
        assert charge_id is not None  # pay always records one
        return charge_id

    async def charge_in(self, ledger: Ledger, req: Requester, task_key: str, action: str) -> str:
        """Inside the caller's transaction (a claim; ``ledger`` is the ledger as it sees it):
        check every limit and record the charge as an attempt of its own; its id. Raises
        OverQuota, which rolls the claim back."""
        units = self.units(action)
        now = time.time()
        day, month = _today(now)
        q = self.quota
        reset = _next_midnight(now)
        person = {"platform": req.platform, "user_id": req.user_id}
        # (limit, ledger rows it counts, refusal key, for admins too?) in the order they apply.
        budgets: list[tuple[int, dict[str, str], str, bool]] = [
            (q.daily_units, {**person, "day": day}, "quota.daily", False),
            (q.monthly_units, {**person, "month": month}, "quota.monthly", False),
            (
                q.chat_daily_units,
                {"platform": req.platform, "chat_id": req.chat_id, "day": day},
                "quota.chat",
                False,
            ),
            (q.global_daily_units, {"day": day}, "quota.global", True),
        ]
        admin = self.is_admin(req)
        if not admin and q.concurrency:
            running = await ledger.running(req.platform, req.user_id)
            if running >= q.concurrency:
                raise OverQuota(Refusal("quota.concurrency", {"limit": q.concurrency}))
        for limit, counted, key, for_admins in budgets:
            if not (units and limit) or (admin and not for_admins):
                continue
            used = await ledger.spent(**counted)
            if used + units > limit:
                left = max(0, limit - used)
                fields = {"used": used, "limit": limit, "left": left, "units": units}
                raise OverQuota(Refusal(key, {**fields, "reset": reset}))
        charge = Charge(
            id=new_key(),
            task_key=task_key,
            platform=req.platform,
            user_id=req.user_id,
            chat_id=req.chat_id,
            action=action,
            units=units,
            day=day,
            month=month,
            created_at=now,
        )
        await ledger.record(charge)
        self.counts.charges += 1
        self.counts.units += units
        return charge.id

    async def settle(self, charge_id: str | None, success: bool) -> None:
        """An attempt ended: keep its charge on success, refund it otherwise. Only that
        charge, and only while it is pending (settling twice changes nothing)."""
        await self._close(charge_id, "success" if success else "refunded")

    async def void(self, charge_id: str | None) -> None:
        """An attempt that ran nothing and failed nothing (a press that became a question;
        the answer pays): not spent, and not a failure in the reports either."""
        await self._close(charge_id, "void")

    async def _close(self, charge_id: str | None, outcome: Outcome) -> None:
        if charge_id:
            await self.store.settle_charge(charge_id, outcome)
            if outcome == "success":
                self.counts.kept += 1
            elif outcome == "refunded":
                self.counts.refunds += 1
            else:
                self.counts.voids += 1

    # --- reports --------------------------------------------------------------------------------

    async def usage(self, platform: str, user_id: str) -> Usage:
        day, month = _today(time.time())
        return await self.store.usage(platform, user_id, day, month)

    async def stats(self) -> Stats:
        """Today and the last seven days (today included), UTC."""
        day, _ = _today(time.time())
        week = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=6)).isoformat()
        return await self.store.stats(day, week)

    async def remember(self, req: Requester) -> None:
        """Keep the @handle of everyone who talks to the bot (for /ban @name)."""
        await self.store.remember_person(
            req.platform, req.user_id, req.handle.lower(), req.user_name
        )

    async def find_user(self, platform: str, handle: str) -> str | None:
        return await self.store.person_by_handle(platform, handle.lstrip("@").lower())


# Platforms whose user ids the user chooses (a playground session names itself): an unprefixed
# entry is a Telegram or Discord id and must never match them; only "web:<session>" does.
_SELF_NAMED = frozenset({"web"})


def _listed(entries: tuple[str, ...], platform: str, ident: str) -> bool:
    if f"{platform}:{ident}" in entries:
        return True
    return platform not in _SELF_NAMED and ident in entries
