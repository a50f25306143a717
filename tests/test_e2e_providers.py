"""End to end against every simulator flavour: ``mjbot run`` (subprocess) with
``[midjourney] provider = ...``, the fake Telegram server and a Simulator reproducing that
provider. Each test asserts what the bot sent on the wire and what the user saw."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from PIL import Image

from mjsim import SimConfig, Simulator
from tests.conftest import ALICE, GROUP
from tests.harness import API_KEY, TG_TOKEN, BotProcess, free_port

TIME_SCALE = 0.05


@pytest.fixture
async def start_bot(tmp_path, tg) -> AsyncIterator[Callable[..., Any]]:
    """Start a flavoured simulator and ``mjbot run`` against it; both stop at the end."""
    running: list[tuple[Simulator, BotProcess]] = []

    async def start(
        flavour: str, provider: str, sim: dict[str, Any] | None = None, **midjourney: Any
    ) -> tuple[Simulator, BotProcess]:
        settings = {"time_scale": TIME_SCALE, **(sim or {})}
        simulator = Simulator(SimConfig(flavour=flavour, api_key=API_KEY, **settings))
        await simulator.start()
        listen = f"127.0.0.1:{free_port()}"
        process = BotProcess(
            tmp_path,
            simulator.base_url,
            tg.url,
            midjourney={"provider": provider, "auth_header": "", **midjourney},
            tracking={"listen": listen, "webhook_public_url": f"http://{listen}"},
        )
        running.append((simulator, process))
        process.start()
        await tg.wait_for_call("deleteWebhook", timeout=30)
        return simulator, process

    yield start
    for simulator, process in running:
        await process.stop()
        await simulator.stop()
        log = process.log()
        assert API_KEY not in log and TG_TOKEN not in log


def labels(message) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


def png(colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(out, "PNG")
    return out.getvalue()


async def imagine(tg, text: str):
    asked = await tg.send_text(GROUP, tg.users[ALICE], text)
    result = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and m.photo and m.buttons,
        timeout=30,
    )
    return asked, result


async def press_for_photo(tg, message, button: str):
    await tg.press(GROUP, message, button, tg.users[ALICE])
    return await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == message.message_id and m.photo and m.buttons,
        timeout=30,
    )


async def said(tg, words: str):
    """Wait until some bot message (sent or edited) contains ``words``."""
    await tg.wait_for(
        lambda: any(words in (m.content or "") for m in tg.bot_messages(GROUP)),
        timeout=20,
        message=f"a bot message saying {words!r}",
    )


def auth_of(request) -> tuple[str, str]:
    headers = request.headers
    if "authorization" in headers:
        return "authorization", headers["authorization"]
    return "mj-api-secret", headers.get("mj-api-secret", "")


# ---------------------------------------------------------------- imagine -> U2 -> Custom Zoom


@pytest.mark.parametrize(
    ("flavour", "provider", "mode", "auth", "prefix"),
    [
        ("openai-hk", "openai-hk", "fast", ("authorization", f"Bearer {API_KEY}"), "/fast"),
        ("plus", "plus", "fast", ("mj-api-secret", API_KEY), ""),
        ("trueai", "trueai", "fast", ("authorization", API_KEY), "/mj-fast"),
        ("new-api", "new-api", "fast", ("authorization", f"Bearer {API_KEY}"), "/fast"),
        ("superset", "auto", "", ("authorization", f"Bearer {API_KEY}"), ""),
    ],
)
async def test_imagine_upscale_custom_zoom(start_bot, tg, flavour, provider, mode, auth, prefix):
    sim, _ = await start_bot(flavour, provider, mode=mode)
    _, grid = await imagine(tg, "/imagine a red fox in snow")
    rows = [[text for text, _ in row] for row in grid.buttons]
    assert rows[0] == ["U1", "U2", "U3", "U4", "🔄"] and rows[1] == ["V1", "V2", "V3", "V4"]

    sent = sim.submits("imagine")[0]
    assert auth_of(sent) == auth
    assert sent.prefix == prefix
    if flavour == "plus":
        assert sent.body["accountFilter"] == {"modes": ["FAST"]}  # Plus: the mode in the body
    else:
        assert "accountFilter" not in sent.body
    # new-api drops notifyHook: the bot does not send it and relies on polling
    assert ("notifyHook" in sent.body) is (flavour != "new-api")

    parent = next(t for t in sim.tasks.values() if t.action == "IMAGINE")
    upscaled = await press_for_photo(tg, grid, "U2")
    probes, actions = [
        [r for r in sim.submits("action") if bool(r.body) is b] for b in (False, True)
    ]
    assert len(probes) == (1 if provider == "auto" else 0)  # auto: one empty, invalid submit
    action = actions[0]
    assert action.body["taskId"] == parent.id
    assert action.body["customId"] == f"MJ::JOB::upsample::2::{parent.message_hash}"
    shown = labels(upscaled)
    assert "🔍 Custom Zoom" in shown
    assert "❤️" not in " ".join(shown)  # MJ's heart: no provider here accepts it (§7.10)
    if flavour in ("trueai", "new-api"):
        assert not any("Animate" in text for text in shown)  # refused by their /action
    else:
        assert any("Animate" in text for text in shown)

    await tg.press(GROUP, upscaled, "🔍 Custom Zoom", tg.users[ALICE])
    question = await tg.wait_for_bot_message(
        GROUP, lambda m: (m.reply_markup or {}).get("force_reply"), timeout=20
    )
    assert "--zoom 2" in question.text
    answer = await tg.send_text(
        GROUP, tg.users[ALICE], "a red fox in snow --zoom 1.5", reply_to=question.message_id
    )
    zoomed = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == answer.message_id and m.photo and m.buttons,
        timeout=30,
    )
    modal = sim.submits("modal")[0]
    assert modal.body["prompt"] == "a red fox in snow --zoom 1.5"
    assert sim.tasks[modal.body["taskId"]].status == "SUCCESS"
    assert zoomed.photo_bytes


# ---------------------------------------------------------------- each provider's quirks


async def test_java_upscale_goes_through_change(start_bot, tg):
    sim, _ = await start_bot("java", "midjourney-proxy")
    _, grid = await imagine(tg, "/imagine a lighthouse at night")
    # Java OSS tasks carry no buttons: mjbot offers U/V/🔄 itself
    rows = [[text for text, _ in row] for row in grid.buttons]
    assert rows[0] == ["U1", "U2", "U3", "U4", "🔄"] and rows[1] == ["V1", "V2", "V3", "V4"]
    assert auth_of(sim.submits("imagine")[0]) == ("mj-api-secret", API_KEY)
    parent = next(t for t in sim.tasks.values() if t.action == "IMAGINE")

    upscaled = await press_for_photo(tg, grid, "U2")
    change = sim.submits("change")[0]
    assert {k: change.body[k] for k in ("taskId", "action", "index")} == {
        "taskId": parent.id,
        "action": "UPSCALE",
        "index": 2,
    }
    assert set(change.body) <= {"taskId", "action", "index", "state", "notifyHook"}
    assert not sim.submits("action")  # the route does not exist there
    assert upscaled.photo_bytes and "Custom Zoom" not in " ".join(labels(upscaled))

    # The same U again is the same upscale: posted again from what mjbot has, never sent to
    # Java again (which would answer 21 "任务已存在"; that answer is tested in
    # test_providers).
    await tg.press(GROUP, grid, "U2", tg.users[ALICE])
    await tg.wait_for(
        lambda: len(photos_replying_to(tg, grid)) == 2, timeout=20, message="the upscale again"
    )
    assert len(sim.submits("change")) == 1
    assert sum(1 for t in sim.tasks.values() if t.action == "UPSCALE") == 1


def photos_replying_to(tg, message) -> list:
    return [
        m
        for m in tg.bot_messages(GROUP)
        if m.reply_to_message_id == message.message_id and m.photo and m.buttons
    ]


async def test_java_describe_shows_its_four_prompts(start_bot, tg):
    """Java OSS 2.3 (like older gateways) leaves properties.finalPrompt out of a describe
    result and puts the text in prompt/promptEn: the user still sees the four suggestions
    under the title (it was the title over an empty body)."""
    sim, _ = await start_bot("java", "midjourney-proxy")
    asked = await tg.send_photo(GROUP, tg.users[ALICE], png("olive"), caption="/describe")
    await tg.wait_for(
        lambda: any(t.status == "SUCCESS" for t in sim.tasks.values()), timeout=30, message="done"
    )
    task = sim.task_json(next(iter(sim.tasks.values())))
    assert "finalPrompt" not in task["properties"] and task["promptEn"] == task["prompt"]
    suggestions = [line[3:].strip() for line in task["promptEn"].split("\n\n")]
    assert len(suggestions) == 4
    shown = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and "4️⃣" in (m.content or ""),
        timeout=30,
    )
    assert shown.content.startswith("🔎 Describe")
    assert all(suggestion in shown.content for suggestion in suggestions)


async def test_openai_hk_edit_and_video_come_without_the_apis_buttons(start_bot, tg):
    """openai-hk answers an EDITS task with four imageUrls and "buttons": [], a VIDEO task
    with four videoUrls and "buttons": [] (its document). The user gets the four pictures and
    the four clips themselves, each with mjbot's own next steps (issue 15; the whole studio
    flow is tests/test_e2e_studio.py); none of the buttons comes from the API."""
    sim, _ = await start_bot("openai-hk", "openai-hk", mode="fast")
    alice = tg.users[ALICE]
    picture = await tg.send_photo(GROUP, alice, png("olive"))
    asked = await tg.send_text(GROUP, alice, "/edit make it snowy", reply_to=picture.message_id)
    edited = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and "🎬 1" in labels(m),
        timeout=30,
    )
    assert sim.submits("edits")[0].body["prompt"] == "make it snowy"
    task = sim.task_json(next(t for t in sim.tasks.values() if t.kind == "edit"))
    assert task["action"] == "EDITS" and task["buttons"] == [] and len(task["imageUrls"]) == 4
    (album,) = tg.calls_to("sendMediaGroup")
    assert [item["type"] for item in album.params["media"]] == ["photo"] * 4
    # one row of our own per picture, no U1-U4 (those came from the unfaithful simulator)
    assert labels(edited) == [
        f"{icon} {n}" for n in range(1, 5) for icon in ("📎", "✏️", "🎬", "🖼", "🔍")
    ]

    clip = await tg.send_photo(GROUP, alice, png("maroon"), caption="/video a slow zoom")
    await tg.wait_for(
        lambda: len([m for m in tg.bot_messages(GROUP) if m.video is not None]) == 4,
        timeout=40,
        message="four clips",
    )
    video = sim.task_json(next(t for t in sim.tasks.values() if t.kind == "video"))
    assert video["buttons"] == [] and video["videoUrl"] == "" and len(video["videoUrls"]) == 4
    answers = await tg.wait_for(
        lambda: [
            m
            for m in tg.bot_messages(GROUP)
            if m.reply_to_message_id == clip.message_id and m.buttons
        ],
        timeout=20,
        message="the clips' buttons",
    )
    # no Extend from the API: ours extend each clip through /submit/video
    assert labels(answers[-1]) == [
        f"{icon} {n}{tail}"
        for n in range(1, 5)
        for icon, tail in (("➕", " high"), ("➕", " low"), ("🔁", ""), ("📎", ""))
    ]


async def test_trueai_queue_full_and_late_banned_word(start_bot, tg):
    frozen = {"time_scale": 0, "concurrency": 1, "queue_size": 0}  # advance() moves time
    sim, _ = await start_bot("trueai", "trueai", sim=frozen)
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine the first one")
    await tg.wait_for(lambda: sim.submits("imagine"), timeout=20, message="first submit")
    await tg.send_text(GROUP, tg.users[ALICE], "/imagine the second one")
    await said(tg, "queue is full")  # code 9 + text on trueai reads as "queue full" (P3)
    assert [r.prefix for r in sim.submits("imagine")] == ["", ""]

    sim.advance(120)  # the first one finishes and frees the slot
    await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == asked.message_id and m.photo, timeout=30
    )
    await tg.send_text(GROUP, tg.users[ALICE], "/imagine a nude statue")
    await tg.wait_for(lambda: len(sim.submits("imagine")) == 3, timeout=20, message="submit")
    sim.advance(10)  # trueai accepted it (code 1), then fails it: "可能包含敏感词" (P4)
    await said(tg, "moderation blocked")


async def test_new_api_refused_button_is_noticed_then_hidden(start_bot, tg):
    # hidden_buttons = "" (none) shows what the profile would hide, to see the refusal
    sim, _ = await start_bot("new-api", "new-api", hidden_buttons="")
    asked = await tg.send_photo(GROUP, tg.users[ALICE], png(), caption="/describe")
    described = await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == asked.message_id and m.buttons, timeout=30
    )
    assert "1️⃣" in labels(described)
    await tg.press(GROUP, described, "1️⃣", tg.users[ALICE])
    await said(tg, "does not offer this button")  # a notice, never silence
    refused = sim.submits("action")[0]
    assert refused.body["customId"] == "MJ::Job::PicReader::1"

    again = await tg.send_photo(GROUP, tg.users[ALICE], png("navy"), caption="/describe")
    second = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == again.message_id and "1️⃣" in (m.content or ""),
        timeout=30,
    )
    assert not any(text.startswith(("1️⃣", "2️⃣", "3️⃣", "4️⃣")) for text in labels(second))


async def test_plus_hides_imagine_all(start_bot, tg):
    sim, _ = await start_bot("plus", "plus")
    asked = await tg.send_photo(GROUP, tg.users[ALICE], png(), caption="/describe")
    described = await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == asked.message_id and m.buttons, timeout=30
    )
    shown = labels(described)
    assert "1️⃣" in shown and "4️⃣" in shown
    assert not any("Imagine all" in text for text in shown)  # Plus refuses 🎉 (§7.10)
    described_task = next(t for t in sim.tasks.values() if t.action == "DESCRIBE")
    assert any(b["customId"] == "MJ::Job::PicReader::all" for b in described_task.buttons)
