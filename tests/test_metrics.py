"""The one metrics object (bot/metrics.py): its fixed shape, route names, and the counts every
part leaves in it after real flows (the Service in-process against the simulator)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.metrics import Metrics, route_of
from tests.inprocess import worlds


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/fast/mj/task/1712345/fetch", "task/{id}/fetch"),
        ("/mj/task/list-by-condition", "task/list-by-condition"),
        ("/relax/mj/submit/imagine", "submit/imagine"),
        ("/mj/task/abc/image-seed?x=1", "task/{id}/image-seed"),
    ],
)
def test_routes_are_named_without_mode_or_task_id(path, route):
    assert route_of(path) == route


def test_the_shape_is_fixed():
    metrics = Metrics()
    with pytest.raises(AttributeError):
        metrics.outbox.sent = 1  # type: ignore[attr-defined]  # a misspelt counter
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.api = metrics.api  # type: ignore[misc]
    metrics.api.by_route["task/{id}/fetch"] += 2
    metrics.api.by_route["submit/imagine"] += 1
    assert metrics.api.tracking == 2
    snapshot = metrics.snapshot()
    assert snapshot["api"]["by_route"] == {"submit/imagine": 1, "task/{id}/fetch": 2}
    assert set(snapshot) == {
        "api",
        "tracking",
        "webhook",
        "telegram_webhook",
        "outbox",
        "ledger",
        "deliveries",
        "limiter",
    }


async def test_a_grid_and_a_failure_leave_their_counts(world):
    async with world() as w:
        key, _ = await w.imagine("a lighthouse at dawn")
        await w.settled(key)
        await w.service.imagine(w.who(), "this one will fail")  # the simulator fails "fail"
        (failed,) = [r for r in await w.store.live_tasks() if "fail" in r.prompt] or [None]
        assert failed is not None
        await w.settled(failed.key)
        await w.until(lambda: w.metrics.ledger.refunds == 1)
        m = w.metrics
        assert m.api.by_route["submit/imagine"] == 2
        # Every tracking request was the poller's, each answered.
        assert m.api.tracking == m.tracking.polls and m.tracking.poll_errors == 0
        assert (m.ledger.charges, m.ledger.units, m.ledger.kept, m.ledger.refunds) == (2, 2, 1, 1)
        assert m.deliveries.results == 2  # the grid, and the failure notice
        assert m.outbox.sends == len(w.chat.sent)
        assert m.outbox.deletes == len(w.chat.deleted)
        assert m.outbox.rate_limited == 0
