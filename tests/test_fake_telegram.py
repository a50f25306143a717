"""The fake Bot API server, driven by the real python-telegram-bot over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import telegram
from aiohttp import web
from PIL import Image
from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram import (
    BOT_ID,
    BOT_USERNAME,
    NOT_MODIFIED,
    SPEC_AVAILABLE,
    FakeTelegram,
    _ptb_roundtrip,
    parse_entities,
)

ALICE = 1001
BOB = 1002
GROUP = -100123

needs_spec = pytest.mark.skipif(
    not SPEC_AVAILABLE, reason="../shared/specs/telegram-bot-api.json is absent"
)


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as f:
        f.user(ALICE, "Alice")
        f.user(BOB, "Bob", language_code="zh-hans", username="bob_b")
        f.group(GROUP, "Group")
        yield f


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(**fake.bot_kwargs()) as b:
        yield b


@contextlib.asynccontextmanager
async def running(fake: FakeTelegram, *handlers: object) -> AsyncIterator[Application]:
    """A real Application polling the fake, as `mjbot run` would."""
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)  # type: ignore[arg-type]
    async with app:
        await app.updater.start_polling(poll_interval=0, timeout=1)  # type: ignore[union-attr]
        await app.start()
        try:
            yield app
        finally:
            await app.updater.stop()  # type: ignore[union-attr]
            await app.stop()


# -- round trips through the real Application ------------------------------------------------------


async def test_command_round_trip_through_long_polling(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Greet."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"hello {update.effective_user.first_name}")

    async with running(fake, CommandHandler(["start", "imagine"], start)):
        await fake.send_text(ALICE, ALICE, "/start")
        reply = await fake.wait_for_bot_message(ALICE)
        sent = await fake.send_text(GROUP, BOB, f"/imagine@{BOT_USERNAME} a cat")
        group_reply = await fake.wait_for_bot_message(GROUP)

    assert reply.text == "hello Alice"
    assert group_reply.text == "hello Bob"
    assert group_reply.reply_to_message_id == sent.message_id  # PTB quotes in groups
    assert [c.method for c in fake.api_calls()][:2] == ["getMe", "deleteWebhook"]
    assert fake.calls_to("getUpdates")
    assert fake.internal_errors == []


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.2)
        await fake.send_text(ALICE, ALICE, "hi")

    task = asyncio.create_task(later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    await task
    assert 0.15 < time.monotonic() - started < 2
    assert [u.message.text for u in updates] == ["hi"]  # type: ignore[union-attr]

    # Unconfirmed updates come again; an offset confirms them.
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [updates[0].update_id]
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()


async def test_redelivered_update_reaches_the_bot_again(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    await fake.send_text(ALICE, ALICE, "/imagine a cat")
    (first,) = await bot.get_updates(timeout=0)
    await bot.get_updates(offset=first.update_id + 1, timeout=0)
    fake.inject_update(first.to_dict())
    (again,) = await bot.get_updates(offset=first.update_id + 1, timeout=0)
    assert again.update_id == first.update_id
    assert again.message.text == "/imagine a cat"  # type: ignore[union-attr]


async def test_second_poller_terminates_the_first(fake: FakeTelegram, bot: telegram.Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    async with telegram.Bot(**fake.bot_kwargs()) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(telegram.error.Conflict, match=r"terminated by other getUpdates"):
        await first


async def test_press_delivers_a_callback_query(fake: FakeTelegram, bot: telegram.Bot) -> None:
    seen: list[str] = []

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer the press."""
        query = update.callback_query
        assert query is not None and query.data is not None
        seen.append(query.data)
        await query.answer("queued")

    msg = await bot.send_message(GROUP, "grid", reply_markup=keyboard([("U1", "v1:u:ab:1")]))
    async with running(fake, CallbackQueryHandler(on_press)):
        cq_id = await fake.press(GROUP, msg.message_id, "U1", BOB)
        answer = await fake.wait_for_answer(cq_id)

    assert seen == ["v1:u:ab:1"]
    assert answer["text"] == "queued"
    assert fake.buttons((GROUP, msg.message_id)) == [[("U1", "v1:u:ab:1")]]
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(cq_id)  # answered twice


async def test_album_arrives_as_updates_sharing_media_group_id(fake: FakeTelegram) -> None:
    received: list[telegram.Message] = []

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Collect."""
        assert update.message is not None
        received.append(update.message)

    async with running(fake, MessageHandler(filters.PHOTO, on_photo)):
        sent = await fake.send_album(GROUP, BOB, [png(), png(color=(0, 0, 255)), png()], "blend")
        await fake.wait_for(lambda: len(received) == 3)

    assert len({m.media_group_id for m in received}) == 1
    assert received[0].media_group_id == sent[0].media_group_id is not None
    assert [m.caption for m in received] == ["blend", None, None]
    assert all(m.photo[-1].width == 64 for m in received)


async def test_bot_downloads_what_a_user_sent(fake: FakeTelegram) -> None:
    got: list[bytes] = []

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Download the largest size."""
        assert update.message is not None
        file = await update.message.photo[-1].get_file()
        got.append(bytes(await file.download_as_bytearray()))

    image = png(1600, 900)
    async with running(fake, MessageHandler(filters.PHOTO, on_photo)):
        await fake.send_photo(ALICE, ALICE, image, caption="/describe")
        await fake.wait_for(lambda: got)
    assert got == [image]


# -- limits --------------------------------------------------------------------------------------


async def test_callback_data_is_limited_to_64_bytes(fake: FakeTelegram, bot: telegram.Bot) -> None:
    ok = await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", "a" * 64)]))
    assert fake.message(ALICE, ok.message_id).buttons == [[("a", "a" * 64)]]
    for data in ("a" * 65, "я" * 40):  # 40 Cyrillic letters are 80 bytes
        with pytest.raises(telegram.error.BadRequest, match=r"(?i)button_data_invalid"):
            await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", data)]))
    assert fake.calls_to("sendMessage")[-1].error == "Bad Request: BUTTON_DATA_INVALID"


async def test_keyboard_size_limits(bot: telegram.Bot) -> None:
    row = [(str(i), str(i)) for i in range(9)]
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)reply_markup_too_long"):
        await bot.send_message(ALICE, "x", reply_markup=keyboard(row))
    rows = [[(str(r * 8 + i), str(r * 8 + i)) for i in range(8)] for r in range(13)]
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)reply_markup_too_long"):
        await bot.send_message(ALICE, "x", reply_markup=keyboard(*rows))
    await bot.send_message(ALICE, "x", reply_markup=keyboard(row[:8]))
    no_action = InlineKeyboardMarkup([[InlineKeyboardButton("plain")]])
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(ALICE, "x", reply_markup=no_action)


async def test_text_and_caption_limits(bot: telegram.Bot) -> None:
    await bot.send_message(ALICE, "x" * 4096)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(ALICE, "x" * 4097)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(ALICE, "  ")
    # The limits apply after entity parsing: tags do not count.
    await bot.send_message(ALICE, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")

    await bot.send_photo(ALICE, png(), caption="c" * 1024)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_photo(ALICE, png(), caption="c" * 1025)


async def test_answer_and_force_reply_limits(fake: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(ALICE, "grid", reply_markup=keyboard([("U1", "u1")]))
    cq_id = await fake.press(ALICE, msg.message_id, "u1", ALICE)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message_too_long"):
        await bot.answer_callback_query(cq_id, "t" * 201)
    await bot.answer_callback_query(cq_id, "t" * 200)

    await bot.send_message(ALICE, "prompt?", reply_markup=ForceReply(input_field_placeholder="p"))
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)placeholder"):
        await bot.send_message(
            ALICE, "prompt?", reply_markup=ForceReply(input_field_placeholder="p" * 65)
        )
    assert fake.last_bot_message(ALICE).reply_markup == {  # type: ignore[union-attr]
        "force_reply": True,
        "input_field_placeholder": "p",
    }


async def test_photo_dimension_limits(bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)photo_invalid_dimensions"):
        await bot.send_photo(ALICE, png(2100, 100))  # aspect ratio above 20
    buf = io.BytesIO()
    Image.new("1", (9000, 1100)).save(buf, "PNG")  # width + height above 10000
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)photo_invalid_dimensions"):
        await bot.send_photo(ALICE, buf.getvalue())
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(ALICE, b"not an image")


async def test_media_group_rules(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match=r"2-10"):
        await bot.send_media_group(GROUP, [InputMediaPhoto(png())])
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)reply_markup"):
        await bot.send_media_group(
            GROUP,
            [InputMediaPhoto(png()), InputMediaPhoto(png())],
            api_kwargs={"reply_markup": keyboard([("U1", "u1")]).to_json()},
        )
    sent = await bot.send_media_group(
        GROUP, [InputMediaPhoto(png(), caption="grid"), InputMediaPhoto(png(32, 32))]
    )
    stored = [fake.message(GROUP, m.message_id) for m in sent]
    assert len({m.media_group_id for m in stored}) == 1
    assert [m.caption for m in stored] == ["grid", None]
    assert stored[1].photo_bytes == png(32, 32)


# -- edits and deletes -------------------------------------------------------------------------


async def test_identical_edit_is_not_modified(fake: FakeTelegram, bot: telegram.Bot) -> None:
    markup = keyboard([("U1", "u1"), ("U2", "u2")])
    msg = await bot.send_message(ALICE, "<b>50%</b>", parse_mode="HTML", reply_markup=markup)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message is not modified") as err:
        await bot.edit_message_text(
            "<b>50%</b>", ALICE, msg.message_id, parse_mode="HTML", reply_markup=markup
        )
    assert fake.calls_to("editMessageText")[-1].error == NOT_MODIFIED
    assert "exactly the same" in str(err.value)

    # Editing without reply_markup removes the keyboard, as on Telegram.
    await bot.edit_message_text("<b>50%</b>", ALICE, msg.message_id, parse_mode="HTML")
    stored = fake.message(ALICE, msg.message_id)
    assert stored.buttons == [] and len(stored.edits) == 1 and stored.edits[0].buttons
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(ALICE, msg.message_id)

    photo = await bot.send_photo(ALICE, png(), caption="a", reply_markup=markup)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_caption(ALICE, photo.message_id, caption="a", reply_markup=markup)
    file_id = photo.photo[-1].file_id
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_media(
            InputMediaPhoto(file_id, caption="a"), ALICE, photo.message_id, reply_markup=markup
        )
    edited = await bot.edit_message_media(
        InputMediaPhoto(png(80, 80), caption="done"), ALICE, photo.message_id
    )
    assert edited.photo[-1].width == 80
    assert fake.message(ALICE, photo.message_id).photo_bytes == png(80, 80)


async def test_missing_messages(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", ALICE, 999)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(ALICE, 999)
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(ALICE, "x", reply_to_message_id=999)
    sent = await bot.send_message(
        ALICE, "x", reply_to_message_id=999, allow_sending_without_reply=True
    )
    assert sent.reply_to_message is None

    msg = await bot.send_message(ALICE, "progress")
    assert await bot.delete_message(ALICE, msg.message_id)
    assert fake.message(ALICE, msg.message_id).deleted
    assert fake.bot_messages(ALICE) == [fake.message(ALICE, sent.message_id)]
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("y", ALICE, msg.message_id)

    user_msg = await fake.send_text(GROUP, BOB, "hi")
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)can't be deleted"):
        await bot.delete_message(GROUP, user_msg.message_id)  # not an admin in the group


# -- flood limits ----------------------------------------------------------------------------


async def test_throttled_chat_gets_retry_after_while_others_work(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    fake.throttle_chat(GROUP, retry_after=2)
    with pytest.raises(telegram.error.RetryAfter) as err:
        await bot.send_message(GROUP, "x")
    retry_after = err.value.retry_after  # an int in PTB 22, a timedelta later
    assert getattr(retry_after, "total_seconds", lambda: retry_after)() == 2
    assert fake.calls_to("sendMessage")[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 2",
        "parameters": {"retry_after": 2},
    }
    await bot.send_message(ALICE, "other chat works")
    await bot.send_message(GROUP, "throttling was for one call")


async def test_rate_limits_per_chat(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_message(ALICE, "off by default")
    await bot.send_message(ALICE, "off by default")
    fake.enable_rate_limits(per_chat_per_second=1, per_chat_burst=2)
    await bot.send_message(ALICE, "1")
    msg = await bot.send_message(ALICE, "2")
    with pytest.raises(telegram.error.RetryAfter):
        await bot.send_message(ALICE, "3")
    with pytest.raises(telegram.error.RetryAfter):
        await bot.edit_message_text("2!", ALICE, msg.message_id)  # edits count too
    await bot.send_message(BOB, "another chat")
    await bot.send_chat_action(ALICE, "typing")  # not a message


# -- request validation ------------------------------------------------------------------------


@needs_spec
async def test_unknown_parameter_is_rejected(bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)unknown parameter bogus"):
        await bot.send_message(ALICE, "x", api_kwargs={"bogus": 1})


@needs_spec
async def test_nested_objects_and_required_parameters(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    bad = '{"inline_keyboard": [[{"text": "U1", "callback_date": "u1"}]]}'
    with pytest.raises(telegram.error.BadRequest, match=r"callback_date"):
        await bot.send_message(ALICE, "x", api_kwargs={"reply_markup": bad})
    async with aiohttp.ClientSession() as http:
        url = f"{fake.base_url}{fake.token}/sendMessage"
        async with http.post(url, data={"chat_id": str(ALICE)}) as resp:
            body = await resp.json()
        assert resp.status == 400 and body["description"] == "Bad Request: message text is empty"
        async with http.post(url, json={"text": "hi"}) as resp:
            body = await resp.json()
        assert "chat_id" in body["description"]
        async with http.get(url, params={"chat_id": str(ALICE), "text": "via GET"}) as resp:
            assert (await resp.json())["result"]["text"] == "via GET"


async def test_unknown_method_and_token(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)fooBarBaz"):
        await bot.do_api_request("fooBarBaz")
    assert fake.calls[-1].status == 400
    wrong = telegram.Bot("9:WRONG", base_url=fake.base_url)
    with pytest.raises(telegram.error.InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()


async def test_parse_modes(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(ALICE, "a < b", parse_mode="HTML")
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)reserved"):
        await bot.send_message(ALICE, "v6.1", parse_mode="MarkdownV2")
    msg = await bot.send_message(
        ALICE, '<b>cat</b> &lt;3 <a href="https://x.y">link</a> 🐱 <i>x</i>', parse_mode="HTML"
    )
    assert msg.text == "cat <3 link 🐱 x"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 3),
        ("text_link", 7, 4),
        ("italic", 15, 1),  # the cat emoji is two UTF-16 code units
    ]
    assert parse_entities(r"*bold* \_x\_ `a.b`", "MarkdownV2") == (
        "bold _x_ a.b",
        [
            {"type": "bold", "offset": 0, "length": 4},
            {"type": "code", "offset": 9, "length": 3},
        ],
    )


async def test_chats_members_and_blocking(fake: FakeTelegram, bot: telegram.Bot) -> None:
    member = await bot.get_chat_member(GROUP, BOT_ID)
    assert member.status == "member"
    fake.set_member_status(GROUP, BOB, "administrator")
    admin = await bot.get_chat_member(GROUP, BOB)
    assert isinstance(admin, telegram.ChatMemberAdministrator)
    assert (await bot.get_chat(GROUP)).title == "Group"
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "x")
    fake.block(ALICE)
    with pytest.raises(telegram.error.Forbidden, match=r"(?i)blocked"):
        await bot.send_message(ALICE, "x")
    fake.migrate_group(GROUP, -1009999999999)
    with pytest.raises(telegram.error.ChatMigrated):
        await bot.send_message(GROUP, "x")


async def test_photo_upload_and_download_round_trip(fake: FakeTelegram, bot: telegram.Bot) -> None:
    image = png(1024, 512)
    msg = await bot.send_photo(GROUP, image, caption="grid")
    largest = msg.photo[-1]
    assert (largest.width, largest.height, largest.file_size) == (1024, 512, len(image))
    assert [p.width for p in msg.photo] == [90, 320, 800, 1024]

    stored = fake.last_bot_message(GROUP)
    assert stored is not None and stored.photo_bytes == image and stored.caption == "grid"

    file = await bot.get_file(largest.file_id)
    assert bytes(await file.download_as_bytearray()) == image
    thumb = await (await bot.get_file(msg.photo[0].file_id)).download_as_bytearray()
    with Image.open(io.BytesIO(bytes(thumb))) as img:
        assert img.size == (90, 45)

    again = await bot.send_photo(ALICE, largest.file_id)  # re-send by file_id
    assert again.photo[-1].file_unique_id == largest.file_unique_id
    doc = await bot.send_document(ALICE, image, filename="grid.png")
    assert doc.document.mime_type == "image/png"  # type: ignore[union-attr]
    assert fake.last_bot_message(ALICE).document.data == image  # type: ignore[union-attr]


async def test_webhook_delivery(fake: FakeTelegram, bot: telegram.Bot) -> None:
    received: list[tuple[str | None, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(telegram.error.Conflict, match=r"webhook is active"):
            await bot.get_updates()
        await fake.send_text(ALICE, ALICE, "/start")
        await fake.wait_for(lambda: received)
        assert received[0][0] == "s3cret"
        assert received[0][1]["message"]["text"] == "/start"
        assert (await bot.get_webhook_info()).pending_update_count == 0
        await bot.delete_webhook()
    finally:
        await runner.cleanup()


async def test_responses_are_checked_against_ptb() -> None:
    _ptb_roundtrip({"id": 1, "is_bot": False, "first_name": "A"}, ["User"], path="ok")
    with pytest.raises(AssertionError, match=r"unknown to python-telegram-bot"):
        _ptb_roundtrip(
            {"id": 1, "is_bot": False, "first_name": "A", "bogus": 1}, ["User"], path="x"
        )


async def test_every_call_is_recorded(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_photo(ALICE, png(), caption="c", reply_markup=keyboard([("U1", "u1")]))
    call = fake.calls_to("sendPhoto")[-1]
    assert call.params["chat_id"] == ALICE
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "U1", "callback_data": "u1"}]]
    }
    assert call.params["photo"] == "attach://photo"
    assert call.files["photo"] == png()
    assert call.ok and call.result["photo"][-1]["width"] == 64


async def test_limits_hold_without_the_spec() -> None:
    async with FakeTelegram(validate_spec=False) as fake:
        fake.user(ALICE)
        async with telegram.Bot(**fake.bot_kwargs()) as bot:
            await bot.send_message(ALICE, "123", api_kwargs={"bogus": 1})  # names unchecked
            assert fake.last_bot_message(ALICE).text == "123"  # type: ignore[union-attr]
            assert fake.calls_to("sendMessage")[-1].params["chat_id"] == ALICE
            with pytest.raises(telegram.error.BadRequest, match=r"(?i)button_data_invalid"):
                await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", "a" * 65)]))
            album = [InputMediaPhoto(png()), InputMediaPhoto(png())]
            assert len(await bot.send_media_group(ALICE, album)) == 2
            with pytest.raises(telegram.error.BadRequest, match=r"(?i)reply_markup"):
                await bot.send_media_group(
                    ALICE, album, api_kwargs={"reply_markup": keyboard([("U1", "u1")]).to_json()}
                )


async def test_privacy_mode_hides_group_chatter(bot: telegram.Bot) -> None:
    async with FakeTelegram(privacy_mode=True) as fake:
        fake.user(BOB)
        fake.group(GROUP)
        async with telegram.Bot(**fake.bot_kwargs()) as private_bot:
            prompt = await private_bot.send_message(GROUP, "prompt?", reply_markup=ForceReply())
            await fake.send_text(GROUP, BOB, "just chatting")
            await fake.send_text(GROUP, BOB, "/imagine@other_bot x")
            await fake.send_text(GROUP, BOB, "/imagine a cat")
            await fake.send_text(GROUP, BOB, "a dog", reply_to=prompt.message_id)
            updates = await private_bot.get_updates(timeout=0)
    assert [u.message.text for u in updates] == ["/imagine a cat", "a dog"]  # type: ignore[union-attr]
    assert updates[1].message.reply_to_message.message_id == prompt.message_id  # type: ignore[union-attr]


async def test_wait_for_reports_recent_calls(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_message(ALICE, "something else")
    with pytest.raises(AssertionError, match="sendMessage"):
        await fake.wait_for(lambda: False, timeout=0.05)
