"""/retexture (issue 15): trueai's /submit/retexture {prompt, image}, offered where the provider
has it (Profile.retexture) and hidden where it does not (openai-hk's document has no such
route). The simulator per flavour, the use case in-process, and the command menus."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from bot.commands import COMMANDS, menu
from bot.mj.profiles import profile_for
from bot.usecases.jobs import Kind
from mjsim import SimConfig, Simulator
from tests.dbrows import stored
from tests.inprocess import png, worlds
from tests.storage import BOTH


def png_uri(colour: str) -> str:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(
    ("flavour", "status"), [("trueai", 200), ("superset", 200), ("openai-hk", 404), ("java", 404)]
)
async def test_the_route_per_flavour(flavour: str, status: int) -> None:
    sim = Simulator(SimConfig(time_scale=0.01, flavour=flavour))
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            body = {"prompt": "as marble", "image": png_uri("olive")}
            reply = await http.post("/mj/submit/retexture", json=body)
            assert reply.status_code == status
            if status == 200:
                assert reply.json()["code"] == 1
                missing = await http.post("/mj/submit/retexture", json={"prompt": "x"})
                assert missing.json()["code"] == 4
    finally:
        await sim.stop()


def test_the_menus_show_it_only_where_the_provider_has_it() -> None:
    assert "retexture" in menu(profile_for("trueai"))
    assert "retexture" not in menu(profile_for("openai-hk"))
    assert set(menu(profile_for("openai-hk"))) == set(COMMANDS) - {"retexture"}


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


@BOTH
async def test_retexture_on_trueai_submits_the_photo_and_posts_a_grid(world):
    async with world(flavour="trueai", provider="trueai") as w:
        photo = png(colour="olive")
        await w.service.start_kind(Kind.RETEXTURE, w.who(), "as polished marble", [photo])
        (row,) = stored(w.store, "SELECT key FROM tasks")
        message = await w.result(row["key"])
        (sent,) = w.sim.submits("retexture")
        body = dict(sent.body)
        assert base64.b64decode(body.pop("image").split(",", 1)[1]) == photo
        assert body == {"prompt": "as polished marble", "state": row["key"]}
        assert "U1" in w.chat.tokens(message)
        assert [(r["action"], r["units"], r["outcome"]) for r in await w.settled(row["key"])] == [
            ("retexture", 1, "success")
        ]


@BOTH
async def test_retexture_where_the_provider_lacks_it_spends_nothing(world):
    async with world(flavour="openai-hk") as w:
        await w.service.start_kind(Kind.RETEXTURE, w.who(), "as marble", [png()])
        assert "cannot retexture" in w.chat.sent[-1][1].text
        assert w.sim.submits() == [] and stored(w.store, "SELECT key FROM tasks") == []
