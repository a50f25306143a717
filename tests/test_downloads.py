"""Result downloads against real servers on 127.0.0.1: only the allowed origins and public
addresses are reached (every redirect hop checked), one deadline cuts a slow drip, the size
cap cuts a huge body while it streams. Everything here runs on loopback, so what may be
reached is always passed explicitly: the allow-list is the mechanism, never a test bypass."""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot import media
from bot.egress import Egress, is_public, parse_host_rule
from mjsim import SimConfig, Simulator
from tests.conftest import ALICE, GROUP
from tests.harness import API_KEY


def png_bytes(color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "PNG")
    return out.getvalue()


SECRET = png_bytes("purple")  # what an internal service would serve


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Internal:
    """A service that must never be reached: it counts every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/{tail:.*}", self.secret)

    async def secret(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(body=SECRET, content_type="image/png")


class Counts:
    hops = 0
    sent = 0


def cdn(target: str = "", counts: Counts | None = None) -> web.Application:
    """A CDN: /image.png, a redirect to ``target``, an endless redirect loop, a slow drip and
    a huge body."""
    app = web.Application()
    counts = counts or Counts()

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png_bytes(), content_type="image/png")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(target)

    async def local_move(request: web.Request) -> web.Response:
        raise web.HTTPFound("/image.png")

    async def loop(request: web.Request) -> web.Response:
        hop = int(request.query.get("n", "0"))
        counts.hops = hop + 1
        raise web.HTTPFound(f"/loop?n={hop + 1}")

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10_000
        await response.prepare(request)
        for _ in range(10_000):
            await response.write(b"x")
            await asyncio.sleep(0.05)  # always well inside the read timeout
        return response

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await response.prepare(request)
        chunk = b"x" * 65536
        for _ in range(320):  # 20 MB
            await response.write(chunk)
            counts.sent += len(chunk)
        return response

    app.router.add_get("/image.png", image)
    app.router.add_get("/moved", moved)
    app.router.add_get("/local-move", local_move)
    app.router.add_get("/loop", loop)
    app.router.add_get("/drip", drip)
    app.router.add_get("/huge", huge)
    return app


async def refused(downloader: media.Downloader, url: str) -> media.MediaError:
    with pytest.raises(media.MediaError) as caught:
        await downloader.get(url)
    return caught.value


async def test_a_redirect_to_a_loopback_service_is_refused():
    internal = Internal()
    async with serve(internal.app) as inside:
        async with serve(cdn(f"{inside}/secret.png")) as api:
            # The API's own origin is allowed (self-hosted proxies serve their images) ...
            downloader = media.Downloader(Egress([api]), retry_delay_s=0)
            try:
                assert Image.open(io.BytesIO(await downloader.get(f"{api}/image.png")))
                assert await downloader.get(f"{api}/local-move") == png_bytes()
                # ... but where it redirects to is checked again, hop by hop.
                assert (await refused(downloader, f"{api}/moved")).reason == "download"
                # Nor may a URL name the internal service, by address or by name.
                port = inside.rsplit(":", 1)[1]
                spellings = (  # every way a URL can spell this machine's loopback
                    inside,
                    f"http://localhost:{port}",
                    f"http://LocalHost.:{port}",
                    f"http://2130706433:{port}",
                    f"http://127.1:{port}",
                    f"http://0x7f.0.0.1:{port}",
                    f"http://[::ffff:127.0.0.1]:{port}",
                    f"http://[::ffff:7f00:1]:{port}",
                )
                for origin in spellings:
                    await refused(downloader, f"{origin}/x.png")
                await refused(downloader, "http://169.254.169.254/latest/meta-data/")
                await refused(downloader, "http://[::1]:9/x.png")
                await refused(downloader, "file:///etc/passwd")
            finally:
                await downloader.aclose()
    assert internal.hits == []


async def test_private_hosts_the_operator_lists_are_reached():
    internal = Internal()
    async with serve(internal.app) as inside:
        port = inside.rsplit(":", 1)[1]
        for rule in ("127.0.0.1", "127.0.0.0/8", "localhost"):
            downloader = media.Downloader(Egress(private_hosts=[rule]))
            try:
                assert await downloader.get(f"http://localhost:{port}/a.png") == SECRET
            finally:
                await downloader.aclose()
    assert len(internal.hits) == 3


async def test_the_same_socket_as_a_configured_origin_under_another_name_is_allowed():
    """Relays put their own name into image URLs (new-api: http://localhost:3000/mj/image/…)
    while the operator configured http://127.0.0.1:3000."""
    internal = Internal()
    async with serve(internal.app) as inside:
        port = inside.rsplit(":", 1)[1]
        downloader = media.Downloader(Egress([inside]))
        try:
            assert await downloader.get(f"http://localhost:{port}/mj/image/1") == SECRET
            await refused(downloader, f"http://localhost:{int(port) + 1}/mj/image/1")
        finally:
            await downloader.aclose()


async def test_redirects_are_capped():
    counts = Counts()
    async with serve(cdn(counts=counts)) as api:
        downloader = media.Downloader(Egress([api]), retries=0)
        try:
            await refused(downloader, f"{api}/loop")
        finally:
            await downloader.aclose()
    assert counts.hops == media.MAX_REDIRECTS + 1


async def test_a_slow_drip_is_cut_at_the_deadline():
    async with serve(cdn()) as api:
        downloader = media.Downloader(Egress([api]), deadline_s=1.0, timeout_s=5.0)
        started = time.monotonic()
        try:
            assert (await refused(downloader, f"{api}/drip")).reason == "download"
        finally:
            await downloader.aclose()
        assert time.monotonic() - started < 2.0


async def test_a_huge_body_is_cut_while_it_streams():
    counts = Counts()
    async with serve(cdn(counts=counts)) as api:
        downloader = media.Downloader(Egress([api]), max_bytes=1024 * 1024)
        try:
            assert (await refused(downloader, f"{api}/huge")).reason == "too_big"
        finally:
            await downloader.aclose()
        await asyncio.sleep(0.2)
        assert counts.sent < 10 * 1024 * 1024  # the rest was never sent


async def test_transient_errors_are_retried():
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return web.Response(status=503)
        return web.Response(body=b"ok")

    app = web.Application()
    app.router.add_get("/flaky", flaky)
    async with serve(app) as api:
        downloader = media.Downloader(Egress([api]), retry_delay_s=0)
        try:
            assert await downloader.get(f"{api}/flaky") == b"ok"
        finally:
            await downloader.aclose()
    assert calls["n"] == 3


async def test_an_early_download_is_taken_once_by_the_same_url_only():
    """prefetch (a SUCCESS callback naming its image, before the API confirms it): the next
    get of that URL takes the bytes without a request; another URL is fetched as always, the
    early bytes go once, and an early failure is simply tried again."""
    hits: dict[str, int] = {}

    async def image(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        hits[name] = hits.get(name, 0) + 1
        if name == "broken" and hits[name] == 1:
            return web.Response(status=404)
        return web.Response(body=name.encode())

    app = web.Application()
    app.router.add_get("/img/{name}", image)
    async with serve(app) as cdn:
        downloader = media.Downloader(Egress([cdn]), retries=0)
        try:
            downloader.prefetch(f"{cdn}/img/grid")
            downloader.prefetch(f"{cdn}/img/grid")  # asked twice: one download
            await asyncio.sleep(0.2)
            assert hits == {"grid": 1}
            assert await downloader.get(f"{cdn}/img/other") == b"other"
            assert await downloader.get(f"{cdn}/img/grid") == b"grid"
            assert hits == {"grid": 1, "other": 1}
            assert await downloader.get(f"{cdn}/img/grid") == b"grid"  # taken once only
            assert hits["grid"] == 2
            downloader.prefetch(f"{cdn}/img/broken")
            assert await downloader.get(f"{cdn}/img/broken") == b"broken"  # 404, then again
            assert hits["broken"] == 2
            for n in range(media.PREFETCH_SLOTS + 3):  # held ones are bounded
                downloader.prefetch(f"{cdn}/img/many{n}")
            await asyncio.sleep(0.2)
            assert sum(1 for name in hits if name.startswith("many")) == media.PREFETCH_SLOTS
        finally:
            await downloader.aclose()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # AWS, GCP, Azure metadata
        ("100.100.100.200", False),  # Alibaba Cloud metadata (shared address space)
        ("fd00:ec2::254", False),  # AWS metadata over IPv6
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("64:ff9b::7f00:1", False),  # NAT64 of loopback
        ("64:ff9b::808:808", True),  # NAT64 of a public address (IPv6-only networks)
        ("2002:7f00:1::", False),  # 6to4 of loopback
    ],
)
def test_public_addresses(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_host_rules():
    assert parse_host_rule("CDN.Internal.") == "cdn.internal"
    assert parse_host_rule("10.0.0.5") == ipaddress.ip_network("10.0.0.5/32")
    for bad in ("http://cdn/", "cdn:80", "", "a b"):
        with pytest.raises(ValueError):
            parse_host_rule(bad)


# --- end to end: the attack as it was reproduced ------------------------------------------


def hostile_api(sim_url: str, internal_url: str) -> web.Application:
    """The API (the simulator behind a proxy) whose result images redirect to an internal
    service: what a hostile provider or a compromised CDN can do."""
    app = web.Application()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.path.startswith("/sim/"):
            raise web.HTTPFound(f"{internal_url}/secret.png")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                request.method,
                sim_url + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as answer:
                body = await answer.read()
                # The simulator names its own origin in URLs: name ours instead.
                body = body.replace(sim_url.encode(), str(request.url.origin()).encode())
                return web.Response(
                    status=answer.status, body=body, content_type=answer.content_type
                )

    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def test_a_result_redirected_to_an_internal_service_is_not_posted(tmp_path, tg, make_bot):
    internal = Internal()
    simulator = Simulator(SimConfig(api_key=API_KEY, time_scale=0.05))
    await simulator.start()
    try:
        async with serve(internal.app) as inside:
            async with serve(hostile_api(simulator.base_url, inside)) as api:
                bot = make_bot(midjourney={"base_url": api})
                bot.start()
                await tg.wait_for_call("deleteWebhook", timeout=30)
                asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a fox")
                result = await tg.wait_for_bot_message(
                    GROUP,
                    lambda m: m.reply_to_message_id == asked.message_id and m.buttons,
                    timeout=30,
                )
                await bot.stop()
    finally:
        await simulator.stop()
    assert result.photo is None  # the link instead: nothing fetched from inside
    assert "could not be downloaded" in (result.content or "")
    assert internal.hits == []
    assert "download refused" in bot.log()
