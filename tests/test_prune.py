"""Rows past their time go on a schedule (issue 14): kept photos and copies are pruned by the
store's heartbeat, which every instance beats, not only when something new is kept (kept)
or never (copies). On both stores."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

import bot.store
from bot.chat import MessageRef
from bot.store import PruneClock, Store
from bot.store import postgres as pg_store
from bot.store import sqlite as sqlite_store
from tests import storage
from tests.dbrows import stored
from tests.storage import BOTH


async def opened(tmp_path: Path) -> Store:
    return await storage.open_store(tmp_path / "mjbot.db")


@BOTH
async def test_kept_photos_past_their_time_are_pruned_and_live_ones_stay(tmp_path) -> None:
    store = await opened(tmp_path)
    try:
        await store.keep_photo("face-old", b"old", 0.05)
        await store.keep_photo("ref-live", b"live", 60.0)
        await asyncio.sleep(0.1)
        assert await store.prune() == 1
        assert [r["key"] for r in stored(store, "SELECT key FROM kept")] == ["ref-live"]
        assert await store.kept_photo("ref-live") == b"live"
        assert await store.prune() == 0  # nothing more past its time
    finally:
        await store.close()


@BOTH
async def test_copies_past_their_time_are_pruned_and_live_ones_stay(tmp_path, monkeypatch) -> None:
    store = await opened(tmp_path)
    ref = MessageRef("t", "-100", "77", "photo")
    try:
        # Old: a copy posted long ago, and a claim whose poster died before posting.
        assert (await store.claim_copy("a:file")).mine
        await store.copy_posted("a:file", ref)
        assert (await store.claim_copy("c:split")).mine
        await asyncio.sleep(1.0)
        # Live: a copy just posted, and one being posted now.
        assert (await store.claim_copy("b:file")).mine
        await store.copy_posted("b:file", ref)
        assert (await store.claim_copy("d:split")).mine
        for module in (sqlite_store, pg_store):  # "long ago" is 0.6 s in this test
            monkeypatch.setattr(module, "COPY_KEPT_S", 0.6)
            monkeypatch.setattr(module, "COPY_POSTING_S", 0.6)
        assert await store.prune() == 2
        slots = [r["slot"] for r in stored(store, "SELECT slot FROM copies ORDER BY slot")]
        assert slots == ["b:file", "d:split"]
        # The live ones answer as before; a pruned one is posted anew by the next press.
        assert (await store.claim_copy("b:file")).ref == ref
        assert not (await store.claim_copy("d:split")).mine
        assert (await store.claim_copy("a:file")).mine
    finally:
        await store.close()


@BOTH
async def test_the_heartbeat_prunes_at_its_first_beat_and_then_now_and_then(
    tmp_path, monkeypatch
) -> None:
    store = await opened(tmp_path)

    def keys() -> list[str]:
        return [r["key"] for r in stored(store, "SELECT key FROM kept ORDER BY key")]

    try:
        await store.keep_photo("one", b"1", 0.05)
        await store.keep_photo("live", b"l", 60.0)
        await asyncio.sleep(0.1)
        await store.heartbeat(store.instance, 10.0)  # the first beat prunes
        assert keys() == ["live"]
        await store.keep_photo("two", b"2", 0.05)
        await asyncio.sleep(0.1)
        await store.heartbeat(store.instance, 10.0)  # within PRUNE_EVERY_S: left for later
        assert keys() == ["live", "two"]
        monkeypatch.setattr(bot.store, "PRUNE_EVERY_S", 0.0)
        await store.heartbeat(store.instance, 10.0)
        assert keys() == ["live"]
    finally:
        await store.close()


async def test_a_failed_prune_never_fails_the_heartbeat_and_is_tried_again(
    monkeypatch, caplog
) -> None:
    calls = []

    async def broken() -> int:
        calls.append(1)
        raise ConnectionError("database gone")

    clock = PruneClock()
    with caplog.at_level(logging.WARNING, logger="bot.store"):
        await clock.maybe(broken)  # raises nothing
    assert calls == [1]
    assert "pruning expired rows failed (ConnectionError)" in caplog.text
    await clock.maybe(broken)
    assert calls == [1]  # not before PRUNE_EVERY_S
    monkeypatch.setattr(bot.store, "PRUNE_EVERY_S", 0.0)
    await clock.maybe(broken)
    assert calls == [1, 1]


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_a_store_whose_prune_fails_still_beats(tmp_path, monkeypatch) -> None:
    store = await opened(tmp_path)
    try:

        async def broken() -> int:
            raise RuntimeError("no")

        monkeypatch.setattr(store, "prune", broken)
        await store.heartbeat(store.instance, 10.0)
        (row,) = stored(store, "SELECT id FROM instances")
        assert row["id"] == store.instance.id
    finally:
        await store.close()
