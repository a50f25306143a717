"""A failed or refused task says what its charge came to, as its last line: the units the
ledger refunded, or that nothing was charged (weight 0). Only said: the ledger rows show the
refund itself. In-process against the simulator (tests/inprocess.py), on both stores."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import QuotaConfig, WeightsConfig
from bot.i18n import t
from bot.mj.models import TaskState
from bot.results import describe_failure
from tests.dbrows import stored
from tests.inprocess import worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


def _weights(imagine: int) -> QuotaConfig:
    return QuotaConfig(concurrency=0, weights=WeightsConfig(imagine=imagine))


async def _final(w):
    (row,) = stored(w.store, "SELECT key FROM tasks")
    key = row["key"]
    ended = await w.until(lambda: _delivered(w, key))
    return key, ended, w.chat.shown[ended.result_ref.split("|")[2]].text


async def _delivered(w, key):
    row = await w.store.task(key)
    return row if row is not None and row.delivered_at and row.result_ref else None


async def test_a_task_that_fails_says_its_unit_was_refunded(world):
    async with world() as w:
        await w.service.imagine(w.who(), "a fail of a kite")  # the simulator fails "fail"
        key, ended, text = await _final(w)
        assert ended.status == TaskState.FAILURE and ended.task is not None
        reason = describe_failure(ended.task.fail_reason or "", "en")
        assert text == f"a fail of a kite\n❌ {reason}\n1 unit refunded."
        rows = await w.settled(key)
        assert [(r["outcome"], r["units"]) for r in rows] == [("refunded", 1)]


async def test_a_refused_submit_says_in_chinese_how_many_units_were_refunded(world):
    async with world(quota=_weights(2)) as w:
        await w.service.imagine(replace(w.who(), language="zh"), "a gore scene")  # code 24
        key, ended, text = await _final(w)
        assert ended.status == TaskState.REJECTED
        refusal = t("refused.banned", "zh", word="gore")
        assert text == f"a gore scene\n❌ {refusal}\n已退还 2 单位。"
        rows = await w.settled(key)
        assert [(r["outcome"], r["units"]) for r in rows] == [("refunded", 2)]
        assert await w.spent() == 0


async def test_a_failure_that_cost_nothing_says_nothing_was_charged(world):
    async with world(quota=_weights(0)) as w:
        await w.service.imagine(w.who(), "a fail of a free kite")
        key, ended, text = await _final(w)
        assert ended.task is not None
        reason = describe_failure(ended.task.fail_reason or "", "en")
        assert text == f"a fail of a free kite\n❌ {reason}\nNothing was charged."
        rows = await w.settled(key)
        assert [(r["outcome"], r["units"]) for r in rows] == [("refunded", 0)]
