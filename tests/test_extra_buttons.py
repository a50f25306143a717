"""Our own buttons beside the API's (🔁 📎 ✂️): forged presses start nothing, and a burst of
presses posts one copy. Use cases in-process against the simulator (tests/inprocess.py)."""

from __future__ import annotations

import asyncio

import pytest

from bot import buttons
from tests.inprocess import TEN, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


async def test_a_forged_retry_under_a_finished_grid_starts_nothing(world):
    """🔁 is drawn only under a failed or interrupted imagine; its token forged under a grid
    that succeeded must not buy a second imagine."""
    async with world() as w:
        key, _ = await w.imagine("a lighthouse at dawn")
        spent = await w.spent()
        (notice,) = await asyncio.gather(w.service.press(w.who(), buttons.encode(key, "retry")))
        await asyncio.sleep(0.5)  # a wrong imagine would be submitted by now
        assert notice.alert and "expired" in notice.text.lower()
        assert w.submits("imagine") == 1
        assert await w.spent() == spent


@pytest.mark.parametrize("label", ["📎", "✂️"])
async def test_a_burst_of_file_or_split_presses_posts_one_copy(world, label):
    async with world(buttons="chat") as w:
        _, message = await w.imagine("a lighthouse at dawn")
        before = len(w.chat.sent)
        token = next(tok for name, tok in w.chat.tokens(message).items() if label in name)
        notices = await asyncio.gather(
            *(w.service.press(w.who(user=f"u{n}"), token) for n in range(TEN))
        )
        await asyncio.sleep(1.0)  # every copy that is going to be posted is posted by now
        assert len(w.chat.sent) - before == 1, [n.text for n in notices]
        # Pressed again once it is posted: it points to the copy instead of posting another.
        (again,) = await asyncio.gather(w.service.press(w.who(), token))
        await asyncio.sleep(0.3)
        assert len(w.chat.sent) - before == 1
        assert again.where is not None and again.where.message_id == w.chat.sent[before][0]
