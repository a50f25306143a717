"""End to end: ``mjbot run`` as a subprocess, the real python-telegram-bot, the fake Telegram
server and the simulator. Each test reads like a user in a group chat."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.conftest import ALICE, BOB, GROUP


def task_of(sim, **fields):
    return next(t for t in sim.tasks.values() if all(getattr(t, k) == v for k, v in fields.items()))


async def picture(sim, task) -> bytes:
    """The bytes the simulator serves as the task's picture (its imageUrl)."""
    async with httpx.AsyncClient() as client:
        return (await client.get(sim.base_url + task.image_path())).content


def replies_to(message_id: int):
    return lambda m: m.reply_to_message_id == message_id


async def imagine(tg, text: str, user=ALICE, chat=GROUP):
    """Send a command and wait for the finished result (a photo with buttons)."""
    asked = await tg.send_text(chat, tg.users[user], text)
    return asked, await tg.wait_for_bot_message(
        chat,
        lambda m: m.reply_to_message_id == asked.message_id and m.photo and m.buttons,
        timeout=30,
    )


async def test_imagine_progress_grid_upscale_and_custom_zoom(bot, sim, tg):
    asked = await tg.send_text(
        GROUP, tg.users[ALICE], "/imagine@mjbot_test_bot a red fox in snow --ar 3:2"
    )

    # One reply message, edited in place while the task runs.
    progress = await tg.wait_for_bot_message(GROUP, replies_to(asked.message_id))
    await tg.wait_for(lambda: progress.edits, timeout=20, message="progress edited")
    result = await tg.wait_for_bot_message(
        GROUP, lambda m: m.reply_to_message_id == asked.message_id and m.buttons, timeout=30
    )
    assert result.message_id != progress.message_id  # a new message, so people are notified
    shown = [m.content for m in [*progress.edits, progress]]
    assert any("%" in (text or "") for text in shown), shown
    await tg.wait_for(lambda: tg.message(GROUP, progress.message_id).deleted, message="cleanup")

    imagine_req = sim.submits("imagine")[0]
    assert imagine_req.body["prompt"] == "a red fox in snow --ar 3:2"
    assert imagine_req.headers["authorization"] == "Bearer sk-e2e-secret-0123456789"
    assert "a red fox in snow" in result.caption
    image = Image.open(io.BytesIO(result.photo_bytes))
    assert image.width > image.height  # --ar 3:2
    # The simulator's grid is a small PNG: posted as it is, not decoded and re-encoded
    # (media.photo_as_is_max_kb).
    parent = next(t for t in sim.tasks.values() if t.action == "IMAGINE")
    served = await picture(sim, parent)
    assert len(served) < 1024 * 1024 and result.photo_bytes == served
    rows = [[text for text, _ in row] for row in result.buttons]
    assert rows[0] == ["U1", "U2", "U3", "U4", "🔄"]
    assert rows[1] == ["V1", "V2", "V3", "V4"]
    assert all(len(data.encode()) <= 64 for row in result.buttons for _, data in row)

    # U2 -> the exact customId of the task's U2 button.
    parent_id = parent.id
    cq = await tg.press(GROUP, result, "U2", tg.users[ALICE])
    answer = await tg.wait_for_answer(cq)
    assert "U2" in answer.get("text", "")
    upscaled = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == result.message_id and m.photo and m.buttons,
        timeout=30,
    )
    action = sim.submits("action")[0]
    assert action.body["taskId"] == parent_id
    assert action.body["customId"] == f"MJ::JOB::upsample::2::{parent.message_hash}"
    labels = [text for row in upscaled.buttons for text, _ in row]
    assert "🔍 Custom Zoom" in labels and "🖌️ Vary (Region)" in labels and "⬅️" in labels

    # Custom Zoom -> code 21 -> ForceReply prefilled -> the reply goes to /modal.
    await tg.press(GROUP, upscaled, "🔍 Custom Zoom", tg.users[ALICE])
    question = await tg.wait_for_bot_message(
        GROUP, lambda m: (m.reply_markup or {}).get("force_reply"), timeout=20
    )
    assert "--zoom 2" in question.text
    modal_id = next(t.id for t in sim.tasks.values() if t.modal == "zoom")
    answer_msg = await tg.send_text(
        GROUP, tg.users[ALICE], "a red fox in snow --zoom 1.5", reply_to=question.message_id
    )
    zoomed = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == answer_msg.message_id and m.photo and m.buttons,
        timeout=30,
    )
    modal = sim.submits("modal")[0]
    assert modal.body["taskId"] == modal_id
    assert modal.body["prompt"] == "a red fox in snow --zoom 1.5"
    assert zoomed.buttons


async def test_failures_are_explained_and_the_bot_stays_up(bot, sim, tg):
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine this will fail")
    failed = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and "❌" in (m.content or ""),
        timeout=30,
    )
    assert "Invalid" in failed.content or "rejected" in failed.content

    asked = await tg.send_text(GROUP, tg.users[BOB], "/imagine nude model")
    banned = await tg.wait_for_bot_message(
        GROUP,
        lambda m: m.reply_to_message_id == asked.message_id and "nude" in (m.content or ""),
        timeout=20,
    )
    await tg.wait_for(lambda: "❌" in (tg.message(GROUP, banned.message_id).content or ""))
    assert "拒绝" in tg.message(GROUP, banned.message_id).content  # Bob reads Chinese

    sim.faults.down = True
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine a calm lake")
    await tg.wait_for(
        lambda: any(
            m.reply_to_message_id == asked.message_id and "Admin" in (m.content or "")
            for m in tg.bot_messages(GROUP)
        ),
        timeout=20,
    )
    assert bot.alive
    sim.faults.down = False
    _, result = await imagine(tg, "/imagine a calm lake at dawn")
    assert result.photo_bytes


async def test_empty_prompt_and_help(bot, tg):
    asked = await tg.send_text(GROUP, tg.users[ALICE], "/imagine")
    empty = await tg.wait_for_bot_message(GROUP, replies_to(asked.message_id))
    assert "/imagine a red fox" in empty.text
    asked = await tg.send_text(ALICE, tg.users[ALICE], "/help")
    help_msg = await tg.wait_for_bot_message(ALICE, lambda m: "/imagine" in (m.text or ""))
    assert "/blend" in help_msg.text
    commands = tg.calls_to("setMyCommands")
    assert {c.params.get("language_code") for c in commands} == {None, "zh"}


@pytest.mark.parametrize("status", [500, 400])
async def test_a_refused_command_menu_is_one_warning_and_the_bot_runs(make_bot, sim, tg, status):
    """setMyCommands is cosmetic: when Telegram refuses it, the bot says so in one log line
    and serves as usual."""
    description = "Internal Server Error" if status == 500 else "Bad Request: BOT_COMMAND_INVALID"
    tg.fail_next("setMyCommands", error_code=status, description=description, times=2)
    bot = make_bot()
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    _, result = await imagine(tg, "/imagine a paper lantern")
    assert result.photo_bytes and bot.alive
    warnings = [line for line in bot.log().splitlines() if "command menu" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings
    assert "Traceback" not in bot.log()


async def test_with_photo_as_is_max_kb_0_every_result_photo_is_a_jpeg(make_bot, sim, tg):
    """The operator's choice: always re-encode (the original stays behind 📎)."""
    bot = make_bot(media={"photo_as_is_max_kb": 0})
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    _, result = await imagine(tg, "/imagine a paper lantern")
    task = next(t for t in sim.tasks.values() if t.action == "IMAGINE")
    served = await picture(sim, task)
    assert served.startswith(b"\x89PNG")
    photo = Image.open(io.BytesIO(result.photo_bytes))
    assert photo.format == "JPEG" and photo.size == Image.open(io.BytesIO(served)).size
