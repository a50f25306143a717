"""Prompting (issue 16) in-process against the simulator: the check before anything is spent,
settings applied to what is submitted, ✨ Full quality, references and presets. Each test reads
what the API received, what the chat shows and the ledger."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot import buttons, commands
from bot.chat import MessageRef
from bot.config import AccessConfig
from bot.mj.prompt import RefKind
from tests.dbrows import stored
from tests.inprocess import CHAT, OWNER, World, png, worlds

IMG = "https://cdn.discordapp.com/attachments/1/2/p.png"


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def ledger(w: World) -> list[dict]:
    return stored(w.store, "SELECT * FROM ledger")


def last(w: World) -> tuple[str, object]:
    return w.chat.sent[-1]


async def tap(w: World, message_id: str, label: str, user: str = OWNER):
    """Press a button on the message that shows it (a press names its message)."""
    req = w.who(user, message=message_id)
    return await w.service.press(req, w.chat.tokens(message_id)[label])


async def settled_sends(w: World) -> None:
    await asyncio.sleep(0.2)  # spawned work after a press (the submit) gets its turn


async def test_a_prompt_with_an_error_is_held_until_fixed_and_then_sent_once(world) -> None:
    async with world() as w:
        await w.service.imagine(w.who(), f"a fox --cref {IMG} --v 7")
        # Nothing spent yet: no submit, no ledger row, no task.
        assert w.submits("imagine") == 0 and ledger(w) == []
        assert stored(w.store, "SELECT key FROM tasks") == []
        held_id, held = last(w)
        assert "⛔ --cref does not work on V7: use --oref (omni reference) instead." in held.text
        assert list(w.chat.tokens(held_id)) == ["✅ Fix and send", "✖️ Cancel"]
        token = w.chat.tokens(held_id)["✅ Fix and send"]
        # someone else cannot send it
        other = await w.service.press(w.who("8"), token)
        assert other.alert and w.submits("imagine") == 0
        notices = await asyncio.gather(*(w.service.press(w.who(), token) for _ in range(5)))
        assert sum(1 for n in notices if not n.alert) == 1  # one press wins; the rest: expired
        await w.until(lambda: w.submits("imagine") == 1)
        await settled_sends(w)
        assert w.submits("imagine") == 1
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == f"a fox --oref {IMG} --v 7"
        [charge] = ledger(w)
        assert charge["action"] == "imagine"


async def test_a_warning_can_be_sent_anyway_and_cancel_sends_nothing(world) -> None:
    async with world() as w:
        await w.service.imagine(w.who(), f"a fox --oref {IMG}")  # V8.1: sources disagree
        held_id, held = last(w)
        assert "⚠️ --oref may not work on V8.1" in held.text
        assert list(w.chat.tokens(held_id)) == ["➡️ Send anyway", "✖️ Cancel"]
        await w.press(held_id, "➡️ Send anyway")
        await w.until(lambda: w.submits("imagine") == 1)
        assert w.sim.submits("imagine")[0].body["prompt"] == f"a fox --oref {IMG}"

        await w.service.imagine(w.who(), "a fox --motion high")  # video-only on an image
        held_id, _ = last(w)
        [notice] = await w.press(held_id, "✖️ Cancel")
        assert notice.text == "Cancelled: nothing was sent."
        await settled_sends(w)
        assert w.submits("imagine") == 1 and len(ledger(w)) == 1
        [again] = await w.press(held_id, "✅ Fix and send")
        assert again.alert and w.submits("imagine") == 1


async def test_a_held_prompt_keeps_its_photos(world) -> None:
    async with world() as w:
        await w.service.imagine(w.who(), "a fox --s 5000", [png(colour="red")])
        held_id, held = last(w)
        assert "--s 5000 is out of range: 0–1000." in held.text
        await w.press(held_id, "✅ Fix and send")
        await w.until(lambda: w.submits("imagine") == 1)
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == "a fox --s 1000"
        assert len(request.body["base64Array"]) == 1


async def test_settings_become_parameters_and_a_draft_offers_full_quality(world) -> None:
    async with world() as w:
        req = w.who()
        await w.service.open_settings(req)
        menu_id, menu = last(w)
        assert "Model: V8.1" in menu.text
        for label in ("V7", "Raw", "Stylize high", "Draft mode"):
            await tap(w, menu_id, label)
            await settled_sends(w)
        shown = w.chat.shown[menu_id]
        assert "Model: V7 · Raw: on · Stylize: Stylize high (250)" in shown.text
        assert "Draft: on" in shown.text
        key, result_id = await w.imagine("a fox")
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == "a fox --v 7 --style raw --s 250 --draft"
        tokens = w.chat.tokens(result_id)
        assert tokens["✨ Full quality"] == buttons.encode(key, "full")
        draft = await w.store.task(key)
        assert draft is not None and draft.task_id
        seed = (await w.client.image_seed(draft.task_id)).task_id
        [notice] = await w.press(result_id, "✨ Full quality")
        assert not notice.alert
        await w.until(lambda: w.submits("imagine") == 2)
        full = w.sim.submits("imagine")[1].body["prompt"]
        assert full == f"a fox --v 7 --style raw --s 250 --seed {seed}"
        rows = stored(w.store, "SELECT action FROM ledger ORDER BY created_at")
        assert [r["action"] for r in rows] == ["imagine", "imagine"]


async def test_full_quality_is_offered_only_under_a_draft(world) -> None:
    async with world() as w:
        key, result_id = await w.imagine("a fox --v 7")
        assert "✨ Full quality" not in w.chat.tokens(result_id)
        forged = await w.service.press(w.who(), buttons.encode(key, "full"))
        assert forged.alert and w.submits("imagine") == 1


async def test_niji_7_runs_on_the_niji_bot_where_the_provider_takes_bot_type(world) -> None:
    async with world(provider="trueai") as w:
        req = w.who()
        await w.service.open_settings(req)
        menu_id, _ = last(w)
        await tap(w, menu_id, "niji 7")
        await settled_sends(w)
        await w.imagine("a fox")
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == "a fox" and request.body["botType"] == "NIJI_JOURNEY"


async def test_niji_7_goes_as_a_flag_where_the_provider_takes_no_bot_type(world) -> None:
    async with world() as w:  # openai-hk's profile: no botType, --niji 7 in the prompt
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        await tap(w, menu_id, "niji 7")
        await settled_sends(w)
        await w.imagine("a fox")
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == "a fox --niji 7" and "botType" not in request.body


async def test_turbo_where_the_provider_has_it(world) -> None:
    async with world(provider="trueai") as w:
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        await tap(w, menu_id, "turbo")
        await settled_sends(w)
        await w.imagine("a fox")
        assert w.sim.submits("imagine")[0].prefix == "/mj-turbo"


async def test_turbo_runs_as_fast_with_a_notice_where_the_provider_has_none(world) -> None:
    async with world(default_mode="turbo") as w:  # openai-hk: /fast and /relax only
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        assert "turbo" not in w.chat.tokens(menu_id)
        forged = await w.service.press(w.who(), buttons.setting("mode", "turbo"))
        assert forged.alert
        await w.imagine("a fox")
        assert w.sim.submits("imagine")[0].prefix == "/fast"
        assert any("Turbo is not available" in text for text in w.chat.texts())


async def test_a_photo_becomes_an_omni_reference_for_the_next_prompts(world) -> None:
    async with world() as w:
        await w.service.keep_reference(w.who(), RefKind.OMNI, "200", [png(colour="blue")])
        [upload] = w.sim.submits("upload-discord-images")
        assert len(upload.body["base64Array"]) == 1
        kept_id, kept = last(w)
        assert "🎯 oref photo#1 · ow 200" in kept.text
        settings = await w.store.user_settings("t", OWNER)
        [ref] = settings.references
        assert ref.url.startswith(w.sim.base_url) and ref.weight == 200
        key, _ = await w.imagine("a lighthouse --v 7")
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == f"a lighthouse --v 7 --oref {ref.url} --ow 200"
        row = await w.store.task(key)
        assert row is not None and row.label == "🎯 oref photo#1 · ow 200"  # on its progress
        # one tap clears it
        notice = await tap(w, kept_id, "✖️ Clear references")
        assert not notice.alert
        await w.imagine("a windmill --v 7")
        assert w.sim.submits("imagine")[1].body["prompt"] == "a windmill --v 7"


async def test_a_result_is_referenced_by_its_own_url(world) -> None:
    async with world() as w:
        key, result_id = await w.imagine("a red barn --v 7")
        row = await w.store.task(key)
        assert row is not None and row.task is not None
        reply = replace(w.who(), replied=MessageRef("t", CHAT, result_id))
        await w.service.keep_reference(reply, RefKind.STYLE, "", [])
        assert w.sim.submits("upload-discord-images") == []  # no upload: its URL is ours
        await w.imagine("a blue house --v 7")
        prompt = w.sim.submits("imagine")[1].body["prompt"]
        assert prompt == f"a blue house --v 7 --sref {row.task.image_url}"
        await w.service.references(w.who(), "clear")
        assert (await w.store.user_settings("t", OWNER)).references == ()


async def test_without_an_upload_route_the_photo_goes_as_an_image_prompt(world) -> None:
    async with world(flavour="openai-hk") as w:
        await w.service.keep_reference(w.who(), RefKind.OMNI, "", [png(colour="green")])
        _, kept = last(w)
        assert "cannot turn photos into links" in kept.text
        await w.imagine("a fox --v 7")
        [request] = w.sim.submits("imagine")
        assert request.body["prompt"] == "a fox --v 7"  # no --oref without a URL
        assert len(request.body["base64Array"]) == 1


async def test_presets_save_and_apply_in_one_tap(world) -> None:
    async with world() as w:
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        for label in ("V7", "Raw"):
            await tap(w, menu_id, label)
            await settled_sends(w)
        await w.service.preset(w.who(), "save portrait")
        assert "Preset “portrait” saved" in last(w)[1].text
        await tap(w, menu_id, "✅ V7")  # back to the default model
        await settled_sends(w)
        await w.service.preset(w.who(), "")
        list_id, _ = last(w)
        notice = await tap(w, list_id, "📌 portrait")
        assert notice.text == "📌 Preset “portrait” applied."
        await w.imagine("a fox")
        assert w.sim.submits("imagine")[0].body["prompt"] == "a fox --v 7 --style raw"


async def test_remix_mode_asks_for_the_new_prompt_of_a_variation(world) -> None:
    async with world() as w:
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        await tap(w, menu_id, "Remix mode")
        await settled_sends(w)
        grid, result_id = await w.imagine("a fox --v 7")
        await w.press(result_id, "V1")
        child = await w.child(grid, "V1")
        asked = await w.question(child)
        [action] = w.sim.submits("action")
        assert action.body["enableRemix"] is True
        await w.service.answer(w.who(message="9"), asked, "a fox in the rain --v 7")
        await w.until(lambda: w.submits("modal") == 1)
        assert w.sim.submits("modal")[0].body["prompt"] == "a fox in the rain --v 7"
        # U is not remixed
        await w.press(result_id, "U1")
        await w.until(lambda: w.submits("action") == 2)
        assert "enableRemix" not in w.sim.submits("action")[1].body


async def test_personalization_codes_are_kept_and_picked_in_one_tap(world) -> None:
    async with world() as w:
        await w.service.personalize(w.who(), "m7abc")
        await w.service.personalize(w.who(), "x9")
        await w.imagine("a fox --v 7")
        assert w.sim.submits("imagine")[0].body["prompt"] == "a fox --v 7 --p x9"
        await w.service.personalize(w.who(), "")
        list_id, _ = last(w)
        assert list(w.chat.tokens(list_id)) == ["--p m7abc", "✅ --p x9", "Default profile (--p)"]
        await tap(w, list_id, "--p m7abc")
        await w.imagine("a hare --v 7")
        assert w.sim.submits("imagine")[1].body["prompt"] == "a hare --v 7 --p m7abc"
        await w.service.personalize(w.who(), "bad/code")
        assert "letters, digits" in last(w)[1].text
        await w.service.personalize(w.who(), "off")
        await w.imagine("an owl --v 7")
        assert w.sim.submits("imagine")[2].body["prompt"] == "an owl --v 7"


async def test_a_chats_defaults_are_set_by_its_admins_beneath_each_persons_own(world) -> None:
    async with world() as w:
        w.policy.access = AccessConfig(admins=(OWNER,), buttons="owner")
        await commands.run(w.service, w.who(), "chatsettings", "--ar 3:2")
        menu_id, menu = last(w)
        assert "Suffix: --ar 3:2" in menu.text
        await tap(w, menu_id, "V7")
        await settled_sends(w)
        await tap(w, menu_id, "Raw")
        await settled_sends(w)
        assert "Model: V7 · Raw: on" in w.chat.shown[menu_id].text
        refused = await tap(w, menu_id, "niji 7", user="8")  # not an admin
        assert refused.alert
        await commands.run(w.service, w.who("8"), "chatsettings", "")
        assert "Only admins" in last(w)[1].text
        await w.service.imagine(w.who("8"), "a fox")
        await w.until(lambda: w.submits("imagine") == 1)
        assert w.sim.submits("imagine")[0].body["prompt"] == "a fox --ar 3:2 --v 7 --style raw"
        # a person's own choice wins over the chat's default
        await w.service.open_settings(w.who("8"))
        own_id, _ = last(w)
        await tap(w, own_id, "niji 7", user="8")
        await settled_sends(w)
        await w.service.imagine(w.who("8"), "a hare")
        await w.until(lambda: w.submits("imagine") == 2)
        assert w.sim.submits("imagine")[1].body["prompt"] == "a hare --ar 3:2 --niji 7 --style raw"


async def test_an_answer_midjourney_would_refuse_keeps_the_question_open(world) -> None:
    async with world() as w:
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        await tap(w, menu_id, "Remix mode")
        await settled_sends(w)
        grid, result_id = await w.imagine("a fox --v 7")
        await w.press(result_id, "V1")
        child = await w.child(grid, "V1")
        asked = await w.question(child)
        await w.service.answer(w.who(message="9"), asked, f"a fox --cref {IMG} --v 7")
        told = last(w)[1].text
        assert "⛔ --cref does not work on V7" in told and "Nothing was sent or charged" in told
        await settled_sends(w)
        assert w.submits("modal") == 0
        pending = stored(w.store, "SELECT * FROM ledger WHERE task_key = ?", child)
        assert all(r["outcome"] != "pending" for r in pending)  # the press's charge was voided
        await w.service.answer(w.who(message="10"), asked, f"a fox --oref {IMG} --v 7")
        await w.until(lambda: w.submits("modal") == 1)
        assert w.sim.submits("modal")[0].body["prompt"] == f"a fox --oref {IMG} --v 7"


async def test_saved_style_codes_come_back_in_one_tap(world) -> None:
    async with world() as w:
        await w.service.keep_reference(w.who(), RefKind.STYLE, "1234 300", [])
        await w.service.keep_reference(w.who(), RefKind.STYLE, "random", [])
        await w.imagine("a fox --v 7")
        assert w.sim.submits("imagine")[0].body["prompt"] == "a fox --v 7 --sref random"
        await w.service.references(w.who(), "")
        refs_id, refs = last(w)
        assert "🎯 sref code random" in refs.text
        assert list(w.chat.tokens(refs_id)) == [
            "🎨 --sref 1234",
            "🎨 --sref random",
            "✖️ Clear references",
        ]
        await tap(w, refs_id, "🎨 --sref 1234")
        await w.imagine("a hare --v 7")
        assert w.sim.submits("imagine")[1].body["prompt"] == "a hare --v 7 --sref 1234"


async def test_turbo_no_account_takes_runs_as_fast_once_with_a_notice(world) -> None:
    async with world(provider="trueai") as w:
        w.sim.config.turbo = False  # trueai: no account runs turbo -> code 3 on a turbo submit
        await w.service.open_settings(w.who())
        menu_id, _ = last(w)
        await tap(w, menu_id, "turbo")
        await settled_sends(w)
        key, _ = await w.imagine("a fox --v 7")
        assert [r.prefix for r in w.sim.submits("imagine")] == ["/mj-turbo", "/mj-fast"]
        assert any("Turbo is not available" in text for text in w.chat.texts())
        [charge] = await w.settled(key)
        assert charge["outcome"] == "success"
        row = await w.store.task(key)
        assert row is not None and row.mode == "fast"


async def test_video_edit_and_shorten_prompts_are_checked_before_anything_is_spent(world) -> None:
    """The check holds /video, /edit and /shorten as it holds /imagine: nothing submitted or
    charged while held; "Fix and send" submits the fixed prompt through the command's own
    path, with its photos and its options (/video's --motion kept around the prompt)."""
    async with world() as w:
        photo = png(colour="blue")
        await w.service.video(w.who(), f"--motion high a fox runs --cref {IMG} --v 7", [photo])
        assert w.submits("video") == 0 and ledger(w) == []
        held_id, held = last(w)
        assert "⛔ --cref does not work on V7: use --oref (omni reference) instead." in held.text
        await w.press(held_id, "✅ Fix and send")
        await w.until(lambda: w.submits("video") == 1)
        [video] = w.sim.submits("video")
        assert video.body["prompt"] == f"a fox runs --oref {IMG} --v 7"
        assert video.body["motion"] == "high" and video.body["image"]
        assert [c["action"] for c in ledger(w)] == ["video"]

        await w.service.edit(w.who(), "make it snowy --s 5000", [photo])
        held_id, held = last(w)
        assert "--s 5000 is out of range: 0–1000." in held.text
        assert w.submits("edits") == 0 and len(ledger(w)) == 1
        await w.press(held_id, "✅ Fix and send")
        await w.until(lambda: w.submits("edits") == 1)
        assert w.sim.submits("edits")[0].body["prompt"] == "make it snowy --s 1000"

        await w.service.shorten(w.who(), "a fox --motion high")  # video-only, not a video
        held_id, held = last(w)
        assert w.submits("shorten") == 0
        [notice] = await w.press(held_id, "✖️ Cancel")
        assert notice.text == "Cancelled: nothing was sent."
        await settled_sends(w)
        assert w.submits("shorten") == 0
        assert [c["action"] for c in ledger(w)] == ["video", "edit"]

        # A clean prompt is not held: submitted at once.
        await w.service.shorten(w.who(), "a fox in the snow, cinematic light")
        await w.until(lambda: w.submits("shorten") == 1)


async def test_a_video_prompt_may_carry_video_flags(world) -> None:
    """--motion in the prompt of a video is not "video-only flag without video"."""
    async with world() as w:
        await w.service.video(w.who(), "a fox runs --motion low", [png(colour="red")])
        await w.until(lambda: w.submits("video") == 1)
