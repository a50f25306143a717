"""The studio in-process (tests/inprocess.py) against the simulator's openai-hk flavour, which
answers as openai-hk's document does: an EDITS result is four imageUrls and ``buttons: []``,
a VIDEO result four videoUrls and ``buttons: []``. What the user sees, what each of our own
buttons submits (the exact request the simulator received) and what the ledger says."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import pytest

from bot import buttons
from bot.usecases.jobs import Kind
from bot.views import View
from tests.dbrows import stored
from tests.inprocess import World, png, worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def decoded(uri: str) -> bytes:
    assert uri.startswith("data:image/"), uri[:40]
    return base64.b64decode(uri.split(",", 1)[1])


async def started(w: World, kind: Kind, args: str, images: list[bytes]) -> str:
    """A command from the owner: the key of the task it made."""
    before = {r["key"] for r in stored(w.store, "SELECT key FROM tasks")}
    await w.service.start_kind(kind, w.who(), args, images)
    (key,) = {r["key"] for r in stored(w.store, "SELECT key FROM tasks")} - before
    return key


async def child_of(w: World, parent: str) -> str:
    async def found() -> str | None:
        rows = stored(
            w.store,
            "SELECT key FROM tasks WHERE parent_key = ? ORDER BY created_at DESC LIMIT 1",
            parent,
        )
        return rows[0]["key"] if rows else None

    return await w.until(found)


def labels(view: View) -> list[list[str]]:
    return [[c.label for c in row] for row in view.rows]


async def ledger(w: World, key: str) -> list[tuple[str, int, str]]:
    return [(r["action"], r["units"], r["outcome"]) for r in await w.settled(key)]


async def test_an_openai_hk_edit_arrives_as_four_pictures_with_their_buttons(world):
    async with world(flavour="openai-hk") as w:
        photo = png(colour="olive")
        key = await started(w, Kind.EDIT, "make it snowy", [photo])
        message = await w.result(key)
        view = w.chat.shown[message]
        assert [m.kind for m in view.media] == ["photo"] * 4
        assert [m.caption for m in view.media] == ["1", "2", "3", "4"]
        assert labels(view) == [
            [f"📎 {n}", f"✏️ {n}", f"🎬 {n}", f"🖼 {n}", f"🔍 {n}"] for n in range(1, 5)
        ]
        assert await ledger(w, key) == [("edit", 1, "success")]
        row = await w.store.task(key)
        assert row is not None and row.task is not None
        pictures = [(await w.downloader.get(url)) for url in row.task.image_urls]

        # 🎬 2: a video from the second picture, charged as a video (8 units)
        (notice,) = await w.press(message, "🎬 2")
        assert not notice.alert
        animated = await child_of(w, key)
        await w.result(animated)
        body = w.sim.submits("video")[-1].body
        assert decoded(body["image"]) == pictures[1] and body["motion"] == "low"
        assert "action" not in body and body["state"] == animated
        assert await ledger(w, animated) == [("video", 8, "success")]

        # 🔍 3: four prompts for the third picture
        await w.press(message, "🔍 3")
        await w.until(lambda: w.submits("describe") == 1)
        assert decoded(w.sim.submits("describe")[0].body["base64"]) == pictures[2]

        # 📎 4: the fourth picture's original file, posted once
        before = len(w.chat.sent)
        await asyncio.gather(*(w.press(message, "📎 4") for _ in range(3)))
        await w.until(lambda: len(w.chat.sent) > before)
        await asyncio.sleep(0.3)
        files = [v for _, v in w.chat.sent[before:] if v.media and v.media[0].kind == "document"]
        assert len(files) == 1 and files[0].media[0].data == pictures[3]


async def test_edit_again_and_image_prompt_ask_then_submit_with_the_picture(world):
    async with world(flavour="openai-hk") as w:
        key = await started(w, Kind.EDIT, "make it snowy", [png(colour="teal")])
        message = await w.result(key)
        row = await w.store.task(key)
        assert row is not None and row.task is not None
        first = await w.downloader.get(row.task.image_urls[0])
        spent = await w.spent()

        await w.press(message, "✏️ 1")  # asks; nothing charged for asking
        ask = await w.until(lambda: next((m for m, v in w.chat.sent if v.ask), None))
        assert "picture 1" in w.chat.shown[ask].text and await w.spent() == spent
        assert await w.service.answer(w.who(message="reply"), ask, "now at night")
        await w.until(lambda: w.submits("edits") == 2)
        body = w.sim.submits("edits")[-1].body
        assert body["prompt"] == "now at night" and decoded(body["image"]) == first

        await w.press(message, "🖼 1")
        ask2 = await w.until(lambda: next((m for m, v in w.chat.sent if v.ask and m != ask), None))
        assert await w.service.answer(w.who(message="reply2"), ask2, "a fox in this style")
        await w.until(lambda: w.submits("imagine") == 1)
        body = w.sim.submits("imagine")[0].body
        assert body["prompt"].startswith("a fox in this style")
        assert [decoded(u) for u in body["base64Array"]] == [first]


async def test_forged_studio_presses_buy_nothing(world):
    """A token for a button never drawn: 🎬 under a grid (no imageUrls), ➕ under pictures,
    a fifth picture, a stranger's press."""
    async with world(flavour="openai-hk") as w:
        grid, _ = await w.imagine("a lighthouse at dawn")
        edit = await started(w, Kind.EDIT, "make it snowy", [png()])
        message = await w.result(edit)
        spent = await w.spent()
        forged: list[tuple[str, str]] = [(grid, "anim0"), (edit, "exth0"), (grid, "file2")]
        for key, slot in forged:
            (notice,) = await asyncio.gather(w.service.press(w.who(), buttons.encode(key, slot)))
            assert notice.alert, (key, slot)
        (stranger,) = await w.press(message, "🎬 1", user="999")
        assert stranger.alert
        await asyncio.sleep(0.5)
        assert w.submits("video") == 0 and await w.spent() == spent


async def test_an_openai_hk_video_is_extended_looped_and_stops_at_21_s(world):
    async with world(flavour="openai-hk") as w:
        photo = png(colour="navy")
        key = await started(w, Kind.VIDEO, "--motion high waves crash", [photo])
        message = await w.result(key)
        body = w.sim.submits("video")[0].body
        assert decoded(body.pop("image")) == photo
        assert body == {"prompt": "waves crash", "motion": "high", "state": key}
        progress = next(v.text for _, v in w.chat.sent if not v.media and "Video" in v.text)
        assert "480p · 4 clips · high motion · 8 units" in progress
        view = w.chat.shown[message]
        assert [m.caption for m in view.media] == [f"{n} · 5 s" for n in range(1, 5)]
        assert all(m.kind == "video" and m.thumbnail[:3] == b"\xff\xd8\xff" for m in view.media)
        assert labels(view)[2] == ["➕ 3 high", "➕ 3 low", "🔁 3", "📎 3"]
        assert await ledger(w, key) == [("video", 8, "success")]
        parent = (await w.store.task(key)).task  # type: ignore[union-attr]
        assert parent is not None

        # ➕ 3 high, then ➕ 1 low on the longer clips, 🔁 2, ➕ 1 high: 9, 13, 17, 21 s
        steps = [("➕ 3 high", 2, "high", False), ("➕ 1 low", 0, "low", False)]
        steps += [("🔁 2", 1, "low", True), ("➕ 1 high", 0, "high", False)]
        for seconds, (label, index, motion, loop) in zip((9, 13, 17, 21), steps, strict=True):
            (notice,) = await w.press(message, label)
            assert not notice.alert, notice.text
            child = await child_of(w, key)
            message = await w.result(child)
            sent = w.sim.submits("video")[-1].body
            expected = {
                "action": "extend",
                "taskId": parent.id,
                "index": index,
                "motion": motion,
                "prompt": "waves crash",
                "state": child,
            }
            assert sent == ({**expected, "loop": True} if loop else expected)
            assert await ledger(w, child) == [("video", 8, "success")]
            view = w.chat.shown[message]
            longest = " (as long as a clip gets)" if seconds == 21 else ""
            captions = [f"{n} · {seconds} s{longest}" for n in range(1, 5)]
            assert [m.caption for m in view.media] == captions
            key, parent = child, (await w.store.task(child)).task  # type: ignore[union-attr]
            assert parent is not None

        # 21 s: only the files are offered, and a forged ➕ is refused before anything is spent
        assert labels(w.chat.shown[message]) == [[f"📎 {n}"] for n in range(1, 5)]
        spent, submitted = await w.spent(), w.submits("video")
        # the length is the one the album read: the clips need not be fetched again (here
        # they could not be: the CDN links expired)
        w.sim.faults.image_ttl_s = 0.0
        (refused,) = await asyncio.gather(w.service.press(w.who(), buttons.encode(key, "exth0")))
        assert refused.alert and "21" in refused.text
        await asyncio.sleep(0.3)
        assert w.submits("video") == submitted and await w.spent() == spent


async def test_video_options_end_frame_by_reply_hd_and_a_failed_video_refunds(world):
    async with world(flavour="openai-hk") as w:
        start, end = png(colour="navy"), png(colour="gold")
        await w.service.start_kind(Kind.VIDEO, w.who(), "--end --bs 2 --loop --hd sunrise", [start])
        ask = await w.until(lambda: next((m for m, v in w.chat.sent if v.ask), None))
        assert "end frame" in w.chat.shown[ask].text and w.submits("video") == 0
        assert await w.service.answer(w.who(message="r"), ask, "", [end])
        await w.until(lambda: w.submits("video") == 1)
        body = w.sim.submits("video")[0].body
        assert decoded(body.pop("image")) == start and decoded(body.pop("endImage")) == end
        key = body.pop("state")
        assert body == {
            "prompt": "sunrise",
            "motion": "low",
            "loop": True,
            "batchSize": 2,
            "videoType": "vid_1.1_i2v_720",
        }
        message = await w.result(key)
        assert len(w.chat.shown[message].media) == 2
        assert await ledger(w, key) == [("video_hd", 16, "success")]
        progress = [v.text for _, v in w.chat.sent if not v.media and "720p" in v.text]
        assert progress and "2 clips · low motion · loop · end frame · 16 units" in progress[0]

        (await w.service.start_kind(Kind.VIDEO, w.who(), "--bs 3 waves", [start]))
        assert w.submits("video") == 1  # refused before anything: --bs takes 1, 2 or 4
        assert "--bs takes 1, 2 or 4" in w.chat.sent[-1][1].text

        failed = await started(w, Kind.VIDEO, "this will fail", [start])
        assert await ledger(w, failed) == [("video", 8, "refunded")]


async def test_animate_on_an_upscale_posts_clips_that_extend_through_submit_video(world):
    async with world(flavour="openai-hk") as w:
        grid, message = await w.imagine("a red fox")
        await w.press(message, "U1")
        upscale = await child_of(w, grid)
        shown = await w.result(upscale)
        await w.press(shown, "🎞️ Animate (High motion)")
        video = await child_of(w, upscale)
        clips = await w.result(video)
        view = w.chat.shown[clips]
        assert [m.kind for m in view.media] == ["video"] * 4
        assert labels(view)[0] == ["➕ 1 high", "➕ 1 low", "🔁 1", "📎 1"]
        assert await ledger(w, video) == [("video", 8, "success")]
        row = await w.store.task(video)
        assert row is not None and row.task is not None

        await w.press(clips, "➕ 4 low")
        await w.until(lambda: w.submits("video") == 1)
        body = w.sim.submits("video")[0].body
        assert (body["action"], body["taskId"], body["index"]) == ("extend", row.task.id, 3)


async def test_where_a_video_has_its_own_extend_buttons_those_are_pressed(world):
    """The superset answers a video with U1-U4 and Extend buttons (trueai's set): those are
    drawn and pressed (/submit/action), and our per-clip ➕ is neither drawn nor accepted."""
    async with world() as w:
        key = await started(w, Kind.VIDEO, "waves", [png(colour="navy")])
        message = await w.result(key)
        drawn = labels(w.chat.shown[message])
        assert ["U1", "U2", "U3", "U4"] in drawn
        assert ["🎞️ Extend (High motion)", "🎞️ Extend (Low motion)"] in drawn
        assert drawn[-4:] == [[f"📎 {n}"] for n in range(1, 5)]
        (forged,) = await asyncio.gather(w.service.press(w.who(), buttons.encode(key, "exth0")))
        assert forged.alert and w.submits("video") == 1
        await w.press(message, "🎞️ Extend (High motion)")
        await w.until(lambda: w.submits("action") == 1)
        assert (
            w.sim.submits("action")[0].body["customId"].startswith("MJ::JOB::animate_high_extend::")
        )
        assert w.submits("video") == 1


async def test_a_refused_video_is_refunded(world):
    async with world(flavour="openai-hk") as w:
        refused = await started(w, Kind.VIDEO, "gore on the beach", [png()])
        assert await ledger(w, refused) == [("video", 8, "refunded")]
        assert await w.spent() == 0


async def test_describe_asks_chinese_suggestions_for_a_chinese_user_on_trueai(world):
    async with world(flavour="trueai", provider="trueai") as w:
        await w.service.start_kind(Kind.DESCRIBE, replace(w.who(), language="zh"), "", [png()])
        await w.until(lambda: w.submits("describe") == 1)
        body = w.sim.submits("describe")[0].body
        assert body["language"] == "zh" and body["base64"].startswith("data:image/png")
        await w.service.start_kind(Kind.DESCRIBE, w.who(), "", [png(colour="red")])
        await w.until(lambda: w.submits("describe") == 2)
        assert "language" not in w.sim.submits("describe")[1].body  # English: Midjourney's own


async def test_a_hosted_picture_is_described_by_its_link(world):
    """Where describe takes a link ([midjourney] describe_link), 🔍 sends the picture's own
    URL instead of downloading and uploading it again."""
    async with world(flavour="openai-hk", overrides={"describe_link": True}) as w:
        key = await started(w, Kind.EDIT, "make it snowy", [png()])
        message = await w.result(key)
        row = await w.store.task(key)
        assert row is not None and row.task is not None
        await w.press(message, "🔍 2")
        await w.until(lambda: w.submits("describe") == 1)
        body = dict(w.sim.submits("describe")[0].body)
        body.pop("state")
        assert body == {"link": row.task.image_urls[1]}
