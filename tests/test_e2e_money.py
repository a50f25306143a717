"""Money and the messages around it, end to end: ``mjbot run`` against the fake Telegram server
and the simulator. A finished U pressed again is shown again and not submitted; two quick
replies to one question are charged once and the charge stands; a progress message the
platform confirms late is not left behind."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import ALICE, GROUP
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


def results_for(tg, chat: int, request_id: int):
    return [
        m
        for m in tg.bot_messages(chat)
        if m.reply_to_message_id == request_id and m.photo and m.buttons
    ]


async def grid_of(tg, prompt: str):
    asked = await tg.send_text(GROUP, tg.users[ALICE], f"/imagine {prompt}")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    return results_for(tg, GROUP, asked.message_id)[0]


def ledger(bot, task_key: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM ledger" + (" WHERE task_key = ?" if task_key else "")
    return bot.rows(sql + " ORDER BY created_at", *((task_key,) if task_key else ()))


async def test_a_finished_u_pressed_again_is_posted_again_not_submitted(bot, sim, tg):
    grid = await grid_of(tg, "a paper boat")
    await tg.press(GROUP, grid, "U1", tg.users[ALICE])
    upscaled = await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == grid.message_id and m.photo, timeout=30
    )
    again = await tg.press(GROUP, grid, "U1", tg.users[ALICE])
    await tg.wait_for(lambda: again in tg.answers, timeout=10)
    assert "posted again" in tg.answers[again]["text"]
    shown = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.message_id > upscaled.message_id and m.photo and m.buttons,
        timeout=20,
    )
    assert any("Vary (Region)" in text for row in shown.buttons for text, _ in row)
    await asyncio.sleep(1.0)  # a wrong second upscale would have been submitted by now
    assert len(sim.submits("action")) == 1


async def test_two_quick_replies_to_one_question_are_charged_once(bot, sim, tg):
    grid = await grid_of(tg, "a glass teapot")
    await tg.press(GROUP, grid, "U2", tg.users[ALICE])
    upscaled = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == grid.message_id and m.photo and m.buttons,
        timeout=30,
    )
    await tg.press(GROUP, upscaled, "🔍 Custom Zoom", tg.users[ALICE])
    question = await tg.wait_for_bot_message(
        GROUP, lambda m: (m.reply_markup or {}).get("force_reply"), timeout=20
    )
    await asyncio.gather(
        tg.send_text(GROUP, tg.users[ALICE], "a teapot --zoom 1.5", reply_to=question.message_id),
        tg.send_text(GROUP, tg.users[ALICE], "a teapot --zoom 1.8", reply_to=question.message_id),
    )
    await tg.wait_for(
        lambda: (
            any(m.photo and m.buttons for m in tg.bot_messages(GROUP)[-3:])
            and len(sim.submits("modal")) == 1
        ),
        timeout=30,
    )
    await tg.wait_for(lambda: all(r["outcome"] != "pending" for r in ledger(bot)), timeout=20)
    zoom = [r for r in ledger(bot) if r["action"] == "zoom"]
    assert sorted(r["outcome"] for r in zoom) == ["success", "void"]
    assert len(sim.submits("modal")) == 1


async def test_a_progress_message_confirmed_late_is_not_left_waiting(bot, sim, tg):
    # Telegram posts the message at once but answers after 7 s: longer than a client that
    # gives up after 5 s (python-telegram-bot's default) would wait.
    tg.answer_late("sendMessage", 7.0)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a lighthouse at dusk")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=40)
    await asyncio.sleep(1.0)
    left = [
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == asked.message_id and not m.photo
    ]
    assert left == [], [m.text for m in left]
    assert "no progress message" not in bot.log()
