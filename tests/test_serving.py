"""bot/serving.py: every server we run cuts off clients that do not deliver a whole request in
time (the playground and the Mini App here; the hook receiver in test_hooks.py), and never
cuts a request that arrived whole: a slow handler, a long-lived WebSocket."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

import adapters.web
from adapters.telegram.initdata import init_data_check
from adapters.web import MiniAppServer, WebAdapter
from bot.serving import serve
from tests.harness import TG_TOKEN, free_port
from tests.test_hooks import closed_after

SLOW_GET = [b"GET / HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n"] + [b"X-A: b\r\n"] * 100


@pytest.fixture
def quick(monkeypatch):
    """The web servers' read timeout, shortened for the test (30 s in production)."""
    monkeypatch.setattr(adapters.web, "UPLOAD_READ_TIMEOUT_S", 1.0)


@pytest.mark.parametrize("send", [[], SLOW_GET], ids=["silent", "slow-headers"])
async def test_the_playground_cuts_off_slow_clients(quick, send):
    adapter = WebAdapter("127.0.0.1", 0)
    await adapter.start()
    try:
        port = int(adapter.url.rsplit(":", 1)[1])
        took = await closed_after(port, send, every_s=0.2, limit_s=5.0)
    finally:
        await adapter.stop()
    assert 0.8 < took < 2.0, took


async def test_the_mini_app_cuts_off_slow_clients(quick):
    port = free_port()
    server = MiniAppServer(f"127.0.0.1:{port}", init_data_check(TG_TOKEN))
    await server.start()
    try:
        took = await closed_after(port, SLOW_GET, every_s=0.2, limit_s=5.0)
    finally:
        await server.stop()
    assert 0.8 < took < 2.0, took


async def test_a_request_that_arrived_whole_is_never_cut():
    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(1.5)  # three read timeouts
        return web.Response(text="done")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_get("/ws", socket)
    runner, port = await serve(app, "127.0.0.1", 0, read_timeout_s=0.5)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/slow", data=b"x" * 1000) as answer:
                assert await answer.text() == "done"
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                for _ in range(3):
                    await asyncio.sleep(0.6)
                    await ws.send_str("still here")
                    assert (await ws.receive(timeout=2)).data == "still here"
    finally:
        await runner.cleanup()
