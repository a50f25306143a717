"""Shared fixtures: the simulator, the fake Telegram server and ``mjbot run`` between them."""

from __future__ import annotations

import os

import discord.gateway
import discord.http
import pytest

from mjsim import SimConfig, Simulator
from tests import pgserver
from tests import storage as storages
from tests.fakes.telegram import FakeTelegram
from tests.harness import API_KEY, TG_TOKEN, BotProcess
from tests.pgserver import PASSWORD, PgServer, binaries

# `mjbot run` subprocesses report unclosed files, sockets and sessions (Python hides them by
# default); the fixtures below fail a test whose bot leaked one. In-process code is held to
# the same by pyproject's filterwarnings.
os.environ.setdefault("PYTHONWARNINGS", "default::ResourceWarning")
LEAKS = ("ResourceWarning", "was never awaited")

GROUP = -100123
ALICE = 7001
BOB = 7002


@pytest.fixture
def seams(monkeypatch: pytest.MonkeyPatch) -> None:
    """point_discord_at patches two discord.py class attributes process-wide: restore them."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the session (tests/pgserver.py). Without its binaries the
    tests that need it skip, except in CI (CI set), where they fail: CI installs it."""
    bindir = binaries()
    if bindir is None:
        reason = "no PostgreSQL binaries (Debian's postgresql package, or PG_BINDIR)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = PgServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    pgserver.running = server
    yield server
    pgserver.running = None
    server.stop()


@pytest.fixture(autouse=True)
def storage(request):
    """The store this test runs on: SQLite unless the module parametrizes it (indirectly) with
    "postgresql", which gives the test a fresh database of its own (tests/storage.py)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        chosen = storages.SQLITE
    elif kind == "postgresql":
        chosen = storages.Storage(kind, request.getfixturevalue("pg_server").database())
    else:
        raise ValueError(f"no such store: {kind}")
    storages.current = chosen
    try:
        yield chosen
    finally:
        storages.current = storages.SQLITE
        if pgserver.running is not None:  # every database this test made (stores closed)
            pgserver.running.drop_created()


@pytest.fixture
async def sim():
    simulator = Simulator(SimConfig(api_key=API_KEY, time_scale=0.05))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def tg():
    async with FakeTelegram(token=TG_TOKEN) as fake:
        fake.user(ALICE, "Alice", language_code="en")
        fake.user(BOB, "Bob", language_code="zh-hans")
        fake.group(GROUP, "Artists")
        yield fake


@pytest.fixture
async def bot(tmp_path, sim, tg):
    process = BotProcess(tmp_path, sim.base_url, tg.url)
    process.start()
    try:
        await tg.wait_for_call("deleteWebhook", timeout=30)
        yield process
    finally:
        await process.stop()
    # Secrets never reach a log line (the whole run was at DEBUG level).
    log = process.log()
    assert API_KEY not in log and TG_TOKEN not in log and PASSWORD not in log
    assert_no_leaks(process)


def assert_no_leaks(process: BotProcess) -> None:
    log = process.log()
    assert not [line for line in log.splitlines() if any(leak in line for leak in LEAKS)], log


@pytest.fixture
async def make_bot(tmp_path, sim, tg):
    """Build ``mjbot run`` processes a test starts, stops and restarts itself; all are
    stopped at the end even when the test fails half way."""
    made: list[BotProcess] = []

    def make(**overrides) -> BotProcess:
        process = BotProcess(tmp_path, sim.base_url, tg.url, **overrides)
        made.append(process)
        return process

    yield make
    for process in made:
        if process.proc is not None:
            await process.stop()
    for process in made:
        assert_no_leaks(process)
        assert PASSWORD not in process.log()
