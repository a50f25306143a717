"""Every unit charged once: ten simultaneous attempts of each kind that spends money (button
presses, answers to questions as replies and as masks, album questions, 🔁, redelivered
commands) make one submit and one charge, and a refund only undoes its own attempt's charge.

The Service runs in-process against the simulator (tests/inprocess.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest

from bot import media
from bot.chat import MessageRef
from bot.config import AccessConfig, QuotaConfig
from bot.policy import Policy
from bot.store.sqlite import SQLiteStore
from tests.dbrows import stored
from tests.inprocess import CHAT, TEN, png, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


# --- answers to one question --------------------------------------------------------------------


async def test_ten_replies_to_one_question_charge_once_and_the_charge_stands(world):
    async with world(remix=True) as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        child = await w.child(grid, "V1")
        asked = await w.question(child)  # remix: the press turned into a question
        await asyncio.gather(
            *(
                w.service.answer(w.who(message=f"r{n}"), asked, f"a lighthouse at dusk {n}")
                for n in range(TEN)
            )
        )
        await w.result(child)
        rows = await w.settled(child)
        assert w.submits("modal") == 1
        # The press's charge is void (nothing ran then), the one answer that won is kept.
        assert [r["outcome"] for r in rows] == ["void", "success"]
        assert len({r["id"] for r in rows}) == 2
        assert await w.spent() == 1 + 1  # the grid and the variation


async def test_ten_masks_and_replies_to_one_vary_region_charge_once(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "U1")
        shown = await w.result(upscale)
        await w.press(shown, "🖌️ Vary (Region)")
        region = await w.child(upscale, "Vary (Region)")
        asked = await w.question(region)
        masks = [w.service.answer_mask(w.who(), region, png(), "a red boat") for _ in range(5)]
        replies = [w.service.answer(w.who(message=f"m{n}"), asked, "1 2 a boat") for n in range(5)]
        await asyncio.gather(*masks, *replies)
        await w.result(region)
        rows = await w.settled(region)
        assert w.submits("modal") == 1
        assert [r["outcome"] for r in rows] == ["void", "success"]
        assert await w.spent() == 1 + 0 + 1  # grid, upscale (free by default), region


async def test_an_answer_over_quota_leaves_the_question_open(world):
    async with world(remix=True, quota=QuotaConfig(daily_units=2, concurrency=0)) as w:
        grid, message = await w.imagine()  # 1 of 2
        await w.press(message, "V1")  # charged, then void: it became a question
        child = await w.child(grid, "V1")
        asked = await w.question(child)
        await w.service.imagine(w.who(), "another one")  # 2 of 2
        await w.service.answer(w.who(message="late"), asked, "at dusk")
        assert "quota" in w.chat.texts()[-1].lower() or "limit" in w.chat.texts()[-1].lower()
        assert w.submits("modal") == 0
        modal = await w.store.modal(child)
        assert modal is not None and modal.answered_at is None  # it can still be answered


# --- buttons pressed again ----------------------------------------------------------------------


async def test_ten_presses_of_one_button_submit_once(world):
    async with world() as w:
        grid, message = await w.imagine()
        notices = await w.press(message, "V2", times=TEN)
        child = await w.child(grid, "V2")
        await w.result(child)
        rows = await w.settled(child)
        assert w.submits("action") == 1
        assert [r["outcome"] for r in rows] == ["success"]
        assert sum("submitted" in n.text for n in notices) == 1


async def test_a_finished_upscale_is_posted_again_and_not_submitted(world):
    # On PostgreSQL the ten presses' claims really run side by side and the later ones reach
    # the press after the copy is out: they point to it (presses.SHOWN_AGAIN_FOR_S) instead
    # of posting a second and third copy (as they did, 6 of 6 runs, before it).
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "U1")
        first = await w.result(upscale)
        sent_before = len(w.chat.sent)
        notices = await w.press(message, "U1", times=TEN)
        await asyncio.sleep(0.5)  # give a wrong second submit time to happen
        assert w.submits("action") == 1
        assert all("U1 submitted" not in n.text for n in notices)
        assert all("posted again" in n.text for n in notices), [n.text for n in notices]
        # Posted again once, with working buttons (the upscale's own, e.g. Vary (Region)).
        reposts = await w.until(lambda: w.chat.sent[sent_before:])
        await asyncio.sleep(0.3)
        assert len(w.chat.sent) == sent_before + 1
        again = reposts[0][0]
        # Each notice points to the result: the first post, or its copy for a press answered
        # after the copy was recorded (on PostgreSQL the ten presses really run side by side).
        shown = {MessageRef("t", CHAT, first, "photo"), MessageRef("t", CHAT, again, "photo")}
        assert all(n.where in shown for n in notices), [n.where for n in notices]
        assert "🖌️ Vary (Region)" in w.chat.tokens(again)
        ledger = stored(w.store, "SELECT * FROM ledger WHERE task_key = ?", upscale)
        assert len(ledger) == 1


async def test_a_finished_variation_may_be_pressed_again_for_a_new_job(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        first = await w.child(grid, "V1")
        await w.result(first)
        notices = await w.press(message, "V1", times=TEN)
        second = await w.child(grid, "V1")
        assert second != first
        await w.result(second)
        await w.settled(second)
        assert w.submits("action") == 2
        started = [n for n in notices if "new job" in n.text]
        assert len(started) == 1, [n.text for n in notices]
        assert await w.spent() == 1 + 1 + 1


async def test_a_running_button_says_how_far_it_is(world):
    async with world() as w:
        grid, message = await w.imagine()
        w.sim.faults.hang_s = 0.5  # the submit is still on its way when the others press
        notices = await w.press(message, "V3", times=3)
        w.sim.faults.hang_s = 0.0
        assert sum("Already running" in n.text for n in notices) == 2
        await w.result(await w.child(grid, "V3"))


async def test_someone_else_cannot_press_a_finished_button_again(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        await w.result(await w.child(grid, "V1"))
        (notice,) = await w.press(message, "V1", user="8")
        assert notice.alert and "Only the person" in notice.text
        assert w.submits("action") == 1


async def test_ten_retries_of_a_failed_job_submit_once(world):
    async with world() as w:
        key, message = await w.imagine("this will fail")  # the simulator fails "fail"
        assert (await w.settled(key))[0]["outcome"] == "refunded"
        notices = await w.press(message, "🔁 Try again", times=TEN)
        await w.until(lambda: w.submits("imagine") >= 2)
        await asyncio.sleep(0.5)  # give a wrong second retry time to happen
        assert w.submits("imagine") == 2
        (retry,) = stored(w.store, "SELECT key FROM tasks WHERE key != ?", key)
        await w.result(retry["key"])
        assert [r["outcome"] for r in await w.settled(retry["key"])] == ["refunded"]
        assert sum("Already running" not in n.text for n in notices) == 1, [n.text for n in notices]


# --- commands -----------------------------------------------------------------------------------


async def test_ten_photo_replies_to_one_album_question_charge_once(world):
    async with world() as w:
        await w.service.describe(w.who())
        asked = w.chat.sent[-1][0]
        photo = png((300, 200), "navy")
        await asyncio.gather(
            *(w.service.answer(w.who(message=f"p{n}"), asked, "", [photo]) for n in range(TEN))
        )
        (row,) = stored(w.store, "SELECT key FROM tasks WHERE kind = 'describe'")
        await w.result(row["key"])
        assert w.submits("describe") == 1
        assert [r["outcome"] for r in await w.settled(row["key"])] == ["success"]


async def test_a_redelivered_command_is_charged_once(world):
    async with world() as w:
        req = w.who()
        await asyncio.gather(*(w.service.imagine(req, "a fox") for _ in range(TEN)))
        rows = stored(w.store, "SELECT * FROM ledger")
        assert len(rows) == 1 and w.submits("imagine") == 1


async def test_a_quota_refusal_leaves_no_task_and_no_charge(world):
    async with world(quota=QuotaConfig(daily_units=1, concurrency=0)) as w:
        await asyncio.gather(*(w.service.imagine(w.who(), f"a fox {n}") for n in range(TEN)))
        assert len(stored(w.store, "SELECT * FROM ledger")) == 1
        assert len(stored(w.store, "SELECT * FROM tasks")) == 1
        assert w.submits("imagine") == 1


# --- the ledger of older databases --------------------------------------------------------------


async def test_a_version_4_ledger_is_kept_and_still_settles(tmp_path):
    path = tmp_path / "old.db"
    scripts = sorted(
        Path(media.__file__).parent.joinpath("store", "migrations").glob("000[1-4]_*.sql")
    )
    async with aiosqlite.connect(path) as db:
        for script in scripts:
            await db.executescript(script.read_text())
        await db.execute("PRAGMA user_version=4")
        await db.execute(
            "INSERT INTO tasks (key, platform, chat_id, user_id, kind, status, created_at,"
            " updated_at) VALUES ('oldtask234', 't', '-1', '7', 'imagine', 'IN_PROGRESS', 1, 1)"
        )
        await db.execute(
            "INSERT INTO ledger (task_key, platform, user_id, chat_id, action, units, day,"
            " month, created_at) VALUES ('oldtask234', 't', '7', '-1', 'imagine', 1,"
            " '2026-01-01', '2026-01', 1)"
        )
        await db.commit()
    store = await SQLiteStore.open(path)
    try:
        row = await store.task("oldtask234")
        assert row is not None and row.charge_id == "oldtask234"
        policy = Policy(store, AccessConfig(), QuotaConfig())
        await policy.settle(row.charge_id, success=True)
        (entry,) = stored(store, "SELECT * FROM ledger")
        assert entry["id"] == "oldtask234" and entry["outcome"] == "success"
    finally:
        await store.close()
