"""The tracker's schedule, read off the requests the simulator received: every live task is
asked about once per interval, in slices of at most one request each."""

from __future__ import annotations

import time

import pytest

from bot.media import Downloader
from bot.mj.client import MjClient
from bot.outbox import Outbox
from bot.store import Store, TaskRow, new_key
from bot.tracking.tracker import BATCH, RECONCILE_FACTOR, SAFETY_NET_S, Tracker
from bot.usecases import Service
from tests import storage
from tests.harness import API_KEY
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


@pytest.fixture
async def parts(tmp_path, sim):
    store = await storage.open_store(tmp_path / "mjbot.db")
    client = MjClient(sim.base_url, API_KEY)
    downloader = Downloader()
    service = Service(store, client, Outbox({}), downloader)
    yield store, Tracker(store, client, service, poll_interval_s=2.0)
    await service.close()
    await client.aclose()
    await downloader.aclose()
    await store.close()


async def live(store: Store, count: int) -> list[str]:
    ids = [f"17000000000{n:05d}" for n in range(count)]
    for task_id in ids:
        await store.add_task(
            TaskRow(
                key=new_key(),
                platform="telegram",
                chat_id="-1",
                user_id="7",
                kind="imagine",
                status="IN_PROGRESS",
                task_id=task_id,
            )
        )
    return ids


def asked(sim) -> list[list[str]]:
    return [r.body["ids"] for r in sim.requests if r.path == "/mj/task/list-by-condition"]


async def test_few_live_tasks_are_asked_about_in_one_request(parts, sim):
    store, tracker = parts
    ids = await live(store, BATCH)
    assert await tracker.poll_once() == 1  # one tick per interval
    assert asked(sim) == [ids]


async def test_many_live_tasks_are_spread_over_the_interval(parts, sim):
    store, tracker = parts
    count = 2 * BATCH + 1  # needs three requests
    ids = await live(store, count)
    ticks = [await tracker.poll_once() for _ in range(6)]
    assert ticks == [3] * 6  # three requests per interval, a third of it apart
    requests = asked(sim)
    shares = [count // 3 + (1 if tick < count % 3 else 0) for tick in range(3)]
    assert [len(r) for r in requests] == shares * 2
    # Each interval (three ticks) asks about every task exactly once, longest waiting first.
    for first in (0, 3):
        interval = [i for r in requests[first : first + 3] for i in r]
        assert sorted(interval) == sorted(ids)
    assert requests[3] == requests[0]


async def test_while_callbacks_flow_only_quiet_tasks_are_polled(tmp_path, sim):
    """A task that called back lately is not asked about (its next callback is on its way); one
    silent for a whole slowed interval is, and so is every task after SAFETY_NET_S whatever
    its callbacks claim (forged progress cannot keep a task from being followed)."""
    store = await storage.open_store(tmp_path / "mjbot.db")
    client = MjClient(sim.base_url, API_KEY)
    downloader = Downloader()
    service = Service(store, client, Outbox({}), downloader)
    heard: dict[str, float] = {}
    tracker = Tracker(
        store,
        client,
        service,
        poll_interval_s=2.0,
        hooks_flowing=lambda: True,
        heard_at=lambda task_id: heard.get(task_id, float("-inf")),
    )
    try:
        chatty, quiet, never = await live(store, 3)
        now = time.monotonic()
        heard[chatty] = now - 1.0  # called back a second ago
        heard[quiet] = now - 2.0 * RECONCILE_FACTOR - 0.1  # silent for a whole slowed interval
        await tracker.poll_once()
        assert asked(sim) == [sorted([quiet, never], key=[chatty, quiet, never].index)]
        heard[chatty] = time.monotonic()  # still calling back...
        tracker._asked[chatty] = time.monotonic() - SAFETY_NET_S  # ...but not asked for a minute
        await tracker.poll_once()
        assert chatty in asked(sim)[-1]
    finally:
        await service.close()
        await client.aclose()
        await downloader.aclose()
        await store.close()
