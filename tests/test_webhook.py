"""Telegram webhooks end to end: ``mjbot run`` in webhook mode, the real python-telegram-bot,
the fake Bot API server posting updates to the registered URL with the secret header (as
Telegram does), and the simulator."""

from __future__ import annotations

import asyncio
import copy
import tomllib

import aiohttp
import pytest

from bot.config import Secret, TelegramConfig
from tests.conftest import ALICE, GROUP
from tests.harness import TG_TOKEN, BotProcess, free_port
from tests.storage import BOTH

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HANDLED = ["message", "callback_query"]
DERIVED = TelegramConfig(token=Secret(TG_TOKEN)).webhook_token()


def webhook(port: int) -> dict[str, str]:
    return {
        "webhook_url": f"http://127.0.0.1:{port}/telegram/update",
        "webhook_listen": f"127.0.0.1:{port}",
    }


async def webhook_bot(make_bot, tg, **telegram) -> tuple[BotProcess, int]:
    port = free_port()
    bot = make_bot(telegram={**webhook(port), **telegram})
    bot.start()
    await tg.wait_for_call("setWebhook", timeout=60)
    return bot, port


async def grid_for(tg, asked):
    return await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and m.photo and m.buttons,
        timeout=90,
    )


def assert_secrets_kept(bot: BotProcess, *secrets: str) -> None:
    log = bot.log()
    for secret in secrets:
        assert secret not in log


@BOTH
async def test_imagine_and_a_press_by_webhook(make_bot, sim, tg):
    bot, port = await webhook_bot(make_bot, tg)

    registered = tg.calls_to("setWebhook")[-1]
    assert registered.ok
    assert registered.params["url"] == f"http://127.0.0.1:{port}/telegram/update"
    assert registered.params["secret_token"] == DERIVED
    assert registered.params["allowed_updates"] == HANDLED
    assert tg.webhook is not None and tg.webhook["secret_token"] == DERIVED

    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a lighthouse at dusk")
    grid = await grid_for(tg, asked)
    assert "a lighthouse at dusk" in grid.caption
    assert [r.body["prompt"] for r in sim.submits("imagine")] == ["a lighthouse at dusk"]

    await tg.press(GROUP, grid, "U3", tg.users[ALICE])
    await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == grid.message_id and m.photo, timeout=90
    )
    assert sim.submits("action")[0].body["customId"].startswith("MJ::JOB::upsample::3::")

    # Every update came by webhook (each answered 200), none by polling.
    assert not tg.calls_to("getUpdates")
    posted = {update_id for update_id, status in tg.webhook_posts if status == 200}
    assert {u["update_id"] for u in tg.updates} <= posted
    assert (await bot.stop()) == 0
    # A stopping instance leaves the webhook to the others (a rolling restart loses nothing).
    assert not tg.calls_to("deleteWebhook") and tg.webhook is not None
    assert_secrets_kept(bot, DERIVED)


async def test_a_post_without_the_secret_is_refused_and_submits_nothing(make_bot, sim, tg):
    bot, port = await webhook_bot(make_bot, tg, webhook_secret="Configured_secret-42")
    assert tg.calls_to("setWebhook")[-1].params["secret_token"] == "Configured_secret-42"
    forged = {
        "update_id": 999_001,
        "message": {
            "message_id": 77,
            "date": 1_700_000_000,
            "chat": {"id": GROUP, "type": "supergroup", "title": "Artists"},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "text": "/imagine forged",
            "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
        },
    }
    url = f"http://127.0.0.1:{port}/telegram/update"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {SECRET_HEADER: "wrong-guess-1234"}, {SECRET_HEADER: ""}):
            async with http.post(url, json=forged, headers=headers) as resp:
                assert resp.status == 403, headers
        # The right secret but not an update: 400, so a bad request is never mistaken for one.
        right = {SECRET_HEADER: "Configured_secret-42"}
        async with http.post(url, data=b"{not json", headers=right) as resp:
            assert resp.status == 400
    await asyncio.sleep(1.0)
    assert not sim.submits("imagine")
    assert not tg.bot_messages(GROUP)
    log = bot.log()
    assert log.count("refused a webhook post") == 3
    assert "wrong-guess-1234" not in log
    # `mjbot status` counts them: refusals growing is a misconfigured instance to look at.
    status_url = f"http://{tomllib.loads(bot.config.read_text())['tracking']['listen']}/status"
    async with aiohttp.ClientSession() as http, http.get(status_url) as resp:
        counts = (await resp.json())["telegram_webhook"]
    assert counts == {
        "received": 4,
        "queued": 0,
        "refused": 3,
        "invalid": 1,
        "kept_already": 0,
        "unkept": 0,
        "taken_over": 0,
    }

    # The real server's posts (with the secret) are handled.
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a real one")
    await grid_for(tg, asked)
    assert [r.body["prompt"] for r in sim.submits("imagine")] == ["a real one"]
    await bot.stop()
    assert_secrets_kept(bot, "Configured_secret-42")


@BOTH
async def test_a_redelivered_update_submits_once(make_bot, sim, tg):
    bot, _ = await webhook_bot(make_bot, tg)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a fox, once")
    grid = await grid_for(tg, asked)
    first = next(u for u in tg.updates if "a fox, once" in u.get("message", {}).get("text", ""))

    # Telegram sends an update again when it did not see our answer in time: the same update_id,
    # twice more, one of them racing the other.
    tg.inject_update(copy.deepcopy(first))
    tg.inject_update(copy.deepcopy(first))
    await tg.wait_for(
        lambda: [s for u, s in tg.webhook_posts if u == first["update_id"]].count(200) == 3,
        timeout=30,
        message="redelivered three times in all",
    )
    await asyncio.sleep(1.5)  # long enough for a second submit to show
    assert len(sim.submits("imagine")) == 1
    replies = [m for m in tg.bot_messages(GROUP) if m.reply_to_message_id == asked.message_id]
    assert len([m for m in replies if m.photo]) == 1, [m.content for m in replies]

    # A press redelivered: one action.
    cq = await tg.press(GROUP, grid, "V1", tg.users[ALICE])
    await tg.wait_for_answer(cq)
    press = next(u for u in tg.updates if u.get("callback_query", {}).get("id") == cq)
    tg.inject_update(copy.deepcopy(press))
    await tg.wait_for(
        lambda: [s for u, s in tg.webhook_posts if u == press["update_id"]].count(200) == 2,
        timeout=30,
    )
    await asyncio.sleep(1.5)
    assert len(sim.submits("action")) == 1
    await bot.stop()


async def test_only_the_handled_update_types_are_asked_for(make_bot, sim, tg):
    bot, _ = await webhook_bot(make_bot, tg)
    assert tg.webhook is not None and tg.webhook["allowed_updates"] == HANDLED
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine first draft")
    await grid_for(tg, asked)
    # Editing the command is not a second order: the edit is not even sent to the bot.
    await tg.edit_user_message(GROUP, asked.message_id, "/imagine second draft")
    await asyncio.sleep(1.5)
    edited = next(u for u in tg.updates if "edited_message" in u)
    assert edited["update_id"] not in {u for u, _ in tg.webhook_posts}
    assert [r.body["prompt"] for r in sim.submits("imagine")] == ["first draft"]
    await bot.stop()


async def test_polling_asks_for_the_same_types_and_ignores_edits(bot, sim, tg):
    """Without webhook_url: long polling, deleteWebhook first (the conftest's bot waits for it),
    the same allowed_updates; an edited /imagine submits nothing (it used to run again)."""
    # The fake records a call once it is answered, and an idle long poll is answered after
    # its 30 s: the command ends the first poll, then its parameters are read.
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine first draft")
    await grid_for(tg, asked)
    assert tg.calls_to("getUpdates")[0].params["allowed_updates"] == HANDLED
    await tg.edit_user_message(GROUP, asked.message_id, "/imagine second draft")
    await asyncio.sleep(1.5)
    assert [r.body["prompt"] for r in sim.submits("imagine")] == ["first draft"]


async def test_back_to_polling_deletes_the_webhook(make_bot, sim, tg):
    bot, _ = await webhook_bot(make_bot, tg)
    await bot.stop()
    assert tg.webhook is not None
    polling = make_bot()  # the same deployment, webhook_url removed
    polling.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    assert tg.webhook is None
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine by polling again")
    await grid_for(tg, asked)
    await polling.stop()


async def test_sigterm_while_starting_stops_cleanly(make_bot, tg):
    """SIGTERM while the bot is still starting (setWebhook not answered yet) stops what had
    started and exits 0; it used to end the process at once (-15), sockets and all."""
    tg.answer_late("setWebhook", 1.5)
    bot = make_bot(telegram=webhook(free_port()))
    bot.start()
    # the fake records a call once it is answered: the bot's own log says it is waiting
    await tg.wait_for(lambda: "endpoint `setWebhook`" in bot.log(), timeout=60)
    assert await bot.stop() == 0
    assert "mjbot is running" not in bot.log()  # it never got that far


@pytest.mark.parametrize("secret", ["", "Configured_secret-42"])
async def test_two_instances_of_one_config_register_the_same_secret(make_bot, tg, secret):
    """Several instances from one config (the compose file's replicas) must agree on the
    secret, or every post the load balancer gives the others is refused."""
    port = free_port()
    extra = {"webhook_secret": secret} if secret else {}
    one = make_bot(telegram={**webhook(port), **extra})
    one.start()
    await tg.wait_for_call("setWebhook", timeout=30)
    await one.stop()
    two = make_bot(telegram={**webhook(port), **extra})
    two.start()
    await tg.wait_for(lambda: len(tg.calls_to("setWebhook")) == 2, timeout=30)
    first, second = (c.params["secret_token"] for c in tg.calls_to("setWebhook"))
    assert first == second == (secret or DERIVED)
    await two.stop()
