"""Who gets into the playground: each attack seen on a running ``mjbot demo`` fails, the
operator's flow (the printed link, then the page) works.

A real App over the simulator, the playground on 127.0.0.1, real aiohttp clients: one as the
operator's browser (it opened the link, so it holds the cookie), others as strangers.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from PIL import Image

from adapters.web import WebAdapter
from adapters.web.access import Access
from bot.app import App, demo_config
from bot.chat import Requester
from bot.config import AccessConfig, QuotaConfig
from bot.policy import Policy
from tests.harness import ROOT, free_port
from tests.test_web import Chat, is_result

SESSION = "access-test-0001"
EVIL = "http://evil.example"
SAME_SITE = "http://127.0.0.1:9"  # another port on this machine: the same *site* to a browser


@dataclass
class Served:
    app: App
    adapter: WebAdapter
    operator: aiohttp.ClientSession  # opened the printed link: holds the admin cookie
    stranger: aiohttp.ClientSession  # never saw a token

    @property
    def url(self) -> str:
        return self.adapter.url

    def submits(self) -> list[Any]:
        return self.app.simulator.submits()


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # keep cookies for an IP-address host


async def start(tmp_path, **config: Any) -> tuple[App, WebAdapter]:
    base = demo_config(tmp_path)
    cfg = replace(
        base,
        simulator=replace(base.simulator, time_scale=0.02),
        tracking=replace(base.tracking, poll_interval_s=0.1, edit_interval_s=0.1),
        **config,
    )
    adapter = WebAdapter("127.0.0.1", 0)
    app = App(cfg, adapters=[adapter])
    adapter.playground.app = app
    await app.start()
    return app, adapter


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[Served]:
    app, adapter = await start(tmp_path)
    try:
        async with (
            aiohttp.ClientSession(cookie_jar=jar()) as operator,
            aiohttp.ClientSession(cookie_jar=jar()) as stranger,
        ):
            async with operator.get(adapter.admin_link) as response:
                assert response.status == 200
            yield Served(app, adapter, operator, stranger)
    finally:
        await app.stop()


def upload_form() -> aiohttp.FormData:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(out, "PNG")
    form = aiohttp.FormData()
    form.add_field("text", "/describe")
    form.add_field("session", SESSION)
    form.add_field("files", out.getvalue(), filename="a.png", content_type="image/png")
    return form


async def refused_socket(http: aiohttp.ClientSession, url: str, **headers: str) -> int:
    try:
        ws = await http.ws_connect(f"{url}/ws?session={SESSION}", headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


# --- the token: printed link -> cookie -> clean URL ------------------------------------------


async def test_the_printed_link_trades_its_token_for_a_strict_cookie(served: Served) -> None:
    link = served.adapter.admin_link
    assert link.startswith(served.url + "/?token=")
    async with aiohttp.ClientSession(cookie_jar=jar()) as browser:
        async with browser.get(link + "&lang=zh", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/?lang=zh", "the token leaves the URL"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with browser.get(served.url + "/") as response:
            assert response.status == 200
            assert 'id="messages"' in await response.text()

    async with served.stranger.get(served.url + "/") as response:
        assert response.status == 401
        assert "?token=" in await response.text()
    async with served.stranger.get(served.url + "/?token=guessed") as response:
        assert response.status == 403
    async with served.stranger.get(served.url + "/static/app.js") as response:
        assert response.status == 200, "the package's own files need no token"
    async with served.stranger.get(f"{served.url}/api/admin") as response:
        assert response.status == 401


async def test_a_script_may_send_the_token_as_a_bearer_header(served: Served) -> None:
    token = served.adapter.playground.access.admin_token
    headers = {"Authorization": f"Bearer {token}"}
    async with served.stranger.get(f"{served.url}/api/admin", headers=headers) as response:
        assert response.status == 200


# --- the attacks -----------------------------------------------------------------------------


async def test_a_cross_origin_websocket_cannot_run_imagine(served: Served) -> None:
    # The operator's browser on another site's page: the cookie would not even be sent
    # (SameSite=Strict), but a page on another port of 127.0.0.1 is the same site: Origin.
    for origin in (EVIL, SAME_SITE, "null"):
        assert await refused_socket(served.operator, served.url, Origin=origin) == 403, origin
    assert await refused_socket(served.stranger, served.url) == 401
    await asyncio.sleep(0.3)
    assert served.submits() == []

    # The page itself (its own origin) gets in and runs /imagine.
    ws = await served.operator.ws_connect(
        f"{served.url}/ws?session={SESSION}", headers={"Origin": served.url}
    )
    chat = Chat(ws)
    hello = await chat.until(lambda e: e["type"] == "hello")
    assert hello["admin"] is True
    await chat.send(type="text", text="/imagine a fox")
    await chat.until(lambda e: is_result(e, "V4"), within=30)
    await ws.close()
    assert served.submits()


async def test_a_cross_site_form_post_cannot_upload(served: Served) -> None:
    url = f"{served.url}/api/upload"
    for origin in (EVIL, SAME_SITE):
        async with served.operator.post(url, data=upload_form(), headers={"Origin": origin}) as r:
            assert r.status == 403, origin
            assert "cross-origin" in await r.text()
    async with served.stranger.post(url, data=upload_form()) as response:
        assert response.status == 401
    await asyncio.sleep(0.3)
    assert served.submits() == []
    assert served.adapter.port.chats == {}, "nothing was kept either"

    async with served.operator.post(url, data=upload_form(), headers={"Origin": served.url}) as r:
        assert r.status == 202, await r.text()


async def test_admin_data_needs_the_admin_token_and_the_right_host(served: Served) -> None:
    url = f"{served.url}/api/admin"
    async with served.stranger.get(url) as response:
        assert response.status == 401
    # the chat token (the link one shares) opens the chat but not everyone's prompts
    async with aiohttp.ClientSession(cookie_jar=jar()) as guest:
        async with guest.get(served.adapter.chat_link) as response:
            assert response.status == 200
        async with guest.get(url) as response:
            assert response.status == 403
            assert "admin token" in await response.text()
        ws = await guest.ws_connect(f"{served.url}/ws?session=guest-session-1")
        assert (await ws.receive_json(timeout=5))["admin"] is False
        await ws.close()
    # a forged Host (DNS rebinding) is refused even with the admin cookie
    port = served.adapter.playground.access.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}"):
        async with served.operator.get(url, headers={"Host": host}) as response:
            assert response.status == 403, host
            assert "answers only to" in await response.text()
    for host in (f"localhost:{port}", f"[::1]:{port}"):
        async with served.operator.get(url, headers={"Host": host}) as response:
            assert response.status == 200, host
    async with served.operator.get(url) as response:
        assert response.status == 200
        assert "recent" in await response.json()


async def test_media_and_mask_routes_need_the_token(served: Served) -> None:
    for path in ("/media/abc", "/api/region/abc/image"):
        async with served.stranger.get(served.url + path) as response:
            assert response.status == 401, path
    async with served.stranger.post(f"{served.url}/api/mask", json={"ref": "x"}) as response:
        assert response.status in (400, 401)  # no PNG: refused before anything else
    body = {"ref": "x", "mask_png": "data:image/png;base64,iVBORw0KGgo=", "session": SESSION}
    async with served.operator.post(
        f"{served.url}/api/mask", json=body, headers={"Origin": EVIL}
    ) as response:
        assert response.status == 403


# --- web sessions never match platform ids ---------------------------------------------------


async def test_a_session_named_like_an_admin_id_is_not_admin(tmp_path) -> None:
    app, adapter = await start(
        tmp_path,
        access=AccessConfig(admins=("12345678", "web:operator-own-1")),
        quota=QuotaConfig(daily_units=1),
    )
    try:
        async with aiohttp.ClientSession(cookie_jar=jar()) as http:
            await (await http.get(adapter.admin_link)).release()
            for session, refused in (("12345678", True), ("operator-own-1", False)):
                chat = Chat(await http.ws_connect(f"{adapter.url}/ws?session={session}"))
                await chat.until(lambda e: e["type"] == "hello")
                for prompt in ("a first fox", "a second fox"):
                    await chat.send(type="text", text=f"/imagine {prompt}")
                    await chat.until(
                        lambda e: e["type"] == "message" and e["message"]["from"] == "bot"
                    )
                texts = [m["text"] for m in chat.messages.values() if m["from"] == "bot"]
                assert any("quota" in text for text in texts) is refused, (session, texts)
                await chat.ws.close()
            for _ in range(100):
                if len(app.simulator.submits("imagine")) >= 3:
                    break
                await asyncio.sleep(0.1)
    finally:
        await app.stop()
    prompts = [s.body["prompt"] for s in app.simulator.submits("imagine")]
    assert len(prompts) == 3, "12345678 was held to its quota; web:operator-own-1 was not"


def test_policy_matches_web_sessions_only_by_their_prefixed_name() -> None:
    access = AccessConfig(admins=("12345678", "web:boss-session"), banned_users=("99999999",))
    policy = Policy(None, access, QuotaConfig())  # type: ignore[arg-type]  # no store needed

    def who(platform: str, user: str) -> Requester:
        return Requester(platform=platform, chat_id=user, user_id=user, language="en")

    assert policy.is_admin(who("telegram", "12345678"))
    assert policy.is_admin(who("discord", "12345678"))
    assert not policy.is_admin(who("web", "12345678"))
    assert policy.is_admin(who("web", "boss-session"))
    assert not policy.is_admin(who("telegram", "boss-session"))


# --- `mjbot demo` itself, and the hosts it answers to ----------------------------------------


async def test_mjbot_demo_prints_a_link_that_opens_the_playground(tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "demo", "--port", str(port),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        printed = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        printed += (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        admin_link, chat_link = re.findall(r"http://\S+\?token=[\w-]+", printed)
        base = f"http://127.0.0.1:{port}"
        assert admin_link.startswith(base + "/?token=") and chat_link != admin_link
        async with aiohttp.ClientSession(cookie_jar=jar()) as browser:
            async with browser.get(base + "/") as response:
                assert response.status == 401
            async with browser.get(admin_link) as response:
                assert response.status == 200 and str(response.url) == base + "/"
            async with browser.get(base + "/api/admin") as response:
                assert response.status == 200
        async with aiohttp.ClientSession(cookie_jar=jar()) as guest:
            async with guest.get(chat_link) as response:
                assert response.status == 200
            async with guest.get(base + "/api/admin") as response:
                assert response.status == 403
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize(
    ("listen", "host", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1:8080", True),
        ("127.0.0.1", "localhost:8080", True),
        ("127.0.0.1", "[::1]:8080", True),
        ("127.0.0.1", "127.0.0.1:8081", False),
        ("127.0.0.1", "192.168.1.5:8080", False),
        ("127.0.0.1", "evil.example:8080", False),
        ("192.168.1.5", "192.168.1.5:8080", True),  # --host 192.168.1.5
        ("192.168.1.5", "10.0.0.9:8080", False),
        ("0.0.0.0", "192.168.1.5:8080", True),  # every interface: any IP literal
        ("0.0.0.0", "[fe80::1]:8080", True),
        ("0.0.0.0", "rebind.evil.example:8080", False),  # but no name: DNS rebinding
        ("0.0.0.0", "", False),
    ],
)
def test_the_hosts_the_playground_answers_to(listen: str, host: str, allowed: bool) -> None:
    assert Access(host=listen, port=8080).host_ok(host) is allowed
