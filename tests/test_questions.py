"""Answers to the bot's questions are never lost: not even one typed in the instant between
the question being posted and its message id being stored (seen under load end to end: the
reply was taken for "not an answer to anything of ours" and silently dropped)."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat import MessageRef
from bot.views import View
from tests.inprocess import Chat, World, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


class Eager(Chat):
    """A user who answers a question the instant it appears; ``yields`` sets how far the bot
    gets meanwhile (each value lands the answer at another point of the race)."""

    def __init__(self, yields: int) -> None:
        super().__init__()
        self.yields = yields
        self.world: World | None = None
        self.answers: list[asyncio.Future[bool]] = []

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        ref = await super().send(chat_id, view, reply_to)
        if view.ask is not None and self.world is not None:
            w = self.world
            reply = w.service.answer(w.who(message="quick"), ref.message_id, "at dusk")
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
