"""The inbox of updates accepted by webhook (issue 14), in-process on both stores: an update is
kept before it is answered, once per update_id, and leaves once handled; one a live instance
has in hand is never taken, one a dead instance left is taken by exactly one other.

The kill -9 between the answer and the handling, with real processes, is in
tests/test_inbox_crash.py."""

from __future__ import annotations

import asyncio
import json

import pytest
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from adapters.telegram.webhook import WebhookIntake
from bot.store import Store
from tests.fakes.telegram import FakeTelegram
from tests.storage import BOTH, open_store, rows
from tests.test_webhook_intake import SECRET, UPDATE, counted, post

pytestmark = BOTH
EVENT = "telegram:4242"


@pytest.fixture
async def store(tmp_path):
    opened = await open_store(tmp_path / "mjbot.db")
    yield opened
    await opened.close()


def database(store: Store) -> str:
    return getattr(store, "url", None) or store.path  # type: ignore[attr-defined]


async def test_an_update_is_kept_once_and_taken_by_one(store: Store) -> None:
    body = json.dumps(UPDATE)
    assert await store.accept_update(EVENT, body, "a") is True
    assert await store.accept_update(EVENT, body, "b") is False  # a redelivery: a no-op
    assert await store.take_updates("b", 60.0, 10) == []  # "a" has it, lately

    await asyncio.sleep(0.3)  # "a" went silent for longer than 0.2 s: anyone's to take
    taken = await asyncio.gather(store.take_updates("c", 0.2, 10), store.take_updates("d", 0.2, 10))
    winners = [t for t in taken if t]
    assert len(winners) == 1, taken  # never both
    (row,) = winners[0]
    assert (row.event, row.body, row.takes) == (EVENT, body, 2)
    assert row.owner in ("c", "d")

    await asyncio.sleep(0.3)
    await store.keep_updates(row.owner)  # it says it still has it: nobody takes it
    assert await store.take_updates("e", 0.2, 10) == []

    await store.update_handled(EVENT, "a")  # its first owner, late: the row is not its own
    assert [r["owner"] for r in rows(database(store), "SELECT * FROM inbox")] == [row.owner]
    await store.update_handled(EVENT, row.owner)
    assert rows(database(store), "SELECT * FROM inbox") == []
    # After its handling an update is not kept: a late redelivery is kept again (and the
    # gate's seen event stops it from running twice).
    assert await store.accept_update(EVENT, body, "a") is True


async def intake_on(store: Store, fake: FakeTelegram, handler, takeover_s: float = 1.0):
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .updater(None)
        .concurrent_updates(True)
        .build()
    )
    app.add_handler(MessageHandler(filters.ALL, handler))
    receiver = WebhookIntake(app, "http://127.0.0.1:1/tg/in", SECRET, takeover_s=takeover_s)
    receiver.attach(store)
    await app.initialize()
    await app.start()
    await receiver.start("127.0.0.1:0")
    return receiver


async def close(receiver: WebhookIntake) -> None:
    await receiver.stop()
    await receiver.app.stop()
    await receiver.app.shutdown()


async def test_kept_until_handled_and_a_redelivery_is_not_queued(store: Store) -> None:
    handled: list[int] = []
    release = asyncio.Event()

    async def handler(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        handled.append(update.update_id)
        await release.wait()

    async with FakeTelegram() as fake:
        receiver = await intake_on(store, fake, handler)
        try:
            assert await post(receiver, json.dumps(UPDATE).encode()) == 200
            await fake.wait_for(lambda: handled, timeout=5)
            (kept,) = rows(database(store), "SELECT * FROM inbox")
            assert json.loads(kept["body"]) == UPDATE
            assert (kept["event"], kept["owner"]) == (EVENT, receiver.inbox.owner)
            # Telegram did not see the answer in time and posts it again: 200, not queued.
            assert await post(receiver, json.dumps(UPDATE).encode()) == 200
            await asyncio.sleep(0.5)
            assert handled == [4242]
            assert receiver.counters() == counted(received=2, queued=1, kept_already=1)

            release.set()
            await fake.wait_for(
                lambda: not rows(database(store), "SELECT * FROM inbox"),
                timeout=5,
                message="handled: the update left the inbox",
            )
        finally:
            await close(receiver)


async def test_a_live_instance_keeps_its_update_a_dead_ones_is_taken(
    store: Store, tmp_path
) -> None:
    """Two receivers on one database: what the first has in hand (its handler still busy,
    longer than takeover_s) stays its own; a row a dead instance left is handled once."""
    second_store = store
    if database(store).startswith("postgresql://"):
        from bot.store.postgres import PostgresStore

        second_store = await PostgresStore.open(database(store), exclusive=False)
    first_seen: list[int] = []
    second_seen: list[int] = []
    release = asyncio.Event()

    async def slow(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        first_seen.append(update.update_id)
        await release.wait()

    async def other(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        second_seen.append(update.update_id)

    async with FakeTelegram() as fake:
        first = await intake_on(store, fake, slow, takeover_s=1.0)
        second = await intake_on(second_store, fake, other, takeover_s=1.0)
        try:
            assert await post(first, json.dumps(UPDATE).encode()) == 200
            await asyncio.sleep(2.5)  # 2.5 takeover times: the first said it still has it
            assert (first_seen, second_seen) == ([4242], [])

            # What a killed instance leaves: its row, and nobody saying it still has it.
            left = {**UPDATE, "update_id": 4343}
            assert await store.accept_update("telegram:4343", json.dumps(left), "dead-1")
            await fake.wait_for(lambda: 4343 in first_seen + second_seen, timeout=5)
            release.set()
            await fake.wait_for(lambda: not rows(database(store), "SELECT * FROM inbox"), timeout=5)
            await asyncio.sleep(1.0)  # a second take would show by now
            assert sorted(first_seen + second_seen) == [4242, 4343]
            taken = first.counts.taken_over + second.counts.taken_over
            assert taken == 1
        finally:
            await close(second)
            await close(first)
            if second_store is not store:
                await second_store.close()


async def test_a_stalled_instance_ending_an_update_taken_over_leaves_it_to_the_taker(
    store: Store,
) -> None:
    """The first instance stalls (its inbox round stops) while it handles an update; the
    second takes the update over and is handling it when the first one's handling ends. The
    row stays the second's: deleted by the first, a kill -9 of the second would lose it."""
    second_store = store
    if database(store).startswith("postgresql://"):
        from bot.store.postgres import PostgresStore

        second_store = await PostgresStore.open(database(store), exclusive=False)
    release_first, release_second = asyncio.Event(), asyncio.Event()
    first_seen: list[int] = []
    second_seen: list[int] = []

    async def stalled(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        first_seen.append(update.update_id)
        await release_first.wait()

    async def taker(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        second_seen.append(update.update_id)
        await release_second.wait()

    async with FakeTelegram() as fake:
        first = await intake_on(store, fake, stalled, takeover_s=1.0)
        second = await intake_on(second_store, fake, taker, takeover_s=1.0)
        second.inbox.owner = "taker"  # SQLite's two receivers share one store (one instance id)
        try:
            assert await post(first, json.dumps(UPDATE).encode()) == 200
            await fake.wait_for(lambda: first_seen, timeout=5)
            await first.inbox.stop()  # the stall: it no longer says it has the update
            await fake.wait_for(lambda: second_seen, timeout=5, message="taken over")

            release_first.set()  # the first one's handling ends after all
            await asyncio.sleep(0.3)
            (kept,) = rows(database(store), "SELECT * FROM inbox")
            assert (kept["event"], kept["owner"]) == (EVENT, second.inbox.owner)

            release_second.set()  # the taker ends it: now it leaves
            await fake.wait_for(lambda: not rows(database(store), "SELECT * FROM inbox"), timeout=5)
        finally:
            release_first.set()
            release_second.set()
            await close(second)
            await close(first)
            if second_store is not store:
                await second_store.close()


async def test_an_update_that_never_ends_is_dropped_at_its_fifth_take_over(
    store: Store, caplog
) -> None:
    """Each take of a row is counted: one whose handling killed every instance that took it
    is dropped (with an error) rather than killing the next one too."""
    await store.accept_update("telegram:4444", json.dumps({**UPDATE, "update_id": 4444}), "d0")
    for n in range(1, 5):
        await asyncio.sleep(0.01)
        (row,) = await store.take_updates(f"d{n}", 0.0, 10)  # taken, then that one died too
    assert row.takes == 5  # its receiver and four take-overs: the fifth drops it
    seen: list[int] = []

    async def handler(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)

    async with FakeTelegram() as fake:
        receiver = await intake_on(store, fake, handler, takeover_s=1.0)
        try:
            await fake.wait_for(lambda: not rows(database(store), "SELECT * FROM inbox"), timeout=5)
            await asyncio.sleep(0.3)
            assert seen == []
            assert "dropping update 4444 from the inbox: taken over 5 times" in caplog.text
        finally:
            await close(receiver)


async def test_an_update_the_store_cannot_keep_is_not_answered_200(tmp_path) -> None:
    """Without the inbox row there is no 200: Telegram sends the update again later."""
    broken = await open_store(tmp_path / "broken.db")
    handled: list[int] = []

    async def handler(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        handled.append(update.update_id)

    async with FakeTelegram() as fake:
        receiver = await intake_on(broken, fake, handler, takeover_s=60.0)
        try:
            await broken.close()  # the database went away
            assert await post(receiver, json.dumps(UPDATE).encode()) == 503
            await asyncio.sleep(0.3)
            assert handled == []
            assert receiver.counters() == counted(received=1, unkept=1)
        finally:
            await close(receiver)
