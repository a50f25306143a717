"""Albums: a View with several media, each with its own caption (and a video's thumbnail), as
each platform shows it. Telegram: one sendMediaGroup (the fake checks it against the Bot API
spec and the thumbnail rules) and the buttons in one message after it; the playground: tiles
with captions and posters. (Discord: tests/test_discord_adapter.py.)"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import telegram
from PIL import Image

from adapters.telegram.port import TelegramPort
from adapters.web.port import WebPort, view_rows
from bot import media
from bot.views import Choice, Media, View
from mjsim import video
from tests.fakes.telegram import FakeTelegram

GROUP = -100123
ALICE = 7001


def png(colour: str, size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def clip(colour: str) -> bytes:
    return video.mp4(video.animate(Image.new("RGB", (64, 64), colour), 1.0, 4), 4)


COLOURS = ("red", "green", "blue", "gold")


def video_album() -> View:
    """Four clips, each with its caption and thumbnail; a row of buttons per clip."""
    items = tuple(
        Media(
            "video",
            clip(colour),
            f"task_{n}.mp4",
            caption=f"{n} · 5 s",
            thumbnail=media.to_thumbnail(png(colour)),
        )
        for n, colour in enumerate(COLOURS, start=1)
    )
    rows = tuple((Choice(f"{n} ➕", f"t{n}"), Choice(f"{n} 📎", f"f{n}")) for n in range(1, 5))
    return View("a fox runs\n🎬 Video", media=items, rows=rows)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.user(ALICE, "Alice")
        server.group(GROUP, "Group")
        yield server


@pytest.fixture
async def port(fake: FakeTelegram) -> AsyncIterator[TelegramPort]:
    async with telegram.Bot(**fake.bot_kwargs()) as bot:
        yield TelegramPort(bot)


async def test_telegram_album_of_four_videos_with_thumbnails_then_the_buttons(
    fake: FakeTelegram, port: TelegramPort
) -> None:
    ref = await port.send(str(GROUP), video_album())

    (group,) = fake.calls_to("sendMediaGroup")
    items = group.params["media"]
    assert [item["type"] for item in items] == ["video"] * 4
    assert [item["caption"] for item in items] == [
        "a fox runs\n🎬 Video\n1 · 5 s",
        "2 · 5 s",
        "3 · 5 s",
        "4 · 5 s",
    ]
    assert all(item["thumbnail"].startswith("attach://") for item in items)
    assert all(item["supports_streaming"] is True for item in items)
    posted = [m for m in fake.bot_messages(GROUP) if m.media_group_id]
    assert len(posted) == 4 and len({m.media_group_id for m in posted}) == 1
    for message, colour in zip(posted, COLOURS, strict=True):
        assert message.video is not None and message.video.data == clip(colour)
        thumb = Image.open(io.BytesIO(message.video.thumbnail or b""))
        assert thumb.format == "JPEG" and max(thumb.size) == 320
    # the buttons follow in one message (an album carries no keyboard), and it is the ref
    keyboard = fake.last_bot_message(GROUP)
    assert keyboard is not None and keyboard.message_id == int(ref.message_id)
    assert [text for row in keyboard.buttons for text, _ in row] == [
        "1 ➕", "1 📎", "2 ➕", "2 📎", "3 ➕", "3 📎", "4 ➕", "4 📎",
    ]  # fmt: skip


async def test_telegram_one_video_with_its_thumbnail(
    fake: FakeTelegram, port: TelegramPort
) -> None:
    one = video_album().media[0]
    await port.send(str(GROUP), View("one clip", media=(one,), rows=((Choice("➕", "x"),),)))
    (call,) = fake.calls_to("sendVideo")
    assert call.params["thumbnail"].startswith("attach://") and call.params["supports_streaming"]
    message = fake.last_bot_message(GROUP)
    assert message is not None and message.video is not None
    assert message.video.thumbnail == one.thumbnail and message.buttons


async def test_the_fake_refuses_a_thumbnail_telegram_could_not_use(
    fake: FakeTelegram, port: TelegramPort
) -> None:
    """The fake's check is real: a PNG thumbnail (or one over 320 px) is refused."""
    bad = Media("video", clip("red"), "a.mp4", thumbnail=png("red", (100, 100)))
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)jpeg"):
        await port.send(str(GROUP), View("bad", media=(bad, bad)))
    big = Media("video", clip("red"), "a.mp4", thumbnail=media.to_jpeg(png("red"), 640))
    with pytest.raises(telegram.error.BadRequest, match="320"):
        await port.send(str(GROUP), View("big", media=(big,)))


async def test_playground_tiles_carry_captions_and_posters() -> None:
    port = WebPort()
    ref = await port.send("s1", video_album())
    message = port.find("s1", ref.message_id)
    assert message is not None and len(message.media) == 4
    assert [item["caption"] for item in message.media] == [f"{n} · 5 s" for n in range(1, 5)]
    for item, colour in zip(message.media, COLOURS, strict=True):
        assert item["content_type"] == "video/mp4"
        video_blob = port.blob(item["url"].rsplit("/", 1)[-1])
        poster = port.blob(item["poster"].rsplit("/", 1)[-1])
        assert video_blob is not None and video_blob.data == clip(colour)
        assert poster is not None and poster.content_type == "image/jpeg"
    kept = port.kept
    assert kept == sum(len(m.data) + len(m.thumbnail) for m in video_album().media)
    await port.delete(ref)
    assert port.kept == 0 and not port.blobs  # posters go with their tiles


def test_playground_names_the_per_item_buttons() -> None:
    """Every playground button says what it does: the studio's "✏️ 2" is "Edit this picture
    again 2" to a screen reader and as a tooltip."""
    rows = view_rows(
        View(
            "x",
            rows=(
                (Choice("✏️ 2", "a"), Choice("➕ 1 high", "b"), Choice("📎 4", "c")),
                (Choice("🔁 Try again", "d"), Choice("U1", "e")),
            ),
        ),
        "en",
    )
    assert [b["title"] for b in rows[0]] == [
        "Edit this picture again 2",
        "Make this clip 4 s longer 1 high",
        "The original file 4",
    ]
    assert [b["title"] for b in rows[1]] == ["", ""]
    assert view_rows(View("x", rows=((Choice("🎬 3", "a"),),)), "zh")[0][0]["title"] == (
        "用这张图片生成视频 3"
    )
