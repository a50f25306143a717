"""Answers to the bot's questions are never lost: not even one typed in the instant between
the question being posted and its message id being stored (seen under load end to end: the
reply was taken for "not an answer to anything of ours" and silently dropped)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.chat import MessageRef
from bot.i18n import t
from bot.usecases import MAX_PROMPT
from bot.views import View
from tests.dbrows import stored
from tests.inprocess import Chat, World, png, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


class Eager(Chat):
    """A user who answers a question the instant it appears; ``yields`` sets how far the bot
    gets meanwhile (each value lands the answer at another point of the race)."""

    def __init__(self, yields: int, images: tuple[bytes, ...] = ()) -> None:
        super().__init__()
        self.yields = yields
        self.images = images
        self.world: World | None = None
        self.answers: list[asyncio.Future[bool]] = []

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        ref = await super().send(chat_id, view, reply_to)
        if view.ask is not None and self.world is not None:
            w = self.world
            who = w.who(message="quick")
            reply = w.service.answer(who, ref.message_id, "at dusk", self.images)
            self.answers.append(asyncio.ensure_future(reply))
            for _ in range(self.yields):
                await asyncio.sleep(0)
        return ref


@pytest.mark.parametrize("yields", range(7))
async def test_an_answer_typed_as_the_question_appears_is_taken(tmp_path, yields):
    chat = Eager(yields)
    async with worlds(tmp_path)(remix=True, chat=chat) as w:
        chat.world = w
        _, message = await w.imagine()
        await w.press(message, "V1")  # remix: the variation asks for a prompt first
        await w.until(lambda: chat.answers)
        assert await chat.answers[0] is True
        await w.until(lambda: w.submits("modal") == 1)


@pytest.mark.parametrize("yields", range(5))
async def test_photos_sent_as_the_request_for_them_appears_are_taken(tmp_path, yields):
    """The same for a command that asks for its photos (/describe without one): its ask was
    stored only after the question was posted, and a quick reply was "not ours"."""
    chat = Eager(yields, images=(png(colour="teal"),))
    async with worlds(tmp_path)(chat=chat) as w:
        chat.world = w
        await w.service.describe(w.who())
        await w.until(lambda: chat.answers)
        assert await chat.answers[0] is True
        await w.until(lambda: w.submits("describe") == 1)
        await asyncio.sleep(0.2)
        assert w.submits("describe") == 1
        (ask,) = stored(w.store, "SELECT message_id, answered_at FROM asks")
        assert ask["message_id"] in w.chat.shown and ask["answered_at"] is not None


class Down(Chat):
    """A chat that refuses every question (the request for photos is never shown)."""

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        if view.ask is not None:
            raise RuntimeError("chat is down")
        return await super().send(chat_id, view, reply_to)


async def test_a_request_for_photos_that_could_not_be_posted_takes_no_answer(tmp_path):
    async with worlds(tmp_path)(chat=Down()) as w:
        with contextlib.suppress(RuntimeError):
            await w.service.describe(w.who())
        assert await w.service.answer(w.who(message="reply"), "9999", "", [png()]) is False
        (ask,) = stored(w.store, "SELECT answered_at FROM asks")
        assert ask["answered_at"] is not None


# --- what an answer sends, and who may give it ---------------------------------------------------


async def _asked(w, label: str = "V1") -> tuple[str, str, str]:
    """A grid, a press that the API answers with a question: (child key, question, task id)."""
    grid, message = await w.imagine("a lighthouse at dawn")
    await w.press(message, label)
    child = await w.child(grid, label)
    asked = await w.question(child)
    row = await w.store.task(child)
    assert row is not None and row.task_id
    return child, asked, row.task_id


async def test_an_answer_is_sent_as_the_modal_of_the_task_that_asked(tmp_path):
    async with worlds(tmp_path)(remix=True) as w:
        child, asked, task_id = await _asked(w)
        assert await w.service.answer(w.who(), asked, "  a lighthouse   at dusk ") is True
        await w.until(lambda: w.submits("modal") == 1)
        (sent,) = w.sim.submits("modal")
        assert sent.body["taskId"] == task_id
        assert sent.body["prompt"] == "a lighthouse at dusk"
        await w.result(child)


async def test_an_answer_by_someone_else_or_too_long_sends_nothing_and_keeps_the_question(
    tmp_path,
):
    async with worlds(tmp_path)(remix=True) as w:
        _, asked, _ = await _asked(w)
        await w.service.answer(w.who(user="8"), asked, "mine now")
        assert w.chat.texts()[-1] == t("modal.not_owner", "en")
        await w.service.answer(w.who(), asked, "x" * (MAX_PROMPT + 1))
        assert w.chat.texts()[-1] == t("prompt.too_long", "en", limit=MAX_PROMPT)
        assert w.submits("modal") == 0
        await w.service.answer(w.who(), asked, "at dusk")  # still open: this one counts
        await w.until(lambda: w.submits("modal") == 1)


async def test_a_reply_to_a_message_that_asked_nothing_is_not_ours(tmp_path):
    async with worlds(tmp_path)() as w:
        _, result = await w.imagine()
        runs = len(stored(w.store, "SELECT * FROM seen"))
        assert await w.service.answer(w.who(), result, "nice!") is False
        assert len(stored(w.store, "SELECT * FROM seen")) == runs  # no request: no gate


async def test_vary_region_by_cells_sends_a_mask_and_the_prompt(tmp_path):
    async with worlds(tmp_path)() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "U1")
        await w.press(await w.result(upscale), "🖌️ Vary (Region)")
        region = await w.child(upscale, "Vary (Region)")
        asked = await w.question(region)
        task_id = (await w.store.task(region)).task_id
        question = w.chat.shown[asked]
        assert question.media and question.ask is not None and question.ask.kind == "mask"
        await w.service.answer(w.who(), asked, "1 2 a red door")
        await w.until(lambda: w.submits("modal") == 1)
        (sent,) = w.sim.submits("modal")
        assert sent.body["taskId"] == task_id and sent.body["prompt"] == "a red door"
        assert sent.body["maskBase64"].startswith("data:image/png;base64,")
