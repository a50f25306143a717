"""Discord's gateway allows one session per shard: with several instances on one PostgreSQL
database, exactly one holds it (a lease in the store); the others serve without it; when the
holder dies another connects within the lease's time, and buttons on messages posted before
still work there. Two (then three) in-process Apps with the real discord.py against the fake
Discord, a short lease by config (``discord.gateway_lease_s``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from adapters.discord import GATEWAY_LEASE, DiscordAdapter
from bot.app import App
from bot.config import Config, Secret, StorageConfig
from bot.views import View
from mjsim import Simulator
from tests.fakes.discord import FakeDiscord
from tests.harness import free_port
from tests.storage import rows
from tests.tcpcut import Line
from tests.test_discord_adapter import DISCORD_TOKEN, imagine, upscale
from tests.test_discord_adapter import config as discord_config

LEASE_S = 1.5  # renewed every 0.5 s; a dead holder's lease runs out within 1.5 s


@pytest.fixture
async def fake(seams: None) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN) as server:
        yield server
        assert [str(e) for e in server.errors] == []


def instance_config(tmp_path: Path, sim: Simulator, fake: FakeDiscord, url: str) -> Config:
    base = discord_config(tmp_path, sim, fake)
    return replace(
        base,
        discord=replace(base.discord, gateway_lease_s=LEASE_S),
        storage=StorageConfig(path=str(tmp_path / "data" / "mjbot.db"), url=Secret(url)),
        tracking=replace(base.tracking, listen=f"127.0.0.1:{free_port()}"),
    )


def adapter_of(app: App) -> DiscordAdapter:
    return next(a for a in app.adapters if isinstance(a, DiscordAdapter))


async def die(app: App) -> None:
    """What kill -9 leaves of an instance: a lease nobody renews any more, a gateway session
    gone without a word, and nothing else running (nothing released)."""
    adapter = adapter_of(app)
    assert adapter._keeper is not None
    adapter._keeper.cancel()
    await adapter._drop_gateway()
    adapter.holds_gateway = False  # the dead say nothing: stop() releases no lease now
    await app.stop()


async def test_one_instance_holds_the_gateway_and_another_takes_over(
    tmp_path: Path, sim: Simulator, fake: FakeDiscord, pg_server
) -> None:
    url = pg_server.database()  # the three instances share it (issue 14, "fleet")
    apps = [App(instance_config(tmp_path / n, sim, fake, url)) for n in "abc"]
    a, b, c = apps
    try:
        await a.start()
        await fake.wait_ready()
        await b.start()
        await asyncio.sleep(LEASE_S)  # b tried for the lease (twice) meanwhile
        assert adapter_of(a).holds_gateway and not adapter_of(b).holds_gateway
        assert adapter_of(b).client.ws is None  # b never opened a gateway session
        assert fake.identifies == 1 and fake.ready_sessions() == 1
        (lease,) = rows(url, "SELECT owner FROM singletons WHERE name = ?", GATEWAY_LEASE)
        assert lease["owner"] == adapter_of(a).owner

        # b serves without the gateway: its outbox posts over REST.
        await b.outbox.send("discord", fake.channel_id, View("posted by b"))
        assert [m.content for m in fake.channel_messages()] == ["posted by b"]
        assert adapter_of(b).client.ws is None

        # A message with buttons, posted while a held the gateway.
        _, grid = await imagine(fake, "a lighthouse at dusk")

        # a dies: b connects once a's lease ran out, within the lease time and a renewal.
        await die(a)
        died = time.monotonic()
        await fake.wait_for(lambda: adapter_of(b).holds_gateway and fake.ready_sessions(), 10)
        takeover = time.monotonic() - died
        assert takeover < LEASE_S * 4 / 3 + 1.0, takeover
        assert fake.identifies == 2 and fake.most_ready == 1  # never two sessions at once
        holder = await adapter_of(b).store.singleton(GATEWAY_LEASE)  # type: ignore[union-attr]
        assert holder is not None and holder.owner == adapter_of(b).owner

        # The button on the message posted before the takeover works, handled by b.
        upscaled = await upscale(fake, grid, "U2")
        assert upscaled.attachments
        assert len(rows(url, "SELECT key FROM tasks")) == 2  # the grid and its upscale

        # A clean stop gives the lease up at once: c connects on its next try, not a lease
        # time later.
        await c.start()
        assert not adapter_of(c).holds_gateway
        await b.stop()
        stopped = time.monotonic()
        await fake.wait_for(lambda: adapter_of(c).holds_gateway and fake.ready_sessions(), 10)
        assert time.monotonic() - stopped < LEASE_S / 3 + 1.0
        assert fake.identifies == 3 and fake.most_ready == 1
    finally:
        for app in apps:
            await app.stop()
    # c stopped last and released its lease: nothing holds the gateway
    assert rows(url, "SELECT owner FROM singletons") == []


async def test_a_holder_that_lost_its_lease_steps_down(
    tmp_path: Path, sim: Simulator, fake: FakeDiscord, pg_server
) -> None:
    """An instance that stalled past its lease (another took it meanwhile) closes its session
    on its next renewal instead of sharing the shard."""
    url = pg_server.database()
    app = App(instance_config(tmp_path, sim, fake, url))
    try:
        await app.start()
        await fake.wait_ready()
        adapter = adapter_of(app)
        assert adapter.holds_gateway
        # someone else holds it now (as after this instance's lease ran out unrenewed)
        rows(url, "UPDATE singletons SET owner = 'another', expires_at = expires_at + 60")
        await fake.wait_for(
            lambda: (
                not adapter.holds_gateway
                and not fake.ready_sessions()
                and (adapter.client.ws is None or not adapter.client.ws.open)
            ),
            5,
        )
        (lease,) = rows(url, "SELECT owner FROM singletons")
        assert lease["owner"] == "another"  # it gave up nothing that was not its own
    finally:
        await app.stop()


async def test_a_holder_that_loses_the_database_steps_down_before_its_lease_runs_out(
    tmp_path: Path, sim: Simulator, fake: FakeDiscord, pg_server
) -> None:
    """The holder's line to PostgreSQL goes (the others still reach it): it cannot renew, so
    it closes its session before its lease runs out, and the instance that takes the lease
    then never shares the shard with it."""
    url = pg_server.database()
    parts = urlsplit(url)
    async with Line(parts.hostname or "127.0.0.1", parts.port or 5432) as line:
        through = urlunsplit(
            parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{line.port}"))
        )
        a = App(instance_config(tmp_path / "a", sim, fake, through))
        b = App(instance_config(tmp_path / "b", sim, fake, url))
        try:
            await a.start()
            await fake.wait_ready()
            await b.start()
            assert adapter_of(a).holds_gateway and not adapter_of(b).holds_gateway
            await line.cut()
            cut = time.monotonic()

            def closed() -> bool:  # the flag goes first, the session's close is awaited after it
                ws = adapter_of(a).client.ws
                return not adapter_of(a).holds_gateway and (ws is None or not ws.open)

            await fake.wait_for(closed, 10)
            assert time.monotonic() - cut < LEASE_S, "stepped down after its lease ran out"
            await fake.wait_for(lambda: adapter_of(b).holds_gateway and fake.ready_sessions(), 10)
            assert fake.identifies == 2 and fake.most_ready == 1  # never two sessions at once
        finally:
            await b.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(a.stop(), 30)
