"""A result the chat refuses: it is posted again for a day (``store.RESEND_FOR_S``), its button
says that it is done and being posted (not "running"), and once posting is given up the button
may be pressed again for a new job.

The Service runs in-process against the simulator (tests/inprocess.py); a day passes by moving
the finished task's timestamp back, as the store reads it.
"""

from __future__ import annotations

import time

import pytest

from bot.chat import MessageRef
from bot.store import RESEND_FOR_S
from bot.views import View
from tests.inprocess import Chat, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


class RefusingChat(Chat):
    """A chat that refuses photos while ``refusing`` (the bot lost the right to post media)."""

    refusing = False

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        if self.refusing and view.media:
            raise RuntimeError("Forbidden: not enough rights to send photos to the chat")
        return await super().send(chat_id, view, reply_to)


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


async def refused_child(w, message: str, grid: str, label: str) -> str:
    """Press ``label`` under the grid while the chat refuses its result: the child's key,
    once it finished and its posting failed."""
    w.chat.refusing = True
    await w.press(message, label)
    child = await w.child(grid, label)

    async def refused() -> bool:
        row = await w.store.task(child)
        return bool(row and row.is_final and row.delivering_at is None and not row.delivered_at)

    await w.until(refused)
    w.chat.refusing = False
    return child


async def a_day_passes(w, key: str) -> None:
    await w.store.update(key, finished_at=time.time() - RESEND_FOR_S - 60)


@pytest.mark.parametrize("label", ["V1", "U1"])
async def test_a_refused_result_keeps_its_button_for_a_day_then_lets_it_go(world, label):
    async with world(chat=RefusingChat()) as w:
        grid, message = await w.imagine()
        first = await refused_child(w, message, grid, label)
        (notice,) = await w.press(message, label)
        assert "running" not in notice.text.lower(), notice.text
        assert "done" in notice.text and "being posted" in notice.text
        assert w.submits("action") == 1

        await a_day_passes(w, first)
        assert first not in {row.key for row in await w.store.unsent(0)}
        assert first not in {row.key for row in await w.store.undelivered()}
        (notice,) = await w.press(message, label)
        assert "new job" in notice.text, notice.text
        second = await w.child(grid, label)
        assert second != first
        await w.result(second)
        assert w.submits("action") == 2
        assert [r["outcome"] for r in await w.settled(second)] == ["success"]
