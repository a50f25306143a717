"""Store.hold_singleton on both stores: one owner at a time, renewed by its owner, anyone's once
its time ran out, given up by its owner alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.storage import BOTH, open_store

pytestmark = BOTH


async def test_one_owner_at_a_time_until_its_time_runs_out(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.db")
    try:
        assert await store.singleton("gw") is None
        assert await store.hold_singleton("gw", "a", 0.5)
        assert not await store.hold_singleton("gw", "b", 10.0)  # a holds it
        assert await store.hold_singleton("gw", "a", 0.5)  # a renews
        held = await store.singleton("gw")
        assert held is not None and held.owner == "a" and 0.3 < held.expires_in <= 0.5
        await store.release_singleton("gw", "b")  # not b's to give up
        assert (await store.singleton("gw")).owner == "a"  # type: ignore[union-attr]
        await asyncio.sleep(0.6)  # a stopped renewing
        assert await store.singleton("gw") is None
        assert await store.hold_singleton("gw", "b", 10.0)
        assert not await store.hold_singleton("gw", "a", 10.0)  # a came back too late
        await store.release_singleton("gw", "b")
        assert await store.hold_singleton("gw", "a", 10.0)  # given up: anyone's at once
        assert await store.hold_singleton("other", "b", 10.0)  # names are separate
    finally:
        await store.close()
