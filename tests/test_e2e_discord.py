"""End to end: ``mjbot run`` as a subprocess with both adapters (the fake Discord and the fake
Telegram), sharing one store, one tracker and one service with the simulator behind them."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import discord.gateway
import discord.http
import pytest
from PIL import Image

from adapters.discord.seams import point_discord_at
from mjsim import Simulator
from tests.conftest import ALICE, GROUP
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.telegram import FakeTelegram
from tests.harness import API_KEY, TG_TOKEN, BotProcess

DISCORD_TOKEN = "discord-e2e-secret-token-0123456789"
GRID_ROWS = [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"], ["🌱", "📎", "✂️"]]


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN) as fake:
        yield fake
        assert [str(e) for e in fake.errors] == []


@pytest.fixture
async def both(
    tmp_path: Path, sim: Simulator, tg: FakeTelegram, dc: FakeDiscord
) -> AsyncIterator[BotProcess]:
    process = BotProcess(
        tmp_path,
        sim.base_url,
        tg.url,
        discord={
            "token": DISCORD_TOKEN,
            "api_base_url": dc.api_base,
            "gateway_url": dc.gateway_url,
        },
    )
    process.start()
    try:
        await tg.wait_for_call("deleteWebhook", timeout=30)
        await dc.wait_for(lambda: dc.command("imagine"), timeout=30)
        yield process
    finally:
        await process.stop()
    log = process.log()
    for secret in (API_KEY, TG_TOKEN, DISCORD_TOKEN):
        assert secret not in log
    # discord.py's DEBUG lines carry interaction tokens and user content: kept out.
    assert not any(i.token in log for i in dc.interactions.values())


def syncs(fake: FakeDiscord) -> list:
    """The bot's command syncs: one per start, after it is connected."""
    return [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]


def questions(fake: FakeDiscord) -> list[FakeMessage]:
    return [m for m in fake.channel_messages() if "✏️ Answer" in str(m.buttons())]


def grid_of(fake: FakeDiscord, *exclude: FakeMessage) -> FakeMessage | None:
    ids = {m.id for m in exclude}
    return next(
        (
            m
            for m in fake.channel_messages()
            if m.attachments and m.buttons() and not m.loading and m.id not in ids
        ),
        None,
    )


async def test_imagine_on_discord_and_telegram_in_one_process(
    both: BotProcess, sim: Simulator, tg: FakeTelegram, dc: FakeDiscord
) -> None:
    inter = await dc.slash("imagine", {"prompt": "a red fox in snow --ar 3:2"})
    callback = await inter.wait_callback(timeout=10)
    assert callback.type == 5 and callback.elapsed < 3
    progress = await inter.wait_message(timeout=10)
    grid = await dc.wait_for(lambda: grid_of(dc, progress), timeout=30)
    assert [[label for label, _ in row] for row in grid.buttons()] == GRID_ROWS
    image = Image.open(io.BytesIO(grid.attachments[0].data))
    assert image.width > image.height

    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a calm lake at dawn")
    photo = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and m.photo and m.buttons,
        timeout=30,
    )
    assert "a calm lake at dawn" in photo.caption

    # Both went to the one simulator, each result to its own platform.
    prompts = sorted(r.body["prompt"] for r in sim.submits("imagine"))
    assert prompts == ["a calm lake at dawn", "a red fox in snow --ar 3:2"]
    assert both.alive

    # A Discord button works in the same process.
    parent = next(t for t in sim.tasks.values() if t.prompt.startswith("a red fox"))
    click = await dc.click(grid, label="U2")
    assert (await click.wait_message(timeout=10)).ephemeral
    await dc.wait_for(lambda: grid_of(dc, progress, grid), timeout=30)
    action = sim.submits("action")[0].body
    assert action["customId"] == f"MJ::JOB::upsample::2::{parent.message_hash}"


def test_discord_py_seams_exist(seams: None) -> None:
    """Canary: the two internals the adapter patches are still there (a discord.py upgrade
    that removes one makes point_discord_at raise instead of talking to discord.com)."""
    point_discord_at("http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/gateway")
    assert discord.http.Route.BASE == "http://127.0.0.1:1/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:1/gateway"


def test_point_discord_at_raises_without_a_seam(
    seams: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(discord.http.Route, "BASE")
    with pytest.raises(RuntimeError, match="BASE"):
        point_discord_at("http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/gateway")


async def test_a_modal_open_while_the_bot_is_killed_is_answered_after_the_restart(
    tmp_path: Path, sim: Simulator, tg: FakeTelegram, dc: FakeDiscord
) -> None:
    """kill -9 while someone types into the Custom Zoom modal; the restarted process gets the
    submit, answers the interaction and submits the zoom with the typed prompt."""
    discord_config = {
        "token": DISCORD_TOKEN,
        "api_base_url": dc.api_base,
        "gateway_url": dc.gateway_url,
    }
    process = BotProcess(tmp_path, sim.base_url, tg.url, discord=discord_config)
    process.start()
    try:
        await dc.wait_for(lambda: dc.command("imagine"), timeout=30)
        inter = await dc.slash("imagine", {"prompt": "a kite over the dunes"})
        progress = await inter.wait_message(timeout=10)
        grid = await dc.wait_for(lambda: grid_of(dc, progress), timeout=30)
        await (await dc.click(grid, label="U1")).wait_message(timeout=10)
        upscaled = await dc.wait_for(lambda: grid_of(dc, progress, grid), timeout=30)
        await dc.click(upscaled, label="🔍 Custom Zoom")
        ask = (await dc.wait_for(lambda: questions(dc), timeout=30))[0]
        opened = await dc.click(ask, label="✏️ Answer")
        assert (await opened.wait_callback(timeout=10)).type == 9  # the modal is open
        await process.stop(kill=True)
        sessions = len(dc.interactions)
        synced = len(syncs(dc))

        process.start()
        await dc.wait_for(lambda: len(syncs(dc)) > synced, timeout=30)  # up again
        before = list(dc.channel_messages())
        answer = await dc.submit_modal(
            None, {"text": "a kite over the dunes --zoom 1.5"}, interaction=opened
        )
        assert len(dc.interactions) == sessions + 1
        assert (await answer.wait_callback(timeout=10)).type == 5
        await dc.wait_for(lambda: sim.submits("modal"), timeout=30)
        assert sim.submits("modal")[0].body["prompt"] == "a kite over the dunes --zoom 1.5"
        zoomed = await dc.wait_for(lambda: grid_of(dc, *before), timeout=30)
        assert zoomed.attachments
    finally:
        await process.stop()
