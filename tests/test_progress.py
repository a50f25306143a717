"""The progress message: a send that fails is logged with its cause, and one the platform
confirms late (slow to answer, a busy group's pacing) neither holds up the submit nor stays
behind at "⏳ Waiting to start…" once the task is done."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.chat import MessageRef
from bot.usecases import submitter
from bot.views import View
from tests.dbrows import stored
from tests.inprocess import Chat, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


class SlowChat(Chat):
    """The first ``times`` sends are posted at once but confirmed ``delay_s`` later, or fail
    then with ``error`` (posted or not, as ``post`` says)."""

    def __init__(
        self, delay_s: float, *, times: int = 1, error: Exception | None = None, post: bool = True
    ) -> None:
        super().__init__()
        self.delay_s, self.times, self.error, self.post = delay_s, times, error, post
        self.confirmed_at: list[float] = []

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        if not self.times:
            return await super().send(chat_id, view, reply_to)
        self.times -= 1
        ref = await super().send(chat_id, view, reply_to) if self.post else None
        await asyncio.sleep(self.delay_s)
        self.confirmed_at.append(time.time())
        if self.error is not None:
            raise self.error
        return ref


def waiting(chat: Chat) -> list[str]:
    """Progress messages still shown (the "waiting" and progress views have no buttons)."""
    return [view.text for view in chat.shown.values() if view.text.startswith("⏳")]


@pytest.fixture
def fast_wait(monkeypatch):
    monkeypatch.setattr(submitter, "PROGRESS_WAIT_S", 0.2)


async def test_a_failed_progress_message_is_logged_with_its_cause(tmp_path, caplog):
    chat = SlowChat(0.0, error=ConnectionResetError("connection reset by peer"), post=False)
    async with worlds(tmp_path)(chat=chat) as w:
        with caplog.at_level(logging.WARNING, logger="bot.service"):
            key, _ = await w.imagine()
        lines = [r.getMessage() for r in caplog.records if "no progress message" in r.message]
        assert lines and "ConnectionResetError: connection reset by peer" in lines[0], lines
        assert (await w.store.task(key)).status == "SUCCESS"  # submitted and delivered anyway


async def test_a_progress_message_confirmed_after_the_result_is_deleted(tmp_path, fast_wait):
    chat = SlowChat(1.5)
    async with worlds(tmp_path)(chat=chat) as w:
        key, _ = await w.imagine()
        # The submit went ahead before the platform confirmed the progress message...
        (submit,) = w.sim.submits("imagine")
        assert submit.time < chat.confirmed_at[0] - 1.0
        # ...and with the result posted, nothing is left waiting next to it.
        await w.until(lambda: not waiting(chat), timeout=5)
        assert (await w.store.task(key)).progress_ref is None


async def test_a_progress_message_confirmed_while_running_is_used(tmp_path, fast_wait):
    chat = SlowChat(0.6)
    async with worlds(tmp_path)(chat=chat, time_scale=0.05) as w:
        await w.service.imagine(w.who(), "a slow lighthouse")
        (row,) = stored(w.store, "SELECT key FROM tasks")
        key = row["key"]
        await w.until(lambda: chat.confirmed_at)
        progress = await w.until(lambda: _progress_ref(w, key))
        # It shows the progress (edited in place), and is removed when the result comes.
        await w.until(lambda: "%" in chat.shown.get(progress, View("")).text)
        await w.result(key)
        assert progress in chat.deleted and not waiting(chat)


async def _progress_ref(w, key: str) -> str | None:
    row = await w.store.task(key)
    return row.progress_ref.split("|")[2] if row and row.progress_ref else None
