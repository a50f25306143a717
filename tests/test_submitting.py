"""The commands that spend money (bot/usecases/submitting.py): what they check before
anything is spent, the photos they take or ask for, and the request each one sends.
In-process against the simulator (tests/inprocess.py)."""

from __future__ import annotations

import pytest

from bot import commands
from bot.i18n import t
from bot.usecases import MAX_PROMPT
from tests.dbrows import stored
from tests.inprocess import png, worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


async def test_the_users_suffix_is_sent_with_the_prompt_but_not_twice(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "settings", "--ar 3:2")
        await commands.run(w.service, w.who(), "imagine", "a fox")
        await commands.run(w.service, w.who(), "imagine", "a hare --ar 3:2")
        await w.until(lambda: w.submits("imagine") == 2)
        prompts = [r.body["prompt"] for r in w.sim.submits("imagine")]
        assert prompts == ["a fox --ar 3:2", "a hare --ar 3:2"]


@pytest.mark.parametrize(
    ("name", "args", "photos", "said"),
    [
        ("imagine", "   ", 0, t("imagine.empty", "en")),
        ("imagine", "x" * (MAX_PROMPT + 1), 0, t("prompt.too_long", "en", limit=MAX_PROMPT)),
        ("blend", "round", 2, t("blend.dimensions", "en")),
        ("swap", "", -2, t("swap.same", "en")),
        ("describe", "", -1, t("upload.not_image", "en")),
        ("swap", "", 3, "This needs exactly 2 photos; I got 3."),
        ("blend", "", 6, "This needs 2–5 photos; I got 6."),
    ],
)
async def test_what_is_refused_before_anything_is_spent(world, name, args, photos, said):
    async with world() as w:
        colours = ["red", "blue", "green", "white", "black", "yellow"]
        several = {n: [png((80, 80), c) for c in colours[:n]] for n in (3, 6)}
        images = {0: [], 2: [png(), png((80, 80), "red")], -2: [png(), png()], **several}.get(
            photos, [b"GIF89a not really"]
        )
        await commands.run(w.service, w.who(), name, args, images)
        assert w.chat.texts() == [said]
        assert w.sim.submits() == []
        assert stored(w.store, "SELECT * FROM ledger") == []
        assert stored(w.store, "SELECT * FROM tasks") == []


async def test_blend_sends_every_photo_and_the_shape(world):
    async with world() as w:
        photos = [png((64, 64), "red"), png((64, 64), "blue"), png((64, 64), "green")]
        await commands.run(w.service, w.who(), "blend", "landscape", photos)
        (sent,) = w.sim.submits("blend")
        assert sent.body["dimensions"] == "LANDSCAPE"
        assert len(sent.body["base64Array"]) == 3
        assert all(uri.startswith("data:image/") for uri in sent.body["base64Array"])


async def test_a_photo_command_without_a_photo_asks_and_the_answer_runs_it_once(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "describe", "")
        asked, view = w.chat.sent[-1]
        assert view.text == t("ask.describe", "en") and view.ask is not None
        assert w.sim.submits() == []
        assert await w.service.answer(w.who(), asked, "", [png()]) is True
        assert await w.service.answer(w.who(), asked, "", [png()]) is True  # answered twice
        await w.until(lambda: w.submits("describe") == 1)
        assert len(stored(w.store, "SELECT * FROM tasks WHERE kind = 'describe'")) == 1


async def test_swap_with_one_photo_keeps_it_as_the_face_and_asks_for_the_target(world):
    async with world() as w:
        face, target = png((64, 64), "red"), png((64, 64), "blue")
        await commands.run(w.service, w.who(), "swap", "", [face])
        asked, view = w.chat.sent[-1]
        assert view.text == t("ask.swap_target", "en")
        (ask,) = stored(w.store, "SELECT * FROM asks")
        assert ask["command"] == "swap" and ask["args"].startswith("face=")
        await w.service.answer(w.who(), asked, "", [target])
        (sent,) = w.sim.submits("swap")
        assert sent.body["sourceBase64"] != sent.body["targetBase64"]
        assert sent.body["sourceBase64"].startswith("data:image/")


async def test_video_sends_its_motion_and_the_prompt_without_the_option(world):
    async with world() as w:
        await commands.run(w.service, w.who(), "video", "--motion high waves at night", [png()])
        (sent,) = w.sim.submits("video")
        assert sent.body["motion"] == "high"
        assert sent.body["prompt"] == "waves at night"
        assert sent.body["image"].startswith("data:image/")
