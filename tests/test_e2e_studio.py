"""End to end (``mjbot run`` between the fake Telegram, the fake Discord and the simulator's
openai-hk flavour, which answers as openai-hk's document does: EDITS and VIDEO results come as
imageUrls/videoUrls with ``buttons: []``): an edit arrives as an album of four pictures with
their buttons, 🎬 makes a video from one of them, which arrives as four clips with thumbnails,
and ➕ extends one clip through /submit/video; on Discord /video's options arrive as the exact
request and ➕ extends there too."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mjsim import SimConfig, Simulator
from tests.conftest import ALICE, GROUP
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.telegram import FakeTelegram
from tests.harness import API_KEY, BotProcess

DISCORD_TOKEN = "discord-studio-secret-token-0123456789"


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "PNG")
    return out.getvalue()


def decoded(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])


@pytest.fixture
async def hk() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimConfig(api_key=API_KEY, time_scale=0.05, flavour="openai-hk"))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN) as fake:
        yield fake
        assert [str(e) for e in fake.errors] == []


@pytest.fixture
async def bot(
    tmp_path: Path, hk: Simulator, tg: FakeTelegram, dc: FakeDiscord
) -> AsyncIterator[BotProcess]:
    process = BotProcess(
        tmp_path,
        hk.base_url,
        tg.url,
        midjourney={"provider": "openai-hk"},
        discord={
            "token": DISCORD_TOKEN,
            "api_base_url": dc.api_base,
            "gateway_url": dc.gateway_url,
        },
    )
    process.start()
    try:
        await tg.wait_for_call("deleteWebhook", timeout=30)
        await dc.wait_for(lambda: dc.command("video"), timeout=30)
        yield process
    finally:
        await process.stop()
    assert API_KEY not in process.log() and DISCORD_TOKEN not in process.log()


def albums(tg: FakeTelegram, kind: str) -> list[list]:
    """The bot's albums in the group whose items are all of ``kind``, oldest first."""
    groups: dict[str, list] = {}
    for message in tg.bot_messages(GROUP):
        if message.media_group_id:
            groups.setdefault(message.media_group_id, []).append(message)
    return [items for items in groups.values() if all(m.kind == kind for m in items)]


def labels(message) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


async def test_telegram_an_edit_its_pictures_a_video_of_one_and_an_extend(
    bot, hk: Simulator, tg: FakeTelegram
) -> None:
    alice = tg.users[ALICE]
    # openai-hk has no /submit/retexture: its menus leave /retexture out
    menus = [call.params["commands"] for call in tg.calls_to("setMyCommands")]
    assert menus and all("edit" in [c["command"] for c in m] for m in menus)
    assert not any("retexture" in [c["command"] for c in m] for m in menus)
    sent = await tg.send_photo(GROUP, alice, png("olive"), caption="/edit make it snowy")
    pictures = (await tg.wait_for(lambda: albums(tg, "photo"), timeout=40))[0]
    assert len(pictures) == 4
    (group,) = tg.calls_to("sendMediaGroup")
    assert [item["type"] for item in group.params["media"]] == ["photo"] * 4
    keyboard = await tg.wait_for(
        lambda: next(
            (m for m in tg.bot_messages(GROUP) if "🎬 2" in labels(m)),
            None,
        ),
        timeout=20,
    )
    assert labels(keyboard) == [
        f"{icon} {n}" for n in range(1, 5) for icon in ("📎", "✏️", "🎬", "🖼", "🔍")
    ]
    assert keyboard.reply_to_message_id == sent.message_id
    edited = next(task for task in hk.tasks.values() if task.action == "EDITS")
    second = await _get(hk, edited.id, "0_1.png")

    await tg.press(GROUP, keyboard, "🎬 2", alice)
    clips = (await tg.wait_for(lambda: albums(tg, "video"), timeout=60))[0]
    body = hk.submits("video")[0].body
    assert decoded(body["image"]) == second and body["motion"] == "low"
    assert len(clips) == 4 and all(m.video.data[4:8] == b"ftyp" for m in clips)
    assert all(m.video.thumbnail and m.video.thumbnail[:3] == b"\xff\xd8\xff" for m in clips)
    assert [m.caption for m in clips][1:] == ["2 · 5 s", "3 · 5 s", "4 · 5 s"]
    video_task = first_video(hk)
    buttons = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(GROUP) if "➕ 1 high" in labels(m)), None),
        timeout=20,
    )

    await tg.press(GROUP, buttons, "➕ 1 high", alice)
    await tg.wait_for(lambda: len(albums(tg, "video")) == 2, timeout=60)
    extend = hk.submits("video")[1].body
    assert {k: extend[k] for k in ("action", "taskId", "index", "motion")} == {
        "action": "extend",
        "taskId": video_task,
        "index": 0,
        "motion": "high",
    }
    longer = albums(tg, "video")[1]
    assert [m.caption for m in longer][1:] == ["2 · 9 s", "3 · 9 s", "4 · 9 s"]


def first_video(hk: Simulator) -> str:
    return next(t.id for t in hk.tasks.values() if t.action == "VIDEO" and not t.parent_id)


async def _get(hk: Simulator, task_id: str, name: str) -> bytes:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{hk.base_url}/sim/images/{task_id}/{name}")).content


def result_with(fake: FakeDiscord, label: str, *exclude: FakeMessage) -> FakeMessage | None:
    ids = {m.id for m in exclude}
    return next(
        (
            m
            for m in fake.channel_messages()
            if not m.loading
            and m.id not in ids
            and any(text == label for row in m.buttons() for text, _ in row)
        ),
        None,
    )


async def test_discord_video_options_and_an_extend(bot, hk: Simulator, dc: FakeDiscord) -> None:
    assert dc.command("retexture") is None and dc.command("edit") is not None
    start, end = png("navy"), png("gold")
    await dc.slash(
        "video",
        {"prompt": "sunrise", "loop": True, "hd": True, "batch": 2},
        attachments={"image": ("start.png", start), "end_image": ("end.png", end)},
    )
    result = await dc.wait_for(lambda: result_with(dc, "➕ 1 high"), timeout=60)
    body = dict(hk.submits("video")[0].body)
    assert decoded(body.pop("image")) == start and decoded(body.pop("endImage")) == end
    body.pop("state")
    body.pop("notifyHook", None)
    assert body == {
        "prompt": "sunrise",
        "motion": "low",
        "loop": True,
        "batchSize": 2,
        "videoType": "vid_1.1_i2v_720",
    }
    assert len(result.attachments) == 2 and all(a.data[4:8] == b"ftyp" for a in result.attachments)
    assert [a.meta.get("description") for a in result.stored_attachments] == [
        "1 · 5 s",
        "2 · 5 s",
    ]
    assert "720p · 2 clips · low motion · loop · end frame · 16 units" in result.content
    video_task = first_video(hk)

    click = await dc.click(result, label="➕ 1 high")
    await click.wait_message()
    await dc.wait_for(lambda: len(hk.submits("video")) == 2, timeout=20)
    extend = hk.submits("video")[1].body
    assert {k: extend[k] for k in ("action", "taskId", "index", "motion")} == {
        "action": "extend",
        "taskId": video_task,
        "index": 0,
        "motion": "high",
    }
    longer = await dc.wait_for(lambda: result_with(dc, "➕ 1 high", result), timeout=60)
    assert longer.stored_attachments[0].meta.get("description") == "1 · 9 s"
