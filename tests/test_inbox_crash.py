"""kill -9 after mjbot took an update from Telegram and before it handled it, end to end: ``mjbot
run``, the fake Telegram server (it never sends an update again once the bot took it, like the
real one: a webhook post answered 200, a getUpdates batch confirmed by the next call's offset)
and the simulator.

The window is a real one: the parts of an album are taken at once, then held in memory for the
album window (adapters/telegram/albums.py, ``ALBUM_WINDOW_S``) before anything is handled. An
instance killed in that window used to lose the album; now its parts wait in the store's inbox
(adapters/telegram/inbox.py) and the next start handles them: one blend submitted, one result,
one charge.
"""

from __future__ import annotations

import asyncio

from adapters.telegram.albums import ALBUM_WINDOW_S
from tests.conftest import ALICE, GROUP
from tests.storage import BOTH
from tests.test_e2e_flows import decode, photo, result_of
from tests.test_webhook import webhook_bot

TAKEOVER_S = 1.5  # the config's floor is 1 s; short, so the restart takes the parts at once


@BOTH
async def test_an_album_accepted_before_a_kill_is_blended_once_after_it(make_bot, sim, tg):
    bot, _ = await webhook_bot(make_bot, tg, inbox_takeover_s=TAKEOVER_S)
    red, green = photo("red"), photo("green")
    album = await tg.send_album(GROUP, tg.users[ALICE], [red, green], caption="/blend")
    ids = [u["update_id"] for u in tg.updates if "message" in u][-2:]
    await tg.wait_for(
        lambda: all((i, 200) in tg.webhook_posts for i in ids),
        timeout=ALBUM_WINDOW_S,  # both answered well inside the window of the first part
        message="both parts answered 200",
    )
    await bot.stop(kill=True)  # inside the album window: nothing handled yet
    assert not sim.submits("blend")
    assert bot.rows("SELECT * FROM seen") == []  # nothing reached the gate: the window

    bot.start()  # the next start; Telegram sends nothing again (it got its 200s)
    await result_of(tg, album[0].message_id, timeout=30)
    (blend,) = sim.submits("blend")
    assert [decode(u) for u in blend.body["base64Array"]] == [red, green]
    results = [  # a finished result is a photo with its buttons (progress has none)
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == album[0].message_id and m.photo and m.buttons
    ]
    assert len(results) == 1, [m.content for m in results]
    charges = bot.rows("SELECT action, units, outcome FROM ledger")
    assert [c["action"] for c in charges] == ["blend"], charges
    assert bot.rows("SELECT * FROM inbox") == []  # handled: nothing left to take
    assert [p for p in tg.webhook_posts if p[0] in ids] == [(i, 200) for i in ids]  # once each
    assert "which did not finish it" in bot.log()
    assert (await bot.stop()) == 0


async def test_a_polled_album_confirmed_before_a_kill_is_blended_once_after_it(make_bot, sim, tg):
    """Long polling: PTB's Updater confirms a batch with its next getUpdates, before the
    batch is handled; the kill lands after that confirmation."""
    bot = make_bot(telegram={"inbox_takeover_s": TAKEOVER_S})
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=60)
    red, green = photo("red"), photo("green")
    album = await tg.send_album(GROUP, tg.users[ALICE], [red, green], caption="/blend")
    last = max(u["update_id"] for u in tg.updates if "message" in u)
    await tg.wait_for(
        lambda: any(int(c.params.get("offset") or 0) > last for c in tg.calls_to("getUpdates")),
        timeout=ALBUM_WINDOW_S,
        message="both parts confirmed to Telegram",
    )
    await bot.stop(kill=True)
    assert not sim.submits("blend")
    assert bot.rows("SELECT * FROM seen") == []

    polls = len(tg.calls_to("getUpdates"))
    bot.start()
    await result_of(tg, album[0].message_id, timeout=30)
    (blend,) = sim.submits("blend")
    assert [decode(u) for u in blend.body["base64Array"]] == [red, green]
    # Telegram sent none of them again: the restart polled from past the album.
    after = [c for c in tg.calls_to("getUpdates")[polls:] if c.ok]
    assert all(u["update_id"] > last for c in after for u in c.result)
    results = [  # a finished result is a photo with its buttons (progress has none)
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == album[0].message_id and m.photo and m.buttons
    ]
    assert len(results) == 1, [m.content for m in results]
    charges = bot.rows("SELECT action FROM ledger")
    assert [c["action"] for c in charges] == ["blend"], charges
    assert bot.rows("SELECT * FROM inbox") == []
    assert (await bot.stop()) == 0


@BOTH
async def test_a_command_killed_after_the_gate_runs_once_after_the_restart(make_bot, sim, tg):
    """The kill lands after the gate took the update and before the work was stored: the
    command's photo is being downloaded. The gate's mark is only a claim until the task is
    stored (bot/usecases/gate.py), so the update the inbox hands to the next start runs there:
    one submit, one result, one charge. (A mark made for good at the gate dropped it as a
    redelivery: the user's /imagine was lost without a word.) On PostgreSQL the dead
    instance's heartbeat is still alive when the restart takes the update over: the inbox's
    take-over is what hands the claim on."""
    bot, _ = await webhook_bot(make_bot, tg, inbox_takeover_s=TAKEOVER_S)
    tg.files_held = asyncio.Event()
    boat = photo("red")
    asked = await tg.send_photo(GROUP, tg.users[ALICE], boat, caption="/imagine a red boat")
    await tg.wait_for(lambda: tg.file_downloads == 1, timeout=20, message="downloading")
    await bot.stop(kill=True)  # inside the entrance: claimed, nothing stored
    (claim,) = bot.rows("SELECT * FROM seen")
    assert claim["done"] == 0
    assert bot.rows("SELECT * FROM tasks") == [] and not sim.submits("imagine")
    tg.files_held.set()

    bot.start()  # Telegram sends nothing again (it got its 200)
    await result_of(tg, asked.message_id, timeout=30)
    (submit,) = sim.submits("imagine")
    assert submit.body["prompt"] == "a red boat"
    assert [decode(u) for u in submit.body["base64Array"]] == [boat]
    charges = bot.rows("SELECT action, units FROM ledger")
    assert charges == [{"action": "imagine", "units": 1}], charges
    results = [
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == asked.message_id and m.photo and m.buttons
    ]
    assert len(results) == 1
    assert [r["done"] for r in bot.rows("SELECT * FROM seen")] == [1]
    assert bot.rows("SELECT * FROM inbox") == []
    assert (await bot.stop()) == 0


@BOTH
async def test_an_album_killed_after_it_was_taken_is_blended_once_after_the_restart(
    make_bot, sim, tg
):
    """The kill lands after the album's window was taken (its parts are the last part's to
    run) and before the blend was stored: its photos are being downloaded. The last part's
    update is replayed by the next start, which takes the album again as that part's
    (adapters/telegram/albums.py) and blends once. (Taken for good, the replay was dropped as
    a redelivered part: the album was lost without a word.)"""
    bot, _ = await webhook_bot(make_bot, tg, inbox_takeover_s=TAKEOVER_S)
    tg.files_held = asyncio.Event()
    red, green = photo("red"), photo("green")
    album = await tg.send_album(GROUP, tg.users[ALICE], [red, green], caption="/blend")
    await tg.wait_for(lambda: tg.file_downloads >= 1, timeout=20, message="downloading")
    await bot.stop(kill=True)  # the album taken, the gate's claim made, nothing stored
    assert bot.rows("SELECT * FROM albums") == []
    assert [p["taken"] for p in bot.rows("SELECT * FROM album_parts")] == [1, 1]
    assert [c["done"] for c in bot.rows("SELECT * FROM seen")] == [0]
    assert bot.rows("SELECT * FROM tasks") == [] and not sim.submits("blend")
    tg.files_held.set()

    bot.start()  # Telegram sends nothing again (it got its 200s)
    await result_of(tg, album[0].message_id, timeout=30)
    (blend,) = sim.submits("blend")
    assert [decode(u) for u in blend.body["base64Array"]] == [red, green]
    charges = bot.rows("SELECT action, units FROM ledger")
    assert charges == [{"action": "blend", "units": 1}], charges
    results = [
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == album[0].message_id and m.photo and m.buttons
    ]
    assert len(results) == 1
    assert [r["done"] for r in bot.rows("SELECT * FROM seen")] == [1]
    assert bot.rows("SELECT * FROM inbox") == []
    assert (await bot.stop()) == 0
