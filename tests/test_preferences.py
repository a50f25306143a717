"""Preferences (bot/usecases/preferences.py): the settings menu and what it changes, the
speed mode the next job is sent with, /tasks, /task and /seed. In-process against the
simulator (tests/inprocess.py)."""

from __future__ import annotations

import pytest

from bot import buttons, commands
from bot.chat import MessageRef, Requester
from bot.i18n import t
from tests.inprocess import CHAT, OWNER, worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def on(message_id: str, user: str = OWNER) -> Requester:
    """A press on one of the chat's messages."""
    return Requester("t", CHAT, user, message=MessageRef("t", CHAT, message_id))


async def test_relax_chosen_in_the_menu_sends_the_next_job_relaxed(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "settings", "")
        menu = w.chat.sent[-1][0]
        notice = await w.service.press(on(menu), buttons.setting("mode", "relax"))
        assert notice.text == t("settings.saved", "en")
        await commands.run(w.service, w.who(), "imagine", "a fox")
        (sent,) = w.sim.submits("imagine")
        assert sent.prefix == "/relax"
        # The menu is redrawn with the choice marked.
        await w.until(lambda: "✅ " + t("mode.relax", "en") in w.chat.tokens(menu))


async def test_fast_and_relax_commands_set_the_mode(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "relax", "")
        await commands.run(w.service, w.who(), "imagine", "a hare")
        await commands.run(w.service, w.who(), "fast", "")
        await commands.run(w.service, w.who(), "imagine", "a hare")
        await w.until(lambda: w.submits("imagine") == 2)
        assert [r.prefix for r in w.sim.submits("imagine")] == ["/relax", "/fast"]
        said = t("settings.mode_set", "en", mode=t("mode.relax", "en"))
        assert said in w.chat.texts()


async def test_someone_elses_menu_changes_nothing(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "settings", "")
        menu = w.chat.sent[-1][0]
        notice = await w.service.press(on(menu, user="8"), buttons.setting("mode", "relax"))
        assert notice.alert and notice.text == t("settings.not_yours", "en")
        assert (await w.service.user_settings(on(menu, user="8"))).mode is None
        assert (await w.service.user_settings(w.who())).mode is None


async def test_a_value_the_menu_does_not_offer_is_refused(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "settings", "")
        menu = w.chat.sent[-1][0]
        notice = await w.service.press(on(menu), buttons.setting("mode", "turbo"))
        assert notice.alert and notice.text == t("settings.invalid", "en")
        assert (await w.service.user_settings(w.who())).mode is None


async def test_tasks_lists_them_and_task_posts_a_result_again_with_buttons(world):
    async with world() as w:
        key, result = await w.imagine("a lighthouse at dawn")
        await commands.run(w.service, w.who(), "tasks", "")
        listing = w.chat.texts()[-1]
        assert listing.startswith(t("tasks.title", "en")) and f"/task {key}" in listing
        await commands.run(w.service, w.who(), "task", key)
        again = w.chat.sent[-1][0]
        assert again != result and "U1" in w.chat.tokens(again)
        row = await w.store.task(key)
        assert row is not None and row.result_ref.split("|")[2] == again  # its buttons now
        await commands.run(w.service, w.who(), "task", "nonexistent")
        assert w.chat.texts()[-1] == t("task.unknown", "en")


async def test_seed_asks_the_api_for_the_tasks_seed(world):
    async with world() as w:
        key, _ = await w.imagine()
        await commands.run(w.service, w.who(), "seed", key)
        await w.until(lambda: w.chat.texts()[-1].startswith("🌱"))
        row = await w.store.task(key)
        assert row is not None
        assert any(r.path == f"/mj/task/{row.task_id}/image-seed" for r in w.sim.requests)
        assert w.chat.texts()[-1].startswith(t("seed.value", "en", seed="").rstrip())


async def test_the_seed_button_is_its_owners_even_where_buttons_are_shared(world):
    async with world(buttons="chat") as w:
        key, _ = await w.imagine()
        notice = await w.service.press(w.who(user="8"), buttons.encode(key, "seed"))
        assert notice.alert and notice.text == t("seed.not_owner", "en")
        assert not any(r.path.endswith("/image-seed") for r in w.sim.requests)
