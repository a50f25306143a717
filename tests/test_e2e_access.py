"""Access and cost control end to end, as users would try it: outsiders, bans, quotas,
simultaneous presses, forged buttons, admin commands, and the API key kept out of sight."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot.store.sqlite import SQLiteStore
from tests.conftest import ALICE, BOB, GROUP
from tests.harness import API_KEY, TG_TOKEN

CAROL = 7003
ADMIN = 7009


def replies(tg, chat: int, request_id: int):
    return [m for m in tg.bot_messages(chat) if m.reply_to_message_id == request_id]


def results_for(tg, chat: int, request_id: int):
    return [m for m in replies(tg, chat, request_id) if m.photo and m.buttons]


async def asked_result(tg, user: int, text: str, chat: int = GROUP):
    """Send a command and wait for its finished result (a photo with buttons)."""
    asked = await tg.send_text(chat, tg.users[user], text)
    await tg.wait_for(lambda: results_for(tg, chat, asked.message_id), timeout=30)
    return asked, results_for(tg, chat, asked.message_id)[0]


async def up(make_bot, tg, **overrides):
    bot = make_bot(**overrides)
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    return bot


async def test_outsiders_hear_once_per_chat_then_silence(make_bot, sim, tg):
    """README: "Outsiders get one polite message per chat, then silence": two outsiders (one
    of them banned) in one group get one message between them; a private chat is its own."""
    tg.user(CAROL, "Carol")
    await up(
        make_bot,
        tg,
        access={"mode": "allowlist", "allowed_users": [str(ALICE)], "banned_users": [str(CAROL)]},
    )
    first = await tg.send_text(GROUP, tg.users[BOB], "/imagine a secret garden")
    await tg.wait_for(lambda: replies(tg, GROUP, first.message_id), timeout=15)
    assert "管理员" in replies(tg, GROUP, first.message_id)[0].text  # Bob's client is Chinese
    second = await tg.send_text(GROUP, tg.users[BOB], "/imagine another garden")
    banned = await tg.send_text(GROUP, tg.users[CAROL], "/imagine a forbidden door")
    alone = await tg.send_text(CAROL, tg.users[CAROL], "/imagine a door of my own")
    await tg.wait_for(lambda: replies(tg, CAROL, alone.message_id), timeout=15)
    again = await tg.send_text(CAROL, tg.users[CAROL], "/imagine another door")
    allowed = await tg.send_text(GROUP, tg.users[ALICE], "/imagine an open door")
    await tg.wait_for(lambda: results_for(tg, GROUP, allowed.message_id), timeout=30)
    await asyncio.sleep(0.5)
    assert replies(tg, GROUP, second.message_id) == []  # silence the second time
    assert replies(tg, GROUP, banned.message_id) == []  # and for the next outsider too
    assert replies(tg, CAROL, again.message_id) == []
    refusals = [m for chat in (GROUP, CAROL) for m in tg.bot_messages(chat) if not m.photo]
    refusals = [m for m in refusals if "admin" in m.text.lower() or "管理员" in m.text]
    assert len(refusals) == 2  # one per chat
    assert [r.body["prompt"] for r in sim.submits("imagine")] == ["an open door"]


async def test_quota_refuses_with_what_is_left_and_refunds_failures(make_bot, sim, tg):
    await up(make_bot, tg, quota={"daily_units": 1})
    failed = await tg.send_text(GROUP, tg.users[ALICE], "/imagine this will fail")
    await tg.wait_for(
        lambda: any("❌" in (m.content or "") for m in replies(tg, GROUP, failed.message_id)),
        timeout=30,
    )
    ok = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a bright kite")  # refunded: allowed
    await tg.wait_for(lambda: results_for(tg, GROUP, ok.message_id), timeout=30)
    over = await tg.send_text(GROUP, tg.users[ALICE], "/imagine one more kite")
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, over.message_id), timeout=15)
    text = refusal[0].text
    assert "1 of 1" in text and "0 left" in text and "resets at" in text
    assert len(sim.submits("imagine")) == 2

    info = await tg.send_text(GROUP, tg.users[ALICE], "/quota")
    usage = await tg.wait_for(lambda: replies(tg, GROUP, info.message_id), timeout=15)
    assert "Today: 1 of 1 units (0 left)" in usage[0].text
    assert "refunded: 1" in usage[0].text


async def test_ten_simultaneous_presses_against_a_quota_of_one(make_bot, sim, tg):
    await up(make_bot, tg, quota={"daily_units": 2})
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a windmill")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    grid = results_for(tg, GROUP, asked.message_id)[0]
    buttons = ["V1", "V2", "V3", "V4", "🔄"] * 2
    presses = await asyncio.gather(*(tg.press(GROUP, grid, b, tg.users[ALICE]) for b in buttons))
    answers = [await tg.wait_for_answer(cq) for cq in presses]
    await asyncio.sleep(1.5)
    assert len(sim.submits("action")) == 1
    refused = [a for a in answers if "quota" in a.get("text", "")]
    assert len(refused) >= 4  # the other distinct buttons were refused, duplicates "running"


async def test_forged_foreign_and_expired_tokens_do_nothing(make_bot, sim, tg):
    other_group = -100999
    tg.group(other_group, "Elsewhere")
    await up(make_bot, tg)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a compass")
    await tg.wait_for(lambda: results_for(tg, GROUP, asked.message_id), timeout=30)
    grid = results_for(tg, GROUP, asked.message_id)[0]
    real = grid.buttons[0][0][1]
    elsewhere = await tg.send_text(other_group, tg.users[ALICE], "/help")
    await tg.wait_for(lambda: replies(tg, other_group, elsewhere.message_id), timeout=15)
    host = replies(tg, other_group, elsewhere.message_id)[0]
    cases = {
        "forged": await tg.forge_press(GROUP, grid, "m1:zzzzzzzzzz:1", tg.users[ALICE]),
        "garbage": await tg.forge_press(GROUP, grid, "'; DROP TABLE tasks; --", tg.users[ALICE]),
        "foreign": await tg.forge_press(other_group, host, real, tg.users[ALICE]),
        "past the end": await tg.forge_press(GROUP, grid, real[:-1] + "9", tg.users[ALICE]),
        "not the owner": await tg.press(GROUP, grid, "U1", tg.users[BOB]),
    }
    for name, cq in cases.items():
        answer = await tg.wait_for_answer(cq)
        assert answer.get("text"), name
    await asyncio.sleep(0.5)
    assert sim.submits("action") == []


async def test_admin_commands(make_bot, sim, tg):
    tg.user(ADMIN, "Ada", username="ada")
    tg.user(CAROL, "Carol", username="carol")
    await up(make_bot, tg, access={"admins": [str(ADMIN)]})
    hello = await tg.send_text(GROUP, tg.users[CAROL], "/help")  # the bot learns @carol
    await tg.wait_for(lambda: replies(tg, GROUP, hello.message_id), timeout=15)

    attempt = await tg.send_text(GROUP, tg.users[ALICE], "/ban @carol")
    denied = await tg.wait_for(lambda: replies(tg, GROUP, attempt.message_id), timeout=15)
    assert "Only admins" in denied[0].text

    ban = await tg.send_text(GROUP, tg.users[ADMIN], "/ban @carol")
    await tg.wait_for(lambda: replies(tg, GROUP, ban.message_id), timeout=15)
    blocked = await tg.send_text(GROUP, tg.users[CAROL], "/imagine a locked gate")
    await tg.wait_for(lambda: replies(tg, GROUP, blocked.message_id), timeout=15)
    assert sim.submits("imagine") == []

    unban = await tg.send_text(GROUP, tg.users[ADMIN], "/unban", reply_to=blocked.message_id)
    await tg.wait_for(lambda: replies(tg, GROUP, unban.message_id), timeout=15)
    share = await tg.send_text(GROUP, tg.users[ADMIN], "/buttons chat")
    await tg.wait_for(lambda: replies(tg, GROUP, share.message_id), timeout=15)
    again = await tg.send_text(GROUP, tg.users[CAROL], "/imagine an open gate")
    await tg.wait_for(lambda: results_for(tg, GROUP, again.message_id), timeout=30)
    grid = results_for(tg, GROUP, again.message_id)[0]
    await tg.wait_for_answer(await tg.press(GROUP, grid, "U3", tg.users[ALICE]))
    await tg.wait_for(lambda: sim.submits("action"), timeout=15)  # anyone may press now

    stats = await tg.send_text(GROUP, tg.users[ADMIN], "/stats")
    shown = await tg.wait_for(lambda: replies(tg, GROUP, stats.message_id), timeout=15)
    assert "@carol" in shown[0].text


async def test_secrets_never_reach_users_or_logs(make_bot, sim, tg):
    bot = await up(make_bot, tg, logging={"level": "DEBUG"})
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine " + "x" * 5000)
    too_long = await tg.wait_for(lambda: replies(tg, GROUP, asked.message_id), timeout=15)
    assert "too long" in too_long[0].text
    sim.faults.fail_next("imagine", status=401)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a key under the mat")
    await tg.wait_for(
        lambda: any("api_key" in (m.content or "") for m in replies(tg, GROUP, asked.message_id)),
        timeout=15,
    )
    tasks = await tg.send_text(GROUP, tg.users[ALICE], "/tasks")
    await tg.wait_for(lambda: replies(tg, GROUP, tasks.message_id), timeout=15)
    await bot.stop()
    everything = [m.content or "" for chat in (GROUP, ALICE) for m in tg.messages(chat)]
    everything += [str(c.params) for c in tg.calls]
    for text in everything:
        assert API_KEY not in text and TG_TOKEN not in text
    log = bot.log()
    assert API_KEY not in log and TG_TOKEN not in log and "/mj/hook/" not in log


def seed_lookups(sim) -> list:
    return [r for r in sim.requests if r.path.endswith("/image-seed")]


async def test_settings_buttons_act_only_on_your_own_menu_with_offered_values(make_bot, sim, tg):
    """Settings data forged onto someone else's result or menu edits and stores nothing; a
    value the menu does not offer (turbo, a language we do not have) is refused."""
    await up(make_bot, tg)
    _, grid = await asked_result(tg, ALICE, "/imagine a quiet harbour")
    menu_request = await tg.send_text(GROUP, tg.users[ALICE], "/settings")
    await tg.wait_for(lambda: replies(tg, GROUP, menu_request.message_id), timeout=15)
    menu = replies(tg, GROUP, menu_request.message_id)[0]
    relax = next(data for row in menu.buttons for text, data in row if text == "relax")

    async def answer(chat, message, data, user):
        return await tg.wait_for_answer(await tg.forge_press(chat, message, data, user))

    forged = {
        "Bob's relax on Alice's result": await answer(GROUP, grid, relax, tg.users[BOB]),
        "Alice's language on her result": await answer(GROUP, grid, "s1:lang:zh", ALICE),
        "Alice's own data on her result": await answer(GROUP, grid, relax, tg.users[ALICE]),
        "Bob presses Alice's menu": await tg.wait_for_answer(
            await tg.press(GROUP, menu, "relax", tg.users[BOB])
        ),
        "turbo": await answer(GROUP, menu, "s1:mode:turbo", tg.users[ALICE]),
        "a language we do not have": await answer(GROUP, menu, "s1:lang:xx", tg.users[ALICE]),
        "an unknown setting": await answer(GROUP, menu, "s1:quota:999", tg.users[ALICE]),
    }
    for name, reply in forged.items():
        assert reply.get("show_alert") and reply.get("text"), name
    await asyncio.sleep(0.5)
    assert tg.message(GROUP, grid.message_id).edits == []  # the result kept its buttons
    assert tg.message(GROUP, menu.message_id).edits == []
    targets = (grid.message_id, menu.message_id)
    edits = [c for c in tg.calls if c.method.startswith("editMessage")]
    assert [c for c in edits if c.params.get("message_id") in targets] == []

    # Nothing was stored: both still imagine in the default mode, Alice still in English.
    _, lighthouse = await asked_result(tg, ALICE, "/imagine a lighthouse")
    await asked_result(tg, BOB, "/imagine a windmill")
    assert [r.prefix for r in sim.submits("imagine")] == ["", "", ""]
    assert lighthouse.caption.endswith(" s")

    # The owner's own press on her own menu works and redraws it in place.
    saved = await tg.wait_for_answer(await tg.press(GROUP, menu, "relax", tg.users[ALICE]))
    assert saved.get("text") == "Saved" and not saved.get("show_alert")
    await tg.wait_for(lambda: tg.message(GROUP, menu.message_id).edits, timeout=10)
    assert "✅ relax" in tg.message(GROUP, menu.message_id).button_texts
    await tg.send_text(GROUP, tg.users[ALICE], "/imagine a slow river")
    await tg.wait_for(lambda: len(sim.submits("imagine")) == 4, timeout=15)
    assert sim.submits("imagine")[-1].prefix == "/relax"


async def test_seeds_belong_to_their_owner_and_admins(make_bot, sim, tg):
    tg.user(ADMIN, "Ada")
    await up(make_bot, tg, access={"admins": [str(ADMIN)], "buttons": "chat"})
    _, grid = await asked_result(tg, ALICE, "/imagine a secret recipe")
    task_id = next(t.id for t in sim.tasks.values() if t.prompt == "a secret recipe")

    # Bob, by replying to the result, by its id, and with the 🌱 button (buttons are shared).
    by_reply = await tg.send_text(GROUP, tg.users[BOB], "/seed", reply_to=grid.message_id)
    by_id = await tg.send_text(GROUP, tg.users[BOB], f"/seed {task_id}")
    # The 🌱 press is refused in its own answer (an alert), before anything is asked.
    pressed = await tg.wait_for_answer(await tg.press(GROUP, grid, "🌱", tg.users[BOB]))
    assert "只有生成这张图的人" in pressed["text"] and pressed.get("show_alert")
    for asked in (by_reply, by_id):
        refusal = await tg.wait_for(lambda a=asked: replies(tg, GROUP, a.message_id), timeout=15)
        assert "只有生成这张图的人" in refusal[0].text  # Bob reads Chinese
    await tg.wait_for(
        lambda: len([m for m in tg.bot_messages(GROUP) if "只有生成" in (m.text or "")]) == 2,
        timeout=15,
    )
    assert seed_lookups(sim) == []
    assert not any(
        "Seed:" in (m.text or "") or "种子：" in (m.text or "") for m in tg.bot_messages(GROUP)
    )

    # The owner and an admin get it.
    for user in (ALICE, ADMIN):
        asked = await tg.send_text(GROUP, tg.users[user], "/seed", reply_to=grid.message_id)
        shown = await tg.wait_for(lambda a=asked: replies(tg, GROUP, a.message_id), timeout=15)
        assert "🌱 Seed:" in shown[0].text
    assert len(seed_lookups(sim)) == 2


async def test_values_a_forged_press_stored_earlier_are_ignored(make_bot, sim, tg, tmp_path):
    """A database written before presses were checked may hold mode=turbo or lang=xx: such
    values count as not set (the default route, the client's language)."""
    store = await SQLiteStore.open(tmp_path / "data" / "mjbot.db")
    try:
        await store.change_user_settings(
            "telegram", str(ALICE), lambda s: replace(s, mode="turbo", lang="xx")
        )
    finally:
        await store.close()
    await up(make_bot, tg)
    _, result = await asked_result(tg, ALICE, "/imagine a tidy desk")
    assert [r.prefix for r in sim.submits("imagine")] == [""]
    assert result.caption.endswith(" s")  # English, Alice's client language
