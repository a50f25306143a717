"""The built-in Midjourney-proxy simulator, driven over real HTTP like a client would."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.mj.models import Task, TaskState
from mjsim import RESET, SimConfig, Simulator

FAST = 0.01  # real seconds per simulated second: an imagine takes ~0.25 s


@asynccontextmanager
async def running(**settings: Any) -> AsyncIterator[tuple[Simulator, httpx.AsyncClient]]:
    sim = Simulator(SimConfig(**{"time_scale": FAST, **settings}))
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            yield sim, client
    finally:
        await sim.stop()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimConfig(time_scale=FAST))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5) as http:
        yield http


def png_uri(colour: str = "red", size: tuple[int, int] = (40, 30)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def fetch(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/mj/task/{task_id}/fetch")
    assert response.status_code == 200
    return response.json()


async def finish(
    client: httpx.AsyncClient, task_id: str, seen: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Poll fetch until the task is final; every snapshot goes to ``seen``."""
    for _ in range(400):
        task = await fetch(client, task_id)
        if seen is not None:
            seen.append(task)
        if task["status"] in ("SUCCESS", "FAILURE", "CANCEL"):
            return task
        await asyncio.sleep(0.005)
    raise AssertionError(f"task {task_id} never finished: {task}")


async def submit(client: httpx.AsyncClient, route: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/mj/submit/{route}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def run(client: httpx.AsyncClient, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit and wait for the task to finish."""
    return await finish(client, (await submit(client, route, body))["result"])


async def imagine_done(client: httpx.AsyncClient, prompt: str = "a red fox") -> dict[str, Any]:
    reply = await submit(client, "imagine", {"prompt": prompt})
    assert reply["code"] == 1
    return await finish(client, reply["result"])


async def press(client: httpx.AsyncClient, task: dict[str, Any], match: str) -> dict[str, Any]:
    custom_id = next(b["customId"] for b in task["buttons"] if re.search(match, b["customId"]))
    return await submit(client, "action", {"taskId": task["id"], "customId": custom_id})


# --- lifecycle, buttons, images ------------------------------------------------------------


async def test_imagine_runs_to_success_with_progress_grid_buttons_and_png(client):
    reply = await submit(client, "imagine", {"prompt": "a red fox --ar 3:2", "state": "k1"})
    assert reply == {
        "code": 1,
        "description": "提交成功",
        "result": reply["result"],
        "properties": {"discordInstanceId": "1118138338562560102"},
    }
    task_id = reply["result"]
    assert re.fullmatch(r"\d{16}", task_id)

    seen: list[dict[str, Any]] = []
    done = await finish(client, task_id, seen)
    parsed = [Task.from_json(s) for s in seen]
    ranks = [t.rank for t in parsed if t]
    assert ranks == sorted(ranks), "progress went backwards"
    progresses = {s["progress"] for s in seen if s["status"] == "IN_PROGRESS"}
    assert len(progresses & {"15%", "31%", "46%", "62%", "78%", "93%"}) >= 3
    first = seen[0]
    if first["status"] == "NOT_START":
        assert first["progress"] is None and first["startTime"] is None
    previews = [s["imageUrl"] for s in seen if s["status"] == "IN_PROGRESS" and s["imageUrl"]]
    assert previews and all(".webp" in p for p in previews)
    assert all(s["imageUrl"] is None for s in seen if s["progress"] == "0%")

    assert (done["status"], done["progress"], done["action"]) == ("SUCCESS", "100%", "IMAGINE")
    assert done["state"] == "k1"
    assert done["submitTime"] <= done["startTime"] <= done["finishTime"]
    props = done["properties"]
    assert props["finalPrompt"] == "a red fox --ar 3:2"
    h = props["messageHash"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", h)
    labels = [b["label"] or b["emoji"] for b in done["buttons"]]
    assert labels == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    ids = [b["customId"] for b in done["buttons"]]
    assert ids[:4] == [f"MJ::JOB::upsample::{n}::{h}" for n in range(1, 5)]
    assert ids[4] == f"MJ::JOB::reroll::0::{h}::SOLO"
    assert ids[5:] == [f"MJ::JOB::variation::{n}::{h}" for n in range(1, 5)]
    assert all(b["type"] == 2 and b["style"] == 2 for b in done["buttons"])

    image = await client.get(done["imageUrl"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(image.content))
    assert picture.format == "PNG" and picture.size == (1536, 1024)
    again = await client.get(done["imageUrl"])
    assert again.content == image.content  # cached and deterministic

    preview = await client.get(previews[-1])
    assert preview.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(preview.content)).format == "WEBP"


async def test_same_prompt_draws_the_same_picture(client):
    a, b = await asyncio.gather(imagine_done(client, "owl"), imagine_done(client, "owl"))
    c = await imagine_done(client, "a different owl")
    images = [(await client.get(t["imageUrl"])).content for t in (a, b, c)]
    assert images[0] == images[1] != images[2]
    assert a["id"] != b["id"]


async def test_upscale_gives_single_image_and_the_upscale_button_set(client):
    grid = await imagine_done(client, "castle --ar 2:3")
    reply = await press(client, grid, r"upsample::2::")
    assert reply["code"] == 1
    up = await finish(client, reply["result"])
    assert up["action"] == "UPSCALE" and up["status"] == "SUCCESS"
    assert up["properties"]["finalPrompt"] == "castle --ar 2:3"
    h = up["properties"]["messageHash"]
    assert h != grid["properties"]["messageHash"]
    by_label = {b["label"] or b["emoji"]: b for b in up["buttons"]}
    subtle = by_label["Upscale (Subtle)"]["customId"]
    assert subtle == f"MJ::JOB::upsample_v7_2x_subtle::1::{h}::SOLO"
    assert by_label["Upscale (Creative)"]["customId"].startswith("MJ::JOB::upsample_v7_2x_creative")
    assert by_label["Vary (Strong)"]["emoji"] == "🪄"
    assert by_label["Vary (Region)"]["customId"] == f"MJ::Inpaint::1::{h}::SOLO"
    assert by_label["Vary (Region)"]["emoji"] == "🖌️"
    assert by_label["Zoom Out 2x"]["customId"] == f"MJ::Outpaint::50::1::{h}::SOLO"
    assert by_label["Zoom Out 1.5x"]["customId"] == f"MJ::Outpaint::75::1::{h}::SOLO"
    assert by_label["Custom Zoom"]["customId"] == f"MJ::CustomZoom::{h}"
    assert by_label["⬅️"]["customId"] == f"MJ::JOB::pan_left::1::{h}::SOLO"
    assert by_label["⬅️"]["label"] == ""
    assert {"➡️", "⬆️", "⬇️"} <= by_label.keys()
    animate = by_label["Animate (High motion)"]
    assert animate["customId"] == f"MJ::JOB::animate_high::1::{h}::SOLO"
    assert animate["emoji"] == "🎞️"
    picture = Image.open(io.BytesIO((await client.get(up["imageUrl"])).content))
    assert picture.size == (1024, 1536)

    hd = await finish(client, (await press(client, up, r"upsample_v7_2x_subtle"))["result"])
    assert hd["status"] == "SUCCESS"
    assert not any("upsample" in b["customId"] for b in hd["buttons"])
    assert any(b["customId"].startswith("MJ::JOB::animate_low::1::") for b in hd["buttons"])


async def test_custom_zoom_needs_a_modal_then_runs_as_zoom(client):
    grid = await imagine_done(client, "lake")
    up = await finish(client, (await press(client, grid, r"upsample::1::"))["result"])
    reply = await press(client, up, r"^MJ::CustomZoom::")
    assert reply["code"] == 21
    assert reply["description"] == "Waiting for window confirm"
    assert reply["properties"]["remix"] is True
    assert reply["properties"]["finalPrompt"].startswith("lake")
    modal_id = reply["result"]
    modal = await fetch(client, modal_id)
    assert modal["status"] == "MODAL" and modal["action"] == "ZOOM"
    await asyncio.sleep(0.05)
    assert (await fetch(client, modal_id))["status"] == "MODAL"  # waits for /modal forever

    answer = await submit(client, "modal", {"taskId": modal_id, "prompt": "--zoom 2"})
    assert answer["code"] == 1 and answer["result"] == modal_id
    done = await finish(client, modal_id)
    assert done["status"] == "SUCCESS" and done["action"] == "ZOOM"
    assert done["prompt"] == "--zoom 2"
    assert [b["label"] for b in done["buttons"]][:4] == ["U1", "U2", "U3", "U4"]

    again = await submit(client, "modal", {"taskId": modal_id, "prompt": "x"})
    assert again["code"] == 4 and again["description"] == "关联任务状态错误"


async def test_vary_region_modal_requires_a_mask_and_empty_prompt_falls_back(client):
    grid = await imagine_done(client, "tower")
    up = await finish(client, (await press(client, grid, r"upsample::3::"))["result"])
    reply = await press(client, up, r"^MJ::Inpaint::")
    assert reply["code"] == 21
    no_mask = await submit(client, "modal", {"taskId": reply["result"], "prompt": ""})
    assert no_mask["code"] == 4
    ok = await submit(client, "modal", {"taskId": reply["result"], "maskBase64": png_uri("white")})
    assert ok["code"] == 1
    done = await finish(client, reply["result"])
    assert done["action"] == "VARIATION" and done["prompt"] == "tower"


async def test_remix_switch_turns_variations_into_modals():
    async with running(remix=True) as (_, client):
        grid = await imagine_done(client, "bridge")
        reply = await press(client, grid, r"variation::2::")
        assert reply["code"] == 21
        assert (await fetch(client, reply["result"]))["action"] == "VARIATION"
        upscale = await press(client, grid, r"upsample::2::")
        assert upscale["code"] == 1  # upscales never ask
    async with running() as (_, client):
        grid = await imagine_done(client, "bridge")
        custom_id = next(b["customId"] for b in grid["buttons"] if b["label"] == "V1")
        body = {"taskId": grid["id"], "customId": custom_id, "enableRemix": True}
        assert (await submit(client, "action", body))["code"] == 21


# --- validation ----------------------------------------------------------------------------


async def test_validation_errors_use_the_documented_codes(sim, client):
    blank = await submit(client, "imagine", {"prompt": "   "})
    assert blank == {"code": 4, "description": "prompt不能为空", "result": None, "properties": {}}
    raw = await submit(client, "imagine", {"prompt": "x", "base64Array": ["iVBORw0KGgo="]})
    assert (raw["code"], raw["description"]) == (4, "base64格式错误")
    long_state = await submit(client, "imagine", {"prompt": "x", "state": "s" * 256})
    assert long_state["code"] == 4
    one = await submit(client, "blend", {"base64Array": [png_uri()]})
    assert (one["code"], one["description"]) == (4, "base64List参数错误")
    two = [png_uri(), png_uri("blue")]
    dims = await submit(client, "blend", {"base64Array": two, "dimensions": "WIDE"})
    assert (dims["code"], dims["description"]) == (4, "dimensions参数错误")
    same = await client.post(
        "/mj/insight-face/swap", json={"sourceBase64": png_uri(), "targetBase64": png_uri()}
    )
    assert (same.json()["code"], same.json()["description"]) == (4, "人脸图片和目标图片不能相同")
    banned = await submit(client, "imagine", {"prompt": "a Nude statue"})
    assert banned["code"] == 24 and banned["description"] == "可能包含敏感词"
    assert banned["properties"] == {"promptEn": "a Nude statue", "bannedWord": "Nude"}
    assert sim.tasks == {}  # nothing rejected became a task


async def test_action_checks_parent_and_custom_id(client):
    missing = await submit(client, "action", {"taskId": "1234567890123456", "customId": "MJ::x"})
    assert (missing["code"], missing["description"]) == (3, "关联任务不存在或已失效")
    pending = await submit(client, "imagine", {"prompt": "slow"})
    early = await submit(
        client, "action", {"taskId": pending["result"], "customId": "MJ::JOB::upsample::1::x"}
    )
    assert (early["code"], early["description"]) == (4, "关联任务状态错误")
    done = await finish(client, pending["result"])
    foreign = await submit(
        client, "action", {"taskId": done["id"], "customId": "MJ::JOB::upsample::1::other-hash"}
    )
    assert (foreign["code"], foreign["description"]) == (4, "未知的 Action 类型")


async def test_fail_word_ends_in_failure(client):
    reply = await submit(client, "imagine", {"prompt": "this will fail"})
    assert reply["code"] == 1
    done = await finish(client, reply["result"])
    assert done["status"] == "FAILURE" and done["progress"] == ""
    assert done["failReason"] == "[Invalid parameter] Invalid value"
    assert done["buttons"] == [] and done["imageUrl"] is None and done["finishTime"]


# --- auth, prefixes, queue -----------------------------------------------------------------


async def test_auth_accepts_the_three_header_schemes():
    async with running(api_key="sk-test") as (sim, client):
        body = {"prompt": "cat"}
        denied = await client.post("/mj/submit/imagine", json=body)
        assert denied.status_code == 401 and denied.content == b""
        wrong = await client.post("/mj/submit/imagine", json=body, headers={"mj-api-secret": "no"})
        assert wrong.status_code == 401
        for headers in (
            {"Authorization": "Bearer sk-test"},
            {"Authorization": "sk-test"},
            {"mj-api-secret": "sk-test"},
        ):
            ok = await client.post("/mj/submit/imagine", json=body, headers=headers)
            assert ok.status_code == 200 and ok.json()["code"] in (1, 22), headers
        fetch_denied = await client.get(f"/mj/task/{ok.json()['result']}/fetch")
        assert fetch_denied.status_code == 401
        assert len(sim.submits("imagine")) == 5  # refused requests are recorded too
        assert sim.submits("imagine")[2].headers["authorization"] == "Bearer sk-test"


async def test_mode_prefixes_are_recorded_and_relax_is_slower():
    async with running(time_scale=0) as (sim, client):  # frozen clock: only advance() moves it
        ids = {}
        for prefix in ("", "/fast", "/relax", "/mj-turbo"):
            reply = await client.post(f"{prefix}/mj/submit/imagine", json={"prompt": "p"})
            ids[prefix] = reply.json()["result"]
        assert [r.prefix for r in sim.submits()] == ["", "/fast", "/relax", "/mj-turbo"]
        assert all(r.path == "/mj/submit/imagine" for r in sim.submits())
        modes = {p: (await fetch(client, i))["mode"] for p, i in ids.items()}
        assert modes == {"": "FAST", "/fast": "FAST", "/relax": "RELAX", "/mj-turbo": "TURBO"}
        sim.advance(40)  # the turbo job waited for a slot (concurrency 3), then ran twice as fast
        statuses = {p: (await fetch(client, i))["status"] for p, i in ids.items()}
        assert statuses["/fast"] == "SUCCESS" and statuses["/mj-turbo"] == "SUCCESS"
        assert statuses["/relax"] == "IN_PROGRESS"
        sim.advance(30)
        assert (await fetch(client, ids["/relax"]))["status"] == "SUCCESS"


async def test_queue_answers_22_then_23_and_drains():
    async with running(time_scale=0, concurrency=1, queue_size=2) as (sim, client):
        codes = []
        for n in range(4):
            codes.append(await submit(client, "imagine", {"prompt": f"q{n}"}))
        assert [c["code"] for c in codes] == [1, 22, 22, 23]
        assert codes[1]["description"] == "排队中，前面还有1个任务"
        assert codes[1]["properties"]["numberOfQueues"] == 1
        assert codes[2]["properties"]["numberOfQueues"] == 2
        assert codes[3]["description"] == "队列已满，请稍后尝试" and codes[3]["result"] is None
        waiting = await fetch(client, codes[2]["result"])
        assert waiting["status"] == "NOT_START" and waiting["progress"] is None
        sim.advance(26)
        assert (await fetch(client, codes[0]["result"]))["status"] == "SUCCESS"
        assert (await fetch(client, codes[1]["result"]))["status"] != "NOT_START"
        assert (await fetch(client, codes[2]["result"]))["status"] == "NOT_START"
        sim.advance(200)
        for reply in codes[:3]:
            assert (await fetch(client, reply["result"]))["status"] == "SUCCESS"
        assert len(sim.tasks) == 3


# --- task routes ---------------------------------------------------------------------------


async def test_unknown_fetch_is_empty_and_list_by_condition_omits_unknown(client):
    unknown = await client.get("/mj/task/9999999999999999/fetch")
    assert unknown.status_code == 200 and unknown.content == b""
    reply = await submit(client, "imagine", {"prompt": "listed"})
    listed = await client.post(
        "/mj/task/list-by-condition", json={"ids": [reply["result"], "9999999999999999"]}
    )
    assert [t["id"] for t in listed.json()] == [reply["result"]]
    empty = await client.post("/mj/task/list-by-condition", json={})
    assert empty.json() == []
    everything = await client.get("/mj/task/list")
    assert [t["id"] for t in everything.json()] == [reply["result"]]


async def test_image_seed_is_deterministic(client):
    done = await imagine_done(client, "seed me")
    first = (await client.get(f"/mj/task/{done['id']}/image-seed")).json()
    second = (await client.get(f"/mj/task/{done['id']}/image-seed")).json()
    assert first["code"] == 1 and first["result"] == second["result"]
    assert first["result"].isdigit()


# --- describe, shorten, blend, video, swap -------------------------------------------------


async def test_describe_gives_four_numbered_prompts_and_picks(client):
    upload = png_uri("green", (60, 40))
    reply = await submit(client, "describe", {"base64": upload})
    done = await finish(client, reply["result"])
    assert done["action"] == "DESCRIBE" and done["status"] == "SUCCESS"
    lines = done["properties"]["finalPrompt"].split("\n\n")
    assert [line[:3] for line in lines] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    assert all(line.endswith("--ar 3:2") for line in lines)
    served = await client.get(done["imageUrl"])
    assert served.content == base64.b64decode(upload.split(",", 1)[1])
    assert [b["customId"] for b in done["buttons"]] == [
        "MJ::Job::PicReader::1",
        "MJ::Job::PicReader::2",
        "MJ::Job::PicReader::3",
        "MJ::Job::PicReader::4",
        "MJ::Picread::Retry",
        "MJ::Job::PicReader::all",
    ]
    again = await finish(client, (await submit(client, "describe", {"base64": upload}))["result"])
    assert again["properties"]["finalPrompt"] == done["properties"]["finalPrompt"]

    pick = await press(client, done, r"PicReader::2$")
    assert pick["code"] == 21
    assert pick["properties"]["finalPrompt"] == lines[1][3:].strip()
    ran = await submit(client, "modal", {"taskId": pick["result"]})
    assert ran["code"] in (1, 22)
    made = await finish(client, pick["result"])
    assert made["action"] == "IMAGINE" and made["prompt"] == lines[1][3:].strip()

    everything = await press(client, done, r"PicReader::all$")
    assert everything["code"] == 1
    ids = everything["result"].split(",")
    assert len(ids) == 4 and all(re.fullmatch(r"\d{16}", i) for i in ids)


async def test_shorten_format(client):
    prompt = "a majestic lion, in the style of expert draftsmanship, ethereal, dreamlike quality"
    done = await finish(client, (await submit(client, "shorten", {"prompt": prompt}))["result"])
    text = done["properties"]["finalPrompt"]
    assert text.startswith("## Important tokens\n") and "\n## Shortened prompts\n1️⃣ " in text
    options = text.split("## Shortened prompts\n", 1)[1].split("\n\n")
    assert [o[:3] for o in options] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣"]
    assert [b["customId"] for b in done["buttons"]] == [
        f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)
    ]


async def test_blend_is_a_grid_with_the_chosen_aspect(client):
    body = {"base64Array": [png_uri(), png_uri("blue")], "dimensions": "PORTRAIT"}
    done = await finish(client, (await submit(client, "blend", body))["result"])
    assert done["action"] == "BLEND" and done["properties"]["finalPrompt"].endswith("--ar 2:3")
    picture = Image.open(io.BytesIO((await client.get(done["imageUrl"])).content))
    assert picture.size == (1024, 1536)


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, bytes]:
    out, i, end = {}, start, len(data) if end is None else end
    while i < end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        out[kind] = data[i + 8 : i + size]
        i += size
    return out


def clip_seconds(data: bytes) -> float:
    """A clip's length from its movie header (mvhd: timescale, duration)."""
    mvhd = _boxes(_boxes(data)[b"moov"])[b"mvhd"]
    timescale, duration = struct.unpack(">II", mvhd[12:20])
    return duration / timescale


async def test_video_serves_real_mp4_files(client):
    body = {"prompt": "waves", "image": png_uri("navy"), "motion": "high"}
    done = await finish(client, (await submit(client, "video", body))["result"])
    assert done["action"] == "VIDEO" and done["status"] == "SUCCESS"
    assert len(done["videoUrls"]) == 4 and done["videoUrl"] == done["videoUrls"][0]["url"]
    assert "--motion high" in done["properties"]["finalPrompt"]
    labels = [b["label"] for b in done["buttons"]]
    assert labels == ["U1", "U2", "U3", "U4", "Extend (High motion)", "Extend (Low motion)"]
    clip = await client.get(done["videoUrl"])
    assert clip.headers["content-type"] == "video/mp4"
    top = _boxes(clip.content)
    assert list(top) == [b"ftyp", b"moov", b"mdat"] and top[b"ftyp"][:4] == b"isom"
    stbl = _boxes(_boxes(_boxes(_boxes(_boxes(top[b"moov"])[b"trak"])[b"mdia"])[b"minf"])[b"stbl"])
    avc1 = _boxes(stbl[b"stsd"], 8)[b"avc1"]
    assert struct.unpack(">HH", avc1[24:28]) == (192, 192)
    avcc = _boxes(avc1, 78)[b"avcC"]
    assert avcc[0] == 1 and avcc[1] == 66  # H.264 Baseline
    count = struct.unpack(">I", stbl[b"stsz"][8:12])[0]
    assert count == 20  # 5 s at 4 frames a second
    assert clip_seconds(clip.content) == 5

    pressed = await press(client, done, r"video_virtual_upscale::3::")
    upscaled = await finish(client, pressed["result"])
    assert upscaled["action"] == "UPSCALE" and len(upscaled["videoUrls"]) == 1


async def test_face_swap_returns_an_image_without_buttons(sim, client):
    body = {"sourceBase64": png_uri("yellow"), "targetBase64": png_uri("purple", (80, 60))}
    reply = (await client.post("/mj/insight-face/swap", json=body)).json()
    done = await finish(client, reply["result"])
    assert done["action"] == "SWAP_FACE" and done["buttons"] == []
    picture = Image.open(io.BytesIO((await client.get(done["imageUrl"])).content))
    assert picture.size == (80, 60)
    assert sim.submits("swap")[0].body == body


# --- notifyHook and faults -----------------------------------------------------------------


@asynccontextmanager
async def hook_receiver() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    received: list[tuple[str, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.content_type, await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    finally:
        await runner.cleanup()


async def test_notify_hook_gets_every_change_after_not_start(sim, client):
    async with hook_receiver() as (url, received):
        done = await run(client, "imagine", {"prompt": "hooked", "notifyHook": url, "state": "s"})
        for _ in range(100):
            if received and received[-1][1]["status"] == "SUCCESS":
                break
            await asyncio.sleep(0.01)
    assert {kind for kind, _ in received} == {"application/json"}
    statuses = [(body["status"], body["progress"]) for _, body in received]
    assert statuses[0] == ("SUBMITTED", "0%")
    assert ("IN_PROGRESS", "46%") in statuses and statuses[-1] == ("SUCCESS", "100%")
    assert all(status != "NOT_START" for status, _ in statuses)
    assert received[-1][1] == done
    assert done["properties"]["notifyHook"] == url
    assert all(body["state"] == "s" for _, body in received)
    assert len(sim.hook_log) == len(received)


async def test_hook_faults_drop_and_reorder(sim, client):
    async with hook_receiver() as (url, received):
        sim.faults.drop_hooks = True
        await run(client, "imagine", {"prompt": "x", "notifyHook": url})
        await asyncio.sleep(0.05)
        assert received == []
        sim.faults.drop_hooks = False
        sim.faults.reorder_hooks = True
        await run(client, "imagine", {"prompt": "y", "notifyHook": url})
        for _ in range(100):
            if len(received) >= 9:
                break
            await asyncio.sleep(0.01)
    ranks = [Task.from_json(body).rank for _, body in received]
    assert len(ranks) == 9 and ranks != sorted(ranks)
    assert {Task.from_json(body).status for _, body in received} >= {TaskState.SUCCESS}


async def test_fail_next_down_and_reset(sim, client):
    sim.faults.fail_next("imagine", status=500)
    failed = await client.post("/mj/submit/imagine", json={"prompt": "x"})
    assert failed.status_code == 500 and failed.content == b""
    body = {"success": False, "code": -1, "message": "操作失败"}
    sim.faults.fail_next("fetch", status=500, body=body)
    assert (await client.get("/mj/task/1/fetch")).json() == body
    ok = await client.post("/mj/submit/imagine", json={"prompt": "x"})
    assert ok.status_code == 200 and ok.json()["code"] == 1

    sim.faults.down = True
    assert (await client.get("/mj/task/1/fetch")).status_code == 503
    sim.faults.down = False
    sim.faults.fail_next("", status=RESET)
    with pytest.raises(httpx.TransportError):
        await client.get("/mj/task/1/fetch")
    assert (await client.get("/mj/task/1/fetch")).status_code == 200


async def test_advance_plays_the_whole_lifecycle_without_waiting():
    async with running(time_scale=0) as (sim, client):
        reply = await submit(client, "imagine", {"prompt": "frozen"})
        assert (await fetch(client, reply["result"]))["status"] == "NOT_START"
        sim.advance(1.3)  # a free slot starts a job after 0.4 steps (step_s = 3)
        assert (await fetch(client, reply["result"]))["status"] == "SUBMITTED"
        sim.advance(1.5)
        assert (await fetch(client, reply["result"]))["progress"] == "0%"
        sim.advance(3)
        assert (await fetch(client, reply["result"]))["progress"] == "15%"
        sim.advance(100)
        done = await fetch(client, reply["result"])
        assert done["status"] == "SUCCESS"
        # 0 % after half a step, 15..93 % one step each, SUCCESS half a step later
        assert abs(done["finishTime"] - done["startTime"] - 21_000) <= 1


async def test_stall_word_times_out_and_cancel_stops_a_task():
    async with running(time_scale=0, timeout_s=300) as (sim, client):
        stuck = await submit(client, "imagine", {"prompt": "please stall here"})
        other = await submit(client, "imagine", {"prompt": "to be cancelled"})
        sim.advance(5)
        cancelled = await client.post(f"/mj/task/{other['result']}/cancel")
        assert cancelled.json()["code"] == 1
        assert (await fetch(client, other["result"]))["status"] == "CANCEL"
        sim.advance(55)
        assert (await fetch(client, stuck["result"]))["progress"] == "46%"
        sim.advance(300)
        done = await fetch(client, stuck["result"])
        assert (done["status"], done["failReason"]) == ("FAILURE", "任务超时")


async def test_reseller_quirks_numeric_ids_zero_times_expiring_images_duplicate_hooks():
    async with running(time_scale=0) as (sim, client), hook_receiver() as (url, received):
        sim.faults.numeric_ids = True
        sim.faults.zero_times = True
        sim.faults.duplicate_hooks = True
        sim.faults.image_ttl_s = 60
        reply = await submit(client, "imagine", {"prompt": "quirky", "notifyHook": url})
        assert isinstance(reply["result"], int)
        task_id = str(reply["result"])
        waiting = await fetch(client, task_id)
        assert (waiting["startTime"], waiting["progress"], waiting["imageUrl"]) == (0, "", "")
        sim.advance(30)
        done = await fetch(client, task_id)
        assert done["status"] == "SUCCESS"
        assert (await client.get(done["imageUrl"])).status_code == 200
        sim.advance(61)
        assert (await client.get(done["imageUrl"])).status_code == 404
        for _ in range(200):
            if len(received) >= 2 * 9:
                break
            await asyncio.sleep(0.01)
        statuses = [body["status"] for _, body in received]
        assert statuses[:2] == ["SUBMITTED", "SUBMITTED"] and statuses[-2:] == ["SUCCESS"] * 2


@pytest.mark.parametrize(
    ("flavour", "prompt", "prompt_en", "final"),
    [
        # Java OSS 2.3: the text in prompt and promptEn, no properties.finalPrompt (mj-api §3.5)
        ("java", True, True, False),
        ("plus", True, True, True),
        ("trueai", False, True, True),  # trueai: promptEn and finalPrompt
        ("superset", True, True, True),
    ],
)
async def test_describe_text_is_where_each_provider_puts_it(flavour, prompt, prompt_en, final):
    async with running(flavour=flavour) as (_, client):
        reply = await submit(client, "describe", {"base64": png_uri("plum")})
        done = await finish(client, reply["result"])
        text = next(v for v in (done["promptEn"], done["prompt"]) if v)
        assert text.startswith("1️⃣") and "4️⃣" in text
        assert (done["prompt"] == text, done["promptEn"] == text) == (prompt, prompt_en)
        assert ("finalPrompt" in done["properties"]) is final
        assert done["properties"].get("finalPrompt", text) == text


@pytest.mark.parametrize(
    ("flavour", "action", "buttons"),
    [
        ("superset", "EDIT", ["U1", "U2", "U3", "U4"]),  # not from a captured answer
        ("trueai", "EDIT", ["U1", "U2", "U3", "U4"]),  # trueai's buttons are not known
        ("new-api", "EDITS", ["U1", "U2", "U3", "U4"]),  # the upstream's, as the superset
        ("openai-hk", "EDITS", []),  # its document: "buttons": [], four imageUrls
    ],
)
async def test_edits_action_and_buttons_per_flavour(flavour, action, buttons):
    async with running(flavour=flavour) as (_, client):
        body = {"prompt": "make it snowy", "image": png_uri("olive")}
        done = await finish(client, (await submit(client, "edits", body))["result"])
        assert done["action"] == action
        assert [b["label"] for b in done["buttons"]] == buttons
        assert len(done.get("imageUrls") or []) == (4 if flavour == "openai-hk" else 0)


# --- video studio: options and extend ----------------------------------------------------


async def clip_lengths(client: httpx.AsyncClient, task: dict[str, Any]) -> list[float]:
    return [clip_seconds((await client.get(item["url"])).content) for item in task["videoUrls"]]


async def test_video_options_reach_the_prompt_and_the_clips():
    """batchSize 2 makes two clips, HD larger frames; loop and an end frame end the prompt as
    trueai builds it (--end loop, --end <url>, --bs 2)."""
    async with running(flavour="trueai") as (_, client):
        body = {
            "prompt": "waves",
            "image": png_uri("navy"),
            "loop": True,
            "batchSize": 2,
            "videoType": "vid_1.1_i2v_720",
        }
        done = await run(client, "video", body)
        assert len(done["videoUrls"]) == 2
        assert done["properties"]["finalPrompt"].endswith(
            "waves --video 1 --end loop --motion low --bs 2"
        )
        clip = (await client.get(done["videoUrls"][0]["url"])).content
        moov = _boxes(_boxes(clip)[b"moov"])
        tkhd = _boxes(moov[b"trak"])[b"tkhd"]
        assert struct.unpack(">II", tkhd[-8:]) == (288 << 16, 288 << 16)

        ended = await run(
            client,
            "video",
            {"prompt": "waves", "image": png_uri("navy"), "endImage": png_uri("red")},
        )
        final = ended["properties"]["finalPrompt"]
        assert " --end http" in final and "/input_2." in final and len(ended["videoUrls"]) == 4


@pytest.mark.parametrize(
    ("flavour", "spelling"),
    [
        ("trueai", {"taskId": "{id}", "index": 2}),
        ("openai-hk", {"taskId": "{id}", "index": 2}),
        ("superset", {"task_id": "{id}", "index": "2"}),  # the reseller spelling
    ],
)
async def test_extend_makes_clips_four_seconds_longer_up_to_21(flavour, spelling):
    async with running(flavour=flavour) as (_, client):
        task = await run(client, "video", {"prompt": "waves", "image": png_uri("navy")})
        assert await clip_lengths(client, task) == [5.0] * 4
        lengths = []
        for _ in range(4):  # 5 -> 9 -> 13 -> 17 -> 21
            body = {"action": "extend", "motion": "high", "prompt": "waves"}
            body |= {k: (task["id"] if v == "{id}" else v) for k, v in spelling.items()}
            reply = await submit(client, "video", body)
            assert reply["code"] == 1, reply
            task = await finish(client, reply["result"])
            assert task["action"] == "VIDEO" and task["status"] == "SUCCESS"
            lengths.append((await clip_lengths(client, task))[0])
        assert lengths == [9.0, 13.0, 17.0, 21.0]
        body = {"action": "extend", "prompt": "waves"}
        body |= {k: (task["id"] if v == "{id}" else v) for k, v in spelling.items()}
        beyond = await submit(client, "video", body)
        assert beyond["code"] == 4  # nothing past 21 s


async def test_a_looped_extend_ends_on_its_first_frame():
    async with running(flavour="openai-hk") as (_, client):
        task = await run(client, "video", {"prompt": "waves", "image": png_uri("navy")})
        body = {"action": "extend", "taskId": task["id"], "index": 0, "loop": True}
        looped = await finish(client, (await submit(client, "video", body))["result"])
        assert looped["properties"]["finalPrompt"].endswith(" --end loop")
        assert await clip_lengths(client, looped) == [9.0] * 4


async def test_extend_refuses_a_clip_the_video_does_not_have_and_the_other_spelling():
    async with running(flavour="trueai") as (_, client):
        task = await run(
            client, "video", {"prompt": "waves", "image": png_uri("navy"), "batchSize": 1}
        )
        body = {"action": "extend", "taskId": task["id"], "index": 1, "prompt": "waves"}
        assert (await submit(client, "video", body))["code"] == 4  # one clip: only index 0
        snake = {"action": "extend", "task_id": task["id"], "index": "0", "prompt": "waves"}
        response = await client.post("/mj/submit/video", json=snake)
        assert response.status_code == 404 and response.json()["code"] == 3  # no taskId
