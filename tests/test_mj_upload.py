"""MjClient.upload_images against the simulator's flavours: a photo becomes a URL a prompt can
name (upload-discord-images, mj-api §3.10), or None where the provider has no such route."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from bot.mj.client import MjClient
from bot.mj.profiles import SIM_FLAVOURS, profile_for
from bot.mj.prompt import UrlKind, url_kind
from mjsim import SimConfig, Simulator

KEY = "sk-upload-0123456789"


def png_uri(color: str, size: tuple[int, int] = (32, 24)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def started(flavour: str) -> Simulator:
    sim = Simulator(SimConfig(api_key=KEY, time_scale=0.05, flavour=flavour))
    await sim.start()
    return sim


def client_for(provider: str, sim: Simulator) -> MjClient:
    return MjClient(sim.base_url, KEY, profile=profile_for(provider), read_retries=0)


@pytest.mark.parametrize("provider", ["plus", "trueai", "new-api", "auto"])
async def test_photos_become_urls_the_simulator_serves(provider: str) -> None:
    sim = await started(SIM_FLAVOURS[provider])
    try:
        async with client_for(provider, sim) as client:
            red, blue = png_uri("red"), png_uri("blue", (40, 40))
            urls = await client.upload_images([red, blue])
        assert urls is not None and len(urls) == 2
        [request] = sim.submits("upload-discord-images")
        assert request.body == {"base64Array": [red, blue]}
        async with httpx.AsyncClient() as http:
            for url, uri in zip(urls, (red, blue), strict=True):
                assert url_kind(url) is UrlKind.IMAGE  # the prompt check takes it as an image
                served = await http.get(url)
                assert served.status_code == 200
                assert served.content == base64.b64decode(uri.split(",", 1)[1])
    finally:
        await sim.stop()


@pytest.mark.parametrize("provider", ["openai-hk", "midjourney-proxy"])
async def test_no_upload_route_means_none_and_is_not_asked_again(provider: str) -> None:
    """openai-hk's document lists no upload route (its flavour answers 404); Java OSS has none."""
    sim = await started(SIM_FLAVOURS[provider])
    try:
        async with client_for(provider, sim) as client:
            assert await client.upload_images([png_uri("red")]) is None
            assert await client.upload_images([png_uri("red")]) is None
            assert await client.upload_images([]) == []
        asked = [r for r in sim.requests if r.path.endswith("/upload-discord-images")]
        assert len(asked) == 1
    finally:
        await sim.stop()


async def test_a_refused_upload_is_none() -> None:
    """An envelope with another code (a bad image: code 4) gives no URL; nothing raises."""
    sim = await started("superset")
    try:
        async with client_for("auto", sim) as client:
            assert await client.upload_images(["data:image/png;base64,!!!"]) is None
            # the route is still there: a good image afterwards gets its URL
            assert await client.upload_images([png_uri("green")]) is not None
    finally:
        await sim.stop()
