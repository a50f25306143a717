"""``python -m bench.http_clients``: CPU per Telegram call, PTB's httpx request beside ours.

    python -m bench.http_clients               # 2,000 calls each way (~20 s on 2 cores)
    python -m bench.http_clients --calls 5000  # steadier figures

Both clients are python-telegram-bot request objects, called as the bot calls them
(``BaseRequest.post``: the parameters encoded, the JSON answer parsed): PTB's own
``HTTPXRequest`` and mjbot's ``adapters.telegram.request.AiohttpRequest``. They post to a
small aiohttp server in another process (its CPU is not counted) answering like Telegram,
ten calls at a time: ``sendMessage`` (form fields only) and ``sendPhoto`` (a 200 KB upload,
multipart). The figure is this process's CPU milliseconds per call (``time.process_time``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from telegram import InputFile
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from adapters.telegram.request import AiohttpRequest
from tests.harness import free_port

AT_ONCE = 10
PHOTO = os.urandom(200_000)
ANSWER = {
    "ok": True,
    "result": {
        "message_id": 1,
        "date": 1,
        "chat": {"id": -100, "type": "group", "title": "Artists"},
        "text": "a red fox in snow " * 10,
    },
}
SERVER = f"""
from aiohttp import web
body = {json.dumps(ANSWER)!r}.encode()
async def answer(request):
    await request.read()
    return web.Response(body=body, content_type="application/json")
app = web.Application(client_max_size=50 * 1024 * 1024)
app.router.add_post("/{{tail:.*}}", answer)
web.run_app(app, host="127.0.0.1", port={{port}}, print=None)
"""


def request_data(photo: bool) -> RequestData:
    values: dict[str, object] = {"chat_id": -100, "text": "a red fox in snow " * 10}
    if photo:
        values = {"chat_id": -100, "photo": InputFile(PHOTO, filename="grid.png", attach=True)}
    values["reply_markup"] = {"inline_keyboard": [[{"text": "U1", "callback_data": "u1"}]]}
    return RequestData([RequestParameter.from_input(k, v) for k, v in values.items()])


async def calls(request: BaseRequest, url: str, photo: bool, count: int) -> None:
    gate = asyncio.Semaphore(AT_ONCE)

    async def one() -> None:
        async with gate:
            await request.post(url, request_data(photo))

    await asyncio.gather(*(one() for _ in range(count)))


def cpu_ms(make: Callable[[], BaseRequest], url: str, photo: bool, count: int) -> float:
    async def run(n: int) -> float:
        request = make()
        await request.initialize()
        try:
            started = time.process_time()
            await calls(request, url, photo, n)
            return time.process_time() - started
        finally:
            await request.shutdown()

    asyncio.run(run(AT_ONCE * 10))  # warm: imports, first connections
    return asyncio.run(run(count)) / count * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER.replace("{port}", str(port))])
    try:
        time.sleep(1.5)
        url = f"http://127.0.0.1:{port}/bot123:abc"
        clients: dict[str, Callable[[], BaseRequest]] = {
            "httpx (PTB's HTTPXRequest)": lambda: HTTPXRequest(connection_pool_size=256),
            "aiohttp (AiohttpRequest)": lambda: AiohttpRequest(connection_pool_size=256),
        }
        print(f"CPU ms per call, {args.calls} calls, {AT_ONCE} at a time")
        print(f"{'client':28} {'sendMessage':>12} {'sendPhoto':>10}")
        for name, make in clients.items():
            text = cpu_ms(make, f"{url}/sendMessage", False, args.calls)
            photo = cpu_ms(make, f"{url}/sendPhoto", True, args.calls)
            print(f"{name:28} {text:12.3f} {photo:10.3f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
