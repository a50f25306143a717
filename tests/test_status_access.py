"""``/status`` answers this machine only: a direct loopback request (``mjbot status``) gets the
document; a reverse proxy on the same host (loopback too, but it says so in its forwarding
headers) and a DNS-rebinding page (a foreign Host) get 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web

from bot import cli
from bot.app import App, demo_config
from tests.harness import free_port


@pytest.fixture
async def running(tmp_path) -> AsyncIterator[tuple[App, str]]:
    base = demo_config(tmp_path)
    listen = f"127.0.0.1:{free_port()}"
    app = App(replace(base, tracking=replace(base.tracking, listen=listen)), adapters=[])
    await app.start()
    try:
        yield app, f"http://{listen}"
    finally:
        await app.stop()


async def reverse_proxy(upstream: str) -> tuple[web.AppRunner, str]:
    """What nginx/Caddy do: forward to the upstream, adding X-Forwarded-For."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        headers = {"X-Forwarded-For": request.remote or "", "Host": request.host}
        async with session.get(upstream + request.path_qs, headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    app.on_cleanup.append(lambda _: session.close())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_status_is_for_this_machine_only(running: tuple[App, str]) -> None:
    _, url = running
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/status") as response:
            assert response.status == 200
            assert "tasks_in_flight" in await response.json()
        for header in (
            {"X-Forwarded-For": "203.0.113.7"},
            {"Forwarded": "for=203.0.113.7"},
            {"X-Real-IP": "203.0.113.7"},
            {"Host": "rebound.example:80"},
        ):
            async with http.get(url + "/status", headers=header) as response:
                assert response.status == 403, header
        runner, proxied = await reverse_proxy(url)
        try:
            async with http.get(proxied + "/status") as response:
                assert response.status == 403, "the proxy is on loopback, but says who asked"
        finally:
            await runner.cleanup()


async def test_mjbot_status_still_reads_the_running_bot(
    running: tuple[App, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, _ = running
    assert await cli._status(app.config) == 0
    printed = capsys.readouterr().out
    assert "mjbot status (running bot)" in printed
    assert "tasks_in_flight" in printed
