"""Delivery you can trust, end to end: restarts with kill -9, callbacks (duplicate, forged,
lost), API outages, simultaneous presses, redelivered updates and per-chat 429s."""

from __future__ import annotations

import asyncio
import json
import re

import httpx

from mjsim import SimConfig, Simulator
from tests.conftest import ALICE, BOB, GROUP
from tests.harness import API_KEY, BotProcess, free_port
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


def results_for(tg, chat: int, request_id: int):
    """Finished results (photos with buttons) posted in reply to one request."""
    return [
        m
        for m in tg.bot_messages(chat)
        if m.reply_to_message_id == request_id and m.photo and m.buttons
    ]


async def started(bot: BotProcess, tg, calls_before: int = 0) -> None:
    bot.start()
    await tg.wait_for(
        lambda: len(tg.calls_to("deleteWebhook")) > calls_before, timeout=30, message="bot up"
    )


async def test_kill_9_while_running_delivers_once_after_restart(make_bot, sim, tg):
    bot = make_bot()
    await started(bot, tg)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a lighthouse in a storm")
    progress = await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == asked.message_id
    )
    await tg.wait_for(lambda: progress.edits, timeout=20)  # accepted and running
    await bot.stop(kill=True)  # in the middle of the task
    await asyncio.sleep(1.5)  # the task finishes while the bot is down
    await started(bot, tg, calls_before=1)
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    await tg.wait_for(lambda: tg.message(GROUP, progress.message_id).deleted, timeout=10)
    await asyncio.sleep(1.0)  # nothing else arrives later
    assert len(results_for(tg, GROUP, asked.message_id)) == 1
    assert len(sim.submits("imagine")) == 1
    await bot.stop()


async def test_kill_9_while_waiting_for_a_modal_answer(make_bot, sim, tg):
    bot = make_bot()
    await started(bot, tg)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a glass teapot")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    grid = results_for(tg, GROUP, asked.message_id)[0]
    await tg.press(GROUP, grid, "U1", tg.users[ALICE])
    upscaled = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == grid.message_id and m.photo and m.buttons,
        timeout=30,
    )
    await tg.press(GROUP, upscaled, "🔍 Custom Zoom", tg.users[ALICE])
    question = await tg.wait_for_bot_message(
        GROUP, lambda m: (m.reply_markup or {}).get("force_reply"), timeout=20
    )
    await bot.stop(kill=True)
    await started(bot, tg, calls_before=1)
    answer = await tg.send_text(
        GROUP, tg.users[ALICE], "a glass teapot --zoom 1.8", reply_to=question.message_id
    )
    await tg.wait_for(lambda: results_for(tg, GROUP, answer.message_id), timeout=30)
    modal = sim.submits("modal")
    assert len(modal) == 1 and modal[0].body["prompt"] == "a glass teapot --zoom 1.8"
    await bot.stop()


async def test_kill_9_while_submitting_is_reported_with_a_retry(make_bot, sim, tg):
    bot = make_bot()
    await started(bot, tg)
    sim.faults.hang_s = 5.0  # the API is slow to answer the submit
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a quiet harbour")
    await tg.wait_for_bot_message(GROUP, lambda m: m.reply_to_message_id == asked.message_id)
    await tg.wait_for(lambda: sim.requests, timeout=10)
    await bot.stop(kill=True)
    sim.faults.hang_s = 0.0
    await started(bot, tg, calls_before=1)
    notice = await tg.wait_for(
        lambda: next(
            (
                m
                for m in tg.bot_messages(GROUP)
                if m.reply_to_message_id == asked.message_id and "⚠️" in (m.content or "")
            ),
            None,
        ),
        timeout=20,
    )
    assert any("🔁" in text for row in notice.buttons for text, _ in row)
    submitted = len(sim.submits("imagine"))
    await tg.press(GROUP, notice, "🔁 Try again", tg.users[ALICE])
    await tg.wait_for(lambda: len(sim.submits("imagine")) == submitted + 1, timeout=10)
    assert sim.submits("imagine")[-1].body["prompt"] == "a quiet harbour"
    await bot.stop()


async def test_callbacks_duplicate_forged_and_lost(make_bot, sim, tg):
    port = free_port()
    bot = make_bot(
        tracking={
            "webhook_public_url": f"http://127.0.0.1:{port}",
            "listen": f"127.0.0.1:{port}",
            "poll_interval_s": 2.0,
        },
    )
    sim.faults.duplicate_hooks = True
    sim.faults.reorder_hooks = True
    await started(bot, tg)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine an orchard at noon")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    hook = sim.submits("imagine")[0].body["notifyHook"]
    assert hook.startswith(f"http://127.0.0.1:{port}/mj/hook/")

    async with httpx.AsyncClient() as http:
        status = (await http.get(f"http://127.0.0.1:{port}/status")).json()
        assert status["webhook"]["confirmed"] >= 1
        assert status["event_loop"] == "uvloop"  # mjbot run's loop (a dependency on Linux)
        # A forged SUCCESS for a live task (right secret, wrong content) changes nothing the
        # API does not confirm; a wrong secret is refused outright.
        asked2 = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a slow river")
        await tg.wait_for(lambda: len(sim.submits("imagine")) == 2, timeout=10)
        live_id = next(t.id for t in sim.tasks.values() if t.prompt == "a slow river")
        forged = {
            "id": live_id,
            "status": "SUCCESS",
            "progress": "100%",
            "imageUrl": "http://127.0.0.1:9/evil.png",
            "buttons": [{"customId": "MJ::JOB::upsample::1::evil", "label": "EVIL"}],
        }
        wrong = await http.post(f"http://127.0.0.1:{port}/mj/hook/not-the-secret", json=forged)
        assert wrong.status_code == 404
        ok = await http.post(hook, content=json.dumps(forged))
        assert ok.status_code == 200
        await tg.wait_for(lambda: results_for(tg, GROUP, asked2.message_id), timeout=30)
        labels = [
            t for m in results_for(tg, GROUP, asked2.message_id) for r in m.buttons for t, _ in r
        ]
        assert "EVIL" not in labels and "U1" in labels
        status = (await http.get(f"http://127.0.0.1:{port}/status")).json()
        assert status["webhook"]["dropped_secret"] == 1
        # The process's one metrics object, as mjbot status shows it: two results posted and
        # paid for, the forged SUCCESS only confirmed (a list request), never counted as one.
        for _ in range(50):
            status = (await http.get(f"http://127.0.0.1:{port}/status")).json()
            if status["ledger"]["kept"] == 2:
                break
            await asyncio.sleep(0.1)
        assert status["deliveries"]["results"] == 2
        assert status["api"]["by_route"]["submit/imagine"] == 2
        ledger = status["ledger"]
        assert (ledger["charges"], ledger["kept"], ledger["refunds"]) == (2, 2, 0)
        assert status["webhook"]["shown"] >= 1 and status["tracking"]["confirms"] >= 2
        assert status["api"]["tracking"] >= status["tracking"]["confirms"]

    # The webhook goes quiet mid-run: the poller still delivers.
    sim.faults.drop_hooks = True
    asked3 = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a frozen waterfall")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked3.message_id), timeout=40)
    for request in (asked, asked2, asked3):
        assert len(results_for(tg, GROUP, request.message_id)) == 1
    await bot.stop()


async def test_api_outage_during_polling_loses_nothing(bot, sim, tg):
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a desert at night")
    await tg.wait_for(lambda: sim.submits("imagine"), timeout=10)
    sim.faults.fail_next("list-by-condition", status=502, times=8)
    sim.faults.hang_s = 0.5
    await asyncio.sleep(2.0)
    sim.faults.hang_s = 0.0
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=40)
    assert bot.alive


async def test_ten_presses_submit_once(bot, sim, tg):
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a paper boat")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    grid = results_for(tg, GROUP, asked.message_id)[0]
    presses = await asyncio.gather(
        *(tg.press(GROUP, grid, "V3", tg.users[ALICE]) for _ in range(10))
    )
    answers = [await tg.wait_for_answer(cq) for cq in presses]
    await tg.wait_for(
        lambda: any(
            m.reply_to_message_id == grid.message_id and m.buttons for m in tg.bot_messages(GROUP)
        ),
        timeout=30,
    )
    assert len(sim.submits("action")) == 1
    texts = [a.get("text", "") for a in answers]
    assert sum("submitted" in t for t in texts) == 1
    assert sum(bool(re.match(r"⏳ Already running \(\d+%\)", t)) for t in texts) == 9


async def test_a_redelivered_update_submits_once(bot, sim, tg):
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a red kite")
    await tg.wait_for(lambda: sim.submits("imagine"), timeout=10)
    tg.inject_update(tg.updates[-1])  # the same update_id again, as after a lost ack
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    await asyncio.sleep(1.0)
    assert len(sim.submits("imagine")) == 1


async def test_429_in_one_chat_does_not_stop_another(bot, sim, tg):
    tg.throttle_chat(GROUP, retry_after=3, times=3)
    slow = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a slow snail")
    fast = await tg.send_text(BOB, tg.users[BOB], "/imagine a fast hare")
    await tg.wait_for(lambda: results_for(tg, BOB, fast.message_id), timeout=30)
    assert not results_for(tg, GROUP, slow.message_id)  # still waiting out its 429s
    await tg.wait_for(lambda: results_for(tg, GROUP, slow.message_id), timeout=40)
    assert len(results_for(tg, GROUP, slow.message_id)) == 1
    assert bot.alive


async def test_a_chat_that_refuses_the_progress_message_still_gets_its_result(bot, sim, tg):
    tg.throttle_chat(GROUP, retry_after=1, times=6)  # more 429s than the outbox retries
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a patient heron")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=40)
    assert len(sim.submits("imagine")) == 1
    assert len(results_for(tg, GROUP, asked.message_id)) == 1


async def test_a_result_the_chat_refused_is_posted_again_later(make_bot, sim, tg):
    bot = make_bot(tracking={"resend_after_s": 1.0})
    await started(bot, tg)
    tg.fail_next("sendPhoto", chat_id=GROUP, times=2)  # Telegram is down when the result is ready
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a stubborn mule")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=40)
    await asyncio.sleep(2.5)  # two more resend rounds: nothing else arrives
    assert len(results_for(tg, GROUP, asked.message_id)) == 1
    assert [c.status for c in tg.calls_to("sendPhoto")] == [500, 500, 200]
    assert len(sim.submits("imagine")) == 1
    progress = next(m for m in tg.bot_messages(GROUP, include_deleted=True) if m.deleted)
    assert progress.reply_to_message_id == asked.message_id  # and the progress message is gone
    await bot.stop()


async def test_a_result_image_that_is_not_an_image_arrives_as_a_link(bot, sim, tg):
    sim.faults.broken_images = True  # the CDN answers 200 with an error page
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a mirage")
    shown = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and m.buttons and not m.deleted,
        timeout=30,
    )
    task = next(t for t in sim.tasks.values() if t.prompt == "a mirage")
    assert shown.photo is None
    assert f"/sim/images/{task.id}/image.png" in shown.content
    assert any("U1" in text for row in shown.buttons for text, _ in row)  # buttons still work
    assert bot.alive


async def test_a_task_that_never_finishes_is_given_up_with_a_retry(make_bot, sim, tg):
    bot = make_bot(tracking={"timeout_fast_s": 3.0})
    await started(bot, tg)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a ship that will stall at sea")
    progress = await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == asked.message_id
    )
    notice = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and "too long" in (m.content or ""),
        timeout=20,
    )
    assert notice.buttons == [[("🔁 Try again", notice.buttons[0][0][1])]]
    await tg.wait_for(lambda: tg.message(GROUP, progress.message_id).deleted, timeout=10)
    task = next(t for t in sim.tasks.values() if "stall" in t.prompt)
    assert task.status not in ("SUCCESS", "FAILURE")  # the API had not given up yet
    await tg.press(GROUP, notice, "🔁 Try again", tg.users[ALICE])
    await tg.wait_for(lambda: len(sim.submits("imagine")) == 2, timeout=10)
    assert sim.submits("imagine")[1].body["prompt"] == sim.submits("imagine")[0].body["prompt"]
    await bot.stop()


async def test_kill_9_while_the_result_is_being_posted(make_bot, sim, tg, tmp_path):
    bot = make_bot()
    await started(bot, tg)
    sim.faults.image_delay_s = 6.0  # the result's download hangs: claimed, not yet posted
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a kite over the dunes")

    def claimed_not_posted() -> bool:
        rows = bot.rows("SELECT delivering_at, delivered_at FROM tasks")
        return (
            len(rows) == 1
            and rows[0]["delivering_at"] is not None
            and rows[0]["delivered_at"] is None
        )

    await tg.wait_for(lambda: sim.image_requests and claimed_not_posted(), timeout=30)
    await bot.stop(kill=True)
    sim.faults.image_delay_s = 0.0
    await started(bot, tg, calls_before=1)
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    await asyncio.sleep(1.0)
    assert len(results_for(tg, GROUP, asked.message_id)) == 1
    assert len(sim.submits("imagine")) == 1
    await bot.stop()


def recorded_ids(bot: BotProcess) -> int:
    """How many tasks the bot has stored the API's task id for."""
    return len(bot.rows("SELECT key FROM tasks WHERE task_id IS NOT NULL"))


async def test_kill_9_while_queued_delivers_each_once(tmp_path, tg):
    one_at_a_time = Simulator(SimConfig(api_key=API_KEY, time_scale=0.05, concurrency=1))
    await one_at_a_time.start()
    bot = BotProcess(tmp_path, one_at_a_time.base_url, tg.url)
    try:
        await started(bot, tg)
        first = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a red door")
        second = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a blue door")
        await tg.wait_for(lambda: len(one_at_a_time.submits("imagine")) == 2, timeout=10)
        # Killed once both submits are recorded (the simulator seeing a submit is not enough:
        # a kill before the bot stores the answer is the "interrupted submit" case, tested
        # on its own above).
        await tg.wait_for(lambda: recorded_ids(bot) == 2, timeout=10)
        assert any(t.status == "NOT_START" for t in one_at_a_time.tasks.values())  # queued
        await bot.stop(kill=True)
        await started(bot, tg, calls_before=1)
        for asked in (first, second):
            await tg.wait_for(lambda a=asked: results_for(tg, GROUP, a.message_id), timeout=40)
        await asyncio.sleep(1.0)
        assert [len(results_for(tg, GROUP, a.message_id)) for a in (first, second)] == [1, 1]
        assert len(one_at_a_time.submits("imagine")) == 2
    finally:
        await bot.stop()
        await one_at_a_time.stop()
