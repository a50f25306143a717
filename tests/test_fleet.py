"""Several instances on one database (issue 14), in process: each store object below is one
instance (its own id) on the same database. A claim (a result being posted, a submit, an
answer) belongs to the instance that made it while that instance's heartbeat is alive, and
is taken over, by one instance only, once it lapsed; the tracker follows only the tasks its
instance leases, so each live task is asked about by one instance.

SQLite has one process per file; its "instances" here share the one connection (and its
lock), which is what they would see of each other. PostgreSQL gets one pool per instance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.chat import MessageRef
from bot.media import Downloader
from bot.mj.client import MjClient
from bot.mj.models import Task
from bot.outbox import Outbox
from bot.store import InstanceRow, Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from bot.tracking.tracker import Tracker
from bot.usecases import Service
from bot.views import View
from tests.harness import API_KEY
from tests.inprocess import Chat
from tests.storage import rows
from tests.test_store import row  # a task row with the fields a test does not care about

KINDS = ["sqlite", "postgresql"]


def instance(name: str) -> InstanceRow:
    return InstanceRow(name, "host-" + name, 4242, time.time(), 0.0, 0.0)


@pytest.fixture(params=KINDS)
async def fleet(request, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """``await fleet("a", "b")``: one store per name, all on one fresh database."""
    kind = request.param
    opened: list[Store] = []
    owners: list[Store] = []  # what must be closed (SQLite's twins share the first's)

    async def make(*names: str) -> list[Store]:
        if kind == "sqlite":
            first = await SQLiteStore.open(
                tmp_path / "db" / "mjbot.db", instance=instance(names[0])
            )
            owners.append(first)
            stores: list[Store] = [first]
            for name in names[1:]:
                twin = SQLiteStore(first._db, first.path, instance(name))
                twin._lock = first._lock  # one connection: its transactions take turns
                stores.append(twin)
        else:
            url = request.getfixturevalue("pg_server").database()
            stores = [await PostgresStore.open(url, instance=instance(n)) for n in names]
            owners.extend(stores)
        opened.extend(stores)
        return stores

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for store in owners:
        await store.close()


async def beat(store: Store, ttl_s: float) -> None:
    await store.heartbeat(store.instance, ttl_s)


async def die(store: Store) -> None:
    """kill -9, as the others see it: the heartbeat stops, and lapses."""
    await beat(store, 0.05)
    await asyncio.sleep(0.1)


async def test_a_delivery_claim_is_its_instances_until_that_one_dies(fleet):
    a, b, c = await fleet("a", "b", "c")
    for s in (a, b, c):
        await beat(s, 30.0)
    done = await a.add_task(row(task_id="1", status="SUCCESS"))
    # a and b at the same moment: one of them posts
    first, second = await asyncio.gather(a.claim_delivery(done.key), b.claim_delivery(done.key))
    assert [first, second].count(True) == 1
    poster, other = (a, b) if first else (b, a)
    assert (await c.task(done.key)).delivering_by == poster.instance.id
    assert not await poster.claim_delivery(done.key)  # its own claim: never taken by itself
    assert not await other.claim_delivery(done.key)  # alive: the claim stands, however old
    assert await other.undelivered() == [] and await c.undelivered() == []
    await die(poster)
    # dead while posting: one of the others takes it over, once
    assert [r.key for r in await c.undelivered()] == [done.key]
    taken = await asyncio.gather(other.claim_delivery(done.key), c.claim_delivery(done.key))
    assert taken.count(True) == 1
    heir = other if taken[0] else c
    await beat(poster, 30.0)  # back (a stall, not a crash): the claim is the heir's now
    assert not await poster.claim_delivery(done.key)
    await heir.delivered(done.key, MessageRef("telegram", "-1", "9", "photo"))
    assert not await c.claim_delivery(done.key) and await c.undelivered() == []


async def test_a_result_nobody_claimed_is_left_to_the_live_instance_that_follows_it(fleet):
    a, b = await fleet("a", "b")
    await beat(a, 30.0)
    await beat(b, 30.0)
    task = await a.add_task(row(task_id="7", status="IN_PROGRESS"))
    assert [r.key for r in await a.lease_tasks("a", 30.0, 10)] == [task.key]
    await a.update(task.key, status="SUCCESS", finished_at=time.time())
    # a follows it and is alive: its own _finish posts it, b stays out
    assert await b.undelivered() == [] and await a.undelivered() == []
    await die(a)
    assert [r.key for r in await b.undelivered()] == [task.key]
    # a failed post, released: the retry (unsent) is anyone's; the claim decides who posts
    assert await b.claim_delivery(task.key)
    await b.release_delivery(task.key)
    assert (await b.task(task.key)).delivering_by is None
    # b is on it now (the claimer became its owner): not an orphan to take over again and
    # again, but a retry at the resend pace
    assert await a.undelivered() == [] and await b.undelivered() == []
    # the retry is b's alone while b lives (a back from a stall leaves it)
    await beat(a, 30.0)
    assert [r.key for r in await b.unsent(idle_s=0)] == [task.key]
    assert await a.unsent(idle_s=0) == []
    await die(b)
    assert [r.key for r in await a.unsent(idle_s=0)] == [task.key]


async def test_a_dead_instances_submit_is_reported_by_one_other(fleet):
    a, b, c = await fleet("a", "b", "c")
    for s in (a, b, c):
        await beat(s, 30.0)
    cut = await a.add_task(row(status="SUBMITTING"))
    answered = await a.add_task(row(status="MODAL", task_id="55"))
    await a.add_modal(answered.key, "zoom", "a fox --zoom 2")
    other = await b.add_task(row(status="SUBMITTING"))  # b's own, b lives
    assert await c.interrupted() == [] and await c.answers_in_flight() == []
    assert await a.claim_modal(answered.key, prompt="a fox --zoom 1.5")
    assert (await c.task(answered.key)).submitted_by == "a"
    assert await c.answers_in_flight() == []  # a is alive: its answer is on its way
    await die(a)
    found = await asyncio.gather(b.interrupted(), c.interrupted())
    assert sorted(len(f) for f in found) == [0, 1]  # one of them, not both
    (got,) = [r for f in found for r in f]
    assert got.key == cut.key and got.submitted_by in ("b", "c")
    await a.update(cut.key, status="REJECTED", error="interrupted")  # reported (Delivery)
    assert await b.interrupted() == [] and await c.interrupted() == []
    answers = await asyncio.gather(b.answers_in_flight(), c.answers_in_flight())
    assert [r.key for f in answers for r in f] == [answered.key]
    assert (await a.task(other.key)).submitted_by == "b"  # untouched: b is alive
    await die(b)
    assert [r.key for r in await c.interrupted()] == [other.key]


async def test_a_restart_takes_over_at_once_on_sqlite_and_when_the_lease_lapses_on_postgresql(
    tmp_path, request, fleet
):
    """kill -9 leaves a heartbeat that looks alive for a while. SQLite's file lock proves the
    old process dead, so its claims are taken at once; PostgreSQL waits for the TTL."""
    (old,) = await fleet("old")
    await beat(old, 60.0)
    done = await old.add_task(row(task_id="1", status="SUCCESS"))
    assert await old.claim_delivery(done.key)  # killed while posting (close() releases nothing)
    await old.close()
    if fleet.kind == "sqlite":
        new = await SQLiteStore.open(tmp_path / "db" / "mjbot.db", instance=instance("new"))
    else:
        url = old.url  # type: ignore[attr-defined]
        new = await PostgresStore.open(url, instance=instance("new"))
    try:
        if fleet.kind == "postgresql":
            assert await new.undelivered() == [] and not await new.claim_delivery(done.key)
            await new.heartbeat(old.instance, 0.05)  # time passes: old's last beat lapses
            await asyncio.sleep(0.1)
        assert [r.key for r in await new.undelivered()] == [done.key]
        assert await new.claim_delivery(done.key)
    finally:
        await new.close()


async def test_lease_tasks_takes_up_to_the_limit_more_and_writes_only_what_changes_hands(fleet):
    a, b = await fleet("a", "b")
    keys = [(await a.add_task(row(task_id=f"t{n}", status="IN_PROGRESS"))).key for n in range(5)]
    assert [r.key for r in await a.lease_tasks("a", 30.0, 2)] == keys[:2]
    assert [r.key for r in await a.lease_tasks("a", 30.0, 2)] == keys[:4]  # held, and 2 more
    assert [r.key for r in await b.lease_tasks("b", 30.0, 2)] == keys[4:]
    before = {r.key: r.lease_until for r in await a.live_tasks()}
    await asyncio.sleep(0.01)
    await a.lease_tasks("a", 30.0, 2)  # nothing free: held rows are read, not rewritten
    assert {r.key: r.lease_until for r in await a.live_tasks()} == before
    await beat(a, 60.0)  # the heartbeat extends a's, not b's
    after = {r.key: r.lease_until for r in await a.live_tasks()}
    assert all(after[k] > before[k] for k in keys[:4]) and after[keys[4]] == before[keys[4]]


# --- the tracker: one instance asks about each live task ---------------------------------------


def asked(sim) -> list[str]:
    return [
        i for r in sim.requests if r.path == "/mj/task/list-by-condition" for i in r.body["ids"]
    ]


async def test_each_live_task_is_asked_about_by_one_instance_and_taken_over_when_it_dies(
    fleet, sim
):
    a, b = await fleet("a", "b")
    client = MjClient(sim.base_url, API_KEY)
    downloader = Downloader()
    services = [Service(s, client, Outbox({}), downloader) for s in (a, b)]
    ta, tb = (
        Tracker(s, client, service, poll_interval_s=1.0, lease_ttl_s=30.0)
        for s, service in zip((a, b), services, strict=True)
    )
    try:
        await beat(a, 30.0)
        await beat(b, 30.0)
        ids = [f"17000000001{n:05d}" for n in range(40)]
        for task_id in ids:
            await a.add_task(row(task_id=task_id, status="IN_PROGRESS"))
        for _ in range(3):  # both tick, three intervals: each task asked about once a tick
            await ta.poll_once()
            await tb.poll_once()
        assert sorted(asked(sim)) == sorted(ids * 3)  # not once per instance
        assert {r["lease_owner"] for r in rows(_where(a), "SELECT lease_owner FROM tasks")} == {"a"}
        # a dies: its leases lapse, b takes every task on its next tick, a no longer asks
        sim.requests.clear()
        await die(a)
        await tb.poll_once()
        await ta.poll_once()  # back from a stall: it holds nothing now
        assert sorted(asked(sim)) == sorted(ids)
        assert {r["lease_owner"] for r in rows(_where(b), "SELECT lease_owner FROM tasks")} == {"b"}
    finally:
        for service in services:
            await service.close()
        await client.aclose()
        await downloader.aclose()


def _where(store: Store) -> str:
    return getattr(store, "url", None) or store.path  # type: ignore[attr-defined]


async def test_leases_and_claims_keep_the_servers_time_not_an_instances_clock(
    pg_server, monkeypatch
):
    """On several machines a clock may be off. An instance whose clock runs a minute ahead
    still sees a live instance's leases and claims as live: PostgreSQL's clock decides."""
    url = pg_server.database()
    a, b = [await PostgresStore.open(url, instance=instance(n)) for n in ("a", "b")]
    try:
        await beat(a, 30.0)
        task = await a.add_task(row(task_id="1", status="IN_PROGRESS"))
        done = await a.add_task(row(task_id="2", status="SUCCESS"))
        assert [r.key for r in await a.lease_tasks("a", 30.0, 10)] == [task.key]
        assert await a.claim_delivery(done.key)
        real = time.time
        monkeypatch.setattr("bot.store.postgres.time.time", lambda: real() + 60.0)
        await beat(b, 30.0)
        assert await b.lease_tasks("b", 30.0, 10) == []
        assert not await b.claim_delivery(done.key) and await b.undelivered() == []
        monkeypatch.undo()
        await die(a)  # and once a is really gone, b takes both
        assert [r.key for r in await b.lease_tasks("b", 30.0, 10)] == [task.key]
        assert await b.claim_delivery(done.key)
    finally:
        await a.close()
        await b.close()


async def test_a_callback_on_another_instance_counts_as_heard_by_the_holder(fleet, sim):
    """While callbacks flow the holder polls only tasks gone quiet. The balancer sends a task's
    callbacks to any instance: one that moved the task elsewhere shows in its stored state, and
    the holder does not poll it as if it were silent (a fleet asks no more than one would)."""
    a, b = await fleet("a", "b")
    client = MjClient(sim.base_url, API_KEY)
    downloader = Downloader()
    services = [Service(s, client, Outbox({}), downloader) for s in (a, b)]
    holder = Tracker(a, client, services[0], poll_interval_s=2.0, hooks_flowing=lambda: True)
    try:
        moved, silent = "1700000000200001", "1700000000200002"
        for task_id in (moved, silent):
            await a.add_task(row(task_id=task_id, status="IN_PROGRESS"))
        await holder.poll_once()
        await holder.poll_once()
        assert asked(sim) == [moved, silent] * 2  # never heard of here: both are quiet
        hint = Task.from_json({"id": moved, "status": "IN_PROGRESS", "progress": "40%"})
        await services[1].on_tasks([hint])  # b got its callback
        sim.requests.clear()
        await holder.poll_once()
        assert asked(sim) == [silent]
    finally:
        for service in services:
            await service.close()
        await client.aclose()
        await downloader.aclose()


async def test_a_heartbeat_and_a_merge_at_once_never_deadlock(fleet):
    """The heartbeat extends every lease of its instance while another instance merges
    callbacks for the same tasks: both lock many task rows, so both must take them in one
    order (key order), or PostgreSQL finds a deadlock and one of them fails (the benchmark
    saw DeadlockDetectedError in merge at 1,000 tasks over three instances)."""
    if fleet.kind != "postgresql":
        pytest.skip("SQLite takes one writer at a time")
    a, b = await fleet("a", "b")
    await beat(a, 30.0)
    ids = [str(1_800_000_000_000 + n) for n in range(80)]
    for task_id in ids:
        await a.add_task(row(task_id=task_id, status="IN_PROGRESS"))
    assert len(await a.lease_tasks("a", 30.0, 100)) == 80
    for step in range(2, 52):
        callbacks = [
            Task.from_json({"id": i, "status": "IN_PROGRESS", "progress": f"{step}%"})
            for i in reversed(ids)
        ]
        merged, _ = await asyncio.gather(
            b.merge([t for t in callbacks if t is not None]), beat(a, 30.0)
        )
        assert len(merged) == 80


class Edits(Chat):
    """One instance's view of a chat where a progress message (id 1000) was posted."""

    platform = "telegram"

    def __init__(self) -> None:
        super().__init__()
        self.shown["1000"] = View("⏳")
        self.edits: list[str] = []

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        self.edits.append(view.text)
        await super().edit(ref, view)
        # what Telegram's port answers once a preview made the text message a photo: the
        # holder stores the new ref, and its watch reads the row again (no step shown twice)
        return MessageRef(ref.platform, ref.chat_id, ref.message_id, "photo")


async def test_progress_heard_by_another_instance_is_shown_by_the_holder_alone(fleet, sim):
    """The balancer sends a task's callbacks to any instance. Each merges what it hears, but
    only the lease holder edits the progress message: edited by every instance that heard a
    step, it took 2.5-12x the edits (the fleet benchmark), each from a stale idea of it."""
    a, b = await fleet("a", "b")
    client = MjClient(sim.base_url, API_KEY)
    downloader = Downloader()
    chats = [Edits(), Edits()]
    services = [
        Service(s, client, Outbox({"telegram": chat}, edit_interval_s=0), downloader)
        for s, chat in zip((a, b), chats, strict=True)
    ]
    holder = Tracker(a, client, services[0], poll_interval_s=60.0, watch_s=0.05)
    following = None
    try:
        await beat(a, 30.0)
        await beat(b, 30.0)
        task_id = "1700000000300001"
        progress = MessageRef("telegram", "-1", "1000", "text")
        await a.add_task(row(task_id=task_id, status="IN_PROGRESS", progress_ref=progress.encode()))
        assert len(await a.lease_tasks("a", 30.0, 10)) == 1
        following = asyncio.create_task(holder.run())

        def step(percent: int) -> list[Task]:
            hint = {"id": task_id, "status": "IN_PROGRESS", "progress": f"{percent}%"}
            return [t for t in [Task.from_json(hint)] if t is not None]

        await services[1].on_tasks(step(40))  # b heard it: merged there, shown by a
        await until(lambda: any("40%" in text for text in chats[0].edits))
        await asyncio.sleep(0.3)  # watches later: the message's new ref is no new step
        assert len(chats[0].edits) == 1
        await services[0].on_tasks(step(60))  # a heard it itself: shown once
        await until(lambda: any("60%" in text for text in chats[0].edits))
        await asyncio.sleep(0.3)  # several watches later
        assert chats[1].edits == []
        assert [("40%" in t, "60%" in t) for t in chats[0].edits] == [(True, False), (False, True)]
    finally:
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        for service in services:
            await service.close()
        await client.aclose()
        await downloader.aclose()


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_task_is_followed_by_the_instance_that_submits_it_from_the_start(fleet):
    """Not left free until some tracker's next tick takes it: meanwhile every instance a
    callback reached showed its progress."""
    a, b = await fleet("a", "b")
    await beat(a, 30.0)
    await beat(b, 30.0)
    task = await b.add_task(row(task_id="1700000000400001", status="SUBMITTED"))
    stored = await a.task(task.key)
    assert stored is not None and stored.lease_owner == "b" and stored.lease_until is not None
    assert await a.lease_tasks("a", 30.0, 10) == []
    assert [r.key for r in await b.lease_tasks("b", 30.0, 10)] == [task.key]
    await die(b)  # and like any lease, it lapses with its instance
    assert [r.key for r in await a.lease_tasks("a", 30.0, 10)] == [task.key]
