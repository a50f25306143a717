"""The Discord adapter in-process: the real discord.py against the fake Discord, a real App and
the simulator. Tests read like a user in a guild channel: run /imagine, click U2, answer."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.discord import DiscordAdapter
from adapters.discord.port import components, fit
from bot.app import App
from bot.chat import Requester
from bot.config import (
    AccessConfig,
    Config,
    DiscordConfig,
    MidjourneyConfig,
    Secret,
    StorageConfig,
    TrackingConfig,
)
from bot.views import Ask, Choice, Media, View
from mjsim import SimConfig, Simulator
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.harness import API_KEY, free_port

DISCORD_TOKEN = "discord-secret-token-0123456789"
ANSWER = "✏️ Answer"
GRID_ROWS = [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"], ["🌱", "📎", "✂️"]]


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def data_uri_bytes(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])


@pytest.fixture
async def fake(seams: None) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN) as server:
        yield server
        # Nothing the bot sent broke Discord's contract (2000 chars, custom_id, modal limits).
        assert [str(e) for e in server.errors] == []


def config(tmp_path: Path, sim: Simulator, fake: FakeDiscord) -> Config:
    return Config(
        midjourney=MidjourneyConfig(base_url=sim.base_url, api_key=Secret(API_KEY)),
        discord=DiscordConfig(
            token=Secret(DISCORD_TOKEN), api_base_url=fake.api_base, gateway_url=fake.gateway_url
        ),
        tracking=TrackingConfig(
            poll_interval_s=0.3,
            edit_interval_s=0.4,
            send_interval_s=0.05,
            listen=f"127.0.0.1:{free_port()}",
        ),
        storage=StorageConfig(path=str(tmp_path / "data" / "mjbot.db")),
    )


@pytest.fixture
async def app(tmp_path: Path, sim: Simulator, fake: FakeDiscord) -> AsyncIterator[App]:
    application = App(config(tmp_path, sim, fake))
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


def adapter_of(app: App) -> DiscordAdapter:
    return next(a for a in app.adapters if isinstance(a, DiscordAdapter))


def labels(message: FakeMessage) -> list[list[str | None]]:
    return [[label for label, _ in row] for row in message.buttons()]


def flat(message: FakeMessage) -> list[str | None]:
    return [label for row in message.buttons() for label, _ in row]


async def channel_message(
    fake: FakeDiscord, predicate: Callable[[FakeMessage], Any], within: float = 20.0
) -> FakeMessage:
    """The first visible message in the test channel that matches."""

    def find() -> FakeMessage | None:
        for message in fake.channel_messages():
            if not message.loading and predicate(message):
                return message
        return None

    return await fake.wait_for(find, timeout=within)


def is_result(*exclude: FakeMessage) -> Callable[[FakeMessage], bool]:
    ids = {m.id for m in exclude}
    return lambda m: bool(m.attachments and m.buttons() and m.id not in ids)


async def imagine(fake: FakeDiscord, prompt: str, **kw: Any) -> tuple[FakeInteraction, FakeMessage]:
    inter = await fake.slash("imagine", {"prompt": prompt}, **kw)
    before = list(fake.channel_messages())
    result = await channel_message(fake, is_result(*before))
    return inter, result


async def upscale(fake: FakeDiscord, grid: FakeMessage, label: str = "U2") -> FakeMessage:
    before = list(fake.channel_messages())
    click = await fake.click(grid, label=label)
    notice = await click.wait_message()
    assert notice.ephemeral and label in notice.content
    return await channel_message(fake, is_result(*before))


# --- the main flow --------------------------------------------------------------------------


async def test_imagine_progress_grid_upscale_and_custom_zoom(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    inter = await fake.slash("imagine", {"prompt": "a red fox in snow --ar 3:2"})
    callback = await inter.wait_callback()
    assert callback.type == 5 and callback.elapsed < 3  # deferred at once

    # The "thinking…" placeholder becomes the progress message, edited in place (coalesced).
    progress = await inter.wait_message()
    assert progress is inter.original and "a red fox in snow" in progress.content
    await fake.wait_for(lambda: any("%" in e.get("content", "") for e in progress.edits), 20)
    assert any(
        r.method == "PATCH"
        and r.path.endswith(f"/messages/{progress.id}")
        and "/webhooks/" in r.path
        for r in fake.requests
    )

    # The result is a new channel message (mentioning the user), with the image and buttons.
    grid = await channel_message(fake, is_result(progress))
    assert grid.origin == "channel" and not grid.ephemeral
    assert grid.content.startswith(f"<@{fake.user_id}>") and "a red fox in snow" in grid.content
    image = Image.open(io.BytesIO(grid.attachments[0].data))
    assert image.width > image.height  # --ar 3:2
    assert labels(grid) == GRID_ROWS
    assert all(len(cid or "") <= 100 for row in grid.buttons() for _, cid in row)
    await fake.wait_for(lambda: progress.deleted, 10)
    assert sim.submits("imagine")[0].body["prompt"] == "a red fox in snow --ar 3:2"

    # U2 -> the exact customId of the parent's U2; the notice only the presser sees.
    parent = next(t for t in sim.tasks.values() if t.action == "IMAGINE")
    upscaled = await upscale(fake, grid, "U2")
    action = sim.submits("action")[0].body
    assert action["taskId"] == parent.id
    assert action["customId"] == f"MJ::JOB::upsample::2::{parent.message_hash}"
    shown = flat(upscaled)
    assert "🔍 Custom Zoom" in shown and "🖌️ Vary (Region)" in shown
    assert {"🌱", "📎", "⬅️"} <= set(shown) and len(upscaled.buttons()) <= 5  # 16 in 5 rows

    # Custom Zoom -> code 21 -> a question with an Answer button -> a real modal, prefilled.
    await fake.click(upscaled, label="🔍 Custom Zoom")
    ask = await channel_message(fake, lambda m: ANSWER in flat(m))
    assert "--zoom 2" in ask.content
    assert "press ✏️ Answer" in ask.content and "reply" not in ask.content.lower()
    opened = await fake.click(ask, label=ANSWER)
    modal = await opened.wait_callback()
    assert modal.type == 9 and modal.data is not None
    assert 1 <= len(modal.data["title"]) <= 45 and "Custom Zoom" in modal.data["title"]
    [field] = [c["component"] for c in modal.data["components"]]
    assert field["custom_id"] == "text" and field["value"].endswith("--zoom 2")

    modal_task = next(t for t in sim.tasks.values() if t.modal == "zoom")
    before = list(fake.channel_messages())
    submitted = await fake.submit_modal(
        None, {"text": "a red fox in snow --zoom 1.5"}, interaction=opened
    )
    assert (await submitted.wait_callback()).type == 5
    zoomed = await channel_message(fake, is_result(*before))
    body = sim.submits("modal")[0].body
    assert body["taskId"] == modal_task.id
    assert body["prompt"] == "a red fox in snow --zoom 1.5"
    assert zoomed.buttons() and zoomed.content.startswith(f"<@{fake.user_id}>")


@pytest.mark.parametrize("how", ["cells", "mask"])
async def test_vary_region(app: App, sim: Simulator, fake: FakeDiscord, how: str) -> None:
    _, grid = await imagine(fake, "a cat on a sofa")
    upscaled = await upscale(fake, grid, "U1")
    await fake.click(upscaled, label="🖌️ Vary (Region)")
    ask = await channel_message(fake, lambda m: ANSWER in flat(m))
    assert ask.attachments  # the labelled 3x3 grid to pick cells from
    opened = await fake.click(ask, label=ANSWER)
    modal = await opened.wait_callback()
    assert modal.data is not None
    inner = {c["component"]["custom_id"]: c["component"] for c in modal.data["components"]}
    assert inner["cells"]["type"] == 3 and len(inner["cells"]["options"]) == 9
    assert inner["mask"]["type"] == 19  # or upload a mask image

    size = Image.open(io.BytesIO(grid.attachments[0].data)).size
    if how == "cells":
        answer: dict[str, Any] = {"cells": ["1", "2"], "text": "top hat on a cat"}
    else:
        painted = Image.new("L", size, 0)
        painted.paste(255, (0, 0, size[0], size[1] // 3))  # the top third: cells 1-3
        out = io.BytesIO()
        painted.save(out, "PNG")
        answer = {"mask": ("mask.png", out.getvalue()), "text": "top hat on a cat"}
    before = list(fake.channel_messages())
    await fake.submit_modal(None, answer, interaction=opened)
    await channel_message(fake, is_result(*before))
    body = sim.submits("modal")[0].body
    assert body["prompt"] == "top hat on a cat"  # not mistaken for more cells
    mask = Image.open(io.BytesIO(data_uri_bytes(body["maskBase64"]))).convert("L")
    width, height = mask.size
    assert mask.getpixel((width // 6, height // 6)) == 255  # cell 1: repaint
    assert mask.getpixel((width // 2, height // 6)) == 255  # cell 2: repaint
    assert mask.getpixel((width // 2, height // 2)) == 0  # cell 5: keep


async def test_a_photo_question_takes_an_upload(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    # Slash commands require their attachments, but the service may still ask for photos.
    req = Requester("discord", fake.channel_id, fake.user_id, event="discord:ask-1")
    await app.service.describe(req, "", [])
    ask = await channel_message(fake, lambda m: ANSWER in flat(m))
    opened = await fake.click(ask, label=ANSWER)
    modal = await opened.wait_callback()
    assert modal.data is not None
    kinds = [c["component"]["type"] for c in modal.data["components"]]
    assert kinds == [19, 4]  # the photos, then the text
    photo = png((10, 120, 200))
    await fake.submit_modal(None, {"files": [("p.png", photo)]}, interaction=opened)
    await channel_message(fake, lambda m: "1️⃣" in m.content and m.buttons())
    assert data_uri_bytes(sim.submits("describe")[0].body["base64"]) == photo


async def test_describe_with_an_attachment(app: App, sim: Simulator, fake: FakeDiscord) -> None:
    photo = png((200, 40, 40))
    inter = await fake.slash("describe", attachments={"image": ("fox.png", photo)})
    assert (await inter.wait_callback()).type == 5
    result = await channel_message(fake, lambda m: "1️⃣" in m.content and m.buttons())
    body = sim.submits("describe")[0].body
    assert data_uri_bytes(body["base64"]) == photo
    assert ["1️⃣", "2️⃣", "3️⃣", "4️⃣"] == labels(result)[0][:4]
    assert any(r.path.startswith("/attachments/") for r in fake.requests)  # really downloaded


async def test_blend_three_in_order(app: App, sim: Simulator, fake: FakeDiscord) -> None:
    photos = [png((255, 0, 0)), png((0, 255, 0)), png((0, 0, 255))]
    await fake.slash(
        "blend",
        {"dimensions": "landscape"},
        attachments={"image1": photos[0], "image2": photos[1], "image3": photos[2]},
    )
    await channel_message(fake, is_result())
    body = sim.submits("blend")[0].body
    assert [data_uri_bytes(uri) for uri in body["base64Array"]] == photos
    assert body["dimensions"] == "LANDSCAPE"


async def test_expired_interaction_token_falls_back_to_the_channel(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    # A slower job, so progress keeps coming after the token expires.
    async with Simulator(SimConfig(api_key=API_KEY, time_scale=0.2)) as slow:
        application = App(config(tmp_path, slow, fake))
        await application.start()
        try:
            inter = await fake.slash("imagine", {"prompt": "a lighthouse at night"})
            progress = await inter.wait_message()
            fake.expire_token(inter)
            grid = await channel_message(fake, is_result(progress), within=30)
            assert labels(grid) == GRID_ROWS
            await fake.wait_for(lambda: progress.deleted, 10)
        finally:
            await application.stop()
    channel_route = f"/channels/{fake.channel_id}/messages/{progress.id}"
    assert any(r.method == "PATCH" and r.path.endswith(channel_route) for r in fake.requests)
    assert any(r.method == "DELETE" and r.path.endswith(channel_route) for r in fake.requests)
    assert "%" in progress.content  # progress edits kept arriving through the channel
    assert adapter_of(application).port.channel_fallbacks >= 1


async def test_old_tokens_use_the_channel_without_trying(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    port = adapter_of(app).port
    port.token_lifetime = 0.0  # as if 14 minutes had passed since every interaction
    inter = await fake.slash("imagine", {"prompt": "a quiet harbour"})
    await inter.wait_callback()
    grid = await channel_message(fake, is_result())
    assert labels(grid) == GRID_ROWS
    assert not [r for r in fake.requests if r.path.startswith("/api/v10/webhooks/")]
    assert port.channel_fallbacks == 0


async def test_buttons_keep_working_after_a_restart(
    tmp_path: Path, sim: Simulator, fake: FakeDiscord
) -> None:
    first = App(config(tmp_path, sim, fake))
    await first.start()
    try:
        _, grid = await imagine(fake, "a paper boat on a puddle")
        upscaled = await upscale(fake, grid, "U2")
        await fake.click(upscaled, label="🔍 Custom Zoom")
        ask = await channel_message(fake, lambda m: ANSWER in flat(m))
    finally:
        await first.stop()
    second = App(config(tmp_path, sim, fake))
    await second.start()
    try:
        upscaled = await upscale(fake, grid, "U3")
        assert upscaled.attachments
        # A question asked before the restart still opens its modal, rebuilt from the store.
        opened = await fake.click(ask, label=ANSWER)
        modal = await opened.wait_callback()
        assert modal.type == 9 and modal.data is not None
        [field] = [c["component"] for c in modal.data["components"]]
        assert field["value"].endswith("--zoom 2") and "Custom Zoom" in modal.data["title"]
    finally:
        await second.stop()


@pytest.mark.parametrize("opened_by", ["this version", "the version before"])
async def test_a_modal_open_across_a_restart_is_answered(
    tmp_path: Path, sim: Simulator, fake: FakeDiscord, opened_by: str
) -> None:
    """The bot restarts while someone types into a modal: the submit reaches the new process,
    which answers it from the store (the zoom is submitted, the interaction gets its
    response) instead of leaving Discord to say "Something went wrong"."""
    first = App(config(tmp_path, sim, fake))
    await first.start()
    try:
        _, grid = await imagine(fake, "a paper boat on a puddle")
        upscaled = await upscale(fake, grid, "U2")
        await fake.click(upscaled, label="🔍 Custom Zoom")
        ask = await channel_message(fake, lambda m: ANSWER in flat(m))
        opened = await fake.click(ask, label=ANSWER)
        assert (await opened.wait_callback()).type == 9
    finally:
        await first.stop()
    assert opened.modal is not None
    if opened_by == "the version before":  # its custom_id named the interaction, not the task
        opened.modal["custom_id"] = f"q1:{ask.id}:{opened.id}"
    second = App(config(tmp_path, sim, fake))
    await second.start()
    try:
        before = list(fake.channel_messages())
        answer = await fake.submit_modal(
            None, {"text": "a paper boat on a puddle --zoom 1.5"}, interaction=opened
        )
        callback = await answer.wait_callback()
        assert callback.type == 5 and callback.elapsed < 3
        zoomed = await channel_message(fake, is_result(*before))
        body = sim.submits("modal")[0].body
        assert body["prompt"] == "a paper boat on a puddle --zoom 1.5"
        assert zoomed.content.startswith(f"<@{fake.user_id}>")
    finally:
        await second.stop()


async def test_a_modal_for_a_question_already_answered_says_so(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    _, grid = await imagine(fake, "a tin robot")
    upscaled = await upscale(fake, grid, "U1")
    await fake.click(upscaled, label="🔍 Custom Zoom")
    ask = await channel_message(fake, lambda m: ANSWER in flat(m))
    first = await fake.click(ask, label=ANSWER)
    second = await fake.click(ask, label=ANSWER)  # two windows open on one question
    await first.wait_callback()
    await second.wait_callback()
    await fake.submit_modal(None, {"text": "a tin robot --zoom 2"}, interaction=first)
    await fake.wait_for(lambda: sim.submits("modal"), timeout=10)
    late = await fake.submit_modal(None, {"text": "a tin robot --zoom 1.2"}, interaction=second)
    notice = await late.wait_message()
    assert notice.ephemeral and "already been answered" in notice.content
    assert len(sim.submits("modal")) == 1


async def test_someone_elses_button_is_refused_privately(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    _, grid = await imagine(fake, "a koi pond seen from above")
    click = await fake.click(grid, label="U1", user="999000000000000777")
    notice = await click.wait_message()
    assert notice.ephemeral and "Only the person" in notice.content
    assert sim.submits("action") == []


async def test_a_second_press_links_to_the_running_task(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    _, grid = await imagine(fake, "a lantern festival")
    sim.faults.hang_s = 3.0  # the submit is slow: the first V1 is still running
    before = list(fake.channel_messages())
    first = await fake.click(grid, label="V1")
    assert "V1" in (await first.wait_message()).content
    progress = await channel_message(fake, lambda m: m not in before and not m.ephemeral)
    again = await fake.click(grid, label="V1")
    notice = await again.wait_message()
    link = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{progress.id}"
    assert notice.ephemeral and "Already running (0%)" in notice.content
    assert notice.content.endswith(link)
    sim.faults.hang_s = 0.0
    await channel_message(fake, is_result(*before, progress))
    assert len(sim.submits("action")) == 1


async def test_chinese_locale_and_localised_commands(
    app: App, sim: Simulator, fake: FakeDiscord
) -> None:
    imagine_cmd = fake.command("imagine")
    assert imagine_cmd is not None
    assert imagine_cmd["description_localizations"]["zh-CN"] == "根据提示词生成四张图"
    assert {c["name"] for c in fake.commands} >= {
        "imagine", "describe", "blend", "swap", "shorten", "video", "edit",
        "settings", "info", "tasks", "show", "fast", "relax",
    }  # fmt: skip
    inter = await fake.slash("imagine", {"prompt": "一只狐狸"}, locale="zh-CN")
    progress = await inter.wait_message()
    assert "绘图" in progress.content
    grid = await channel_message(fake, is_result(progress))
    assert "完成" in grid.content or "秒" in grid.content


async def test_limits_content_and_attachments(app: App, fake: FakeDiscord) -> None:
    outbox = app.outbox
    long = await outbox.send("discord", fake.channel_id, View("_*" * 3000))
    message = fake.messages[long.message_id]
    assert len(message.content) == 2000
    big = await outbox.send(
        "discord", fake.channel_id, View("big", media=(Media("video", b"0" * (11 << 20)),))
    )
    stored = fake.messages[big.message_id]
    assert stored.attachments == [] and "too large" in stored.content


async def test_an_album_is_one_message_with_its_attachments_and_buttons(
    app: App, fake: FakeDiscord
) -> None:
    """Four pictures, each described by its own caption (the attachment's description), and
    the buttons for each under the same message."""
    items = tuple(
        Media("photo", png(colour), f"edit_{n}.png", caption=f"{n}")
        for n, colour in enumerate(((200, 0, 0), (0, 200, 0), (0, 0, 200), (9, 9, 9)), 1)
    )
    rows = tuple((Choice(f"{n} 📎", f"m1:f{n}"), Choice(f"{n} ✏️", f"m1:e{n}")) for n in range(1, 5))
    ref = await app.outbox.send(
        "discord", fake.channel_id, View("four edits", media=items, rows=rows)
    )
    message = fake.messages[ref.message_id]
    assert [a.data for a in message.attachments] == [m.data for m in items]
    assert [a.meta.get("description") for a in message.stored_attachments] == ["1", "2", "3", "4"]
    assert flat(message) == [label for row in rows for label in (c.label for c in row)]


def test_fit_downscales_big_images() -> None:
    noise = Image.effect_noise((1600, 1600), 100).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "PNG")
    item = Media("document", out.getvalue(), "original.png")
    limit = 300_000
    fitted = fit(item, limit)
    assert fitted is not None and len(fitted.data) <= limit
    assert fitted.filename == "original.jpg"
    Image.open(io.BytesIO(fitted.data)).verify()
    assert fit(Media("video", b"0" * 100), 10) is None
    assert fit(item, len(item.data)) is item


async def test_settings_speed_tasks_and_show(app: App, sim: Simulator, fake: FakeDiscord) -> None:
    opened = await fake.slash("settings")
    menu = await opened.wait_message()
    assert "⚙️" in menu.content
    # the menu (bot/settings_menu.py) packs into Discord's 5 rows: the languages share one
    assert any({"✅ English", "中文"} <= set(row) for row in labels(menu))
    click = await fake.click(menu, label="relax")
    assert (await click.wait_message()).ephemeral
    await fake.wait_for(lambda: "✅ relax" in flat(menu))  # redrawn in place

    speed = await (await fake.slash("fast")).wait_message()
    assert "fast" in speed.content
    _, grid = await imagine(fake, "a mountain village at dawn")
    assert sim.submits("imagine")[-1].prefix == "/fast"

    listed = await (await fake.slash("tasks")).wait_message()
    key = listed.content.split()[-1]
    info = await (await fake.slash("info")).wait_message()
    assert "📊" in info.content and fake.user_id in info.content  # usage, like MJ's /info
    shown = await (await fake.slash("show", {"id": key})).wait_message()
    assert labels(shown) == GRID_ROWS and shown.attachments and shown.id != grid.id

    # /help lists Discord's commands with their options, not Telegram's replies and captions
    helped = await (await fake.slash("help")).wait_message()
    assert "/show id" in helped.content and "/info" in helped.content
    assert "reply" not in helped.content.lower() and "/task <id>" not in helped.content


async def test_direct_messages_and_big_uploads(app: App, sim: Simulator, fake: FakeDiscord) -> None:
    inter = await fake.slash("imagine", {"prompt": "a lighthouse on a rocky shore"}, dm=True)
    await inter.wait_message()
    dm = inter.channel_id
    result = await fake.wait_for(
        lambda: next((m for m in fake.channel_messages(dm) if m.attachments and m.buttons()), None),
        timeout=20,
    )
    assert labels(result) == GRID_ROWS

    too_big = await fake.slash("describe", attachments={"image": b"\x89PNG" + b"0" * (21 << 20)})
    callback = await too_big.wait_callback()
    assert callback.type == 4 and callback.data is not None
    assert callback.data["flags"] & 64 and "too large" in callback.data["content"]
    assert sim.submits("describe") == []


def test_components_fit_discord() -> None:
    rows = tuple(
        tuple(Choice(f"{name}{i}", f"m1:abcdefghij:{name}{i}") for i in range(n))
        for name, n in (("a", 2), ("b", 3), ("c", 3), ("d", 4), ("e", 2), ("f", 2))
    )
    ui = components(View("x", rows=rows))
    assert ui is not None
    payload = ui.to_components()
    assert len(payload) == 5 and all(len(row["components"]) <= 5 for row in payload)
    assert [c["label"] for row in payload for c in row["components"]] == [
        c.label for row in rows for c in row
    ]  # nothing dropped, order kept: the two smallest neighbours shared a row

    asked = components(View("问题", ask=Ask("提示词 --zoom 2", ref="abcdefghij")))
    assert asked is not None
    [[answer]] = [row["components"] for row in asked.to_components()]
    assert answer["label"] == "✏️ 回答" and answer["custom_id"] == "a1:abcdefghij"
    link = components(View("x", rows=((Choice("editor", url="https://example.com/m"),),)))
    assert link is not None
    assert link.to_components()[0]["components"][0]["url"] == "https://example.com/m"


async def test_a_refusal_is_private_and_the_placeholder_goes(app: App, fake: FakeDiscord, sim):
    inter = await fake.slash("imagine", {"prompt": "a fox " * 900})  # 5400 characters
    refusal = await inter.wait_message(lambda m: "too long" in m.content)
    assert refusal.ephemeral
    public = [m for m in fake.channel_messages() if not m.ephemeral and not m.deleted]
    assert public == []  # nobody else sees the "thinking" message or the refusal
    assert sim.submits() == []


async def test_outsiders_are_each_told_privately(
    tmp_path: Path, sim: Simulator, fake: FakeDiscord
) -> None:
    """Refusals on Discord are private answers to an interaction, so "once per chat, then
    silence" would leave every later outsider with an unanswered command: each is told."""
    cfg = config(tmp_path, sim, fake)
    cfg = replace(cfg, access=AccessConfig(mode="allowlist"))
    application = App(cfg)
    await application.start()
    try:
        for user in ("9101", "9102", "9101"):
            inter = await fake.slash("imagine", {"prompt": "a fox"}, user=user)
            refusal = await inter.wait_message(lambda m: "private" in m.content.lower())
            assert refusal.ephemeral
        public = [m for m in fake.channel_messages() if not m.ephemeral and not m.deleted]
        assert public == []
        assert sim.submits() == []
    finally:
        await application.stop()
