"""The Store on PostgreSQL (asyncpg): the same protocol and the same promises as
``bot.store.sqlite``, for a deployment whose database lives on a server.

Where SQLite serialises every decision with ``BEGIN IMMEDIATE`` (one writer at a time), this
store decides with what PostgreSQL offers per row: a conditional ``UPDATE`` (a claim: the
second claimer waits for the first to commit, then finds the condition false),
``INSERT ... ON CONFLICT`` (an event seen once), ``SELECT ... FOR UPDATE`` (a merge, a settings
document), and transaction-scoped advisory locks where there is no row to lock yet (the
button a press claims; the ledger a payment reads and writes, so two payments never both pass a
quota). Migrations are numbered files in ``bot/store/migrations_pg/``, run under a session
advisory lock by whichever process opens the database first.

Several instances share one database: each live task is followed by the instance holding its
lease, and every claim (a delivery, a submit, an answer) names its instance; it is taken over
only once that instance's heartbeat has lapsed (``instances.expires_at``). Each instance holds
a *shared* session advisory lock for its lifetime: they coexist, and only keep out an older
mjbot, which took the same lock exclusively because its claims assumed it was alone (and,
running, it keeps these out). PostgreSQL drops a session lock when its connection dies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from importlib import resources
from typing import Any, TypeAlias, Unpack

import asyncpg

from bot.chat import MessageRef
from bot.dblock import DatabaseInUse
from bot.mj.models import FINAL_STATES, Task, TaskState
from bot.store import (
    ALBUM_KEPT_S,
    COPY_KEPT_S,
    COPY_POSTING_S,
    KEPT_MAX_BYTES,
    PENDING_ASK,
    RESEND_FOR_S,
    AccessRule,
    AccessSubject,
    AskRow,
    Charge,
    ChatSettings,
    CopyClaim,
    Holder,
    InboxRow,
    InstanceRow,
    ModalRow,
    Outcome,
    Pay,
    PruneClock,
    RequestTaken,
    SendRule,
    Slot,
    Spender,
    Stats,
    StoreUnavailable,
    TaskChange,
    TaskCount,
    TaskRow,
    Usage,
    UserSettings,
    UserTasks,
    shown_url,
    this_instance,
)
from bot.store.rules import (
    chat_settings,
    holds,
    moved_forward,
    settings_document,
    user_settings,
)

log = logging.getLogger("bot.store.postgres")
_COLUMNS = [f.name for f in fields(TaskRow)]
_SPENT = "outcome IN ('pending', 'success')"
_FINAL = [str(s) for s in FINAL_STATES]
# Heartbeats and leases are written and compared in the server's time, not each instance's:
# on several machines a clock a few seconds off would otherwise see a live instance as dead
# (or a dead one alive). Epoch seconds, as every other time column.
_CLOCK = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
# The instance named by ``{who}`` has no live heartbeat: its claims are anyone's to take.
_DEAD = f"NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = {{who}} AND i.expires_at > {_CLOCK})"
# Who is on a final task: the instance posting it, or before anyone claimed it, the one that
# followed it.
_ON = "CASE WHEN delivering_at IS NULL THEN lease_owner ELSE delivering_by END"
# Store.claim_request: $1 event, $2 now, $3 this instance. New, or another instance's claim
# not done whose instance is dead or whose inbox row this one took (bot/store/sqlite.py's
# _TAKE_REQUEST says why).
_CLAIM_REQUEST = (
    "INSERT INTO seen (event, seen_at, owner, done) VALUES ($1, $2, $3, 0)"
    " ON CONFLICT (event) DO UPDATE SET owner = EXCLUDED.owner"
    " WHERE seen.done = 0 AND seen.owner <> EXCLUDED.owner AND ("
    + _DEAD.format(who="seen.owner")
    + " OR EXISTS (SELECT 1 FROM inbox b WHERE b.event = seen.event AND b.owner = $3))"
)
# Advisory lock keys (one 64-bit space per database): "mjbot" and a number.
_MIGRATIONS_LOCK = 0x6D6A626F_7401
_INSTANCE_LOCK = 0x6D6A626F_7402
_LEDGER_LOCK = 0x6D6A626F_7403
# How long a new process waits for the previous one's session lock to go: after kill -9 the
# server ends the dead connection's backend within moments, not at once.
_INSTANCE_WAIT_S = 5.0
_CLOSE_WAIT_S = 10.0  # how long closing waits for connections still in use

# The tables of the schema, in an order that satisfies their references (copying, counting).
TABLES = (
    "tasks",
    "modals",
    "presses",
    "settings",
    "asks",
    "kept",
    "seen",
    "ledger",
    "access",
    "people",
    "instances",
    "albums",
    "album_parts",
    "copies",
    "send_slots",
    "confirming",
    "singletons",
    "inbox",
)

_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"  # the server's clock, in seconds
# Store.take_slot: $1 scopes, $2 leads, $3 steps (SendRule's), $4 how many distinct scopes,
# $5 ordered (SendRule's), $6 how far away a slot may be and still be taken (else nothing is).
# Returns the seconds to wait and whether every scope had its row (if not, nothing is charged).
# ``now`` is read in the projection over the aggregate, i.e. after every row is locked.
_TAKE_SLOT = f"""
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $5::bool[])
        AS i(scope, lead, step, ordered)
), locked AS (
    SELECT s.scope, s.tat, s.last FROM send_slots s
    WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE
), earliest AS (
    SELECT MAX(GREATEST(CASE WHEN i.ordered THEN l.last ELSE 0 END, l.tat - i.lead)) AS t,
        COUNT(DISTINCT l.scope) AS n
    FROM locked l JOIN input i USING (scope)
), at AS (
    SELECT GREATEST(c.t, c.now) AS t, c.now, c.n FROM (SELECT t, n, {_NOW} AS now FROM earliest) c
), taken AS (
    UPDATE send_slots s SET tat = GREATEST(s.tat, at.t) + i.step,
        last = CASE WHEN i.ordered THEN at.t ELSE s.last END
    FROM input i, at WHERE s.scope = i.scope AND at.n = $4 AND at.t - at.now <= $6::float8
    RETURNING 1
)
SELECT at.t - at.now AS wait, at.n = $4 AS complete FROM at
"""

Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with: as it is. asyncpg's default reset
    sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every
    release, a round trip and a transaction for each statement the store runs (the fleet
    benchmark counted them). The store leaves nothing in a pooled session to reset: it sets
    no session variables, opens no cursors, listens to nothing, and its one session advisory
    lock (migrations) is unlocked where it is taken; asyncpg still rolls back an open
    transaction before this is called."""


class PostgresStore:
    """``bot.store.Store`` on one PostgreSQL database."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        url: str,
        instance: InstanceRow | None = None,
        *,
        relaxed: asyncpg.Pool[asyncpg.Record] | None = None,
    ) -> None:
        self._pool = pool
        # Commits that do not wait for the disk (synchronous_commit off), for what a database
        # crash may lose without harm: send slots (a call goes a little early: at worst a 429,
        # waited out), the fleet's confirmation queue and merged API answers (asked again).
        # Under load every commit waits its turn at the WAL flush; at 1,000 tasks on three
        # instances that wait was about half of the fleet's added latency (README,
        # Performance). Other sessions see such a commit at once, so the fleet's decisions are
        # unchanged; and the WAL is flushed in order, so a later ordinary commit makes it
        # durable too.
        self._relaxed = relaxed or pool
        self.url = url  # with its password: tests read the rows beside the store
        self._holder: asyncpg.Connection[asyncpg.Record] | None = None  # the instance lock
        self.instance = instance or this_instance()
        self._pruning = PruneClock()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        read_only: bool = False,
        exclusive: bool = True,
        instance: InstanceRow | None = None,
    ) -> PostgresStore:
        """Connect, migrate (once, whoever comes first) and hold the instance lock (shared
        with the other instances: it keeps out only an older mjbot that runs alone).

        ``read_only`` (``mjbot status``) neither migrates nor locks; ``exclusive`` False
        migrates without holding the lock (tests that open one database several times).
        """
        try:
            pool = await _pool(url, _SETTINGS)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot open {shown_url(url)}: {_reason(exc, url)}") from None
        if read_only:
            return cls(pool, url, instance)
        try:
            relaxed = await _pool(url, {**_SETTINGS, "synchronous_commit": "off"})
        except BaseException:
            await pool.close()
            raise
        store = cls(pool, url, instance, relaxed=relaxed)
        try:
            if exclusive:
                store._holder = await _hold_instance_lock(url)
            await store._migrate()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # e.g. a user without the right to create tables: one line, not a traceback
            await store.close()
            raise StoreUnavailable(
                f"cannot prepare {shown_url(url)}: {_reason(exc, url)}"
            ) from None
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        try:
            if self._holder is not None:
                holder, self._holder = self._holder, None
                await holder.close()  # the session lock goes with its connection
        finally:
            # close() waits for every connection to come back; a task stopped in the middle of
            # a query must not hold the process's shutdown: after a while they are cut.
            for pool in {self._pool, self._relaxed}:
                try:
                    await asyncio.wait_for(pool.close(), _CLOSE_WAIT_S)
                except TimeoutError:
                    log.warning("closing the database pool timed out; connections were cut")
                    pool.terminate()

    async def _migrate(self) -> None:
        """Apply the numbered scripts not applied yet, each in its own transaction, under a
        session advisory lock: two processes starting at once apply each script once."""
        scripts = sorted(
            (int(p.name[:4]), p)
            for p in resources.files("bot.store.migrations_pg").iterdir()
            if re.match(r"\d{4}_.*\.sql$", p.name)
        )
        async with self._pool.acquire() as db:
            await db.execute("SELECT pg_advisory_lock($1)", _MIGRATIONS_LOCK)
            try:
                await db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
                )
                applied = await db.fetch("SELECT version FROM schema_migrations")
                done = {r["version"] for r in applied}
                for number, script in scripts:
                    if number in done:
                        continue
                    async with db.transaction():
                        await db.execute(script.read_text("utf-8"))
                        await db.execute(
                            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                            number,
                            time.time(),
                        )
            finally:
                await db.execute("SELECT pg_advisory_unlock($1)", _MIGRATIONS_LOCK)

    async def schema_version(self) -> int:
        """The newest migration applied (0: none)."""
        value = await self._pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(value)

    @asynccontextmanager
    async def _transaction(self, *, relaxed: bool = False) -> AsyncIterator[Connection]:
        """One transaction on a connection of the pool: the unit of every decision
        (``relaxed``: its commit does not wait for the disk; see ``__init__``)."""
        async with (self._relaxed if relaxed else self._pool).acquire() as db, db.transaction():
            yield db

    async def _one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._pool.fetchrow(sql, *args)

    async def _all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self._pool.fetch(sql, *args))

    # --- copying a deployment (``mjbot migrate --to``) ---------------------------------------

    async def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {t: int(await self._pool.fetchval(f"SELECT COUNT(*) FROM {t}")) for t in TABLES}

    async def table_columns(self) -> dict[str, list[str]]:
        """The schema's tables and their columns (the migrations' own table left out)."""
        rows = await self._all(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'"
            " ORDER BY table_name, ordinal_position"
        )
        found: dict[str, list[str]] = {}
        for r in rows:
            found.setdefault(r["table_name"], []).append(r["column_name"])
        return found

    @asynccontextmanager
    async def loading(
        self, *, replace: bool
    ) -> AsyncIterator[Callable[[str, list[str], list[tuple[Any, ...]]], Awaitable[None]]]:
        """One transaction that writes rows as they are, table by table (``replace``: the
        tables are emptied first); all of it is kept, or nothing."""
        async with self._transaction() as db:
            if replace:
                await db.execute(f"TRUNCATE {', '.join(TABLES)}")

            async def load(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
                if table not in TABLES:
                    raise ValueError(f"no such table: {table}")
                await db.copy_records_to_table(table, records=rows, columns=columns)

            yield load

    # --- tasks -------------------------------------------------------------------------------

    async def add_task(self, row: TaskRow, pay: Pay | None = None, *, request: str = "") -> TaskRow:
        row.created_at = row.updated_at = time.time()
        row.submitted_by = self.instance.id
        async with self._transaction() as db:
            await _confirm(db, request, self.instance.id)
            if pay is not None:
                row.charge_id = await pay(_Ledger(db))
            await _insert(db, row)
            # Followed by the instance that submits it, from the start (its heartbeat keeps
            # the lease): the others leave its progress to it (Delivery._holds).
            await db.execute(
                "UPDATE tasks SET lease_owner = $1, lease_until ="
                " (SELECT expires_at FROM instances WHERE id = $1) WHERE key = $2"
                " AND EXISTS (SELECT 1 FROM instances WHERE id = $1)",
                self.instance.id,
                row.key,
            )
        return row

    async def task(self, key: str) -> TaskRow | None:
        return _task(await self._one("SELECT * FROM tasks WHERE key = $1", key))

    async def task_by_id(self, task_id: str) -> TaskRow | None:
        return _task(await self._one("SELECT * FROM tasks WHERE task_id = $1", task_id))

    async def task_by_message(self, ref: MessageRef) -> TaskRow | None:
        encoded = ref.encode().rsplit("|", 1)[0] + "|%"
        row = await self._one(
            "SELECT * FROM tasks WHERE result_ref LIKE $1 OR progress_ref LIKE $1"
            " ORDER BY created_at DESC LIMIT 1",
            encoded,
        )
        return _task(row)

    async def update(self, key: str, **values: Unpack[TaskChange]) -> None:
        async with self._transaction() as db:
            await _set(db, key, {**values, "updated_at": time.time()})

    async def merge(self, tasks: Iterable[Task]) -> list[tuple[TaskRow, Task]]:
        """Apply the API updates that move their tasks forward, in one transaction. The rows
        are locked (in key order: two merges never deadlock), so a poll and a callback for the
        same task, on any connection, apply one after the other."""
        newest: dict[str, Task] = {}
        for task in tasks:
            if task.id not in newest or task.rank > newest[task.id].rank:
                newest[task.id] = task
        if not newest:
            return []
        # relaxed: what the API said can be asked again (a crash loses it, the poller finds it)
        async with self._transaction(relaxed=True) as db:
            found = await db.fetch(
                "SELECT * FROM tasks WHERE task_id = ANY($1::text[]) ORDER BY key FOR UPDATE",
                list(newest),
            )
            merged = await _merge_rows(db, [TaskRow(**dict(r)) for r in found], newest)
        merged.sort(key=lambda pair: not pair[1].is_final)
        return merged

    async def queue_confirmation(self, task_id: str, image_url: str, window_s: float) -> bool:
        # One statement: whether others wait is read beside the insert (two inserts at once
        # may both open a window: two confirmations, nothing lost). The server's clock: the
        # instances' clocks may differ by more than a window.
        opens = await self._relaxed.fetchval(
            "WITH queued AS (INSERT INTO confirming (task_id, image_url, heard_at)"
            f" VALUES ($1, $2, {_NOW}) ON CONFLICT (task_id) DO NOTHING)"
            " SELECT NOT EXISTS (SELECT 1 FROM confirming WHERE task_id <> $1"
            f" AND heard_at > {_NOW} - $3::float8)",
            task_id,
            image_url,
            window_s,
        )
        return bool(opens)

    async def take_confirmations(
        self, limit: int, only: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        rows = await self._relaxed.fetch(
            "DELETE FROM confirming WHERE task_id IN (SELECT task_id FROM confirming"
            " WHERE $2::text[] IS NULL OR task_id = ANY($2::text[])"
            " ORDER BY heard_at LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING task_id, image_url",
            limit,
            None if only is None else list(only),
        )
        return [(str(r["task_id"]), str(r["image_url"])) for r in rows]

    async def moved_tasks(self, owner: str, since: float) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND task_id IS NOT NULL"
            " AND lease_owner = $1 AND updated_at > $2 AND status <> ALL($3::text[])"
            " ORDER BY created_at",
            owner,
            since,
            _FINAL,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def live_tasks(self) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND task_id IS NOT NULL"
            " AND status <> ALL($1::text[]) ORDER BY created_at",
            [*_FINAL, TaskState.MODAL.value],
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def undelivered(self) -> list[TaskRow]:
        now = time.time()
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND status = ANY($1::text[])"
            f" AND COALESCE(finished_at, created_at) > $2 AND COALESCE({_ON}, '') <> $3"
            f" AND {_DEAD.format(who=_ON)} ORDER BY created_at",
            _FINAL,
            now - RESEND_FOR_S,
            self.instance.id,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def unsent(self, idle_s: float, within_s: float = RESEND_FOR_S) -> list[TaskRow]:
        now = time.time()
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND delivering_at IS NULL"
            " AND status = ANY($1::text[]) AND updated_at < $2"
            " AND COALESCE(finished_at, created_at) > $3"
            f" AND (COALESCE(lease_owner, '') = $4 OR {_DEAD.format(who='lease_owner')})"
            " ORDER BY created_at",
            _FINAL,
            now - idle_s,
            now - within_s,
            self.instance.id,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def interrupted(self) -> list[TaskRow]:
        return await self._adopt(
            "SELECT key FROM tasks WHERE delivered_at IS NULL AND status = $2",
            TaskState.SUBMITTING.value,
        )

    async def answers_in_flight(self) -> list[TaskRow]:
        # Oldest answer first: claim_modal set created_at to the answer's time.
        return await self._adopt(
            "SELECT t.key FROM tasks t JOIN modals m ON m.key = t.key"
            " WHERE t.delivered_at IS NULL AND t.status = $2 AND m.answered_at IS NOT NULL",
            TaskState.MODAL.value,
        )

    async def _adopt(self, candidates: str, state: str) -> list[TaskRow]:
        """The candidates (a query of keys, its state as $2) whose ``submitted_by`` is dead,
        made this instance's in one statement; rows another instance is taking at this moment
        are skipped (SKIP LOCKED), so two instances sweeping at once never both get one."""
        rows = await self._all(
            "WITH picked AS (SELECT key FROM tasks WHERE key IN (" + candidates + ")"
            " AND COALESCE(submitted_by, '') <> $1 AND "
            + _DEAD.format(who="submitted_by")
            + " FOR UPDATE SKIP LOCKED)"
            " UPDATE tasks t SET submitted_by = $1 FROM picked WHERE t.key = picked.key"
            " RETURNING t.*",
            self.instance.id,
            state,
        )
        return sorted((TaskRow(**dict(r)) for r in rows), key=lambda r: r.created_at)

    async def stale_progress(self) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NOT NULL AND progress_ref IS NOT NULL"
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def adopt_progress(self, key: str, ref: MessageRef) -> bool:
        async with self._transaction() as db:
            status = await db.execute(
                "UPDATE tasks SET progress_ref = $1, updated_at = $2 WHERE key = $3"
                " AND progress_ref IS NULL AND delivered_at IS NULL AND delivering_at IS NULL"
                " AND status <> ALL($4::text[])",
                ref.encode(),
                time.time(),
                key,
                [*_FINAL, TaskState.MODAL.value],
            )
            return _changed(status) == 1

    async def claim_delivery(self, key: str) -> bool:
        """True exactly once per task at a time (a claim of an instance whose heartbeat
        lapsed is taken over). A concurrent claimer waits on the row, then finds the
        condition false."""
        async with self._transaction() as db:
            status = await db.execute(
                "UPDATE tasks SET delivering_at = $1, delivering_by = $3, lease_owner = $3"
                " WHERE key = $2"
                " AND delivered_at IS NULL AND (delivering_at IS NULL"
                " OR (COALESCE(delivering_by, '') <> $3 AND "
                + _DEAD.format(who="delivering_by")
                + "))",
                time.time(),
                key,
                self.instance.id,
            )
            return _changed(status) == 1

    async def delivered(self, key: str, result_ref: MessageRef | None) -> None:
        await self.update(
            key, delivered_at=time.time(), result_ref=result_ref.encode() if result_ref else None
        )

    async def release_delivery(self, key: str) -> None:
        async with self._transaction() as db:
            await _set(
                db, key, {"delivering_at": None, "delivering_by": None, "updated_at": time.time()}
            )

    async def first_time(self, event: str) -> bool:
        if not event:
            return True
        status = await self._pool.execute(
            "INSERT INTO seen (event, seen_at) VALUES ($1, $2) ON CONFLICT (event) DO NOTHING",
            event,
            time.time(),
        )
        return _changed(status) == 1

    async def claim_request(self, event: str) -> bool:
        """As ``SQLiteStore.claim_request``, in one statement: of two instances taking a dead
        one's claim at once, the second re-reads the row its update waited for (read
        committed re-checks the WHERE) and finds it taken."""
        if not event:
            return True
        status = await self._pool.execute(_CLAIM_REQUEST, event, time.time(), self.instance.id)
        return _changed(status) == 1

    async def request_done(self, event: str) -> None:
        if event:
            await self._pool.execute(
                "UPDATE seen SET done = 1 WHERE event = $1 AND owner = $2",
                event,
                self.instance.id,
            )

    async def recent_tasks(self, platform: str, user_id: str, limit: int = 10) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE platform = $1 AND user_id = $2"
            " ORDER BY created_at DESC LIMIT $3",
            platform,
            user_id,
            limit,
        )
        return [TaskRow(**dict(r)) for r in rows]

    # --- presses -----------------------------------------------------------------------------

    async def add_child(
        self,
        row: TaskRow,
        parent_key: str,
        button: str,
        *,
        again: bool = True,
        pay: Pay | None = None,
        request: str = "",
    ) -> Slot:
        """As ``SQLiteStore.add_child``: one child, one charge, one submit for any number of
        simultaneous presses. The button is locked first (an advisory lock on its name: its
        ``presses`` row may not exist yet), so the presses take turns."""
        now = time.time()
        row.created_at = row.updated_at = now
        async with self._transaction() as db:
            await db.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"press:{parent_key}:{button}",
            )
            found = await db.fetchrow(
                "SELECT t.* FROM presses p JOIN tasks t ON t.key = p.child_key"
                " WHERE p.parent_key = $1 AND p.button = $2",
                parent_key,
                button,
            )
            earlier = _task(found)
            if earlier is not None and holds(earlier, again, now):
                return Slot(held_by=earlier)
            await _confirm(db, request, self.instance.id)
            if pay is not None:
                row.charge_id = await pay(_Ledger(db))
            row.submitted_by = self.instance.id
            await _insert(db, row)
            await db.execute(
                "INSERT INTO presses (parent_key, button, child_key, created_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (parent_key, button)"
                " DO UPDATE SET child_key = EXCLUDED.child_key, created_at = EXCLUDED.created_at",
                parent_key,
                button,
                row.key,
                now,
            )
            return Slot(again=earlier is not None)

    # --- modals ------------------------------------------------------------------------------

    async def add_modal(self, key: str, kind: str, prefill: str) -> None:
        # A question asked again replaces the old one whole (SQLite's INSERT OR REPLACE).
        await self._pool.execute(
            "INSERT INTO modals (key, kind, prefill, created_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, prefill = EXCLUDED.prefill,"
            " created_at = EXCLUDED.created_at, ask_chat = NULL, ask_message = NULL,"
            " answered_at = NULL",
            key,
            kind,
            prefill,
            time.time(),
        )

    async def set_modal_ask(self, key: str, ref: MessageRef) -> None:
        await self._pool.execute(
            "UPDATE modals SET ask_chat = $1, ask_message = $2 WHERE key = $3",
            f"{ref.platform}:{ref.chat_id}",
            ref.message_id,
            key,
        )

    async def modal(self, key: str) -> ModalRow | None:
        row = await self._one("SELECT * FROM modals WHERE key = $1", key)
        return ModalRow(**dict(row)) if row else None

    async def modal_for_reply(
        self, platform: str, chat_id: str, message_id: str
    ) -> ModalRow | None:
        row = await self._one(
            "SELECT * FROM modals WHERE ask_chat = $1 AND ask_message = $2",
            f"{platform}:{chat_id}",
            message_id,
        )
        return ModalRow(**dict(row)) if row else None

    async def unrecorded_modal(self, platform: str, chat_id: str, user_id: str) -> ModalRow | None:
        row = await self._one(
            "SELECT m.* FROM modals m JOIN tasks t ON t.key = m.key WHERE t.platform = $1"
            " AND t.chat_id = $2 AND t.user_id = $3 AND m.answered_at IS NULL"
            " AND m.ask_message IS NULL ORDER BY m.created_at DESC LIMIT 1",
            platform,
            chat_id,
            user_id,
        )
        return ModalRow(**dict(row)) if row else None

    async def claim_modal(
        self,
        key: str,
        pay: Pay | None = None,
        *,
        request: str = "",
        **values: Unpack[TaskChange],
    ) -> bool:
        """True exactly once per question; the winner pays and writes ``values`` in the same
        transaction (the modal row stays locked until then: a second answer waits, then
        finds it answered)."""
        now = time.time()
        async with self._transaction() as db:
            status = await db.execute(
                "UPDATE modals SET answered_at = $1 WHERE key = $2 AND answered_at IS NULL",
                now,
                key,
            )
            if _changed(status) != 1:
                return False
            await _confirm(db, request, self.instance.id)
            if pay is not None:
                values["charge_id"] = await pay(_Ledger(db))
            mine = {"submitted_by": self.instance.id}  # the answer's submit is this instance's
            await _set(db, key, {**values, **mine, "created_at": now, "updated_at": now})
            return True

    async def reopen_modal(self, key: str, prefill: str) -> bool:
        async with self._transaction() as db:
            status = await db.execute(
                "UPDATE modals SET answered_at = NULL, prefill = $1, ask_chat = NULL,"
                " ask_message = NULL WHERE key = $2 AND answered_at IS NOT NULL",
                prefill,
                key,
            )
            if _changed(status) != 1:
                return False
            await db.execute(
                "UPDATE tasks SET charge_id = NULL, updated_at = $1 WHERE key = $2",
                time.time(),
                key,
            )
            return True

    # --- asks (waiting for an upload) --------------------------------------------------------

    async def add_ask(
        self, ref: MessageRef, user_id: str, command: str, args: str, lang: str
    ) -> None:
        await self._pool.execute(
            "INSERT INTO asks (platform, chat_id, message_id, user_id, command, args, lang,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (platform, chat_id, message_id) DO UPDATE SET"
            " user_id = EXCLUDED.user_id, command = EXCLUDED.command, args = EXCLUDED.args,"
            " lang = EXCLUDED.lang, created_at = EXCLUDED.created_at, answered_at = NULL",
            ref.platform,
            ref.chat_id,
            ref.message_id,
            user_id,
            command,
            args,
            lang,
            time.time(),
        )

    async def ask(self, platform: str, chat_id: str, message_id: str) -> AskRow | None:
        row = await self._one(
            "SELECT * FROM asks WHERE platform = $1 AND chat_id = $2 AND message_id = $3",
            platform,
            chat_id,
            message_id,
        )
        return AskRow(**dict(row)) if row else None

    async def record_ask(self, platform: str, chat_id: str, pending: str, message_id: str) -> None:
        await self._pool.execute(
            "UPDATE asks SET message_id = $1 WHERE platform = $2 AND chat_id = $3"
            " AND message_id = $4",
            message_id,
            platform,
            chat_id,
            pending,
        )

    async def unrecorded_ask(
        self, platform: str, chat_id: str, user_id: str, since: float
    ) -> AskRow | None:
        row = await self._one(
            "SELECT * FROM asks WHERE platform = $1 AND chat_id = $2 AND user_id = $3"
            " AND message_id LIKE $4 AND answered_at IS NULL AND created_at >= $5"
            " ORDER BY created_at DESC LIMIT 1",
            platform,
            chat_id,
            user_id,
            f"{PENDING_ASK}%",
            since,
        )
        return AskRow(**dict(row)) if row else None

    async def claim_ask(
        self, platform: str, chat_id: str, message_id: str, alias: str = "", *, request: str = ""
    ) -> bool:
        status = await self._pool.execute(
            "UPDATE asks SET answered_at = $1, answered_by = $6 WHERE platform = $2"
            " AND chat_id = $3 AND message_id IN ($4, $5)"
            " AND (answered_at IS NULL OR answered_by = $6)",
            time.time(),
            platform,
            chat_id,
            message_id,
            alias or message_id,
            request or None,
        )
        return _changed(status) == 1

    # --- settings ----------------------------------------------------------------------------

    async def user_settings(self, platform: str, user_id: str) -> UserSettings:
        return user_settings(await self._settings(f"user:{platform}:{user_id}"))

    async def change_user_settings(
        self, platform: str, user_id: str, change: Callable[[UserSettings], UserSettings]
    ) -> UserSettings:
        async with self._transaction() as db:
            scope = f"user:{platform}:{user_id}"
            data = await _settings_in(db, scope)
            changed = change(user_settings(data))
            values = changed.document()
            await _set_settings(db, scope, data, values)
            return changed

    async def chat_settings(self, platform: str, chat_id: str) -> ChatSettings:
        return chat_settings(await self._settings(f"chat:{platform}:{chat_id}"))

    async def change_chat_settings(
        self, platform: str, chat_id: str, change: Callable[[ChatSettings], ChatSettings]
    ) -> ChatSettings:
        async with self._transaction() as db:
            scope = f"chat:{platform}:{chat_id}"
            data = await _settings_in(db, scope)
            changed = change(chat_settings(data))
            await _set_settings(db, scope, data, changed.document())
            return changed

    async def keep_hook_secret(self, candidate: str) -> str:
        async with self._transaction() as db:
            data = await _settings_in(db, "system:hooks")
            kept = data.get("secret")
            if isinstance(kept, str) and kept:
                return kept
            await _set_settings(db, "system:hooks", data, {"secret": candidate})
            return candidate

    # --- what instances sharing the database agree on ----------------------------------------

    async def join_album(self, album: str, part: str, body: str) -> int:
        # The part first, then the window's count, in one transaction: a take that closes the
        # window meanwhile either waits for this count (and finds it moved on) or went first
        # (this part, not seen by it, opens a window of its own: the conflict is re-checked).
        now = time.time()
        async with self._transaction() as db:
            taken = await db.fetchval(
                "INSERT INTO album_parts (album, part, body, added_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (album, part) DO UPDATE SET added_at = album_parts.added_at"
                " RETURNING taken",
                album,
                part,
                body,
                now,
            )
            if taken:
                return 0  # taken with its album: a redelivery
            arrivals = await db.fetchval(
                "INSERT INTO albums (album, arrivals, started_at) VALUES ($1, 1, $2)"
                " ON CONFLICT (album) DO UPDATE SET arrivals = albums.arrivals + 1"
                " RETURNING arrivals",
                album,
                now,
            )
            return int(arrivals)

    async def take_album(self, album: str, arrivals: int, by: str) -> list[str] | None:
        now = time.time()
        async with self._transaction() as db:
            status = await db.execute(
                "DELETE FROM albums WHERE album = $1 AND arrivals = $2", album, arrivals
            )
            if _changed(status) != 1:
                return None
            rows = await db.fetch(
                "UPDATE album_parts SET taken = 1, taken_by = $2 WHERE album = $1 AND taken = 0"
                " RETURNING body, added_at, part",
                album,
                by,
            )
            # Forgotten a day on: parts (a redelivery that late is not one) and windows
            # whose instance died waiting.
            await db.execute("DELETE FROM album_parts WHERE added_at < $1", now - ALBUM_KEPT_S)
            await db.execute("DELETE FROM albums WHERE started_at < $1", now - ALBUM_KEPT_S)
        return [str(r["body"]) for r in sorted(rows, key=lambda r: (r["added_at"], r["part"]))]

    async def retake_album(self, album: str, by: str) -> list[str] | None:
        found = await self._pool.fetch(
            "SELECT body FROM album_parts WHERE album = $1 AND taken_by = $2"
            " ORDER BY added_at, part",
            album,
            by,
        )
        return [str(r["body"]) for r in found] or None

    async def claim_copy(self, slot: str, *, fresh_for: float | None = None) -> CopyClaim:
        # One statement: two claims at once queue on the row, and the second finds it claimed.
        now = time.time()
        async with self._transaction() as db:
            mine = await db.fetchval(
                "INSERT INTO copies (slot, claimed_at) VALUES ($1, $2)"
                " ON CONFLICT (slot) DO UPDATE SET ref = NULL, claimed_at = EXCLUDED.claimed_at,"
                " posted_at = NULL"
                " WHERE (copies.ref IS NULL AND copies.claimed_at < $3)"
                " OR (copies.ref IS NOT NULL AND $4 AND copies.posted_at < $5)"
                " RETURNING TRUE",
                slot,
                now,
                now - COPY_POSTING_S,
                fresh_for is not None,
                now - (fresh_for or 0.0),
            )
            if mine:
                return CopyClaim(mine=True)
            ref = await db.fetchval("SELECT ref FROM copies WHERE slot = $1", slot)
        return CopyClaim(mine=False, ref=MessageRef.decode(ref))

    async def copy_posted(self, slot: str, ref: MessageRef) -> None:
        await self._pool.execute(
            "UPDATE copies SET ref = $1, posted_at = $2 WHERE slot = $3",
            ref.encode(),
            time.time(),
            slot,
        )

    async def drop_copy(self, slot: str) -> None:
        await self._pool.execute("DELETE FROM copies WHERE slot = $1", slot)

    async def keep_photo(self, key: str, data: bytes, keep_for_s: float) -> None:
        if len(data) > KEPT_MAX_BYTES:
            raise ValueError(f"a kept photo is at most {KEPT_MAX_BYTES} bytes, not {len(data)}")
        now = time.time()
        async with self._transaction() as db:
            await db.execute("DELETE FROM kept WHERE expires_at <= $1", now)
            await db.execute(
                "INSERT INTO kept (key, data, created_at, expires_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
                " created_at = excluded.created_at, expires_at = excluded.expires_at",
                key,
                bytes(data),
                now,
                now + keep_for_s,
            )

    async def prune(self) -> int:
        now = time.time()
        async with self._transaction() as db:
            kept = await db.execute("DELETE FROM kept WHERE expires_at <= $1", now)
            copies = await db.execute(
                "DELETE FROM copies WHERE (ref IS NULL AND claimed_at < $1)"
                " OR (ref IS NOT NULL AND posted_at < $2)",
                now - COPY_POSTING_S,
                now - COPY_KEPT_S,
            )
        return _changed(kept) + _changed(copies)

    async def kept_photo(self, key: str, *, renew_for_s: float | None = None) -> bytes | None:
        now = time.time()
        if renew_for_s is None:
            row = await self._one(
                "SELECT data FROM kept WHERE key = $1 AND expires_at > $2", key, now
            )
        else:
            row = await self._one(
                "UPDATE kept SET expires_at = GREATEST(expires_at, $3)"
                " WHERE key = $1 AND expires_at > $2 RETURNING data",
                key,
                now,
                now + renew_for_s,
            )
        return bytes(row["data"]) if row else None

    async def _settings(self, scope: str) -> dict[str, Any]:
        row = await self._one("SELECT data FROM settings WHERE scope = $1", scope)
        return settings_document(row["data"] if row else None)

    # --- the ledger --------------------------------------------------------------------------

    async def charge(self, pay: Pay) -> str | None:
        async with self._transaction() as db:
            return await pay(_Ledger(db))

    async def settle_charge(self, charge_id: str, outcome: Outcome) -> None:
        await self._pool.execute(
            "UPDATE ledger SET outcome = $1, settled_at = $2 WHERE id = $3 AND outcome = 'pending'",
            outcome,
            time.time(),
            charge_id,
        )

    async def durations(self, kind: str, mode: str, since: float, limit: int = 200) -> list[float]:
        rows = await self._all(
            "SELECT finished_at - created_at AS s FROM tasks WHERE kind = $1 AND mode = $2"
            " AND status = $3 AND finished_at >= $4 ORDER BY finished_at DESC LIMIT $5",
            kind,
            mode,
            TaskState.SUCCESS.value,
            since,
            limit,
        )
        return [float(r["s"]) for r in rows]

    async def refunded_units(self, charge_id: str) -> int:
        row = await self._one(
            "SELECT units FROM ledger WHERE id = $1 AND outcome IN ('pending', 'refunded')",
            charge_id,
        )
        return int(row["units"]) if row else 0

    async def usage(self, platform: str, user_id: str, day: str, month: str) -> Usage:
        row = await self._one(
            "SELECT"
            f" COALESCE(SUM(units) FILTER (WHERE day = $1 AND {_SPENT}), 0) AS today,"
            f" COALESCE(SUM(units) FILTER (WHERE month = $2 AND {_SPENT}), 0) AS month,"
            " COUNT(*) FILTER (WHERE outcome = 'pending') AS running,"
            f" COUNT(*) FILTER (WHERE {_SPENT}) AS jobs,"
            " COUNT(*) FILTER (WHERE outcome = 'refunded') AS refunded"
            " FROM ledger WHERE platform = $3 AND user_id = $4",
            day,
            month,
            platform,
            user_id,
        )
        assert row is not None  # an aggregate always has a row
        return Usage(**{k: int(v) for k, v in dict(row).items()})

    async def stats(self, day: str, week_from: str) -> Stats:
        totals = await self._one(
            "SELECT"
            f" COALESCE(SUM(units) FILTER (WHERE day = $1 AND {_SPENT}), 0) AS today,"
            " COUNT(*) FILTER (WHERE day = $1 AND outcome <> 'void') AS jobs_today,"
            f" COALESCE(SUM(units) FILTER (WHERE day >= $2 AND {_SPENT}), 0) AS week,"
            " COUNT(*) FILTER (WHERE day >= $2 AND outcome <> 'void') AS jobs_week,"
            " COUNT(*) FILTER (WHERE day >= $2 AND outcome = 'refunded') AS failures_week"
            " FROM ledger",
            day,
            week_from,
        )
        assert totals is not None  # an aggregate always has a row
        top = await self._all(
            "SELECT l.platform, l.user_id, COALESCE(p.handle, '') AS handle,"
            " SUM(l.units) AS units FROM ledger l LEFT JOIN people p"
            " ON p.platform = l.platform AND p.user_id = l.user_id"
            f" WHERE l.day >= $1 AND l.{_SPENT}"
            " GROUP BY l.platform, l.user_id, p.handle ORDER BY units DESC LIMIT 5",
            week_from,
        )
        return Stats(
            **{k: int(v) for k, v in dict(totals).items()},
            top=[Spender(r["platform"], r["user_id"], r["handle"], int(r["units"])) for r in top],
        )

    # --- access and people -------------------------------------------------------------------

    async def access_rule(
        self, platform: str, subject: AccessSubject, ident: str
    ) -> AccessRule | None:
        row = await self._one(
            "SELECT rule FROM access WHERE platform = $1 AND subject = $2 AND id = $3",
            platform,
            subject,
            ident,
        )
        return str(row["rule"]) if row else None

    async def set_access_rule(
        self,
        platform: str,
        subject: AccessSubject,
        ident: str,
        rule: AccessRule | None,
        by_user: str,
    ) -> None:
        if rule is None:
            await self._pool.execute(
                "DELETE FROM access WHERE platform = $1 AND subject = $2 AND id = $3",
                platform,
                subject,
                ident,
            )
            return
        await self._pool.execute(
            "INSERT INTO access (platform, subject, id, rule, by_user, at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform, subject, id) DO UPDATE SET"
            " rule = EXCLUDED.rule, by_user = EXCLUDED.by_user, at = EXCLUDED.at",
            platform,
            subject,
            ident,
            rule,
            by_user,
            time.time(),
        )

    async def remember_person(self, platform: str, user_id: str, handle: str, name: str) -> None:
        await self._pool.execute(
            "INSERT INTO people (platform, user_id, handle, name, last_seen)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, user_id) DO UPDATE SET"
            " handle = EXCLUDED.handle, name = EXCLUDED.name, last_seen = EXCLUDED.last_seen",
            platform,
            user_id,
            handle,
            name,
            time.time(),
        )

    async def person_by_handle(self, platform: str, handle: str) -> str | None:
        row = await self._one(
            "SELECT user_id FROM people WHERE platform = $1 AND handle = $2", platform, handle
        )
        return str(row["user_id"]) if row else None

    # --- reports -----------------------------------------------------------------------------

    async def unfinished_tasks(self, limit: int) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE status <> ALL($1::text[]) ORDER BY created_at DESC LIMIT $2",
            _FINAL,
            limit,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def latest_tasks(self, limit: int) -> list[TaskRow]:
        rows = await self._all("SELECT * FROM tasks ORDER BY created_at DESC LIMIT $1", limit)
        return [TaskRow(**dict(r)) for r in rows]

    async def tasks_per_user(self, since: float) -> list[UserTasks]:
        rows = await self._all(
            "SELECT platform, user_id, COUNT(*) AS tasks,"
            " COUNT(*) FILTER (WHERE status = $1) AS succeeded,"
            " COUNT(*) FILTER (WHERE status = ANY($2::text[])) AS failed"
            " FROM tasks WHERE created_at >= $3 GROUP BY platform, user_id"
            " ORDER BY tasks DESC",
            TaskState.SUCCESS.value,
            [
                TaskState.FAILURE.value,
                TaskState.REJECTED.value,
                TaskState.TIMEOUT.value,
                TaskState.CANCEL.value,
            ],
            since,
        )
        return [
            UserTasks(r["platform"], r["user_id"], r["tasks"], r["succeeded"], r["failed"])
            for r in rows
        ]

    async def tasks_per_interval(self, since: float, interval_s: int) -> list[TaskCount]:
        # FLOOR, not a cast: PostgreSQL rounds a double cast to an integer, SQLite truncates.
        rows = await self._all(
            "SELECT (FLOOR(created_at / $1)::bigint * $1) AS start,"
            " COUNT(*) AS tasks, COUNT(*) FILTER (WHERE status = $2) AS succeeded"
            " FROM tasks WHERE created_at >= $3 GROUP BY 1 ORDER BY 1",
            interval_s,
            TaskState.SUCCESS.value,
            since,
        )
        return [TaskCount(int(r["start"]), r["tasks"], r["succeeded"]) for r in rows]

    # --- instances and leases ----------------------------------------------------------------

    async def heartbeat(self, instance: InstanceRow, ttl_s: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO instances (id, host, pid, started_at, heartbeat_at, expires_at)"
                f" VALUES ($1, $2, $3, $4, {_CLOCK}, {_CLOCK} + $5) ON CONFLICT (id) DO UPDATE"
                " SET heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at",
                instance.id,
                instance.host,
                instance.pid,
                instance.started_at,
                ttl_s,
            )
            # Rows locked in key order, as merge locks them: two statements that lock many
            # of the same tasks in different orders deadlock.
            await db.execute(
                f"UPDATE tasks SET lease_until = {_CLOCK} + $1 WHERE key IN (SELECT key FROM"
                " tasks WHERE delivered_at IS NULL AND lease_owner = $2 ORDER BY key FOR UPDATE)",
                ttl_s,
                instance.id,
            )
        await self._pruning.maybe(self.prune)

    async def instances(self) -> list[InstanceRow]:
        rows = await self._all("SELECT * FROM instances ORDER BY heartbeat_at DESC")
        return [InstanceRow(**dict(r)) for r in rows]

    async def lease_tasks(self, owner: str, ttl_s: float, limit: int) -> list[TaskRow]:
        """Those it holds (read, not written: ``heartbeat`` extends them), and the oldest free
        or lapsed ones; rows another instance is taking at this moment are skipped (SKIP
        LOCKED), so two instances never take the same task."""
        live = "delivered_at IS NULL AND task_id IS NOT NULL AND status <> ALL($2::text[])"
        async with self._transaction() as db:
            taken = await db.fetch(
                f"WITH picked AS (SELECT key FROM tasks WHERE {live} AND (lease_owner IS NULL"
                f" OR lease_until IS NULL OR lease_until < {_CLOCK})"
                " ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
                f" UPDATE tasks t SET lease_owner = $1, lease_until = {_CLOCK} + $3 FROM picked"
                " WHERE t.key = picked.key RETURNING t.*",
                owner,
                [*_FINAL, TaskState.MODAL.value],
                ttl_s,
                limit,
            )
            # The rows just taken are read again here: kept once, by key.
            held = await db.fetch(
                f"SELECT * FROM tasks WHERE {live} AND lease_owner = $1"
                f" AND lease_until >= {_CLOCK}",
                owner,
                [*_FINAL, TaskState.MODAL.value],
            )
        by_key = {r["key"]: TaskRow(**dict(r)) for r in [*held, *taken]}
        return sorted(by_key.values(), key=lambda r: r.created_at)

    async def release_tasks(self, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE key IN (SELECT key"
                " FROM tasks WHERE delivered_at IS NULL AND lease_owner = $1"
                " ORDER BY key FOR UPDATE)",  # key order, as merge and heartbeat lock them
                owner,
            )
            await db.execute(
                f"UPDATE instances SET expires_at = LEAST(expires_at, {_CLOCK}) WHERE id = $1",
                owner,
            )

    # --- shared limits and singletons ----------------------------------------------------------

    async def take_slot(self, rules: list[SendRule]) -> float:
        return await self._slot(rules, math.inf)

    async def try_slot(self, rules: list[SendRule]) -> float:
        return await self._slot(rules, 0.0)

    async def _slot(self, rules: list[SendRule], within_s: float) -> float:
        """One statement, one round trip: lock the scopes' rows (in scope order, so two calls
        never deadlock), find the first moment all of them allow (bot.store.rules.next_slot),
        charge them all at it if it is at most ``within_s`` away. The clock is the server's,
        read once the rows are locked. A scope without a row yet is inserted first, then the
        statement runs again."""
        scopes = [r.scope for r in rules]
        leads = [r.lead for r in rules]
        steps = [r.step for r in rules]
        ordered = [r.ordered for r in rules]
        for _ in range(3):
            row = await self._relaxed.fetchrow(
                _TAKE_SLOT, scopes, leads, steps, len(set(scopes)), ordered, within_s
            )
            if row is not None and row["complete"]:
                return max(0.0, float(row["wait"]))
            await self._relaxed.execute(
                "INSERT INTO send_slots (scope, tat, last) SELECT unnest($1::text[]), 0, 0"
                " ON CONFLICT (scope) DO NOTHING",
                scopes,
            )
        raise RuntimeError(f"send slots for {scopes} could not be taken")

    async def forget_slots(self, idle_s: float) -> int:
        """A row take_slot holds is not deleted (the DELETE waits, then finds it renewed); a
        take_slot that finds its row gone inserts it again."""
        done = await self._pool.execute(
            f"DELETE FROM send_slots WHERE tat < {_NOW} - $1 AND last < {_NOW} - $1", idle_s
        )
        return int(done.split()[-1])

    async def hold_singleton(self, name: str, owner: str, ttl_s: float) -> bool:
        row = await self._one(
            f"INSERT INTO singletons (name, owner, expires_at) VALUES ($1, $2, {_NOW} + $3)"
            " ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner,"
            " expires_at = EXCLUDED.expires_at"
            f" WHERE singletons.owner = EXCLUDED.owner OR singletons.expires_at < {_NOW}"
            " RETURNING owner",
            name,
            owner,
            ttl_s,
        )
        return row is not None

    async def release_singleton(self, name: str, owner: str) -> None:
        await self._pool.execute(
            "DELETE FROM singletons WHERE name = $1 AND owner = $2", name, owner
        )

    async def singleton(self, name: str) -> Holder | None:
        row = await self._one(
            f"SELECT owner, expires_at - {_NOW} AS left FROM singletons"
            f" WHERE name = $1 AND expires_at >= {_NOW}",
            name,
        )
        return Holder(name, row["owner"], float(row["left"])) if row is not None else None

    # --- the inbox -----------------------------------------------------------------------------

    async def accept_update(self, event: str, body: str, owner: str) -> bool:
        now = time.time()
        status = await self._pool.execute(
            "INSERT INTO inbox (event, body, owner, received_at, taken_at) VALUES"
            " ($1, $2, $3, $4, $4) ON CONFLICT (event) DO NOTHING",
            event,
            body,
            owner,
            now,
        )
        return _changed(status) == 1

    async def keep_updates(self, owner: str) -> None:
        await self._pool.execute(
            "UPDATE inbox SET taken_at = $1 WHERE owner = $2", time.time(), owner
        )

    async def take_updates(self, owner: str, idle_s: float, limit: int) -> list[InboxRow]:
        """SKIP LOCKED: two instances taking at once split the rows, never share one."""
        now = time.time()
        # An update is its owner's while the owner's inbox round says so (keep_updates),
        # whatever its tracker's heartbeat: handling that hangs gives the update away.
        rows = await self._pool.fetch(
            "UPDATE inbox SET owner = $1, taken_at = $2, takes = takes + 1 WHERE event IN"
            " (SELECT event FROM inbox WHERE taken_at < $3"
            "  ORDER BY received_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
            " RETURNING *",
            owner,
            now,
            now - idle_s,
            limit,
        )
        return sorted((InboxRow(**dict(r)) for r in rows), key=lambda r: r.received_at)

    async def update_handled(self, event: str, owner: str) -> None:
        await self._pool.execute("DELETE FROM inbox WHERE event = $1 AND owner = $2", event, owner)


class _Ledger:
    """``bot.store.Ledger`` inside one of the store's transactions. Its first use locks the
    ledger until the transaction ends: quotas are read and a charge written by one payment at
    a time (SQLite had that from BEGIN IMMEDIATE), so two never both pass a limit."""

    def __init__(self, db: Connection) -> None:
        self._db = db
        self._locked = False

    async def _lock(self) -> None:
        if not self._locked:
            await self._db.execute("SELECT pg_advisory_xact_lock($1)", _LEDGER_LOCK)
            self._locked = True

    async def running(self, platform: str, user_id: str) -> int:
        await self._lock()
        value = await self._db.fetchval(
            "SELECT COUNT(*) FROM ledger WHERE platform = $1 AND user_id = $2"
            " AND outcome = 'pending'",
            platform,
            user_id,
        )
        return int(value)

    async def spent(
        self,
        *,
        day: str | None = None,
        month: str | None = None,
        platform: str | None = None,
        user_id: str | None = None,
        chat_id: str | None = None,
    ) -> int:
        await self._lock()
        given = {
            "platform": platform,
            "user_id": user_id,
            "chat_id": chat_id,
            "day": day,
            "month": month,
        }
        where = [(name, value) for name, value in given.items() if value is not None]
        clauses = [_SPENT, *(f"{name} = ${n}" for n, (name, _) in enumerate(where, 1))]
        value = await self._db.fetchval(
            "SELECT COALESCE(SUM(units), 0) FROM ledger WHERE " + " AND ".join(clauses),
            *(value for _, value in where),
        )
        return int(value)

    async def record(self, charge: Charge) -> None:
        await self._lock()
        await self._db.execute(
            "INSERT INTO ledger (id, task_key, platform, user_id, chat_id, action, units,"
            " outcome, day, month, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10)",
            charge.id,
            charge.task_key,
            charge.platform,
            charge.user_id,
            charge.chat_id,
            charge.action,
            charge.units,
            charge.day,
            charge.month,
            charge.created_at,
        )


# Every connection: UTC, and a name that shows in pg_stat_activity.
_SETTINGS = {"application_name": "mjbot", "timezone": "UTC"}


async def _pool(url: str, settings: dict[str, str]) -> asyncpg.Pool[asyncpg.Record]:
    return await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=8,
        command_timeout=60,
        server_settings=settings,
        reset=_keep_session,
    )


async def _hold_instance_lock(url: str) -> asyncpg.Connection[asyncpg.Record]:
    """A connection holding the instance lock in shared mode (every instance of this version
    shares it), or ``DatabaseInUse`` while an mjbot of the one-process era holds it
    exclusively: its claims would be taken over by rules it does not follow."""
    # The holder's session names its process: a refused one can say who holds the database.
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
    me = f"mjbot pid {os.getpid()} on {socket.gethostname()}, since {since}"[:63]
    holder = await asyncpg.connect(url, server_settings={**_SETTINGS, "application_name": me})
    deadline = time.monotonic() + _INSTANCE_WAIT_S
    try:
        while not await holder.fetchval("SELECT pg_try_advisory_lock_shared($1)", _INSTANCE_LOCK):
            if time.monotonic() > deadline:
                who = await holder.fetchval(
                    "SELECT string_agg(a.application_name, ', ')"
                    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted"
                    " AND (l.classid::bigint << 32 | l.objid::bigint) = $1",
                    _INSTANCE_LOCK,
                )
                raise DatabaseInUse(
                    f"{shown_url(url)} is in use by another mjbot ({who or 'unknown'}) of an"
                    " older version that runs alone; stop it first (instances of this version"
                    " share a database)"
                )
            await asyncio.sleep(0.2)
    except BaseException:
        await holder.close()
        raise
    return holder


def _reason(exc: BaseException, url: str) -> str:
    """An error's text without the URL's password (a driver may quote its DSN)."""
    text = str(exc) or type(exc).__name__
    password = re.search(r"://[^:/@]*:([^@]*)@", url)
    if password and password.group(1):
        text = text.replace(password.group(1), "***")
    return text


def _changed(status: str) -> int:
    """Rows a command changed, from its status tag ("UPDATE 1", "INSERT 0 1")."""
    return int(status.rsplit(" ", 1)[-1])


def _task(row: asyncpg.Record | None) -> TaskRow | None:
    return TaskRow(**dict(row)) if row else None


async def _settings_in(db: Connection, scope: str) -> dict[str, Any]:
    """The scope's document, its row locked until the transaction ends (created empty when
    absent, so there is a row to lock: two first writers take turns too)."""
    await db.execute(
        "INSERT INTO settings (scope, data) VALUES ($1, '{}') ON CONFLICT (scope) DO NOTHING",
        scope,
    )
    data = await db.fetchval("SELECT data FROM settings WHERE scope = $1 FOR UPDATE", scope)
    return settings_document(data)


async def _set_settings(
    db: Connection, scope: str, data: dict[str, Any], values: dict[str, Any]
) -> None:
    merged = {**data, **values}
    kept = {name: value for name, value in merged.items() if value is not None}
    await db.execute(
        "UPDATE settings SET data = $2 WHERE scope = $1",
        scope,
        json.dumps(kept, ensure_ascii=False),
    )


async def _set(db: Connection, key: str, values: dict[str, Any]) -> None:
    unknown = set(values) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"no such task column: {sorted(unknown)}")
    encoded = {k: v.encode() if isinstance(v, MessageRef) else v for k, v in values.items()}
    assignments = ", ".join(f"{k} = ${n}" for n, k in enumerate(encoded, 1))
    await db.execute(
        f"UPDATE tasks SET {assignments} WHERE key = ${len(encoded) + 1}", *encoded.values(), key
    )


async def _insert(db: Connection, row: TaskRow) -> None:
    marks = ", ".join(f"${n}" for n in range(1, len(_COLUMNS) + 1))
    await db.execute(
        f"INSERT INTO tasks ({', '.join(_COLUMNS)}) VALUES ({marks})",
        *[getattr(row, c) for c in _COLUMNS],
    )


async def _merge_rows(
    db: Connection, rows: list[TaskRow], updates: dict[str, Task]
) -> list[tuple[TaskRow, Task]]:
    merged = moved_forward(rows, updates, time.time())
    if merged:
        await db.executemany(
            "UPDATE tasks SET snapshot = $1, status = $2, progress = $3, updated_at = $4,"
            " finished_at = $5 WHERE key = $6",
            [
                (r.snapshot, r.status, r.progress, r.updated_at, r.finished_at, r.key)
                for r, _ in merged
            ],
        )
    return merged


async def _confirm(db: Connection, request: str, me: str) -> None:
    """As sqlite's ``_confirm``: inside a paid write's transaction, the request it fulfils is
    done if it is this instance's; RequestTaken (rolling back) when another one took it over."""
    if not request:
        return
    owner = await db.fetchval(
        "UPDATE seen SET done = CASE WHEN owner = $2 THEN 1 ELSE done END"
        " WHERE event = $1 AND owner IS NOT NULL RETURNING owner",
        request,
        me,
    )
    if owner is not None and owner != me:
        raise RequestTaken(request)
