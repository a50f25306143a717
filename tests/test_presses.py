"""Button presses (bot/usecases/presses.py): a token resolved, checked against its task, its
chat and its owner, and acted on once; the API's buttons become exactly one action request.
In-process against the simulator (tests/inprocess.py)."""

from __future__ import annotations

import pytest

from bot import buttons
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.usecases import presses
from tests.dbrows import stored
from tests.inprocess import CHAT, OWNER, worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


async def test_a_press_sends_the_buttons_custom_id_for_the_task_once(world):
    async with world() as w:
        grid, message = await w.imagine("a lighthouse at dawn")
        row = await w.store.task(grid)
        assert row is not None and row.task is not None
        u2 = next(b for b in row.task.buttons if b.label == "U2")
        (notice,) = await w.press(message, "U2")
        assert not notice.alert and "submitted" in notice.text
        child = await w.child(grid, "2")
        await w.result(child)
        (sent,) = w.sim.submits("action")
        assert sent.body["customId"] == u2.custom_id
        assert sent.body["taskId"] == row.task_id
        assert sent.body["state"] == child
        (charge,) = stored(w.store, "SELECT * FROM ledger WHERE task_key = ?", child)
        assert charge["user_id"] == OWNER


async def test_a_press_by_someone_else_on_an_owners_task_does_nothing(world):
    async with world(buttons="owner") as w:
        _, message = await w.imagine()
        (notice,) = await w.press(message, "U1", user="8")
        assert notice.alert and notice.text == t("press.not_owner", "en")
        assert w.submits("action") == 0
        assert len(stored(w.store, "SELECT * FROM ledger")) == 1  # the grid's only


async def test_in_a_chat_that_shares_buttons_anyone_may_press(world):
    async with world(buttons="chat") as w:
        grid, message = await w.imagine()
        (notice,) = await w.press(message, "U1", user="8")
        assert not notice.alert
        child = await w.child(grid, "1")
        (charge,) = stored(w.store, "SELECT * FROM ledger WHERE task_key = ?", child)
        assert charge["user_id"] == "8"  # the presser pays


async def test_a_token_from_another_chat_or_forged_is_refused(world):
    async with world() as w:
        _, message = await w.imagine()
        token = w.chat.tokens(message)["U1"]
        elsewhere = Requester("t", "-200", OWNER, message=MessageRef("t", "-200", "5"))
        foreign = await w.service.press(elsewhere, token)
        forged = await w.service.press(w.who(), "zz:not-a-token")
        assert foreign.alert and foreign.text == t("press.foreign", "en")
        assert forged.alert and forged.text == t("press.expired", "en")
        assert w.submits("action") == 0


async def test_an_upscale_pressed_again_shows_its_result_again_and_submits_nothing(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        child = await w.child(grid, "1")
        first = await w.result(child)
        before = len(w.chat.sent)
        (notice,) = await w.press(message, "U1")
        assert notice.text.startswith("✅") and "nothing new" in notice.text
        await w.until(lambda: len(w.chat.sent) == before + 1)
        again = w.chat.sent[-1][0]
        assert again != first and w.chat.shown[again].media  # the same result, posted anew
        assert w.submits("action") == 1


async def test_a_press_after_the_burst_posts_the_result_once_more(world, monkeypatch):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "1")
        await w.result(upscale)
        before = len(w.chat.sent)
        await w.press(message, "U1", times=3)
        await w.until(lambda: len(w.chat.sent) == before + 1)
        copy = w.chat.sent[-1][0]

        async def recorded() -> bool:  # a press before that points to the first result
            row = await w.store.task(upscale)
            return row is not None and row.ref("result") == MessageRef("t", CHAT, copy, "photo")

        await w.until(recorded)
        (notice,) = await w.press(message, "U1")  # within the window: points to the copy
        assert notice.where == MessageRef("t", CHAT, copy, "photo")
        monkeypatch.setattr(presses, "SHOWN_AGAIN_FOR_S", 0.0)
        await w.press(message, "U1")  # later: posted once more, below the press
        await w.until(lambda: len(w.chat.sent) == before + 2)
        assert w.submits("action") == 1


async def test_a_settings_button_is_handed_to_the_settings(world):
    async with world() as w:
        req = w.who()
        await w.service.open_settings(req)
        menu = w.chat.sent[-1][0]
        press = Requester("t", req.chat_id, OWNER, message=MessageRef("t", req.chat_id, menu))
        notice = await w.service.press(press, buttons.setting("mode", "relax"))
        assert notice.text == t("settings.saved", "en")
        assert (await w.service.user_settings(req)).mode == "relax"
