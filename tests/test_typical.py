"""The progress message of a waiting task shows how long such a task takes here: the median
duration of the tasks of the same kind and mode that succeeded over the last day, from mjbot's
own history (Store.durations). In-process against the simulator, on both stores."""

from __future__ import annotations

import pytest

from bot.i18n import t
from tests.inprocess import worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def _first_state(w, prompt: str) -> str:
    """The last line of the first progress message of the task asked with ``prompt``."""
    texts = [v.text for _, v in w.chat.sent if v.text.startswith(f"{prompt}\n") and "⏳" in v.text]
    return texts[0].splitlines()[-1]


async def test_a_waiting_task_shows_the_median_time_of_its_kind_and_mode(world):
    async with world() as w:
        # this history is rewritten between submits, far faster than the cache's minute
        w.service.submitter.typical_ttl_s = 0.0
        waiting = t("progress.waiting", "en")
        history = {"a first kite": 10.0, "a second kite": 90.0, "a third kite": 48.0}
        for prompt, seconds in history.items():
            key, _ = await w.imagine(prompt)
            row = await w.store.task(key)
            assert row is not None
            await w.store.update(key, finished_at=row.created_at + seconds)
        assert _first_state(w, "a first kite") == waiting  # no history yet: no estimate
        # another mode does not count (with it the median would be 29)
        key, _ = await w.imagine("a relaxed kite")
        row = await w.store.task(key)
        assert row is not None
        await w.store.update(key, mode="relax", finished_at=row.created_at + 5)

        await w.imagine("a fourth kite")
        assert _first_state(w, "a fourth kite") == f"{waiting} · ≈ 48 s typical"
