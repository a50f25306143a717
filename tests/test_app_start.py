"""Starting and stopping the whole App in-process: a start that fails half way closes
everything it had opened (sockets, HTTP sessions, the database, the simulator), and the
Telegram adapter that had already started stops polling."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from bot.app import App
from bot.config import (
    Config,
    DiscordConfig,
    MidjourneyConfig,
    Secret,
    StorageConfig,
    TelegramConfig,
    TrackingConfig,
)
from tests.conftest import ALICE
from tests.fakes.discord import FakeDiscord
from tests.fakes.telegram import FakeTelegram
from tests.harness import TG_TOKEN, free_port

DISCORD_TOKEN = "discord-start-secret-0123456789"


@pytest.fixture
async def dc(seams: None) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN) as fake:
        yield fake


def config(tmp_path: Path, tg: FakeTelegram, dc: FakeDiscord, discord_token: str) -> Config:
    return Config(
        # The built-in simulator: one more part the App starts (and must stop).
        midjourney=MidjourneyConfig(base_url="simulator"),
        telegram=TelegramConfig(
            token=Secret(TG_TOKEN),
            api_base_url=f"{tg.url}/bot",
            file_base_url=f"{tg.url}/file/bot",
        ),
        discord=DiscordConfig(
            token=Secret(discord_token), api_base_url=dc.api_base, gateway_url=dc.gateway_url
        ),
        tracking=TrackingConfig(poll_interval_s=0.3, listen=f"127.0.0.1:{free_port()}"),
        storage=StorageConfig(path=str(tmp_path / "data" / "mjbot.db")),
    )


def port_is_free(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    with socket.socket() as s:
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


async def test_a_failed_start_closes_what_it_opened(
    tmp_path: Path, tg: FakeTelegram, dc: FakeDiscord
) -> None:
    """Telegram starts, then Discord refuses the token: Telegram stops polling, and the hook
    receiver, the simulator, the database and every HTTP session are closed again."""
    cfg = config(tmp_path, tg, dc, "not-the-token")
    app = App(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(discord.LoginFailure):
            await app.start()
        polls = len(tg.calls_to("getUpdates"))
        assert polls >= 1  # Telegram had started
        # A message now would end a running long poll and be answered: nobody polls.
        await tg.send_text(ALICE, tg.users[ALICE], "/help")
        await asyncio.sleep(0.5)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
    assert len(tg.calls_to("getUpdates")) == polls and tg.calls_to("sendMessage") == []
    assert port_is_free(cfg.tracking.listen)
    with pytest.raises(OSError):  # the simulator is down
        await asyncio.open_connection("127.0.0.1", int(app.simulator.base_url.rsplit(":", 1)[1]))

    # Nothing is held: the same database and ports start again, and stop() is harmless twice.
    again = App(config(tmp_path, tg, dc, DISCORD_TOKEN))
    await again.start()
    await again.stop()
    await again.stop()


async def test_a_refused_telegram_token_closes_its_http_clients(
    tmp_path: Path, tg: FakeTelegram, dc: FakeDiscord
) -> None:
    """getMe refused while PTB initializes: its HTTP clients are closed, nothing leaks."""
    tg.fail_next("getMe", error_code=401, description="Unauthorized")
    app = App(config(tmp_path, tg, dc, DISCORD_TOKEN))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception, match=r"(?i)unauthorized|token"):
            await app.start()
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
    telegram = next(a for a in app.adapters if a.platform == "telegram")
    assert all(request.closed for request in telegram._http)  # type: ignore[attr-defined]
    assert dc.identify is None  # Discord never started


async def test_the_app_wires_the_mini_app_and_takes_the_tracker_class(
    tmp_path: Path, tg: FakeTelegram, dc: FakeDiscord
) -> None:
    """Telegram's Mini App is the web adapter's editor guarded by the Telegram adapter's
    initData check: the App puts them together, starts and stops it. The tracker is the class
    the App is given (the benchmark's naive poller)."""
    import json
    import time
    from dataclasses import replace

    from adapters.telegram.initdata import sign
    from adapters.web import MiniAppServer
    from bot.tracking import Tracker

    class Mine(Tracker):
        pass

    base = config(tmp_path, tg, dc, DISCORD_TOKEN)
    assert App(base).servers == []  # no webapp_url: no Mini App
    listen = f"127.0.0.1:{free_port()}"
    telegram = replace(base.telegram, webapp_url="https://bot.example/mask", webapp_listen=listen)
    app = App(replace(base, telegram=telegram, discord=DiscordConfig()), tracker=Mine)
    [mini_app] = app.servers
    assert isinstance(mini_app, MiniAppServer)
    fields = {"auth_date": str(int(time.time())), "user": json.dumps({"id": 7, "first_name": "A"})}
    signed = "&".join(f"{k}={v}" for k, v in fields.items()) + "&hash=" + sign(fields, TG_TOKEN)
    check = mini_app.playground.check_init_data
    assert check is not None
    req = await check(signed)
    assert req is not None and (req.platform, req.user_id) == ("telegram", "7")
    await app.start()
    try:
        assert type(app.tracker) is Mine
        assert not port_is_free(listen)  # the editor is served
    finally:
        await app.stop()
    assert port_is_free(listen)


async def test_stopping_lets_a_send_in_flight_finish_on_an_open_wire(
    tmp_path: Path, tg: FakeTelegram, dc: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """A result is being posted when the bot stops: the progress message's deleteMessage is
    still waiting for Telegram's answer. The work in flight drains first and the Bot API
    client closes after it, so the call is answered on an open connection and no socket is
    left behind (CI once caught this: the pool closed under the request, which failed with
    httpx.ReadError or left its socket open)."""
    import logging
    from dataclasses import replace

    from bot.config import SimulatorConfig

    base = config(tmp_path, tg, dc, DISCORD_TOKEN)
    caplog.set_level(logging.INFO, logger="bot")

    cfg = replace(base, discord=DiscordConfig(), simulator=SimulatorConfig(time_scale=0.05))
    app = App(cfg)
    tg.answer_late("deleteMessage", 1.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await app.start()
        try:
            await tg.send_text(ALICE, tg.users[ALICE], "/imagine a lighthouse at dusk")
            await tg.wait_for(lambda: tg.calls_to("deleteMessage"), timeout=30)
        finally:
            await app.stop()
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    telegram = next(a for a in app.adapters if a.platform == "telegram")
    assert all(request.closed for request in telegram._http)  # type: ignore[attr-defined]
    # The result was posted and the late delete completed before the wire closed.
    assert [m for m in tg.bot_messages(ALICE) if m.photo and m.buttons]
    assert len(tg.calls_to("deleteMessage")) == 1
