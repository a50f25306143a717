"""The web playground without a browser: a real App, the real simulator, HTTP and a WebSocket."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from PIL import Image

from adapters.web import WebAdapter
from adapters.web.port import WebPort, sniff
from bot.app import App, demo_config
from bot.chat import MessageGone, MessageRef
from bot.views import Ask, Choice, Media, View

SESSION = "session-test-0001"
Event = dict[str, Any]


@dataclass
class Demo:
    app: App
    adapter: WebAdapter
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.adapter.url

    @property
    def sim(self) -> Any:
        return self.app.simulator


@pytest.fixture
async def demo(tmp_path) -> AsyncIterator[Demo]:
    base = demo_config(tmp_path)
    config = replace(
        base,
        simulator=replace(base.simulator, time_scale=0.02),
        tracking=replace(base.tracking, poll_interval_s=0.1, edit_interval_s=0.1),
    )
    adapter = WebAdapter("127.0.0.1", 0)
    app = App(config, adapters=[adapter])
    adapter.playground.app = app
    await app.start()
    try:
        # The operator's browser: it opened the printed link, so it holds the token's cookie.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(adapter.admin_link) as response:
                assert response.status == 200
            yield Demo(app, adapter, http)
    finally:
        await app.stop()


class Chat:
    """One open page: everything the server pushed, and helpers to wait for more."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[Event] = []
        self.messages: dict[int, Event] = {}

    async def send(self, **data: Any) -> None:
        await self.ws.send_json(data)

    async def until(self, check: Callable[[Event], bool], within: float = 20) -> Event:
        """Read events until one satisfies ``check`` (events are kept in order)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                event = await self.ws.receive_json(timeout=left)
            except TimeoutError:
                seen = [
                    (e["type"], (e.get("message") or {}).get("text", "")[:50]) for e in self.events
                ]
                raise AssertionError(f"no such event in {within}s; saw {seen}") from None
            self.events.append(event)
            message = event.get("message")
            if event["type"] in ("message", "edit"):
                self.messages[message["id"]] = message
            elif event["type"] == "delete":
                self.messages.pop(message["id"], None)
            if check(event):
                return event


async def open_chat(demo: Demo, session: str = SESSION, lang: str = "en") -> Chat:
    ws = await demo.http.ws_connect(f"{demo.url}/ws?session={session}&lang={lang}")
    chat = Chat(ws)
    hello = await chat.until(lambda e: e["type"] == "hello")
    assert hello["session"] == session
    assert {c["name"] for c in hello["commands"]} >= {"imagine", "blend", "describe", "help"}
    return chat


def labels(message: Event) -> list[str]:
    return [choice["label"] for row in message["rows"] for choice in row]


def has(message: Event, label: str) -> bool:
    """Labels may carry the API's emoji ("🖌️ Vary (Region)"): match the words."""
    return any(text == label or text.endswith(" " + label) for text in labels(message))


def token(message: Event, label: str) -> str:
    return next(
        c["token"]
        for row in message["rows"]
        for c in row
        if c["label"] == label or c["label"].endswith(" " + label)
    )


def is_result(event: Event, label: str) -> bool:
    message = event.get("message") or {}
    return (
        event["type"] == "message"
        and message.get("from") == "bot"
        and has(message, label)
        and bool(message["media"])
    )


def png(color: tuple[int, int, int], size: tuple[int, int] = (256, 256)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


async def imagine(demo: Demo, chat: Chat, prompt: str = "a red fox in snow") -> Event:
    await chat.send(type="text", text=f"/imagine {prompt}")
    return (await chat.until(lambda e: is_result(e, "V4"), within=30))["message"]


# --- the whole flow ------------------------------------------------------------------------


async def test_imagine_progress_grid_then_upscale(demo: Demo) -> None:
    chat = await open_chat(demo)
    grid = await imagine(demo, chat)

    mine = next(e["message"] for e in chat.events if e["type"] == "message")
    assert mine["from"] == "user" and mine["text"] == "/imagine a red fox in snow"
    progress = next(
        e["message"]
        for e in chat.events
        if e["type"] == "message" and e["message"]["from"] == "bot"
    )
    assert progress["reply_to"] == mine["id"]
    edits = [e["message"] for e in chat.events if e["type"] == "edit"]
    assert any("%" in m["text"] for m in edits), "progress edits show a percentage"
    assert any(m["media"] for m in edits), "a progress edit carries the preview"
    await chat.until(lambda e: e["type"] == "delete" and e["message"]["id"] == progress["id"])
    assert labels(grid)[:4] == ["U1", "U2", "U3", "U4"]
    assert {"V1", "V2", "V3", "V4"} <= set(labels(grid))
    async with demo.http.get(demo.url + grid["media"][0]["url"]) as response:
        assert response.status == 200
        # the simulator's grid itself: a small PNG goes as is (media.photo_as_is_max_kb)
        assert response.content_type == "image/png"
        assert Image.open(io.BytesIO(await response.read())).size[0] >= 512

    await chat.send(type="press", token=token(grid, "U1"))
    notice = await chat.until(lambda e: e["type"] == "notice")
    assert "U1" in notice["text"]
    upscale = (await chat.until(lambda e: is_result(e, "Vary (Region)"), within=30))["message"]
    for label in ("Vary (Subtle)", "Vary (Strong)", "Zoom Out 2x", "Custom Zoom"):
        assert has(upscale, label), label
    assert demo.sim.submits("action")

    async with demo.http.get(f"{demo.url}/api/admin") as response:
        report = await response.json()
    assert {row["status"] for row in report["recent"]} == {"SUCCESS"}
    assert len(report["recent"]) == 2 and report["in_flight"] == []
    assert all(row["elapsed"] > 0 for row in report["recent"])
    assert report["usage"][0]["user_id"] == SESSION and report["usage"][0]["tasks"] == 2
    assert sum(bucket["tasks"] for bucket in report["chart"]["buckets"]) == 2
    assert report["health"]["api"]["ok"] is True
    assert report["health"]["tracker"]["polls"] > 0
    assert report["health"]["api_url"].startswith("simulator http://127.0.0.1:")


async def test_vary_region_mask_reaches_the_api(demo: Demo) -> None:
    chat = await open_chat(demo)
    grid = await imagine(demo, chat)
    await chat.send(type="press", token=token(grid, "U2"))
    upscale = (await chat.until(lambda e: is_result(e, "Vary (Region)"), within=30))["message"]
    await chat.send(type="press", token=token(upscale, "Vary (Region)"))
    asked = await chat.until(lambda e: e["type"] == "message" and e["message"]["ask"] is not None)
    ask = asked["message"]["ask"]
    assert ask["kind"] == "mask" and ask["ref"]

    image = f"{demo.url}/api/region/{ask['ref']}/image"
    async with demo.http.get(f"{image}?session=someone-else-01") as response:
        assert response.status == 403, "only the question's owner sees the image"
    async with demo.http.get(f"{image}?session={SESSION}") as response:
        assert response.status == 200
        size = Image.open(io.BytesIO(await response.read())).size
    mask = Image.new("L", size, 0)
    mask.paste(255, (10, 20, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    mask.save(out, "PNG")
    body = {
        "ref": ask["ref"],
        "mask_png": "data:image/png;base64," + base64.b64encode(out.getvalue()).decode(),
        "prompt": "a blue hat",
        "ask_message_id": asked["message"]["id"],
        "session": SESSION,
    }
    async with demo.http.post(f"{demo.url}/api/mask", json=body) as response:
        assert response.status == 200, await response.text()
    (modal,) = demo.sim.submits("modal")
    sent = Image.open(io.BytesIO(base64.b64decode(modal.body["maskBase64"].split(",")[-1])))
    assert sent.size == size
    assert sent.convert("L").getpixel((size[0] // 4, size[1] // 4)) == 255
    assert sent.convert("L").getpixel((size[0] - 5, size[1] - 5)) == 0
    assert modal.body["prompt"].startswith("a blue hat")
    await chat.until(lambda e: e["type"] == "edit" and e["message"]["id"] == asked["message"]["id"])
    assert chat.messages[asked["message"]["id"]]["answered"] is True
    await chat.until(lambda e: is_result(e, "U1"), within=30)


async def test_upload_two_images_and_blend(demo: Demo) -> None:
    chat = await open_chat(demo)
    form = aiohttp.FormData()
    form.add_field("text", "/blend")
    form.add_field("files", png((200, 40, 40)), filename="a.png", content_type="image/png")
    form.add_field("files", png((40, 40, 200)), filename="b.png", content_type="image/png")
    async with demo.http.post(f"{demo.url}/api/upload?session={SESSION}", data=form) as response:
        assert response.status == 202
    mine = await chat.until(lambda e: e["type"] == "message" and e["message"]["from"] == "user")
    assert mine["message"]["text"] == "/blend" and len(mine["message"]["media"]) == 2
    await chat.until(lambda e: is_result(e, "U1"), within=30)
    (blend,) = demo.sim.submits("blend")
    assert len(blend.body["base64Array"]) == 2
    assert all(uri.startswith("data:image/") for uri in blend.body["base64Array"])


async def test_photo_command_without_photo_asks_then_takes_the_answer(demo: Demo) -> None:
    chat = await open_chat(demo)
    await chat.send(type="text", text="/describe")
    asked = await chat.until(lambda e: e["type"] == "message" and e["message"]["ask"] is not None)
    form = aiohttp.FormData()
    form.add_field("reply_to", str(asked["message"]["id"]))
    form.add_field("files", png((90, 160, 90)), filename="c.png", content_type="image/png")
    async with demo.http.post(f"{demo.url}/api/upload?session={SESSION}", data=form) as response:
        assert response.status == 202
    await chat.until(lambda e: e["type"] == "edit" and e["message"].get("answered"))
    await chat.until(lambda e: e["type"] == "message" and e["message"]["from"] == "bot", 30)
    assert demo.sim.submits("describe")


async def test_language_switch_and_help(demo: Demo) -> None:
    chat = await open_chat(demo)
    await chat.send(type="lang", lang="zh")
    switched = await chat.until(lambda e: e["type"] == "lang")
    assert switched["lang"] == "zh"
    assert next(c for c in switched["commands"] if c["name"] == "imagine")["description"]
    await chat.send(type="text", text="/help")
    reply = await chat.until(lambda e: e["type"] == "message" and e["message"]["from"] == "bot")
    assert "提示词" in reply["message"]["text"]
    await chat.send(type="text", text="hello there")
    reply = await chat.until(lambda e: e["type"] == "message" and e["message"]["from"] == "bot")
    assert "/imagine" in reply["message"]["text"], "plain text gets the help"


async def test_history_on_reconnect_and_sessions_are_separate(demo: Demo) -> None:
    chat = await open_chat(demo)
    await chat.send(type="text", text="/help")
    await chat.until(lambda e: e["type"] == "message" and e["message"]["from"] == "bot")
    await chat.ws.close()
    again = await demo.http.ws_connect(f"{demo.url}/ws?session={SESSION}")
    hello = await again.receive_json(timeout=5)
    assert [m["from"] for m in hello["messages"]] == ["user", "bot"]
    other = await demo.http.ws_connect(f"{demo.url}/ws?session=someone-else-01")
    assert (await other.receive_json(timeout=5))["messages"] == []
    await again.close()
    await other.close()


async def test_page_and_assets_are_served_without_outside_links(demo: Demo) -> None:
    async with demo.http.get(demo.url + "/") as response:
        assert response.status == 200
        page = await response.text()
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert {"mjbot_session", "mjbot_token"} <= {c.key for c in demo.http.cookie_jar}
    for asset in ("app.js", "app.css", "mask.js"):
        async with demo.http.get(f"{demo.url}/static/{asset}") as response:
            assert response.status == 200
            text = await response.text()
        assert "https://" not in text and "http://" not in text.replace("http://www.w3.org", "")
    assert "https://" not in page
    async with demo.http.get(demo.url + "/mask?ref=abc") as response:
        assert response.status == 200
        assert 'data-page="mask"' in await response.text()


async def test_bad_masks_and_unknown_refs_are_refused(demo: Demo) -> None:
    post = demo.http.post
    bad = {"ref": "nope", "mask_png": "data:image/png;base64,aGVsbG8=", "session": SESSION}
    async with post(f"{demo.url}/api/mask", json=bad) as response:
        assert response.status == 400
    forged = {"ref": "nope", "mask_png": "data:image/png;base64,xx", "init_data": "user=1&hash=0"}
    async with post(f"{demo.url}/api/mask", json=forged) as response:
        assert response.status == 400
    async with demo.http.get(f"{demo.url}/api/region/nope/image") as response:
        assert response.status == 404
    async with demo.http.get(f"{demo.url}/media/nope") as response:
        assert response.status == 404


# --- the port alone ------------------------------------------------------------------------


class FakeClient:
    closed = False

    def __init__(self) -> None:
        self.sent: list[Event] = []

    async def send_json(self, data: Any) -> None:
        self.sent.append(data)


async def test_port_renders_views_and_pushes_events() -> None:
    port = WebPort()
    client = FakeClient()
    port.connect("c1", client)
    view = View(
        "hello",
        media=(Media("photo", png((1, 2, 3)), "a.png"),),
        rows=((Choice("U1", token="t1"), Choice("Site", url="https://example.org")),),
        ask=Ask("Prompt", prefill="a fox", kind="mask", ref="k1"),
    )
    ref = await port.send("c1", view, MessageRef("web", "c1", "99"))
    assert ref == MessageRef("web", "c1", ref.message_id, "photo")
    (event,) = client.sent
    message = event["message"]
    assert event["type"] == "message" and message["text"] == "hello"
    assert message["rows"][0][0]["token"] == "t1" and message["rows"][0][1]["url"]
    assert message["ask"] == {
        "placeholder": "Prompt",
        "prefill": "a fox",
        "title": "",
        "kind": "mask",
        "ref": "k1",
    }
    blob_id = message["media"][0]["url"].rsplit("/", 1)[-1]
    assert port.blob(blob_id).content_type == "image/png"

    await port.edit(ref, View("changed"))
    assert client.sent[-1]["type"] == "edit" and client.sent[-1]["message"]["media"] == []
    assert port.blob(blob_id) is None, "replaced media is forgotten"
    await port.delete(ref)
    assert client.sent[-1] == {"type": "delete", "message": {"id": int(ref.message_id)}}
    await port.delete(ref)  # already gone: not an error
    with pytest.raises(MessageGone):
        await port.edit(ref, View("again"))


async def test_port_drops_dead_clients() -> None:
    port = WebPort()
    dead = FakeClient()
    dead.closed = True
    port.connect("c1", dead)
    await port.send("c1", View("x"))
    assert port.clients == {}


def test_sniff() -> None:
    assert sniff(png((0, 0, 0))) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff(b"????", "video") == "video/mp4"
    assert sniff(b"????", "document") == "application/octet-stream"
    assert sniff(b"BM\x00\x00\x00\x00") == "application/octet-stream"  # an image, not shown inline


async def test_run_demo_prints_the_url_and_serves(capsys, tmp_path, monkeypatch) -> None:
    from bot.app import run_demo

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    task = asyncio.create_task(run_demo("127.0.0.1", 0))
    printed = ""
    for _ in range(200):
        await asyncio.sleep(0.05)
        printed += capsys.readouterr().out
        if "running at" in printed or task.done():
            break
    assert not task.done(), task.exception()
    link = printed.split("running at", 1)[1].split()[0]
    base, _, token = link.partition("/?token=")
    assert base.startswith("http://127.0.0.1:") and not base.endswith(":0") and token
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "/api/admin") as response:
            assert response.status == 401, "no token, no data"
        async with http.get(link) as response:
            assert response.status == 200 and str(response.url) == base + "/"
        async with http.get(base + "/api/admin") as response:
            assert response.status == 200
            assert (await response.json())["health"]["api_url"].startswith("simulator")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == [], "the throwaway database is removed"


async def test_mask_with_init_data_is_refused_without_a_check(demo: Demo) -> None:
    out = io.BytesIO()
    Image.new("L", (8, 8), 0).save(out, "PNG")
    body = {
        "ref": "nope",
        "mask_png": "data:image/png;base64," + base64.b64encode(out.getvalue()).decode(),
        "init_data": "user=1&hash=0",
    }
    async with demo.http.post(f"{demo.url}/api/mask", json=body) as response:
        assert response.status == 403


async def test_custom_zoom_is_a_dialog_answered_over_the_socket(demo: Demo) -> None:
    chat = await open_chat(demo)
    grid = await imagine(demo, chat)
    await chat.send(type="press", token=token(grid, "U3"))
    upscale = (await chat.until(lambda e: is_result(e, "Custom Zoom"), within=30))["message"]
    await chat.send(type="press", token=token(upscale, "Custom Zoom"))
    asked = await chat.until(lambda e: e["type"] == "message" and e["message"]["ask"] is not None)
    ask = asked["message"]["ask"]
    assert ask["kind"] == "text" and "--zoom" in ask["prefill"]
    await chat.send(type="answer", ask_message_id=asked["message"]["id"], text="a fox --zoom 1.5")
    await chat.until(lambda e: is_result(e, "U1"), within=30)
    (modal,) = demo.sim.submits("modal")
    assert modal.body["prompt"] == "a fox --zoom 1.5"
    assert chat.messages[asked["message"]["id"]]["answered"] is True


async def test_video_from_an_uploaded_photo_is_served_as_video(demo: Demo) -> None:
    chat = await open_chat(demo)
    form = aiohttp.FormData()
    form.add_field("text", "/video a slow pan over the sea")
    form.add_field("files", png((20, 90, 160)), filename="sea.png", content_type="image/png")
    async with demo.http.post(f"{demo.url}/api/upload?session={SESSION}", data=form) as response:
        assert response.status == 202
    done = await chat.until(
        lambda e: (
            e["type"] == "message" and any(m["kind"] == "video" for m in e["message"]["media"])
        ),
        within=60,
    )
    video = next(m for m in done["message"]["media"] if m["kind"] == "video")
    async with demo.http.get(demo.url + video["url"]) as response:
        assert response.status == 200
        assert response.content_type == "video/mp4"


async def test_a_100k_character_prompt_is_refused_cleanly(demo: Demo) -> None:
    chat = await open_chat(demo)
    await chat.send(type="text", text="/imagine " + "a fox " * 17_000)  # ~100k characters
    reply = await chat.until(
        lambda e: e["type"] == "message" and e["message"]["from"] == "bot", within=10
    )
    assert "too long" in reply["message"]["text"]
    assert demo.app.simulator.submits() == []
    await chat.send(type="text", text="/imagine a small fox")  # and the chat still works
    await chat.until(lambda e: is_result(e, "V4"), within=30)
