"""Send limits shared by every instance on one database (bot/limiter.py, Store.take_slot):
the slots a store hands out, three stores on one PostgreSQL handing out one schedule, and three
outboxes (three instances' worth) posting through the real python-telegram-bot to the fake
Telegram with its flood limits on: no 429 with the shared limiter, 429s without it."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace
from pathlib import Path

import pytest
import telegram

from adapters.telegram.port import TelegramPort
from bot.app import App, shared_limiter
from bot.chat import MessageRef
from bot.config import (
    Config,
    ConfigError,
    MidjourneyConfig,
    Secret,
    StorageConfig,
    TelegramConfig,
    TrackingConfig,
)
from bot.limiter import SharedLimiter
from bot.outbox import Outbox
from bot.store import SendRule
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from bot.views import View
from tests.conftest import ALICE
from tests.fakes.telegram import FakeTelegram
from tests.harness import TG_TOKEN, free_port
from tests.inprocess import Chat
from tests.storage import BOTH, open_store, rows
from tests.test_fleet import until


@BOTH
async def test_slots_of_one_scope_follow_its_rate_and_burst(tmp_path: Path, storage) -> None:
    store = await open_store(tmp_path / "s.db")
    try:
        rule = SendRule("t:chat:1", 0.2, burst=2)
        waits = [await store.take_slot([rule]) for _ in range(5)]
        # two at once (the burst), then one every 0.2 s
        assert waits[0] < 0.05 and waits[1] < 0.05
        for n, wait in enumerate(waits[2:], start=1):
            assert wait == pytest.approx(0.2 * n, abs=0.06)
        # an edit leaving 1 of a 3-burst free waits where a send would not
        group = SendRule("t:minute:2", 1.0, burst=3, reserve=1)
        assert await store.take_slot([group]) < 0.05
        assert await store.take_slot([group]) < 0.05
        assert await store.take_slot([group]) == pytest.approx(1.0, abs=0.1)
        # a call is charged in every scope at the moment all of them allow: the chat's 5th
        # slot (0.8 s away) holds the bot's second back as well
        bot = SendRule("t:second", 0.01, burst=30)
        wait = await store.take_slot([rule, bot])
        assert wait == pytest.approx(0.8, abs=0.06)
        assert await store.take_slot([bot]) == pytest.approx(0.8, abs=0.06)  # in time order
        stored = rows(store_location(store), "SELECT scope FROM send_slots ORDER BY scope")
        assert [r["scope"] for r in stored] == ["t:chat:1", "t:minute:2", "t:second"]
    finally:
        await store.close()


@BOTH
async def test_an_edit_booked_for_later_does_not_hold_back_a_message(
    tmp_path: Path, storage
) -> None:
    """Messages keep their order; a progress edit does not: booked for later (its share of
    the burst used up), it leaves the reserve to the result that comes after it. In the fleet
    benchmark a result waited for the edit booked before it, ~0.6 s a message."""
    store = await open_store(tmp_path / "s.db")
    try:
        edit = SendRule("t:minute:-1", 1.0, burst=4, reserve=2, ordered=False)
        waits = [await store.take_slot([edit]) for _ in range(3)]
        assert waits[0] < 0.05 and waits[1] < 0.05  # the burst less the reserve
        assert waits[2] == pytest.approx(1.0, abs=0.1)  # the third is booked a second on
        message = SendRule("t:minute:-1", 1.0, burst=4)
        assert await store.take_slot([message]) < 0.05  # the reserve, at once
        assert await store.take_slot([message]) == pytest.approx(1.0, abs=0.1)  # then in turn
    finally:
        await store.close()


@BOTH
async def test_a_call_that_can_wait_takes_a_free_slot_or_nothing(tmp_path: Path, storage) -> None:
    """``try_slot`` (progress edits, deletes): taken only if free now, leaving the reserve;
    otherwise nothing is charged, and a message after it goes as if it had never asked."""
    store = await open_store(tmp_path / "s.db")
    try:
        spare = SendRule("t:chat:-2", 1.0, burst=3, reserve=1, ordered=False)
        message = SendRule("t:chat:-2", 1.0, burst=3)
        assert await store.try_slot([spare]) == 0
        assert await store.try_slot([spare]) == 0
        assert await store.try_slot([spare]) == pytest.approx(1.0, abs=0.1)  # not now
        assert await store.try_slot([spare]) == pytest.approx(1.0, abs=0.1)  # none was taken
        assert await store.take_slot([message]) < 0.05  # the reserve, at once
        assert await store.take_slot([message]) == pytest.approx(1.0, abs=0.1)  # then in turn
    finally:
        await store.close()


def store_location(store: object) -> str:
    return getattr(store, "url", None) or getattr(store, "path")  # noqa: B009


async def test_three_stores_hand_out_one_schedule(pg_server) -> None:
    """Three instances asking at once for the same chat: every slot is 50 ms after the one
    before it, whoever asked (one UPSERT per slot, rows locked in scope order)."""
    url = pg_server.database()
    stores = [await PostgresStore.open(url, exclusive=False) for _ in range(3)]
    try:
        rules = [SendRule("telegram:chat:-5", 0.05), SendRule("telegram:second", 0.01, 20)]
        await stores[0].take_slot(rules)  # the rows exist (their first insert is not measured)
        chat = "SELECT tat, last FROM send_slots WHERE scope = 'telegram:chat:-5'"
        (start,) = rows(url, chat)

        async def take(store: PostgresStore) -> list[float]:
            times = []
            for _ in range(10):
                wait = await store.take_slot(rules)
                times.append(time.time() + wait)
            return times

        slots = sorted(t for ts in await asyncio.gather(*map(take, stores)) for t in ts)
        assert len(slots) == 30
        # Each of the 30 moved the chat's schedule by a whole step: none shared a slot (the
        # row is the server's account, more if the schedule ran dry between two takes; the
        # client's clock adds each round trip's jitter, so the gaps it sees are only roughly
        # 50 ms on a loaded machine).
        (state,) = rows(url, chat)
        assert state["tat"] - start["tat"] >= 30 * 0.05 - 1e-3
        assert state["tat"] - state["last"] == pytest.approx(0.05)
        gaps = [b - a for a, b in itertools.pairwise(slots)]
        assert sum(gaps) / len(gaps) == pytest.approx(0.05, abs=0.02), gaps
    finally:
        for store in stores:
            await store.close()


GROUPS = [-1001, -1002]
USERS = [501, 502, 503]
LIMITS = {  # the fake's flood limits, scaled up so the test is quick
    # Not faster: the limiter leaves ARRIVAL_MARGIN_S (0.3 s) for a call to reach the platform
    # late, and that holds when a chat's burst of 3 spans more than it (Telegram: 2 s). At
    # 5 a second it spanned 0.4 s, and in CI (the instances and the fake in one busy event
    # loop) one call came late enough for a 429.
    "per_chat_per_second": 2.5,
    "per_chat_burst": 3,
    "group_per_minute": 120,
    "global_per_second": 20,
}


@pytest.mark.parametrize("shared", [True, False], ids=["store", "memory"])
async def test_three_instances_stay_under_the_flood_limits_together(pg_server, shared) -> None:
    url = pg_server.database()
    async with FakeTelegram(token=TG_TOKEN) as fake:
        for chat in GROUPS:
            fake.group(chat, f"Group {chat}")
        for user in USERS:
            fake.user(user, f"User{user}")
        fake.enable_rate_limits(**LIMITS)
        stores = [await PostgresStore.open(url, exclusive=False) for _ in range(3)]
        bots = [telegram.Bot(**fake.bot_kwargs()) for _ in range(3)]
        outboxes = []
        for store, bot in zip(stores, bots, strict=True):
            await bot.initialize()
            interval = 1 / LIMITS["per_chat_per_second"]
            limiter = SharedLimiter(store, chat_interval_s=interval, per_second=20)
            outboxes.append(
                Outbox(
                    {"telegram": TelegramPort(bot, group_per_minute=120)},
                    send_interval_s=interval,
                    per_second=20,
                    max_retries=1,
                    limiter=limiter if shared else None,
                )
            )
        try:
            sends = [
                outbox.send("telegram", str(chat), View(f"#{n} from {i}"))
                for i, outbox in enumerate(outboxes)
                for chat in [*GROUPS, *GROUPS, *USERS]
                for n in range(3)
            ]
            started = time.monotonic()
            results = await asyncio.gather(*sends, return_exceptions=True)
            took = time.monotonic() - started
            calls = [c for c in fake.calls if c.method == "sendMessage"]
            refused = [c for c in calls if c.status == 429]
            if shared:
                assert refused == [] and all(not isinstance(r, Exception) for r in results)
                posted = [m for chat in [*GROUPS, *USERS] for m in fake.messages(chat)]
                assert len(posted) == len(sends) == 63
                assert sum(o.limiter.counts.slots for o in outboxes if o.limiter) == 63
                # 18 calls to each group at 2.5 a second (a burst of 3 first) take about 6 s
                assert 5.0 < took < 20.0
            else:
                # each instance alone keeps to the limits; three together do not
                assert len(refused) >= 3
        finally:
            for outbox in outboxes:
                await outbox.close()
            for bot in bots:
                await bot.shutdown()
            for store in stores:
                await store.close()


async def test_shared_limits_are_chosen_by_the_store_or_the_config(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "s.db")
    try:
        sqlite = Config(storage=StorageConfig(path=str(tmp_path / "s.db")))
        assert shared_limiter(sqlite, store) is None  # one process: pacing in memory
        postgres = replace(sqlite, storage=StorageConfig(url=Secret("postgresql://h/db")))
        chosen = shared_limiter(postgres, store)
        assert chosen is not None and chosen.chat_interval_s == 1.0 and chosen.per_second == 30
        forced = replace(sqlite, tracking=TrackingConfig(shared_limits="store"))
        assert shared_limiter(forced, store) is not None
        off = replace(postgres, tracking=TrackingConfig(shared_limits="memory"))
        assert shared_limiter(off, store) is None
    finally:
        await store.close()
    with pytest.raises(ConfigError, match=r"tracking\.shared_limits"):
        TrackingConfig(shared_limits="redis").validate()


async def test_an_app_on_postgresql_takes_its_telegram_slots_from_the_store(
    tmp_path: Path, tg: FakeTelegram, pg_server
) -> None:
    """The wiring: an App on PostgreSQL (tracking.shared_limits "auto") paces its Bot API calls
    through send_slots, one row per chat and one for the bot's second."""
    url = pg_server.database()
    config = Config(
        midjourney=MidjourneyConfig(base_url="simulator"),
        telegram=TelegramConfig(
            token=Secret(TG_TOKEN), api_base_url=f"{tg.url}/bot", file_base_url=f"{tg.url}/file/bot"
        ),
        tracking=TrackingConfig(listen=f"127.0.0.1:{free_port()}", send_interval_s=0.1),
        storage=StorageConfig(path=str(tmp_path / "data" / "mjbot.db"), url=Secret(url)),
    )
    app = App(config)
    try:
        await app.start()
        await tg.send_text(ALICE, ALICE, "/help")
        await tg.wait_for(lambda: tg.bot_messages(ALICE), timeout=10)
        assert app.outbox.limiter is not None and app.outbox.limiter.counts.slots >= 1
        assert app.metrics.snapshot()["limiter"]["slots"] == app.outbox.limiter.counts.slots
        scopes = {r["scope"] for r in rows(url, "SELECT scope FROM send_slots")}
        assert {f"telegram:chat:{ALICE}", "telegram:second"} <= scopes
    finally:
        await app.stop()


def test_the_rules_of_a_send_an_edit_an_album_and_a_delete() -> None:
    limiter = SharedLimiter(None, chat_interval_s=1.0, per_second=30)  # type: ignore[arg-type]
    send = limiter.rules("telegram", "-5", 20, kind="send")
    assert [(r.scope, r.interval_s, r.burst, r.cost, r.reserve) for r in send] == [
        ("telegram:chat:-5", 1.0, 3, 1, 0),
        ("telegram:minute:-5", 3.0, 19, 1, 0),
        ("telegram:second", 1 / 30, 20, 1, 0),
    ]
    album = limiter.rules("telegram", "-5", 20, kind="send", cost=4)
    assert album[1].cost == 4 and album[1].step == 12.0  # four messages of the group's minute
    # the third of a chat's burst comes ARRIVAL_MARGIN_S later: a call that reached Telegram
    # that much after its slot still cannot make four at once
    assert send[0].lead == pytest.approx(2.0 - 0.3)
    edit = limiter.rules("telegram", "-5", 20, kind="edit")
    assert [r.reserve for r in edit] == [1, 5, 6]  # results keep room in the chat, minute, second
    assert edit[1].lead < send[1].lead and not any(r.ordered for r in edit)
    delete = limiter.rules("telegram", "7", 0, kind="delete")  # a private chat: no minute
    assert [r.scope for r in delete] == ["telegram:chat:7", "telegram:second"]
    assert [(r.reserve, r.ordered) for r in delete] == [(1, False), (0, False)]


@BOTH
async def test_idle_scopes_are_forgotten_and_come_back_as_full_buckets(
    tmp_path: Path, storage
) -> None:
    store = await open_store(tmp_path / "s.db")
    try:
        idle, busy = SendRule("t:chat:idle", 0.01), SendRule("t:chat:busy", 0.01)
        await store.take_slot([idle])
        await asyncio.sleep(0.2)
        await store.take_slot([busy])
        assert await store.forget_slots(0.1) == 1
        left = rows(store_location(store), "SELECT scope FROM send_slots")
        assert [r["scope"] for r in left] == ["t:chat:busy"]
        assert await store.take_slot([idle]) == 0.0  # a row again, a full bucket
        assert len(rows(store_location(store), "SELECT scope FROM send_slots")) == 2
    finally:
        await store.close()


async def test_without_its_store_the_limiter_lets_the_call_go(tmp_path: Path) -> None:
    """A database that does not answer costs the fleet its shared pacing, not the message."""
    store = await SQLiteStore.open(tmp_path / "s.db")
    limiter = SharedLimiter(store, chat_interval_s=1.0, per_second=30)
    await limiter.slot("telegram", "7", 0, kind="send")
    await store.close()
    await limiter.slot("telegram", "7", 0, kind="send")  # no exception: sent on memory pacing
    assert limiter.counts.slots == 1 and limiter.counts.unavailable == 1


class TimedChat(Chat):
    """One chat seen by every instance: when each progress edit reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.edited_at: list[float] = []

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        self.edited_at.append(time.monotonic())
        return await super().edit(ref, view)


async def test_three_instances_edit_one_chat_at_one_instances_pace(pg_server) -> None:
    """Each instance follows its own tasks in one group: their progress edits are paced for
    the fleet (one per edit_interval_s), not three times that, which took the chat's slots
    from its results (the fleet benchmark)."""
    url = pg_server.database()
    stores = [await PostgresStore.open(url, exclusive=False) for _ in range(3)]
    chat = TimedChat()
    refs = [await chat.send("-1", View("⏳")) for _ in stores]
    outboxes = [
        Outbox(
            {"t": chat},
            edit_interval_s=0.5,
            send_interval_s=0.0,
            limiter=SharedLimiter(store, chat_interval_s=0.0, per_second=0, edit_interval_s=0.5),
        )
        for store in stores
    ]
    try:
        end = time.monotonic() + 2.0
        step = 0
        while time.monotonic() < end:  # every task moves every 50 ms
            for outbox, ref in zip(outboxes, refs, strict=True):
                outbox.edit_later(ref, View(f"{step}%"))
            step += 1
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)
        gaps = [b - a for a, b in zip(chat.edited_at, chat.edited_at[1:], strict=False)]
        assert 3 <= len(chat.edited_at) <= 7, chat.edited_at  # ~2.6 s at one per 0.5 s
        assert min(gaps) > 0.4, gaps
    finally:
        for outbox in outboxes:
            await outbox.close()
        for store in stores:
            await store.close()


class CallLog(Chat):
    """One chat seen by every instance: each call as it reached it, with its time."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, float]] = []  # (method, text, when)

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        self.calls.append(("send", view.text, time.monotonic()))
        return await super().send(chat_id, view, reply_to)

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        self.calls.append(("edit", view.text, time.monotonic()))
        return await super().edit(ref, view)

    async def delete(self, ref: MessageRef) -> None:
        self.calls.append(("delete", ref.message_id, time.monotonic()))
        await super().delete(ref)


async def test_a_result_goes_before_a_progress_edit_waiting_for_the_chats_slot(pg_server) -> None:
    """One instance's progress edit finds the chat's burst used: it waits without booking a
    slot, so another instance's result takes the next one. In the fleet benchmark results
    queued behind edits booked ahead (p50 1.1 s against 0.36 s on one instance)."""
    url = pg_server.database()
    stores = [await PostgresStore.open(url, exclusive=False) for _ in range(2)]
    chat = CallLog()
    following, posting = (
        Outbox(
            {"t": chat},
            edit_interval_s=0.0,
            send_interval_s=0.0,
            limiter=SharedLimiter(store, chat_interval_s=0.5, per_second=0),
        )
        for store in stores
    )
    try:
        started = time.monotonic()
        first = await following.send("t", "-3", View("⏳ one"))
        await following.send("t", "-3", View("⏳ two"))  # the burst, less what edits leave
        following.edit_later(first, View("50%"))
        await asyncio.sleep(0.05)
        await posting.send("t", "-3", View("the result"))
        # the edit's turn: it looks again when a slot could be free, each refusal doubling
        # the wait (here ~0.8 s, then ~1 s)
        await until(lambda: len(chat.calls) >= 4)
        assert [(method, text) for method, text, _ in chat.calls] == [
            ("send", "⏳ one"),
            ("send", "⏳ two"),
            ("send", "the result"),
            ("edit", "50%"),
        ]
        when = {text: at - started for _, text, at in chat.calls}
        # the third of the burst comes ARRIVAL_MARGIN_S (0.3 s) after the first two; the edit,
        # leaving one of the burst to messages, one interval after the result
        assert when["the result"] == pytest.approx(0.3, abs=0.15), when
        assert when["50%"] - when["the result"] >= 0.45, when
    finally:
        await following.close()
        await posting.close()
        for store in stores:
            await store.close()
