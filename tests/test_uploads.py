"""Hostile uploads end to end (``mjbot run``, the fake Telegram server, the simulator): nothing
is downloaded for someone who may not use the bot, a decompression bomb is refused with a
clear message, and a large CMYK JPEG gets an answer."""

from __future__ import annotations

import asyncio

from tests.conftest import ALICE, BOB, GROUP
from tests.test_media import cmyk_jpeg, solid_png


def replies_to(message_id: int):
    return lambda m: m.reply_to_message_id == message_id


async def test_nothing_is_downloaded_for_banned_users_and_outsiders(tg, make_bot):
    bot = make_bot(
        access={
            "mode": "allowlist",
            "allowed_users": [str(ALICE), str(BOB)],
            "banned_users": [str(BOB)],
        }
    )
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    outsider = tg.user(7003, "Mallory", language_code="en")
    for user in (tg.users[BOB], outsider):  # banned, and not on the list
        await tg.send_photo(GROUP, user, solid_png(512, 512), "/describe")
    # The same photo from a member is downloaded and described.
    asked = await tg.send_photo(GROUP, tg.users[ALICE], solid_png(512, 512), "/describe")
    await tg.wait_for_bot_message(GROUP, replies_to(asked.message_id), timeout=30)
    await asyncio.sleep(0.5)  # anything the bot still does with the others, it does now
    fetched = [call.params["file_id"] for call in tg.calls_to("getFile")]
    assert fetched == [asked.photo.file_id]  # nothing for the banned user or the outsider
    await bot.stop()


async def test_a_photo_reply_is_downloaded_only_when_it_answers_our_question(tg, make_bot, sim):
    bot = make_bot()
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    hello = await tg.send_text(GROUP, tg.users[ALICE], "/help")
    helped = await tg.wait_for_bot_message(GROUP, replies_to(hello.message_id), timeout=30)
    await tg.send_photo(GROUP, tg.users[ALICE], solid_png(512, 512), reply_to=helped.message_id)
    ask = await tg.send_text(GROUP, tg.users[ALICE], "/describe")
    asked = await tg.wait_for_bot_message(GROUP, replies_to(ask.message_id), timeout=30)
    answer = await tg.send_photo(
        GROUP, tg.users[ALICE], solid_png(256, 256), reply_to=asked.message_id
    )
    await tg.wait_for(lambda: sim.submits("describe"), timeout=30, message="describe submitted")
    fetched = [call.params["file_id"] for call in tg.calls_to("getFile")]
    assert fetched == [answer.photo.file_id]  # not the photo that answered nothing
    await bot.stop()


async def test_a_decompression_bomb_is_refused_in_words(tg, make_bot):
    bot = make_bot()
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    asked = await tg.send_document(
        GROUP, tg.users[ALICE], solid_png(8000, 5000), "huge.png", caption="/describe"
    )
    answer = await tg.wait_for_bot_message(GROUP, replies_to(asked.message_id), timeout=30)
    assert "4096 × 4096" in answer.content
    await bot.stop()


async def test_a_large_cmyk_jpeg_is_answered(tg, make_bot, sim):
    bot = make_bot()
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    asked = await tg.send_document(
        GROUP, tg.users[ALICE], cmyk_jpeg(), "print.jpg", caption="/describe"
    )
    answer = await tg.wait_for_bot_message(GROUP, replies_to(asked.message_id), timeout=30)
    assert answer.content and "not an image" not in answer.content
    await tg.wait_for(lambda: sim.submits("describe"), timeout=30, message="describe submitted")
    image = sim.submits("describe")[0].body["base64"]
    assert image.startswith("data:image/jpeg;base64,")  # re-encoded: RGB, 2048 px
    await bot.stop()
