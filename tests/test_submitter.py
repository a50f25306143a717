"""The Submitter (bot/usecases/submitter.py), the one path that spends money: the charge is
taken with the task, the API called once, the outcome shown, the charge kept, refunded or
voided. In-process against the simulator (tests/inprocess.py)."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.mj.models import TaskState
from bot.store import TaskRow
from tests.dbrows import stored
from tests.inprocess import worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def _only_task(w) -> str:
    (row,) = stored(w.store, "SELECT key FROM tasks")
    return row["key"]


async def test_an_accepted_submit_is_one_request_carrying_our_key_and_its_charge_stands(world):
    async with world() as w:
        key, result = await w.imagine("a red kite over the sea")
        (sent,) = w.sim.submits("imagine")
        assert sent.body["prompt"] == "a red kite over the sea"
        assert sent.body["state"] == key  # how a callback finds the task
        assert "notifyHook" not in sent.body  # no hook URL configured: none sent
        assert [r["outcome"] for r in await w.settled(key)] == ["success"]

        async def cleared() -> TaskRow | None:  # the progress message goes last (delivery.py)
            row = await w.store.task(key)
            return row if row is not None and row.progress_ref is None else None

        row = await w.until(cleared)
        assert row.status == TaskState.SUCCESS
        progress = [m for m, v in w.chat.sent if m != result and not v.media]
        assert progress and all(m in w.chat.deleted for m in progress)  # no "waiting" left


async def test_a_prompt_the_api_refuses_is_shown_refused_and_refunded(world):
    async with world() as w:
        await w.service.imagine(w.who(), "a gore scene")  # the simulator bans "gore" (code 24)
        key = _only_task(w)
        rows = await w.settled(key)
        assert [r["outcome"] for r in rows] == ["refunded"]
        assert await w.spent() == 0
        row = await w.store.task(key)
        assert row is not None and row.status == TaskState.REJECTED
        refusal = t("refused.banned", "en", word="gore")
        shown = w.chat.shown[row.result_ref.split("|")[2]]
        assert shown.text == f"a gore scene\n❌ {refusal}\n1 unit refunded."
        assert w.submits("imagine") == 1


async def test_an_api_error_is_said_in_words_and_refunded(world):
    async with world() as w:
        w.sim.faults.fail_next("/mj/submit/imagine", status=500, body={"error": "boom"})
        await w.service.imagine(w.who(), "a quiet harbour")
        key = _only_task(w)
        assert [r["outcome"] for r in await w.settled(key)] == ["refunded"]
        row = await w.store.task(key)
        assert row is not None and row.status == TaskState.REJECTED
        shown = w.chat.shown[row.result_ref.split("|")[2]]
        assert shown.text == f"a quiet harbour\n❌ {t('api.server', 'en')}\n1 unit refunded."


async def test_a_press_answered_with_a_question_voids_its_charge_and_asks(world):
    async with world(remix=True) as w:
        grid, message = await w.imagine("a lighthouse at dawn")
        before = len(w.chat.sent)
        await w.press(message, "V1")
        child = await w.child(grid, "V1")
        asked = await w.question(child)
        assert [r["outcome"] for r in await w.settled(child)] == ["void"]
        row = await w.store.task(child)
        assert row is not None and row.status == TaskState.MODAL and row.progress_ref is None
        question = w.chat.shown[asked]
        assert question.ask is not None and question.ask.prefill.startswith("a lighthouse")
        shown_after = [m for m, _ in w.chat.sent[before:]]
        # The progress message went up, then gave way to the question.
        assert shown_after[-1] == asked
        assert all(m in w.chat.deleted for m in shown_after[:-1])
        assert w.submits("modal") == 0
