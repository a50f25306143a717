"""What several instances on one database must agree on, that one process kept in memory
(issue 14): an album whose parts reach different instances is one command, and a copy of a
result (📎, ✂️, a U shown again) is posted once whichever instance the presses reach.

The store's rules on both stores; the two-instance tests on PostgreSQL (SQLite is one process
per file), in-process: two Services on one database, a second store opened with
``exclusive=False`` beside the first. The album tests run mjbot's real Telegram handlers
(python-telegram-bot) against the fake Bot API server, handing each update to one instance
or the other as a load balancer would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from telegram import Update

from adapters.telegram import TelegramAdapter, albums
from bot.chat import MessageRef
from bot.config import AccessConfig, QuotaConfig, Secret, TelegramConfig
from bot.egress import Egress
from bot.media import Downloader, MediaCache
from bot.mj.client import MjClient
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import CopyClaim, Store
from bot.store import postgres as pg_store
from bot.store import sqlite as sqlite_store
from bot.store.postgres import PostgresStore
from bot.tracking import Tracker
from bot.usecases import Service
from mjsim import Simulator
from tests import storage
from tests.conftest import ALICE, GROUP
from tests.fakes.telegram import FakeTelegram
from tests.harness import API_KEY
from tests.inprocess import TEN, World, worlds
from tests.storage import BOTH

PG = pytest.mark.parametrize("storage", ["postgresql"], indirect=True)


async def stores(tmp_path: Path, n: int) -> list[Store]:
    """``n`` stores on the test's database: on PostgreSQL each with its own connections (as
    instances have), on SQLite the one store n times (one process per file)."""
    first = await storage.open_store(tmp_path / "mjbot.db")
    if not storage.current.url:
        return [first] * n
    others = [await PostgresStore.open(storage.current.url, exclusive=False) for _ in range(n - 1)]
    return [first, *others]


async def close(opened: list[Store]) -> None:
    for store in {id(s): s for s in opened}.values():
        await store.close()


# --- the store's rules -------------------------------------------------------------------------


@BOTH
async def test_an_album_window_is_taken_once_by_its_last_arrival(tmp_path: Path) -> None:
    (store,) = await stores(tmp_path, 1)
    try:
        assert await store.join_album("t:1:g", "11", "one") == 1
        assert await store.join_album("t:1:g", "12", "two") == 2
        assert await store.take_album("t:1:g", 1, "11") is None  # a later part came
        assert await store.take_album("t:1:g", 2, "12") == ["one", "two"]
        assert await store.take_album("t:1:g", 2, "12") is None  # taken once
        assert await store.join_album("t:1:g", "11", "one") == 0  # redelivered: dropped
        assert await store.retake_album("t:1:g", "11") is None  # 12 took it, not 11
        # The part that took it, replayed (its instance died before the blend was stored):
        # the album again, for the gate to run once.
        assert await store.join_album("t:1:g", "12", "two") == 0
        assert await store.retake_album("t:1:g", "12") == ["one", "two"]
        # A part after its album was taken opens a window of its own (as it did in memory).
        assert await store.join_album("t:1:g", "13", "late") == 1
        assert await store.take_album("t:1:g", 1, "13") == ["late"]
        assert await store.retake_album("t:1:g", "12") == ["one", "two"]  # still its own
        # Redelivered while its window is open: it re-arms the window, and is taken once.
        assert await store.join_album("t:1:h", "21", "a") == 1
        assert await store.join_album("t:1:h", "21", "a") == 2
        assert await store.take_album("t:1:h", 1, "21") is None
        assert await store.take_album("t:1:h", 2, "21") == ["a"]
    finally:
        await close([store])


@BOTH
async def test_parts_racing_over_two_stores_make_one_album(tmp_path: Path) -> None:
    """Six parts join at once through two stores (two instances), then each part tries to
    take the album with the count it saw: exactly one gets all six."""
    opened = await stores(tmp_path, 2)
    try:
        counts = await asyncio.gather(
            *(opened[n % 2].join_album("t:1:g", str(n), f"p{n}") for n in range(6))
        )
        assert sorted(counts) == [1, 2, 3, 4, 5, 6]
        taken = await asyncio.gather(
            *(opened[n % 2].take_album("t:1:g", c, str(n)) for n, c in enumerate(counts))
        )
        (album,) = [t for t in taken if t is not None]
        assert sorted(album) == [f"p{n}" for n in range(6)]
    finally:
        await close(opened)


@BOTH
async def test_a_copy_is_claimed_once_and_then_pointed_to(tmp_path, monkeypatch) -> None:
    opened = await stores(tmp_path, 2)
    here, there = opened
    ref = MessageRef("t", "-100", "77", "photo")
    try:
        claims = await asyncio.gather(*(opened[n % 2].claim_copy("k:file") for n in range(TEN)))
        assert sum(c.mine for c in claims) == 1
        assert all(c.ref is None for c in claims)  # being posted
        await here.copy_posted("k:file", ref)
        assert await there.claim_copy("k:file") == CopyClaim(mine=False, ref=ref)
        # A U shown again: within fresh_for it points to the copy, after it is posted anew.
        assert not (await there.claim_copy("k:file", fresh_for=10.0)).mine
        await asyncio.sleep(0.01)
        assert (await there.claim_copy("k:file", fresh_for=0.0)).mine
        # A copy not posted is claimed again; so is one whose poster gave no sign (it died).
        await there.drop_copy("k:file")
        assert (await here.claim_copy("k:file")).mine
        assert not (await there.claim_copy("k:file")).mine
        monkeypatch.setattr(sqlite_store, "COPY_POSTING_S", 0.0)
        monkeypatch.setattr(pg_store, "COPY_POSTING_S", 0.0)
        await asyncio.sleep(0.01)
        assert (await there.claim_copy("k:file")).mine
    finally:
        await close(opened)


# --- presses reaching two instances ---------------------------------------------------------


@contextlib.asynccontextmanager
async def twin(w: World) -> AsyncIterator[Service]:
    """A second instance beside the World's: its own connections to the same database, its
    own client, outbox and Service, posting into the same chat (the chat double)."""
    store = await PostgresStore.open(storage.current.url, exclusive=False)
    client = MjClient(w.sim.base_url, API_KEY)
    downloader = Downloader(Egress(origins=[w.sim.base_url]))
    outbox = Outbox({"t": w.chat}, edit_interval_s=0.05, send_interval_s=0)
    service = Service(
        store,
        client,
        outbox,
        downloader,
        cache=MediaCache(w.tmp / "media-twin"),
        policy=Policy(store, AccessConfig(buttons=w.buttons), w.quota),
    )
    try:
        yield service
    finally:
        await service.close()
        await outbox.close()
        await client.aclose()
        await downloader.aclose()
        await store.close()


@PG
@pytest.mark.parametrize("label", ["📎", "✂️"])
async def test_a_burst_of_presses_over_two_instances_posts_one_copy(tmp_path, label) -> None:
    async with worlds(tmp_path)(buttons="chat") as w, twin(w) as other:
        _, message = await w.imagine("a lighthouse at dawn")
        before = len(w.chat.sent)
        token = next(tok for name, tok in w.chat.tokens(message).items() if label in name)
        services = (w.service, other)
        notices = await asyncio.gather(
            *(services[n % 2].press(w.who(user=f"u{n}"), token) for n in range(TEN))
        )
        await w.until(lambda: len(w.chat.sent) > before)
        await asyncio.sleep(0.3)  # a second copy would be out by now
        assert len(w.chat.sent) - before == 1, [n.text for n in notices]
        copy = w.chat.sent[before][0]
        assert w.chat.shown[copy].media  # the file (or the four images), not a notice
        # Pressed again on either instance: both point to the copy.
        again = await asyncio.gather(*(s.press(w.who(), token) for s in services))
        await asyncio.sleep(0.3)
        assert len(w.chat.sent) - before == 1
        assert [n.where.message_id if n.where else None for n in again] == [copy, copy]


@PG
async def test_a_finished_upscale_pressed_on_two_instances_is_posted_again_once(tmp_path):
    async with worlds(tmp_path)() as w, twin(w) as other:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "U1")
        first = await w.result(upscale)
        before = len(w.chat.sent)
        token = w.chat.tokens(message)["U1"]
        services = (w.service, other)
        notices = await asyncio.gather(*(services[n % 2].press(w.who(), token) for n in range(TEN)))
        reposts = await w.until(lambda: w.chat.sent[before:])
        await asyncio.sleep(0.5)  # a second copy, or a second submit, would be out by now
        assert len(w.chat.sent) == before + 1
        assert w.submits("action") == 1
        assert all("posted again" in n.text for n in notices), [n.text for n in notices]
        again = reposts[0][0]
        shown = {first, again}
        assert all(n.where is not None and n.where.message_id in shown for n in notices)
        rows = await w.settled(upscale)
        assert [(r["outcome"], r["units"]) for r in rows] == [("success", rows[0]["units"])]


# --- albums reaching two instances ----------------------------------------------------------


@dataclass
class Instance:
    """One mjbot instance in-process: its store connections, client, outbox and Service, and
    a python-telegram-bot Application with mjbot's handlers that takes updates as they are
    handed to it (no polling: the test is the load balancer)."""

    store: Store
    adapter: TelegramAdapter
    service: Service

    async def take(self, update: dict[str, object]) -> None:
        app = self.adapter.app
        await app.process_update(Update.de_json(update, app.bot))


@contextlib.asynccontextmanager
async def instance(
    tmp: Path, sim: Simulator, tg: FakeTelegram, store: Store, *, track: bool
) -> AsyncIterator[Instance]:
    async with contextlib.AsyncExitStack() as stack:
        client = MjClient(sim.base_url, API_KEY)
        stack.push_async_callback(client.aclose)
        downloader = Downloader(Egress(origins=[sim.base_url, tg.url]))
        stack.push_async_callback(downloader.aclose)
        adapter = TelegramAdapter(
            TelegramConfig(
                token=Secret(tg.token),
                api_base_url=tg.base_url,
                file_base_url=tg.base_file_url,
                group_messages_per_minute=0,
            )
        )
        stack.push_async_callback(adapter.close)
        outbox = Outbox({adapter.platform: adapter.port}, edit_interval_s=0.1, send_interval_s=0)
        stack.push_async_callback(outbox.close)
        service = Service(
            store,
            client,
            outbox,
            downloader,
            cache=MediaCache(tmp / "media"),
            policy=Policy(store, AccessConfig(), QuotaConfig(concurrency=0)),
        )
        stack.push_async_callback(service.close)
        adapter.attach(service)
        await adapter.app.initialize()
        if track:  # one tracker is enough to finish the task, whichever instance submitted it
            tracker = Tracker(store, client, service, poll_interval_s=0.1)
            tracking = asyncio.create_task(tracker.run())

            async def stop() -> None:
                tracking.cancel()
                await asyncio.gather(tracking, return_exceptions=True)

            stack.push_async_callback(stop)
        yield Instance(store, adapter, service)


def photo(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "PNG")
    return out.getvalue()


def decoded(uri: str) -> bytes:
    assert uri.startswith("data:image/")
    return base64.b64decode(uri.split(",", 1)[1])


async def album_over(
    tmp_path: Path, sim: Simulator, tg: FakeTelegram, command: str, split: int
) -> None:
    """Alice sends an album captioned ``command`` (/blend: three photos, /swap: two); its
    updates are handed to ``split`` instances (the last part to the second one when there
    are two), then two of them are posted again (Telegram's redelivery)."""
    opened = await stores(tmp_path, split)
    try:
        async with contextlib.AsyncExitStack() as stack:
            here = [
                await stack.enter_async_context(
                    instance(tmp_path / f"i{n}", sim, tg, store, track=n == 0)
                )
                for n, store in enumerate(opened)
            ]
            blend = command == "blend"
            colours = [photo(c) for c in ("red", "green", "blue")[: 3 if blend else 2]]
            caption = "/blend landscape" if blend else "/swap"
            album = await tg.send_album(GROUP, ALICE, colours, caption=caption)
            n = len(album)
            updates = tg.updates[-n:]
            assert [u["message"]["message_id"] for u in updates] == [m.message_id for m in album]
            # As a load balancer spreads them: A, B(, B) (the last part, which takes the
            # album, is not where the caption is), each a moment after the previous one.
            order = [0] + [split - 1] * (n - 1)

            async def arrive(i: int) -> None:
                await asyncio.sleep(0.1 * i)
                await here[order[i]].take(updates[i])

            await asyncio.gather(*(arrive(i) for i in range(n)))
            result = await tg.wait_for(
                lambda: next(
                    (
                        m
                        for m in tg.bot_messages(GROUP)
                        if m.reply_to_message_id == album[0].message_id and m.buttons
                    ),
                    None,
                ),
                timeout=30,
                message=f"the {command}'s result",
            )
            # Telegram posts parts again after the album was taken: nothing happens.
            await here[-1].take(updates[0])
            await here[0].take(updates[-1])
            (submit,) = sim.submits(command)  # exactly one blend (swap) ...
            if blend:  # all the photos, in order
                assert [decoded(u) for u in submit.body["base64Array"]] == colours
                assert submit.body["dimensions"] == "LANDSCAPE"
            else:  # the face first, then the picture it goes into
                assert decoded(submit.body["sourceBase64"]) == colours[0]
                assert decoded(submit.body["targetBase64"]) == colours[1]
            # ... one task, charged once and settled, and one result shown to Alice.
            (task,) = storage.rows(_where(opened[0], tmp_path), "SELECT * FROM tasks")
            assert task["kind"] == command and task["user_id"] == str(ALICE)
            ledger = await _settled(opened[0], tmp_path, task["key"])
            assert [(r["outcome"], r["user_id"]) for r in ledger] == [("success", str(ALICE))]
            assert result.photo is not None
            parts = {m.message_id for m in album}
            answers = [
                m
                for m in tg.bot_messages(GROUP, include_deleted=True)
                if m.reply_to_message_id in parts
            ]
            # The progress message (deleted once the result is out) and the result, both in
            # reply to the album's first photo; nothing to the other parts, no refusal.
            assert {m.reply_to_message_id for m in answers} == {album[0].message_id}
            assert [m.message_id for m in answers if m.buttons] == [result.message_id]
            assert len(answers) <= 2
    finally:
        await close(opened)


def _where(store: Store, tmp_path: Path) -> str:
    return storage.current.url or str(tmp_path / "mjbot.db")


async def _settled(store: Store, tmp_path: Path, key: str) -> list[dict[str, object]]:
    for _ in range(200):
        rows = storage.rows(_where(store, tmp_path), "SELECT * FROM ledger WHERE task_key = ?", key)
        if rows and all(r["outcome"] != "pending" for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"the charge of {key} was not settled")


@pytest.fixture
def short_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The album window at 0.5 s (1.5 s in production): the parts here come 0.1 s apart."""
    monkeypatch.setattr(albums, "ALBUM_WINDOW_S", 0.5)


@PG
@pytest.mark.parametrize("command", ["blend", "swap"])
async def test_an_album_split_over_two_instances_is_one_command(
    tmp_path, sim, tg, short_window, command
) -> None:
    await album_over(tmp_path, sim, tg, command, split=2)


@BOTH
async def test_an_album_on_one_instance_is_one_blend(tmp_path, sim, tg, short_window) -> None:
    await album_over(tmp_path, sim, tg, "blend", split=1)
