"""bot.studio: the per-picture and per-clip buttons, the rule a press checks, /video's options;
on the shapes openai-hk's document shows (tests/fixtures/openai_hk) and a clip the simulator
makes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot import buttons, media
from bot.mj.models import Task
from bot.studio import (
    BadOption,
    Verb,
    VideoOptions,
    clip_album,
    clip_caption,
    clip_rows,
    clips,
    offers,
    parse_slot,
    parse_video,
    picture_album,
    picture_rows,
    pictures,
    slot,
)
from mjsim import SimConfig, Simulator, video

FIXTURES = Path(__file__).parent / "fixtures" / "openai_hk"
KEY = "abcdefgh23"


def documented(name: str, **changes: Any) -> Task:
    task = Task.from_json({**json.loads((FIXTURES / f"{name}.json").read_text("utf-8")), **changes})
    assert task is not None
    return task


def labels(rows: Any) -> list[list[str]]:
    return [[c.label for c in row] for row in rows]


def test_an_openai_hk_edit_is_four_pictures_with_five_buttons_each() -> None:
    task = documented("edits_fetch")
    assert pictures(task) == tuple(
        f"https://cdn.midjourney.com/1651da63-85c6-45c7-9679-f42381c73c78/0_{i}.png"
        for i in range(4)
    )
    rows = picture_rows(KEY, task, "en")
    assert labels(rows) == [
        [f"📎 {n}", f"✏️ {n}", f"🎬 {n}", f"🖼 {n}", f"🔍 {n}"] for n in range(1, 5)
    ]
    tokens = [buttons.decode(c.token) for row in rows for c in row]
    assert all(tok is not None and tok.key == KEY for tok in tokens)
    assert [tok.slot for tok in tokens[:5]] == ["file0", "edit0", "anim0", "ref0", "desc0"]
    assert tokens[-1] is not None and tokens[-1].slot == "desc3"


def test_pictures_only_without_buttons_and_only_when_done() -> None:
    with_buttons = documented(
        "edits_fetch", buttons=[{"customId": "MJ::JOB::upsample::1::x", "label": "U1"}]
    )
    assert pictures(with_buttons) == ()  # the API's own buttons are drawn as always
    assert pictures(documented("edits_fetch", status="IN_PROGRESS")) == ()
    assert pictures(documented("video_fetch")) == ()  # a video's clips are clips


def test_the_press_rule_is_the_drawing_rule() -> None:
    edit = documented("edits_fetch")
    assert offers(edit, Verb.EDIT, 3) and not offers(edit, Verb.EDIT, 4)
    assert not offers(edit, Verb.EXTEND_HIGH, 0)  # no clip to extend under pictures
    vid = documented("video_fetch")
    assert offers(vid, Verb.EXTEND_LOW, 3) and offers(vid, Verb.FILE, 0)
    assert not offers(vid, Verb.EDIT, 0)  # clips are not edited
    assert not offers(vid, Verb.LOOP, 0, seconds=21.0)  # as long as a clip gets
    assert offers(vid, Verb.FILE, 0, seconds=21.0)
    extend = {"customId": "MJ::JOB::animate_high_extend::1::h", "label": "Extend (High motion)"}
    with_extend = documented("video_fetch", buttons=[extend])
    assert not offers(with_extend, Verb.EXTEND_HIGH, 0)  # the API's button does it
    assert offers(with_extend, Verb.EXTEND_HIGH, 0, hidden=("MJ::JOB::animate_",))


def test_clip_rows_and_the_running_length() -> None:
    vid = documented("video_fetch")
    assert len(clips(vid)) == 4
    rows = clip_rows(KEY, vid, "en", lengths=[5.2, 9.0, 17.0, 21.1])
    assert labels(rows) == [
        ["➕ 1 high", "➕ 1 low", "🔁 1", "📎 1"],
        ["➕ 2 high", "➕ 2 low", "🔁 2", "📎 2"],
        ["➕ 3 high", "➕ 3 low", "🔁 3", "📎 3"],
        ["📎 4"],  # 21 s: nothing longer
    ]
    assert clip_caption(1, 9.0, "en") == "2 · 9 s"
    assert clip_caption(3, 21.1, "zh") == "4 · 21 秒（已是最长）"


def test_slots() -> None:
    assert slot(Verb.EXTEND_HIGH, 2) == "exth2" and parse_slot("exth2") == (Verb.EXTEND_HIGH, 2)
    for junk in ("exth4", "zzzz1", "file", "3", "edit22", "anim-1"):
        assert parse_slot(junk) is None
    token = buttons.encode(KEY, "loop3")
    assert buttons.decode(token) is not None and len(token.encode()) <= 64


@pytest.mark.parametrize(
    ("args", "prompt", "options"),
    [
        ("a fox runs", "a fox runs", VideoOptions()),
        ("--motion high a fox", "a fox", VideoOptions(motion="high")),
        ("a fox --bs 2 --loop --hd", "a fox", VideoOptions(batch=2, loop=True, hd=True)),
        ("--loop a fox --batch 1", "a fox", VideoOptions(loop=True, batch=1)),
    ],
)
def test_video_options(args: str, prompt: str, options: VideoOptions) -> None:
    assert parse_video(args) == (prompt, options)


def test_video_options_sent_and_charged() -> None:
    plain = VideoOptions()
    assert (plain.video_type, plain.batch_size, plain.cost) == ("", 0, "video")
    hd = VideoOptions(hd=True, batch=2, loop=True, motion="high")
    assert (hd.video_type, hd.batch_size, hd.cost) == ("vid_1.1_i2v_720", 2, "video_hd")
    assert hd.summary("en") == "720p · 2 clips · high motion · loop"


@pytest.mark.parametrize(
    ("args", "key"), [("--bs 3 a", "studio.bad_batch"), ("--motion fast a", "studio.bad_motion")]
)
def test_bad_video_options(args: str, key: str) -> None:
    with pytest.raises(BadOption) as refused:
        parse_video(args)
    assert refused.value.key == key


def test_mp4_seconds_reads_the_clip() -> None:
    still = Image.new("RGB", (32, 32), "navy")
    assert media.mp4_seconds(video.mp4(video.animate(still, 9.0, 4), 4)) == 9.0
    assert media.mp4_seconds(b"\x89PNG not a clip") is None
    assert media.mp4_seconds(b"") is None


# --- the albums, on what the simulator's openai-hk flavour answers -------------------------


@pytest.fixture
async def hk() -> AsyncIterator[tuple[Simulator, httpx.AsyncClient]]:
    sim = Simulator(SimConfig(time_scale=0.01, flavour="openai-hk"))
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield sim, http
    finally:
        await sim.stop()


async def finished(http: httpx.AsyncClient, route: str, body: dict[str, Any]) -> Task:
    reply = (await http.post(f"/mj/submit/{route}", json=body)).json()
    for _ in range(600):
        task = Task.from_json((await http.get(f"/mj/task/{reply['result']}/fetch")).json())
        if task is not None and task.is_final:
            return task
        await asyncio.sleep(0.01)
    raise AssertionError("the task never finished")


def png_uri(colour: str) -> str:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def convert(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def test_an_edit_arrives_as_its_four_pictures(hk) -> None:
    _, http = hk
    task = await finished(http, "edits", {"prompt": "snowy", "image": png_uri("olive")})

    async def fetch(url: str) -> bytes:
        return (await http.get(url)).content

    view = await picture_album(KEY, task, "snowy", "en", fetch=fetch, convert=convert)
    assert view is not None and len(view.media) == 4
    assert [m.kind for m in view.media] == ["photo"] * 4
    assert [m.caption for m in view.media] == ["1", "2", "3", "4"]
    originals = [(await http.get(url)).content for url in task.image_urls]
    assert len(set(originals)) == 4  # four different pictures, each one of them
    for item, original in zip(view.media, originals, strict=True):
        assert item.data[:3] == b"\xff\xd8\xff"
        assert Image.open(io.BytesIO(item.data)).size == Image.open(io.BytesIO(original)).size
    assert [len(row) for row in view.rows] == [5, 5, 5, 5]
    assert "📎 its file" in view.text


async def test_a_video_arrives_as_four_clips_with_lengths_and_thumbnails(hk) -> None:
    _, http = hk
    task = await finished(http, "video", {"prompt": "waves", "image": png_uri("navy")})
    assert task.buttons == () and task.raw["videoUrl"] == "" and len(task.video_urls) == 4

    async def fetch(url: str) -> bytes:
        return (await http.get(url)).content

    view = await clip_album(KEY, task, "waves", "zh", fetch=fetch, convert=convert)
    assert view is not None and [m.kind for m in view.media] == ["video"] * 4
    assert [m.caption for m in view.media] == [f"{n} · 5 秒" for n in range(1, 5)]
    thumb = Image.open(io.BytesIO(view.media[0].thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) <= 320
    assert [c.label for c in view.rows[0]] == [
        "➕ 1 高动态",
        "➕ 1 低动态",
        "🔁 1",
        "📎 1",
    ]


async def test_nothing_downloadable_is_no_album(hk) -> None:
    _, http = hk
    task = await finished(http, "edits", {"prompt": "snowy", "image": png_uri("olive")})

    async def broken(url: str) -> bytes:
        raise media.MediaError("gone")

    assert await picture_album(KEY, task, "x", "en", fetch=broken, convert=convert) is None


async def test_trueai_clips_get_their_own_thumbnails() -> None:
    """trueai names a thumbnail per clip (videoUrls: [{url, thumbnail}]): each clip gets its
    own, not the video's cover."""
    sim = Simulator(SimConfig(time_scale=0.01, flavour="trueai"))
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            task = await finished(http, "video", {"prompt": "waves", "image": png_uri("navy")})
            own = [item["thumbnail"] for item in task.raw["videoUrls"]]
            served = [(await http.get(u)) for u in own]
            assert all(r.headers["content-type"] == "image/jpeg" for r in served)

            async def fetch(u: str) -> bytes:
                return (await http.get(u)).content

            view = await clip_album(KEY, task, "waves", "en", fetch=fetch, convert=convert)
    finally:
        await sim.stop()
    assert view is not None
    expected = [media.to_thumbnail(r.content) for r in served]
    assert [m.thumbnail for m in view.media] == expected
    assert len(set(expected)) == 4  # four first frames, not one cover
