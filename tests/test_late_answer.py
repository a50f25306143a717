"""An answer given long after its question: the job starts at the answer, so the time limit
(``tracking.timeout_fast_s``) counts from there, not from the press that asked.

The Service runs in-process against the simulator (tests/inprocess.py).
"""

from __future__ import annotations

import time

import pytest

from tests.inprocess import worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


async def test_an_answer_given_late_is_not_timed_out_at_once(world):
    """The API's time limit counts from the answer (when the job starts), not from the press
    that asked the question."""
    async with world(remix=True) as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        child = await w.child(grid, "V1")
        asked = await w.question(child)
        await w.store.update(child, created_at=time.time() - 3 * 3600)  # answered hours later
        await w.service.answer(w.who(message="r1"), asked, "a lighthouse at dusk")
        await w.result(child)
        row = await w.store.task(child)
        assert row is not None and row.status == "SUCCESS", (row.status, row.error)
