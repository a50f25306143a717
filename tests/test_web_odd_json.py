"""Odd input from outside never crashes the playground or the Mini App: the mask POST answers
400 (it answered 500 to ``[]``, ``5``, ``null``, deep nesting and ``1e400``), and the chat
socket ignores a message it cannot use and stays open (``"reply_to": 1e400`` and a deeply
nested message closed it with a traceback in the log); an upload that is not a multipart
form (another content type, no or a wrong boundary) answered 500.

A real App over the simulator and the Mini App server on 127.0.0.1, real HTTP clients.
"""

from __future__ import annotations

import asyncio
import base64
import io
import sys

import aiohttp
import pytest
from PIL import Image

from adapters.telegram.initdata import init_data_check
from adapters.web import MiniAppServer
from tests import test_web_access
from tests.harness import ROOT, TG_TOKEN, free_port
from tests.test_web import Chat
from tests.test_web_access import SESSION, Served

DEEP = "[" * 100_000 + "]" * 100_000
served = test_web_access.served  # the running playground and its operator
NOT_OBJECTS = ["[]", "5", "null", '"x"', DEEP]


def mask_uri() -> str:
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def test_the_mini_app_answers_odd_json_with_400() -> None:
    port = free_port()
    server = MiniAppServer(f"127.0.0.1:{port}", init_data_check(TG_TOKEN))
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            for body in NOT_OBJECTS:
                async with http.post(
                    f"http://127.0.0.1:{port}/api/mask",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert response.status == 400, (body[:20], response.status)
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "body",
    [
        *NOT_OBJECTS,
        '{"ref": "nosuch", "prompt": "p", "mask_png": "%s", "ask_message_id": 1e400}',
        '{"ref": "nosuch", "prompt": "p", "mask_png": "%s", "ask_message_id": -1e400}',
    ],
    ids=["list", "number", "null", "string", "deep", "ask-1e400", "ask-minus-1e400"],
)
async def test_the_playground_mask_post_answers_odd_json_without_500(served: Served, body) -> None:
    odd_field = "%s" in body  # a well-formed answer whose ask_message_id is out of range
    if odd_field:
        body = body.replace('"%s"', f'"{mask_uri()}"')
    async with served.operator.post(
        f"{served.url}/api/mask?session={SESSION}",
        data=body,
        headers={"Content-Type": "application/json"},
    ) as response:
        expected = range(200, 500) if odd_field else range(400, 500)
        assert response.status in expected, (body[:30], response.status, await response.text())


async def test_the_chat_socket_ignores_odd_messages_and_stays_open(served: Served) -> None:
    ws = await served.operator.ws_connect(f"{served.url}/ws?session={SESSION}")
    chat = Chat(ws)
    await chat.until(lambda e: e["type"] == "hello")
    for raw in (
        '{"type": "text", "text": "hi", "reply_to": 1e400}',
        '{"type": "answer", "ask_message_id": -1e400, "text": "x"}',
        '{"type": "text", "text": ' + DEEP + "}",
        DEEP,
    ):
        await ws.send_str(raw)
        await ws.send_json({"type": "ping"})
        await chat.until(lambda e: e["type"] == "pong", within=5)
        assert not ws.closed, raw[:40]
    await ws.close()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"a": 1}'),
        ("text/plain", b"hello"),
        ("multipart/form-data", b"--xx\r\n"),
        ("multipart/form-data; boundary=", b"--xx\r\n"),
        ("multipart/form-data; boundary=xx", b'{"a": 1}'),
        (None, b"hello"),
    ],
    ids=["json", "text", "no-boundary", "empty-boundary", "wrong-boundary", "no-content-type"],
)
async def test_an_upload_that_is_not_a_form_gets_400(served: Served, content_type, body) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with served.operator.post(
        f"{served.url}/api/upload?session={SESSION}",
        data=body,
        headers=headers,
        skip_auto_headers=["Content-Type"],
    ) as response:
        assert response.status == 400, (content_type, response.status)
        assert "not a form" in await response.text()


SERVE_MINI_APP = """
import asyncio, sys
from adapters.telegram.initdata import init_data_check
from adapters.web import MiniAppServer
async def main():
    server = MiniAppServer(sys.argv[1], init_data_check("123:ABC"))
    await server.start()
    print("up", flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
"""


def vm_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key))


async def test_unsigned_mask_posts_to_the_mini_app_cost_bounded_memory() -> None:
    """The Mini App faces the internet and reads the body before it can check the initData
    inside it: eight unsigned 11 MB posts at once raised its RSS by ~300 MB (25 MB posts:
    55 -> 711 MB, kept). Bodies in flight now share one budget (503 beyond it)."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE_MINI_APP,
        f"127.0.0.1:{port}",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        assert await asyncio.wait_for(server.stdout.readline(), 30) == b"up\n"
        before = vm_kb(server.pid, "VmRSS:")
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(8 * 1024 * 1024)).decode()
        body = '{"ref": "a", "init_data": "user=1&hash=0", "mask_png": "data:image/png;base64,%s"}'
        data = (body % png).encode()

        async def post(http: aiohttp.ClientSession) -> int:
            async with http.post(
                f"http://127.0.0.1:{port}/api/mask",
                data=io.BytesIO(data),
                headers={"Content-Type": "application/json"},
            ) as response:
                return response.status

        async with aiohttp.ClientSession() as http:
            statuses = await asyncio.gather(*(post(http) for _ in range(8)))
        grown_mb = (vm_kb(server.pid, "VmHWM:") - before) / 1024
    finally:
        server.kill()
        await server.wait()
    assert set(statuses) <= {400, 403, 503}, statuses
    assert grown_mb < 150, grown_mb  # measured: 272 MB before, 74 MB after
