"""PostgreSQL as the store: configuration, migrations run once, instances sharing it, the
password kept out of every output, and ``mjbot migrate --to`` copying a SQLite deployment
whole. (What the store promises is checked on both stores by tests/test_store.py and the
parametrized suites.)"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path

import asyncpg
import pytest

from bot import config as config_module
from bot.chat import MessageRef
from bot.config import ConfigError
from bot.dblock import DatabaseInUse
from bot.mj.models import Task
from bot.store import Charge, InstanceRow, SendRule, StoreUnavailable, TaskRow, new_key
from bot.store.postgres import _INSTANCE_LOCK, TABLES, PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.harness import ROOT, write_config
from tests.pgserver import PASSWORD, PgServer, binaries
from tests.storage import rows

# --- configuration ---------------------------------------------------------------------------


def test_storage_url_chooses_the_store_and_its_password_is_a_secret():
    url = "postgresql://mj:s3cr%40t-pw@db.internal:5432/mjbot"
    cfg = config_module.load(env={"MJBOT_STORAGE__URL": url})
    cfg.validate(need_chat=False)
    assert cfg.storage.kind == "postgresql"
    assert cfg.storage.shown == "postgresql://mj:***@db.internal:5432/mjbot"
    assert "s3cr@t-pw" in cfg.secrets() and url in cfg.secrets()  # redacted from every log
    assert "s3cr" not in repr(cfg)
    default = config_module.load(env={})
    assert default.storage.kind == "sqlite" and default.storage.sqlite_path == "data/mjbot.db"
    by_url = config_module.load(env={"MJBOT_STORAGE__URL": "sqlite:///var/x.db"})
    assert by_url.storage.kind == "sqlite" and by_url.storage.sqlite_path == "var/x.db"


@pytest.mark.parametrize(
    "url",
    ["mysql://u:pw-123456@h/d", "postgresql://u:pw-123456@h:99999/d", "sqlite://x.db", "db"],
)
def test_a_wrong_storage_url_is_named_without_its_password(url):
    cfg = config_module.load(env={"MJBOT_STORAGE__URL": url})
    with pytest.raises(ConfigError) as caught:
        cfg.validate(need_chat=False)
    assert "storage.url" in str(caught.value) and "pw-123456" not in str(caught.value)


# --- opening ---------------------------------------------------------------------------------


async def test_two_processes_starting_at_once_migrate_once(pg_server):
    url = pg_server.database(empty=True)
    stores = await asyncio.gather(*(PostgresStore.open(url, exclusive=False) for _ in range(4)))
    try:
        assert (await stores[0].schema_version()) >= 1
        applied = rows(url, "SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in applied] == sorted({r["version"] for r in applied})
        assert set(await stores[0].counts()) == set(TABLES)
    finally:
        for store in stores:
            await store.close()


async def test_instances_share_a_database_and_an_older_mjbot_that_runs_alone_keeps_them_out(
    pg_server, monkeypatch
):
    monkeypatch.setattr("bot.store.postgres._INSTANCE_WAIT_S", 0.5)
    url = pg_server.database()
    first = await PostgresStore.open(url)
    second = await PostgresStore.open(url)  # a second instance of this version: welcome
    reader = await PostgresStore.open(url, read_only=True)
    try:
        assert first.instance.id != second.instance.id
        assert await reader.live_tasks() == []
        # An mjbot of the one-process era takes the instance lock exclusively: it is kept
        # out while these run...
        old = await asyncpg.connect(url)
        try:
            assert not await old.fetchval("SELECT pg_try_advisory_lock($1)", _INSTANCE_LOCK)
        finally:
            await old.close()
    finally:
        for store in (first, second, reader):
            await store.close()
    # ...and, running, keeps them out: its claims assume it is alone.
    old = await asyncpg.connect(url, server_settings={"application_name": "mjbot pid 7 on old"})
    try:
        assert await old.fetchval("SELECT pg_try_advisory_lock($1)", _INSTANCE_LOCK)
        with pytest.raises(DatabaseInUse) as caught:
            await PostgresStore.open(url)
        text = str(caught.value)
        assert "(mjbot pid 7 on old) of an older version that runs alone" in text
        assert PASSWORD not in text and "***" in text
    finally:
        await old.close()
    again = await PostgresStore.open(url)  # it stopped: the database is the instances' again
    await again.close()


async def test_an_unreachable_or_refused_database_is_named_without_its_password(pg_server):
    wrong = pg_server.url("postgres").replace(PASSWORD, "not-the-password-42")
    with pytest.raises(StoreUnavailable) as caught:
        await PostgresStore.open(wrong)
    assert "not-the-password-42" not in str(caught.value) and "***" in str(caught.value)


def test_the_two_schemas_have_the_same_tables_and_columns(tmp_path, pg_server):
    """A migration added to one store and not the other fails here (and `mjbot migrate`
    refuses to copy into a schema that lacks a column)."""

    async def both() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        sqlite = await SQLiteStore.open(tmp_path / "s.db")
        postgres = await PostgresStore.open(pg_server.database(), exclusive=False)
        try:
            return await sqlite.table_columns(), await postgres.table_columns()
        finally:
            await sqlite.close()
            await postgres.close()

    lite, pg = asyncio.run(both())
    assert {t: sorted(c) for t, c in lite.items()} == {t: sorted(c) for t, c in pg.items()}
    assert set(pg) == set(TABLES)


# --- mjbot migrate --to ----------------------------------------------------------------------


async def fill(path: Path) -> None:
    """A SQLite deployment with rows in every table."""
    store = await SQLiteStore.open(path)
    try:

        async def pay(ledger):
            charge = Charge(new_key(), "", "telegram", "7", "-1", "imagine", 2, "d", "m", 1.5)
            await ledger.record(charge)
            return charge.id

        parent = await store.add_task(
            TaskRow(new_key(), "telegram", "-1", "7", "imagine", status="SUCCESS",
                    task_id="17", prompt="a fox 🦊", snapshot='{"id": "17"}'),
            pay=pay,
        )  # fmt: skip
        await store.delivered(parent.key, MessageRef("telegram", "-1", "9", "photo"))
        child = TaskRow(new_key(), "telegram", "-1", "7", "action", status="MODAL", task_id="18")
        await store.add_child(child, parent.key, "MJ::JOB::upsample::1", pay=pay)
        await store.add_modal(child.key, "zoom", "a fox --zoom 2")
        await store.add_ask(MessageRef("telegram", "-1", "30"), "7", "blend", "", "zh")
        await store.keep_photo("face-k1", b"\x89PNG kept", 86400.0)
        await store.first_time("telegram:u:1")
        await store.set_access_rule("telegram", "user", "8", "ban", "7")
        await store.remember_person("telegram", "7", "alice", "Alice")
        await store.change_chat_settings("telegram", "-1", lambda c: c)
        await store.keep_hook_secret("hook-secret")
        await store.heartbeat(InstanceRow("i1", "host-a", 42, 1.0, 0.0, 0.0), 30.0)
        await store.lease_tasks("i1", 30.0, 10)
        await store.join_album("telegram:-1:g1", "31", '{"message_id": 31}')
        await store.take_album("telegram:-1:g1", 1, "31")
        await store.join_album("telegram:-1:g2", "32", '{"message_id": 32}')  # window open
        await store.claim_copy(f"{parent.key}:file")
        await store.copy_posted(f"{parent.key}:file", MessageRef("telegram", "-1", "33", "doc"))
        await store.take_slot([SendRule("telegram:chat:-1", 1.0)])
        await store.hold_singleton("discord-gateway:0", "i1", 30.0)
        await store.queue_confirmation("1700000000000099", "https://cdn.example/x.png", 0.3)
        # an update taken from Telegram and not handled when the deployment stopped
        await store.accept_update("telegram:5", '{"update_id": 5}', "i1")
    finally:
        await store.close()


def migrate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate", "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


KEYS = {
    "tasks": "key",
    "modals": "key",
    "presses": "parent_key, button",
    "settings": "scope",
    "asks": "platform, chat_id, message_id",
    "kept": "key",
    "seen": "event",
    "ledger": "id",
    "access": "platform, subject, id",
    "people": "platform, user_id",
    "instances": "id",
    "albums": "album",
    "album_parts": "album, part",
    "copies": "slot",
    "send_slots": "scope",
    "confirming": "task_id",
    "singletons": "name",
    "inbox": "event",
}


async def test_migrate_to_postgresql_copies_every_table_and_refuses_a_filled_target(
    tmp_path, pg_server
):
    db = tmp_path / "data" / "mjbot.db"
    await fill(db)
    config = write_config(tmp_path / "c.toml", {"storage": {"path": str(db)}})
    target = pg_server.database(empty=True)  # what an operator creates: no schema yet

    done = migrate(config, "--to", target)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert "postgresql://postgres:***@" in done.stdout
    for table in TABLES:  # every row of every table, as it was
        order = f"SELECT * FROM {table} ORDER BY {KEYS[table]}"
        before, after = rows(db, order), rows(target, order)
        assert before == after, table
        assert before, f"the test fills {table}"
        assert f"{table} " in done.stdout and f" {len(before)} " in done.stdout

    again = migrate(config, "--to", target)  # a second copy would mix two deployments
    assert again.returncode == 1
    assert "already has rows" in again.stderr and "--replace" in again.stderr
    assert PASSWORD not in again.stdout + again.stderr
    assert len(rows(target, "SELECT * FROM tasks")) == 2

    replaced = migrate(config, "--to", target, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert rows(target, "SELECT * FROM ledger ORDER BY id") == rows(
        db, "SELECT * FROM ledger ORDER BY id"
    )

    # The copy is a working store: the bot opens it and finds what it had.
    store = await PostgresStore.open(target)
    try:
        assert await store.keep_hook_secret("other") == "hook-secret"
        assert await store.access_rule("telegram", "user", "8") == "ban"
        assert (await store.usage("telegram", "7", "d", "m")).today == 4
        assert await store.kept_photo("face-k1") == b"\x89PNG kept"
    finally:
        await store.close()


async def test_migrate_alone_brings_the_configured_store_up_to_date(tmp_path, pg_server):
    url = pg_server.database(empty=True)
    config = write_config(tmp_path / "c.toml", {"storage": {"url": url}})
    done = migrate(config)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout and PASSWORD not in done.stdout + done.stderr
    assert rows(url, "SELECT COUNT(*) AS n FROM schema_migrations")[0]["n"] >= 1


def test_check_shows_the_store_without_its_password(tmp_path, pg_server):
    url = pg_server.url("postgres")
    config = write_config(tmp_path / "c.toml", {"storage": {"url": url}})
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"storage: postgresql://postgres:***@127.0.0.1:{pg_server.port}/postgres" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


async def test_status_reads_the_postgresql_store_beside_a_running_bot(tmp_path, pg_server):
    url = pg_server.database()
    holder = await PostgresStore.open(url)  # this test process plays the running bot
    gone = await PostgresStore.open(url)  # ...and this one an instance that stopped
    try:
        await holder.add_task(TaskRow(new_key(), "telegram", "-1", "7", "imagine",
                                      status="IN_PROGRESS", task_id="1"))  # fmt: skip
        await gone.heartbeat(gone.instance, 30.0)
        await gone.release_tasks(gone.instance.id)
        await holder.heartbeat(holder.instance, 30.0)
        await holder.lease_tasks(holder.instance.id, 30.0, 10)
        config = write_config(
            tmp_path / "c.toml",
            {"storage": {"url": url}, "tracking": {"listen": "127.0.0.1:9"}},
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "status", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        await holder.close()
        await gone.close()
    assert done.returncode == 0, done.stderr
    assert '"tasks_in_flight": 1' in done.stdout and PASSWORD not in done.stdout + done.stderr
    document = json.loads(done.stdout.split("\n", 1)[1])
    listed = {i["id"]: i for i in document["instances"]}
    me = listed[holder.instance.id]
    assert (me["alive"], me["tasks_held"], me["pid"]) == (True, 1, os.getpid())
    assert me["host"] == socket.gethostname() and me["last_heartbeat_s_ago"] < 30
    assert (listed[gone.instance.id]["alive"], listed[gone.instance.id]["tasks_held"]) == (False, 0)


async def test_a_user_who_may_not_create_tables_gets_one_line(pg_server):
    url = pg_server.database(empty=True)
    rows(pg_server.url(), "CREATE ROLE weak LOGIN PASSWORD 'weak-pw-1234'")
    rows(url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    weak = url.replace(f"postgres:{PASSWORD}@", "weak:weak-pw-1234@")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await PostgresStore.open(weak)
        assert "cannot prepare postgresql://weak:***@" in str(caught.value)
        assert "permission denied" in str(caught.value) and "weak-pw" not in str(caught.value)
    finally:
        rows(pg_server.url(), "DROP ROLE weak")


async def test_a_statement_is_one_round_trip_without_a_reset_after_it(pg_server):
    """asyncpg's pool resets a connection on every release (advisory unlock, CLOSE ALL,
    UNLISTEN, RESET ALL): a second round trip and transaction per statement. The store leaves
    nothing to reset; its connections' last statement is its own."""
    url = pg_server.database()
    store = await PostgresStore.open(url, exclusive=False)
    try:
        await store.task("nokey")
        last = rows(
            url,
            "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        )
        assert last and all("RESET ALL" not in r["query"] for r in last), last
        assert any("FROM tasks WHERE key" in r["query"] for r in last), last
    finally:
        await store.close()


# --- what waits for the disk -----------------------------------------------------------------


async def test_slots_confirmations_and_merges_do_not_wait_for_the_disk_the_rest_does():
    """Send slots, the fleet's confirmation queue and merged API answers commit without
    waiting for the WAL flush (a database crash may lose them: each is taken or asked again);
    everything else waits, as PostgreSQL's default has it. Seen on a durable server whose WAL
    writer flushes at most every 10 s: WAL still unflushed right after a commit is a commit
    that did not wait."""
    bindir = binaries()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL binaries")
        pytest.skip("no PostgreSQL binaries (Debian's postgresql package, or PG_BINDIR)")
    quiet = "-c wal_writer_delay=10s -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off"
    server = PgServer(bindir, durable=True, settings=quiet)
    await asyncio.to_thread(server.start)
    try:
        url = await asyncio.to_thread(server.database)
        store = await PostgresStore.open(url)
        probe = await asyncpg.connect(url)

        async def flushed() -> bool:
            return bool(
                await probe.fetchval(
                    "SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()"
                )
            )

        async def waits(work: Awaitable[object]) -> bool:
            await work
            return await flushed()

        try:
            # The WAL writer flushes the first unflushed commit it finds at once; from then
            # on it waits its 10 s.
            await store.take_slot([SendRule("telegram:chat:-9", 1.0)])
            for _ in range(150):
                if await flushed():
                    break
                await asyncio.sleep(0.1)
            row = TaskRow(new_key(), "telegram", "-1", "7", "imagine", task_id="41")
            assert await waits(store.add_task(row))
            assert not await waits(store.take_slot([SendRule("telegram:chat:-1", 1.0)]))
            assert await waits(store.remember_person("telegram", "7", "alice", "Alice"))
            assert not await waits(store.queue_confirmation("41", "", 0.3))
            assert not await waits(store.take_confirmations(10))
            assert await waits(store.first_time("telegram:u:1"))
            done = Task.from_json({"id": "41", "status": "SUCCESS", "progress": "100%"})
            assert done is not None
            assert not await waits(store.merge([done]))
            assert await waits(store.delivered(row.key, MessageRef("telegram", "-1", "9")))
        finally:
            await probe.close()
            await store.close()
    finally:
        await asyncio.to_thread(server.stop)
