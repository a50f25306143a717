"""adapters/telegram/request.py: python-telegram-bot over aiohttp, against the fake Telegram
server (every request validated against the Bot API spec) and a real HTTP proxy."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import telegram
from aiohttp import web
from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut

from adapters.telegram.request import AiohttpRequest
from tests.fakes.telegram import FakeTelegram
from tests.harness import free_port

GROUP = -1001


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as f:
        f.group(GROUP, "Artists")
        yield f


def bot_on(fake: FakeTelegram, **request: float) -> telegram.Bot:
    return telegram.Bot(**fake.bot_kwargs(), request=AiohttpRequest(**request))


def grid_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), "teal").save(out, "PNG")
    return out.getvalue()


async def test_a_message_and_a_photo_reach_telegram_as_they_were_sent(fake):
    picture = grid_png()
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("U1", callback_data="u1")]])
    async with bot_on(fake) as bot:
        sent = await bot.send_message(GROUP, "a red fox in snow", reply_markup=keyboard)
        posted = await bot.send_photo(GROUP, picture, caption="grid", filename="grid.png")
        fetched = await (await bot.get_file(posted.photo[-1].file_id)).download_as_bytearray()

    message = fake.calls_to("sendMessage")[-1]
    assert message.params["text"] == "a red fox in snow"
    assert message.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "U1", "callback_data": "u1"}]]
    }
    assert fake.message(GROUP, sent.message_id).text == "a red fox in snow"
    photo = fake.calls_to("sendPhoto")[-1]
    assert photo.ok and photo.params["caption"] == "grid"
    assert list(photo.files.values()) == [picture]  # multipart, byte for byte
    assert bytes(fetched) == picture  # and a file download (GET) back


async def test_a_slow_answer_is_a_timeout_and_the_next_call_works(fake):
    fake.files_held = asyncio.Event()  # file downloads wait until it is set
    async with bot_on(fake) as bot:
        posted = await bot.send_photo(GROUP, grid_png())
        file = await bot.get_file(posted.photo[-1].file_id)
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await file.download_as_bytearray(read_timeout=0.5)
        assert time.monotonic() - started < 3
        fake.files_held.set()
        assert bytes(await file.download_as_bytearray()) == grid_png()


async def test_nobody_listening_is_a_network_error():
    port = free_port()
    bot = telegram.Bot("123:abc", base_url=f"http://127.0.0.1:{port}/bot", request=AiohttpRequest())
    with pytest.raises(NetworkError, match=r"aiohttp\.ClientConnectorError"):
        async with bot:  # get_me first
            pass


class Proxy:
    """A real forwarding HTTP proxy on 127.0.0.1: what it forwarded, and the
    Proxy-Authorization each request carried."""

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        self.auth: list[str | None] = []
        self.port = free_port()

    async def forward(self, request: web.Request) -> web.Response:
        self.forwarded.append(f"{request.method} {request.url}")
        self.auth.append(request.headers.get("Proxy-Authorization"))
        headers = {"Content-Type": request.headers.get("Content-Type", "")}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                request.method, str(request.url), data=await request.read(), headers=headers
            ) as answer:
                return web.Response(body=await answer.read(), status=answer.status)


@pytest.fixture
async def proxy(monkeypatch) -> AsyncIterator[Proxy]:
    """The proxy, with no proxy variable of the machine's own left in the environment."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    found = Proxy()
    app = web.Application(client_max_size=20 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", found.forward)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


async def test_a_proxy_from_the_environment_is_used(fake, proxy, monkeypatch):
    """httpx read HTTP(S)_PROXY, so operators who reach Telegram through a proxy set it."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    async with bot_on(fake) as bot:
        await bot.send_message(GROUP, "through the proxy")
    assert f"POST {fake.base_url}{fake.token}/sendMessage" in proxy.forwarded
    assert set(proxy.auth) == {None}
    assert fake.calls_to("sendMessage")[-1].params["text"] == "through the proxy"


async def test_a_proxy_named_with_credentials_gets_them_and_no_proxy_is_honoured(
    fake, proxy, monkeypatch
):
    """aiohttp's trust_env sent the proxy URL's user:password as Proxy-Authorization and
    skipped hosts in NO_PROXY; the lookup done once per origin keeps both."""
    monkeypatch.setenv("HTTP_PROXY", f"http://ops:s3cret@127.0.0.1:{proxy.port}")
    async with bot_on(fake) as bot:
        await bot.send_message(GROUP, "one")
        await bot.send_message(GROUP, "two")
    assert proxy.auth and set(proxy.auth) == {aiohttp.encode_basic_auth("ops", "s3cret")}
    proxied = len(proxy.forwarded)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with bot_on(fake) as bot:  # a new request object reads the environment anew
        await bot.send_message(GROUP, "direct")
    assert len(proxy.forwarded) == proxied
    assert [c.params["text"] for c in fake.calls_to("sendMessage")][-3:] == ["one", "two", "direct"]
