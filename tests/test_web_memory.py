"""What the playground keeps in memory: one byte budget for every session together, files
checked before anything is kept, idle sessions forgotten.

The port alone for the arithmetic; a running playground (real App, simulator, aiohttp client)
for uploads and sessions.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from adapters.web.port import WebPort
from tests import test_web
from tests.test_web import Demo, open_chat, png

demo = test_web.demo  # the running playground fixture, shared

MB = 1024 * 1024


def noise_png(size: int) -> bytes:
    """A PNG that does not compress: about ``size`` x ``size`` x 3 bytes."""
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(out, "PNG")
    return out.getvalue()


def form(session: str, *files: bytes, text: str = "/describe") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("text", text)
    data.add_field("session", session)
    for index, blob in enumerate(files):
        # a BytesIO: aiohttp warns about large raw bytes bodies
        data.add_field(
            "files", io.BytesIO(blob), filename=f"f{index}.png", content_type="image/png"
        )
    return data


# --- the port: one budget, whatever the number of sessions -----------------------------------


async def test_kept_media_stays_within_one_budget_for_all_sessions() -> None:
    port = WebPort(budget=1 * MB)
    refs = []
    for session in range(12):  # more sessions must not mean more memory
        ref = await port.record_user(f"session-{session:04d}", "/describe", [os.urandom(300_000)])
        refs.append(ref)
        assert port.kept <= port.budget
    assert port.kept == sum(len(b.data) for b in port.blobs.values())
    assert len(port.blobs) == 3, "the three newest images fit in 1 MB"
    newest = port.find(refs[-1].chat_id, refs[-1].message_id)
    oldest = port.find(refs[0].chat_id, refs[0].message_id)
    assert port.blob(newest.media[0]["url"].rsplit("/", 1)[-1]) is not None
    assert port.blob(oldest.media[0]["url"].rsplit("/", 1)[-1]) is None, "oldest dropped first"


async def test_uploads_being_received_are_never_dropped_and_refuse_beyond_the_budget() -> None:
    port = WebPort(budget=1 * MB)
    await port.record_user("session-0001", "", [os.urandom(600_000)])
    assert port.reserve(700_000), "kept media makes room for an upload being received"
    assert port.kept == 0
    assert not port.reserve(400_000), "receiving beyond the budget is refused"
    port.release(700_000)
    assert port.receiving == 0 and port.reserve(400_000)


async def test_idle_sessions_without_a_page_are_forgotten() -> None:
    port = WebPort(idle_s=60, max_sessions=3, sweep_s=3600)

    class Page:
        closed = False

        async def send_json(self, data: object) -> None:
            pass

    port.connect("open-page-01", Page())
    for session in ("idle-00001", "idle-00002", "idle-00003"):
        await port.record_user(session, "hi", [os.urandom(1000)])
        port.langs[session] = "zh"
    # beyond max_sessions: the longest idle session without a page goes at once
    assert "idle-00001" not in port.chats and "idle-00001" not in port.seen
    assert port.kept == 2000 and set(port.langs) == {"idle-00002", "idle-00003"}
    gone = port.sweep(now=port.seen["idle-00003"] + 61)
    assert sorted(gone) == ["idle-00002", "idle-00003"]
    assert port.kept == 0 and port.langs == {}
    assert "open-page-01" in port.seen, "a session with an open page stays"


# --- a running playground --------------------------------------------------------------------


async def test_junk_is_refused_before_anything_is_kept(demo: Demo) -> None:
    chat = await open_chat(demo, "junk-session-1")
    url = f"{demo.url}/api/upload"
    junk = os.urandom(3 * MB)
    async with demo.http.post(url, data=form("junk-session-1", junk)) as response:
        assert response.status == 400
        assert "not an image" in await response.text()
    async with demo.http.post(url, data=form("junk-session-1", png((1, 2, 3)), junk)) as r:
        assert r.status == 400, "one bad file refuses the whole upload"
    too_many = form("junk-session-1", *[png((9, 9, 9), (8, 8))] * 6)
    async with demo.http.post(url, data=too_many) as response:
        assert response.status == 413
        assert "At most 5 images" in await response.text()
    port = demo.adapter.port
    assert port.kept == 0 and port.receiving == 0
    assert port.history("junk-session-1") == [], "nothing was shown or kept"
    assert demo.sim.submits() == []
    await chat.ws.close()


async def test_a_busy_budget_refuses_an_upload_with_a_clear_message(demo: Demo) -> None:
    port = demo.adapter.port
    port.budget = 2 * MB
    first_png = noise_png(820)  # ~2 MB, does not compress
    boundary = "budget-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="session"\r\n\r\nslow-session-1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    go_on = asyncio.Event()
    split = len(first_png) - 64 * 1024

    async def slowly() -> AsyncIterator[bytes]:
        yield head + first_png[:split]
        await go_on.wait()  # most of the first upload is in, and held
        yield first_png[split:] + tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    first = asyncio.create_task(
        demo.http.post(f"{demo.url}/api/upload?text=/describe", data=slowly(), headers=headers)
    )
    for _ in range(100):
        if port.receiving >= split - 256 * 1024:
            break
        await asyncio.sleep(0.05)
    assert port.receiving > MB
    second = form("other-session-1", noise_png(400))  # ~0.5 MB: more than is left
    try:
        async with demo.http.post(f"{demo.url}/api/upload", data=second) as response:
            assert response.status == 503
            assert "already receiving 2 MB" in await response.text()
    finally:
        go_on.set()
    async with await first as response:
        assert response.status == 202, await response.text()
    assert port.receiving == 0
    assert port.kept == len(first_png) <= port.budget
    await asyncio.sleep(0.2)


@pytest.mark.parametrize("idle_s", [0.3])
async def test_an_idle_session_is_forgotten_with_its_uploads(demo: Demo, idle_s: float) -> None:
    port = demo.adapter.port
    port.idle_s, port.sweep_s = idle_s, 0
    gone = await open_chat(demo, "leaves-soon-1")
    async with demo.http.post(
        f"{demo.url}/api/upload", data=form("leaves-soon-1", png((5, 5, 5)), text="/help")
    ) as response:
        assert response.status == 202
    await gone.until(lambda e: e["type"] == "message" and e["message"]["from"] == "bot")
    assert port.kept > 0
    await gone.ws.close()
    stays = await open_chat(demo, "stays-open-1")
    await asyncio.sleep(idle_s + 0.2)
    await stays.send(type="text", text="/help")  # any activity sweeps
    await stays.until(lambda e: e["type"] == "message" and e["message"]["from"] == "bot")
    assert "leaves-soon-1" not in port.chats
    assert all(blob.chat_id != "leaves-soon-1" for blob in port.blobs.values())
    again = await open_chat(demo, "leaves-soon-1")
    hello = next(e for e in again.events if e["type"] == "hello")
    assert hello["messages"] == [], "its history went with it"
    assert "stays-open-1" in port.chats, "a session with an open page is kept however idle"
    await again.ws.close()
    await stays.ws.close()
