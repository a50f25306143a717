"""Admin (bot/usecases/admin.py): /quota for everyone; /ban, /unban, /buttons, /stats and
/usage for admins only, and what they change for the next request. In-process against the
simulator (tests/inprocess.py)."""

from __future__ import annotations

import pytest

from bot import commands
from bot.config import AccessConfig
from bot.i18n import t
from tests.inprocess import OWNER, worlds
from tests.storage import BOTH

pytestmark = BOTH

OTHER = "8"


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def admins(w, buttons: str = "owner") -> None:
    w.policy.access = AccessConfig(admins=(OWNER,), buttons=buttons)


async def test_a_non_admin_is_told_admin_commands_are_not_theirs(world):
    async with world() as w:
        admins(w)
        for name in ("stats", "ban", "buttons"):
            await commands.run(w.service, w.who(user=OTHER), name, "42")
        assert w.chat.texts() == [t("admin.only", "en")] * 3


async def test_a_banned_user_is_refused_until_unbanned(world):
    async with world() as w:
        admins(w)
        await commands.run(w.service, w.who(), "ban", OTHER)
        assert w.chat.texts()[-1] == t("admin.user_ban", "en", user=OTHER)
        await commands.run(w.service, w.who(user=OTHER), "imagine", "a fox")
        assert w.chat.texts()[-1] == t("access.denied", "en")
        assert w.submits("imagine") == 0
        await commands.run(w.service, w.who(), "unban", OTHER)
        await commands.run(w.service, w.who(user=OTHER), "imagine", "a fox")
        await w.until(lambda: w.submits("imagine") == 1)


async def test_buttons_chat_lets_anyone_in_the_chat_press(world):
    async with world() as w:
        admins(w)
        _, message = await w.imagine()
        (refused,) = await w.press(message, "U1", user=OTHER)
        assert refused.text == t("press.not_owner", "en")
        await commands.run(w.service, w.who(), "buttons", "chat")
        assert w.chat.texts()[-1] == t("admin.buttons_chat", "en")
        (allowed,) = await w.press(message, "U1", user=OTHER)
        assert not allowed.alert
        await w.until(lambda: w.submits("action") == 1)


async def test_quota_shows_what_was_used(world):
    async with world() as w:
        await w.imagine()
        await commands.run(w.service, w.who(), "quota", "")
        shown = w.chat.texts()[-1]
        assert shown.startswith(f"📊 Usage of {OWNER}")
        assert "Today: 1 of ∞ units" in shown and "Jobs: 1 (refunded: 0)" in shown


async def test_stats_counts_the_weeks_jobs(world):
    async with world() as w:
        admins(w)
        await w.imagine()
        await commands.run(w.service, w.who(), "stats", "")
        shown = w.chat.texts()[-1]
        assert f"1. {OWNER}: 1" in shown
