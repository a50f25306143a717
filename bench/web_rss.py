"""Resident memory of ``mjbot demo`` under hostile uploads (a script, not a test).

    python -m bench.web_rss [checkout]   # default: this checkout

Starts ``mjbot demo`` from the checkout as a subprocess, opens the printed link, makes one
/imagine (the normal working set), then sends 120 MB of junk "images" and 120 MB of real,
incompressible PNGs from 30 sessions, and prints the process's RSS after each phase. Works
against a checkout from before the access token too (it just opens the printed URL).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from PIL import Image

MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


async def upload(http: aiohttp.ClientSession, base: str, session: str, data: bytes) -> int:
    form = aiohttp.FormData()
    form.add_field("text", "/help")  # no job: only what the playground keeps is measured
    form.add_field("session", session)
    form.add_field("files", io.BytesIO(data), filename="x.png", content_type="image/png")
    try:
        async with http.post(f"{base}/api/upload?session={session}", data=form) as response:
            await response.read()
            return response.status
    except aiohttp.ClientError:
        return -1  # refused mid-stream: the server stopped reading junk


def main(checkout: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--port", str(port)],
        cwd=checkout,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        link = re.search(r"running at (\S+)", line)
        assert link, line
        asyncio.run(measure(proc.pid, port, link.group(1)))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def measure(pid: int, port: int, link: str) -> None:
    base = f"http://127.0.0.1:{port}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        await (await http.get(link)).release()
        ws = await http.ws_connect(f"{base}/ws?session=warmup-session")
        await ws.send_json({"type": "text", "text": "/imagine a warm-up fox"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            event = await ws.receive_json(timeout=60)
            message = event.get("message") or {}
            if message.get("rows") and message.get("media"):
                break
        await ws.close()
        await asyncio.sleep(1)
        print(f"baseline (after one /imagine): {rss_mb(pid):6.1f} MB")

        junk = os.urandom(5 * MB)
        statuses = []
        for batch in range(6):  # 24 x 5 MB = 120 MB, four at a time
            statuses += await asyncio.gather(
                *(upload(http, base, f"junk-{batch}-{i:04d}", junk) for i in range(4))
            )
        await asyncio.sleep(1)
        print(f"after 120 MB of junk:          {rss_mb(pid):6.1f} MB  statuses {statuses}")

        image = noise_png(1150)  # ~4 MB that does not compress
        sent = 0
        statuses = []
        for batch in range(10):  # 30 sessions x 4 MB = 120 MB, three at a time
            statuses += await asyncio.gather(
                *(upload(http, base, f"image-{batch}-{i:04d}", image) for i in range(3))
            )
            sent += 3 * len(image)
        await asyncio.sleep(2)
        print(
            f"after {sent / MB:.0f} MB of real images:   {rss_mb(pid):6.1f} MB"
            f"  statuses {sorted(set(statuses))}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1])
