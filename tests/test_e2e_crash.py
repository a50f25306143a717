"""kill -9 while an answer to a question is being submitted, end to end: ``mjbot run`` against
the simulator and the fake Telegram server. Nothing is lost and nothing is charged twice:

- the answer never reached the API: its charge is refunded (the user's concurrency slot is
  free again), and the question is asked again, saying why; answering it is the retry;
- the API took the answer, but the bot died before it heard so: the job is followed to its
  result, charged once, and nobody is told anything went wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mjsim.faults import RESET
from tests.conftest import ALICE, GROUP
from tests.harness import BotProcess
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH

HELD_S = 60.0  # longer than any test: the kill is what ends the held request


def results_for(tg, chat: int, request_id: int):
    return [
        m
        for m in tg.bot_messages(chat)
        if m.reply_to_message_id == request_id and m.photo and m.buttons
    ]


def ledger(bot: BotProcess, action: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM ledger" + (" WHERE action = ?" if action else "")
    return bot.rows(sql + " ORDER BY created_at", *((action,) if action else ()))


async def started(bot: BotProcess, tg, calls_before: int = 0) -> None:
    bot.start()
    await tg.wait_for(
        lambda: len(tg.calls_to("deleteWebhook")) > calls_before, timeout=30, message="bot up"
    )


async def settled(tg, bot: BotProcess) -> None:
    """Every charge so far is settled (with a concurrency of one, the next job may start)."""
    await tg.wait_for(
        lambda: all(r["outcome"] != "pending" for r in ledger(bot)), timeout=20, message="settled"
    )


async def zoom_question(tg, bot: BotProcess, prompt: str):
    """/imagine, U1, 🔍 Custom Zoom: the question the bot asks."""
    asked = await tg.send_text(GROUP, tg.users[ALICE], f"/imagine {prompt}")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    grid = results_for(tg, GROUP, asked.message_id)[0]
    await settled(tg, bot)
    await tg.press(GROUP, grid, "U1", tg.users[ALICE])
    await tg.wait_for(lambda: results_for(tg, GROUP, grid.message_id), timeout=30)
    upscaled = results_for(tg, GROUP, grid.message_id)[0]
    await settled(tg, bot)
    await tg.press(GROUP, upscaled, "🔍 Custom Zoom", tg.users[ALICE])
    return await tg.wait_for_bot_message(
        GROUP,
        lambda m: (m.reply_markup or {}).get("force_reply") and "Custom Zoom" in (m.content or ""),
        timeout=20,
    )


def modal_task(sim):
    (task,) = [t for t in sim.tasks.values() if t.modal == "zoom"]
    return task


async def test_kill_9_while_an_answer_is_submitted_refunds_it_and_asks_again(make_bot, sim, tg):
    bot = make_bot(quota={"concurrency": 1})
    await started(bot, tg)
    question = await zoom_question(tg, bot, "a glass teapot")
    # The answer's submit leaves the bot and is lost on its way: the API never handles it.
    sim.faults.fail_next("/submit/modal", status=RESET, delay_s=HELD_S)
    answer = await tg.send_text(
        GROUP, tg.users[ALICE], "a glass teapot --zoom 1.8", reply_to=question.message_id
    )
    await tg.wait_for(lambda: sim.submits("modal"), timeout=15, message="submit in flight")
    assert [r["outcome"] for r in ledger(bot, "zoom")] == ["void", "pending"]  # paid, in flight
    await bot.stop(kill=True)
    assert modal_task(sim).status == "MODAL"  # the API still waits for an answer

    await started(bot, tg, calls_before=1)
    again = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == answer.message_id and "restarted" in (m.content or ""),
        timeout=20,
    )
    assert "answer" in again.content and "nothing was charged" in again.content
    assert "a glass teapot --zoom 1.8" in again.content  # the lost answer, to copy
    assert (again.reply_markup or {}).get("force_reply")  # answering it is the retry
    await settled(tg, bot)
    assert [r["outcome"] for r in ledger(bot, "zoom")] == ["void", "refunded"]

    # The slot is free again: with a concurrency of one, a new job is accepted.
    other = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a second teapot")
    await tg.wait_for(lambda: results_for(tg, GROUP, other.message_id), timeout=30)
    assert not [m for m in tg.bot_messages(GROUP) if "jobs running" in (m.content or "")]
    await settled(tg, bot)

    # Answering the question asked again submits the answer once more; charged once.
    retry = await tg.send_text(
        GROUP, tg.users[ALICE], "a glass teapot --zoom 1.5", reply_to=again.message_id
    )
    await tg.wait_for(lambda: results_for(tg, GROUP, retry.message_id), timeout=30)
    await settled(tg, bot)
    assert [r["outcome"] for r in ledger(bot, "zoom")] == ["void", "refunded", "success"]
    assert [s.body["prompt"] for s in sim.submits("modal")] == [
        "a glass teapot --zoom 1.8",
        "a glass teapot --zoom 1.5",
    ]
    await bot.stop()


async def test_kill_9_after_the_api_took_the_answer_follows_the_job_and_charges_once(
    make_bot, sim, tg
):
    bot = make_bot(quota={"concurrency": 1})
    await started(bot, tg)
    question = await zoom_question(tg, bot, "a copper kettle")
    # The API handles the answer at once; its reply is what never reaches the bot.
    sim.faults.answer_late("/submit/modal", HELD_S)
    answer = await tg.send_text(
        GROUP, tg.users[ALICE], "a copper kettle --zoom 1.8", reply_to=question.message_id
    )
    await tg.wait_for(lambda: modal_task(sim).status != "MODAL", timeout=15, message="accepted")
    await bot.stop(kill=True)

    await started(bot, tg, calls_before=1)
    await tg.wait_for(lambda: results_for(tg, GROUP, answer.message_id), timeout=30)
    await settled(tg, bot)
    await asyncio.sleep(1.0)  # nothing else arrives later
    assert len(results_for(tg, GROUP, answer.message_id)) == 1
    assert [r["outcome"] for r in ledger(bot, "zoom")] == ["void", "success"]
    assert len(sim.submits("modal")) == 1
    said = [m.content or "" for m in tg.bot_messages(GROUP)]
    assert not [text for text in said if "restarted" in text]
    # The progress message of the answer does not stay behind.
    left = [
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == answer.message_id and not m.photo
    ]
    assert not left, [m.content for m in left]
    await bot.stop()


async def test_kill_9_while_an_answer_is_submitted_and_the_api_forgot_the_task(make_bot, sim, tg):
    """Whether the answer arrived cannot be known (the API does not know the task any more):
    reported and refunded as an interrupted submit is."""
    bot = make_bot(quota={"concurrency": 1})
    await started(bot, tg)
    question = await zoom_question(tg, bot, "a tin kettle")
    sim.faults.fail_next("/submit/modal", status=RESET, delay_s=HELD_S)
    answer = await tg.send_text(
        GROUP, tg.users[ALICE], "a tin kettle --zoom 1.8", reply_to=question.message_id
    )
    await tg.wait_for(lambda: sim.submits("modal"), timeout=15, message="submit in flight")
    await bot.stop(kill=True)
    sim.tasks.pop(modal_task(sim).id)  # e.g. a provider that keeps tasks for a while only

    await started(bot, tg, calls_before=1)
    await tg.wait_for_bot_message(
        GROUP,
        lambda m: (
            m.reply_to_message_id == answer.message_id
            and "restarted while this was being submitted" in (m.content or "")
        ),
        timeout=20,
    )
    await settled(tg, bot)
    assert [r["outcome"] for r in ledger(bot, "zoom")] == ["void", "refunded"]
    other = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a second kettle")
    await tg.wait_for(lambda: results_for(tg, GROUP, other.message_id), timeout=30)
    await bot.stop()
