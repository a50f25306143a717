"""The Store on SQLite: one aiosqlite connection, WAL, numbered migrations by ``user_version``
(``bot/store/migrations/``), one process per database (``bot.dblock``).

Every SQL statement of the project is in this module. Each decision is one ``BEGIN IMMEDIATE``
transaction, serialised by a lock, so two concurrent updates can never both win.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any, Unpack

import aiosqlite

from bot import dblock
from bot.chat import MessageRef
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
    TaskChange,
    TaskCount,
    TaskRow,
    Usage,
    UserSettings,
    UserTasks,
    this_instance,
)
from bot.store.rules import (
    chat_settings,
    holds,
    moved_forward,
    next_slot,
    settings_document,
    user_settings,
)

_IDS_PER_QUERY = 500  # SQLite allows 999 parameters in older builds
_COLUMNS = [f.name for f in fields(TaskRow)]
# Ledger rows that count as spent (``refunded`` and ``void`` do not).
_SPENT = "outcome IN ('pending', 'success')"
# The instance named by ``{who}`` has no live heartbeat: its claims are anyone's to take.
_DEAD = "NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = {who} AND i.expires_at > ?)"
# Who is on a final task: the instance posting it, or before anyone claimed it, the one that
# followed it.
_ON = "CASE WHEN delivering_at IS NULL THEN lease_owner ELSE delivering_by END"
# A request claimed by another instance and not done is this one's (``claim_request``) when
# that instance is dead, or when this one took the update's inbox row over (the inbox gives up
# on an owner that stopped keeping it, which may be before its heartbeat lapses: waiting for
# that would drop the update the inbox hands over). Parameters: me, event, me, now, me.
_TAKE_REQUEST = (
    "UPDATE seen SET owner = ? WHERE event = ? AND done = 0 AND owner <> ? AND ("
    + _DEAD.format(who="seen.owner")
    + " OR EXISTS (SELECT 1 FROM inbox b WHERE b.event = seen.event AND b.owner = ?))"
)


class SQLiteStore:
    """``bot.store.Store`` on one SQLite file."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: str | Path = ":memory:",
        instance: InstanceRow | None = None,
    ) -> None:
        self._db = db
        self.path = str(path)  # the database file (tests read it beside the store)
        self._db_lock: dblock.DatabaseLock | None = None  # set by open() for a writer
        self._lock = asyncio.Lock()
        self.instance = instance or this_instance()
        self._pruning = PruneClock()

    @classmethod
    async def open(
        cls, path: str | Path, *, read_only: bool = False, instance: InstanceRow | None = None
    ) -> SQLiteStore:
        """Open (creating and migrating) the database, holding its lock for this process.

        Every writer is exclusive (bot/dblock.py): SQLite has one writer, so a second process
        is refused here, whoever opens the store. Holding the lock proves every instance that
        used the file before is dead: their heartbeats end now, and their claims are this
        one's to take over at once (``resume``) rather than when their leases lapse. Only
        ``read_only`` (``mjbot status`` beside a running bot) shares: it takes no lock, never
        migrates and cannot write, so it can take nothing over. ``:memory:`` is private.
        """
        if read_only:
            return cls(await _connect_read_only(Path(path)), path, instance)
        lock = None
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            lock = dblock.acquire(path)  # first: a refused process must touch nothing
        try:
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        store = cls(db, path, instance)
        store._db_lock = lock
        try:
            db.row_factory = aiosqlite.Row
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                "busy_timeout=5000",
            ):
                await db.execute(f"PRAGMA {pragma}")
            await store._migrate()
            async with store._transaction() as tx:
                await tx.execute(
                    "UPDATE instances SET expires_at = ? WHERE id <> ? AND expires_at > ?",
                    (time.time(), store.instance.id, time.time()),
                )
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            if self._db_lock is not None:
                self._db_lock.release()
                self._db_lock = None

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = row[0] if row is not None else 0
        scripts = sorted(
            (int(p.name[:4]), p)
            for p in resources.files("bot.store.migrations").iterdir()
            if re.match(r"\d{4}_.*\.sql$", p.name)
        )
        for number, script in scripts:
            if number <= version:
                continue
            # Statements run one by one inside the transaction: executescript() would commit.
            async with self._transaction() as db:
                for statement in _statements(script.read_text("utf-8")):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version={number}")

    # --- copying a deployment (``mjbot migrate --to``) ---------------------------------------

    async def table_columns(self) -> dict[str, list[str]]:
        """The database's tables and their columns."""
        tables = await self._all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
        found: dict[str, list[str]] = {}
        for table in tables:
            name = str(table["name"])
            found[name] = [str(c["name"]) for c in await self._all(f"PRAGMA table_info({name})")]
        return found

    async def dump(
        self, table: str, columns: list[str], batch: int
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Every row of a table (as ``columns``), ``batch`` rows at a time. The names are
        checked against the schema (they become SQL)."""
        known = await self.table_columns()
        if table not in known or not set(columns) <= set(known[table]):
            raise ValueError(f"no such table or columns: {table} {columns}")
        async with self._db.execute(f"SELECT {', '.join(columns)} FROM {table}") as cur:
            while rows := await cur.fetchmany(batch):
                yield [tuple(r) for r in rows]

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, serialised: the unit of every decision."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _one(self, sql: str, *args: Any) -> aiosqlite.Row | None:
        async with self._db.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, *args: Any) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    # --- tasks -------------------------------------------------------------------------------

    async def add_task(self, row: TaskRow, pay: Pay | None = None, *, request: str = "") -> TaskRow:
        """Insert a task, and pay for it in the same transaction (a refusal inserts nothing);
        ``request``'s claim is confirmed in it too (``Store.add_task``)."""
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
                "UPDATE tasks SET lease_owner = ?, lease_until ="
                " (SELECT expires_at FROM instances WHERE id = ?) WHERE key = ?"
                " AND EXISTS (SELECT 1 FROM instances WHERE id = ?)",
                (self.instance.id, self.instance.id, row.key, self.instance.id),
            )
        return row

    async def task(self, key: str) -> TaskRow | None:
        row = await self._one("SELECT * FROM tasks WHERE key = ?", key)
        return TaskRow(**dict(row)) if row else None

    async def task_by_id(self, task_id: str) -> TaskRow | None:
        row = await self._one("SELECT * FROM tasks WHERE task_id = ?", task_id)
        return TaskRow(**dict(row)) if row else None

    async def update(self, key: str, **values: Unpack[TaskChange]) -> None:
        """Set columns of one task (refs may be given as MessageRef)."""
        async with self._transaction() as db:
            await _set(db, key, {**values, "updated_at": time.time()})

    async def merge(self, tasks: Iterable[Task]) -> list[tuple[TaskRow, Task]]:
        """Apply the API updates that move their tasks forward, all in one transaction.

        The merge only moves forward by (status rank, progress), so duplicate, stale and
        out-of-order updates (webhook or poll) change nothing. Returns the rows that moved
        with their updates, finished tasks first. One transaction for a whole poll answer
        keeps its progress steps from queueing in front of the results it found.
        """
        newest: dict[str, Task] = {}
        for task in tasks:  # an id twice in one answer: the further one counts
            if task.id not in newest or task.rank > newest[task.id].rank:
                newest[task.id] = task
        ids = list(newest)
        merged: list[tuple[TaskRow, Task]] = []
        async with self._transaction() as db:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" for _ in chunk)
                sql = f"SELECT * FROM tasks WHERE task_id IN ({marks})"
                async with db.execute(sql, chunk) as cur:
                    found = [TaskRow(**dict(r)) for r in await cur.fetchall()]
                merged += await _merge_rows(db, found, newest)
        merged.sort(key=lambda pair: not pair[1].is_final)
        return merged

    async def queue_confirmation(self, task_id: str, image_url: str, window_s: float) -> bool:
        now = time.time()
        async with self._transaction() as db:
            async with db.execute(
                "SELECT 1 FROM confirming WHERE task_id <> ? AND heard_at > ? LIMIT 1",
                (task_id, now - window_s),
            ) as cur:
                others = await cur.fetchone()
            await db.execute(
                "INSERT INTO confirming (task_id, image_url, heard_at) VALUES (?, ?, ?)"
                " ON CONFLICT (task_id) DO NOTHING",
                (task_id, image_url, now),
            )
        return others is None

    async def take_confirmations(
        self, limit: int, only: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        ids = [] if only is None else list(only)
        among = f" WHERE task_id IN ({', '.join('?' for _ in ids)})" if only is not None else ""
        async with self._transaction() as db:
            async with db.execute(
                f"SELECT task_id, image_url FROM confirming{among} ORDER BY heard_at LIMIT ?",
                (*ids, limit),
            ) as cur:
                taken = [(str(r["task_id"]), str(r["image_url"])) for r in await cur.fetchall()]
            await db.executemany(
                "DELETE FROM confirming WHERE task_id = ?", [(i,) for i, _ in taken]
            )
        return taken

    async def moved_tasks(self, owner: str, since: float) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND task_id IS NOT NULL"
            " AND lease_owner = ? AND updated_at > ? AND status NOT IN"
            f" ({', '.join('?' for _ in FINAL_STATES)}) ORDER BY created_at",
            owner,
            since,
            *FINAL_STATES,
        )
        return [TaskRow(**dict(row)) for row in rows]

    async def live_tasks(self) -> list[TaskRow]:
        """Tasks the API is still working on (accepted, not final, not a waiting modal)."""
        # `delivered_at IS NULL` adds nothing (only final tasks are delivered) but lets SQLite
        # use the partial index instead of scanning every task ever made, on every tick.
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND task_id IS NOT NULL"
            " AND status NOT IN"
            f" ({', '.join('?' for _ in FINAL_STATES)}, ?) ORDER BY created_at",
            *FINAL_STATES,
            TaskState.MODAL,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def undelivered(self) -> list[TaskRow]:
        """Final tasks whose result never reached the chat and no live instance is on (e.g.
        killed while sending), but not those given up (``RESEND_FOR_S``): their buttons may
        have made new jobs since."""
        now = time.time()
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND status IN"
            f" ({', '.join('?' for _ in FINAL_STATES)})"
            " AND COALESCE(finished_at, created_at) > ? AND COALESCE(" + _ON + ", '') <> ?"
            " AND " + _DEAD.format(who=_ON) + " ORDER BY created_at",
            *FINAL_STATES,
            now - RESEND_FOR_S,
            self.instance.id,
            now,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def unsent(self, idle_s: float, within_s: float = RESEND_FOR_S) -> list[TaskRow]:
        """Final tasks nobody is posting, untouched for ``idle_s`` (a failed post, released),
        that finished less than ``within_s`` ago (a chat that refuses for a day is given up),
        and are this instance's to retry: it owns them (its post failed), or their owner is
        dead. Another live instance retries its own: a retry is built once, not per instance."""
        now = time.time()
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND delivering_at IS NULL"
            f" AND status IN ({', '.join('?' for _ in FINAL_STATES)}) AND updated_at < ?"
            " AND COALESCE(finished_at, created_at) > ?"
            " AND (COALESCE(lease_owner, '') = ? OR " + _DEAD.format(who="lease_owner") + ")"
            " ORDER BY created_at",
            *FINAL_STATES,
            now - idle_s,
            now - within_s,
            self.instance.id,
            now,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def interrupted(self) -> list[TaskRow]:
        """Submits a dead instance started but never saw answered, taken over."""
        return await self._adopt(
            "SELECT key FROM tasks WHERE delivered_at IS NULL AND status = ?",
            TaskState.SUBMITTING,
        )

    async def answers_in_flight(self) -> list[TaskRow]:
        """Answers a dead instance claimed (and charged) but never saw the API answer: the
        question is answered, the task still waits for it (``claim_modal``); taken over."""
        # Oldest answer first: claim_modal set created_at to the answer's time.
        return await self._adopt(
            "SELECT t.key FROM tasks t JOIN modals m ON m.key = t.key"
            " WHERE t.delivered_at IS NULL AND t.status = ? AND m.answered_at IS NOT NULL",
            TaskState.MODAL,
        )

    async def _adopt(self, candidates: str, *args: Any) -> list[TaskRow]:
        """The candidates (a query of keys) whose ``submitted_by`` is dead, made this
        instance's in one transaction: two instances sweeping at once never both get one."""
        now = time.time()
        async with self._transaction() as db:
            async with db.execute(
                f"SELECT key FROM tasks WHERE key IN ({candidates})"
                " AND COALESCE(submitted_by, '') <> ? AND " + _DEAD.format(who="submitted_by"),
                (*args, self.instance.id, now),
            ) as cur:
                keys = [str(r["key"]) for r in await cur.fetchall()]
            if not keys:
                return []
            marks = ", ".join("?" for _ in keys)
            await db.execute(
                f"UPDATE tasks SET submitted_by = ? WHERE key IN ({marks})",
                (self.instance.id, *keys),
            )
            async with db.execute(
                f"SELECT * FROM tasks WHERE key IN ({marks}) ORDER BY created_at", keys
            ) as cur:
                return [TaskRow(**dict(r)) for r in await cur.fetchall()]

    async def stale_progress(self) -> list[TaskRow]:
        """Delivered tasks whose progress message is still there (killed before the cleanup)."""
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NOT NULL AND progress_ref IS NOT NULL"
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def adopt_progress(self, key: str, ref: MessageRef) -> bool:
        """Record a progress message that arrived after its submit went ahead, if the task
        still runs and has none (False: posted, refused or asking; the message is not needed)."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE tasks SET progress_ref = ?, updated_at = ? WHERE key = ?"
                " AND progress_ref IS NULL AND delivered_at IS NULL AND delivering_at IS NULL"
                f" AND status NOT IN ({', '.join('?' for _ in FINAL_STATES)}, ?)",
                (ref.encode(), time.time(), key, *FINAL_STATES, TaskState.MODAL),
            )
            return cur.rowcount == 1

    async def claim_delivery(self, key: str) -> bool:
        """True exactly once per task at a time: whoever gets True posts the result.

        A claim of an instance whose heartbeat lapsed belongs to one that died while
        posting; it is taken over (the result is posted again rather than lost). This
        instance's own claim is never taken over by itself. The claimer becomes the task's
        owner: if its post fails (released), the retry is its own (``unsent``), not an
        orphan's to be taken over again and again (``undelivered``).
        """
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE tasks SET delivering_at = ?, delivering_by = ?, lease_owner = ?"
                " WHERE key = ? AND delivered_at IS NULL AND (delivering_at IS NULL"
                " OR (COALESCE(delivering_by, '') <> ? AND "
                + _DEAD.format(who="delivering_by")
                + "))",
                (now, self.instance.id, self.instance.id, key, self.instance.id, now),
            )
            return cur.rowcount == 1

    async def delivered(self, key: str, result_ref: MessageRef | None) -> None:
        """The result reached the chat: the claim becomes final."""
        await self.update(
            key, delivered_at=time.time(), result_ref=result_ref.encode() if result_ref else None
        )

    async def release_delivery(self, key: str) -> None:
        """Give a claim back after a failure to send, so the next round retries it."""
        async with self._transaction() as db:
            await _set(
                db, key, {"delivering_at": None, "delivering_by": None, "updated_at": time.time()}
            )

    async def first_time(self, event: str) -> bool:
        """True the first time an event (an update id) is seen: redeliveries do nothing."""
        if not event:
            return True
        async with self._transaction() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO seen (event, seen_at) VALUES (?, ?)", (event, time.time())
            )
            return cur.rowcount == 1

    async def claim_request(self, event: str) -> bool:
        """New, or left undone by a dead instance (``Store.claim_request``)."""
        if not event:
            return True
        me, now = self.instance.id, time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO seen (event, seen_at, owner, done) VALUES (?, ?, ?, 0)",
                (event, now, me),
            )
            if cur.rowcount == 1:
                return True
            cur = await db.execute(_TAKE_REQUEST, (me, event, me, now, me))
            return cur.rowcount == 1

    async def request_done(self, event: str) -> None:
        if not event:
            return
        async with self._transaction() as db:
            await db.execute(
                "UPDATE seen SET done = 1 WHERE event = ? AND owner = ?",
                (event, self.instance.id),
            )

    async def recent_tasks(self, platform: str, user_id: str, limit: int = 10) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE platform = ? AND user_id = ?"
            " ORDER BY created_at DESC LIMIT ?",
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
        """Insert the task a button press creates and pay for it, unless the button's earlier
        task keeps the slot: while it runs (or its result is still being posted), and for
        good once it succeeded when ``again`` is False (a U: its result is shown again).

        One transaction: ten simultaneous presses produce exactly one child, one charge and
        one submit; a refused charge inserts nothing, so the button can be pressed later.
        """
        now = time.time()
        row.created_at = row.updated_at = now
        async with self._transaction() as db:
            async with db.execute(
                "SELECT t.* FROM presses p JOIN tasks t ON t.key = p.child_key"
                " WHERE p.parent_key = ? AND p.button = ?",
                (parent_key, button),
            ) as cur:
                found = await cur.fetchone()
            earlier = TaskRow(**dict(found)) if found else None
            if earlier is not None and holds(earlier, again, now):
                return Slot(held_by=earlier)
            await _confirm(db, request, self.instance.id)
            if pay is not None:
                row.charge_id = await pay(_Ledger(db))
            row.submitted_by = self.instance.id
            await _insert(db, row)
            await db.execute(
                "INSERT OR REPLACE INTO presses (parent_key, button, child_key, created_at)"
                " VALUES (?, ?, ?, ?)",
                (parent_key, button, row.key, now),
            )
            return Slot(again=earlier is not None)

    # --- modals ------------------------------------------------------------------------------

    async def add_modal(self, key: str, kind: str, prefill: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO modals (key, kind, prefill, created_at)"
                " VALUES (?, ?, ?, ?)",
                (key, kind, prefill, time.time()),
            )

    async def set_modal_ask(self, key: str, ref: MessageRef) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE modals SET ask_chat = ?, ask_message = ? WHERE key = ?",
                (f"{ref.platform}:{ref.chat_id}", ref.message_id, key),
            )

    async def modal(self, key: str) -> ModalRow | None:
        row = await self._one("SELECT * FROM modals WHERE key = ?", key)
        return ModalRow(**dict(row)) if row else None

    async def modal_for_reply(
        self, platform: str, chat_id: str, message_id: str
    ) -> ModalRow | None:
        row = await self._one(
            "SELECT * FROM modals WHERE ask_chat = ? AND ask_message = ?",
            f"{platform}:{chat_id}",
            message_id,
        )
        return ModalRow(**dict(row)) if row else None

    async def unrecorded_modal(self, platform: str, chat_id: str, user_id: str) -> ModalRow | None:
        """A question whose message id was never recorded (answered in the instant between
        sending it and storing its id, or the process died in that instant)."""
        row = await self._one(
            "SELECT m.* FROM modals m JOIN tasks t ON t.key = m.key WHERE t.platform = ?"
            " AND t.chat_id = ? AND t.user_id = ? AND m.answered_at IS NULL"
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
        """True exactly once per modal: the answer that wins is the one submitted. The winner
        pays and its ``values`` are written to the task in the same transaction; losers pay
        nothing. A refused payment leaves the question open.

        The task's ``created_at`` becomes the answer's time: the job starts now, and its time
        limit (the tracker), its age and its elapsed time count from here, not from the press
        that asked (an answer given an hour later was timed out at once)."""
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE modals SET answered_at = ? WHERE key = ? AND answered_at IS NULL",
                (now, key),
            )
            if cur.rowcount != 1:
                return False
            await _confirm(db, request, self.instance.id)
            if pay is not None:
                values["charge_id"] = await pay(_Ledger(db))
            mine = {"submitted_by": self.instance.id}  # the answer's submit is this instance's
            await _set(db, key, {**values, **mine, "created_at": now, "updated_at": now})
            return True

    async def reopen_modal(self, key: str, prefill: str) -> bool:
        """Open an answered question again (its answer never reached the API): the next
        answer claims it as the first did. ``prefill`` is the answer that was lost."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE modals SET answered_at = NULL, prefill = ?, ask_chat = NULL,"
                " ask_message = NULL WHERE key = ? AND answered_at IS NOT NULL",
                (prefill, key),
            )
            if cur.rowcount != 1:
                return False
            await db.execute(
                "UPDATE tasks SET charge_id = NULL, updated_at = ? WHERE key = ?",
                (time.time(), key),
            )
            return True

    # --- asks (waiting for an upload) --------------------------------------------------------

    async def add_ask(
        self, ref: MessageRef, user_id: str, command: str, args: str, lang: str
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO asks (platform, chat_id, message_id, user_id, command,"
                " args, lang, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ref.platform,
                    ref.chat_id,
                    ref.message_id,
                    user_id,
                    command,
                    args,
                    lang,
                    time.time(),
                ),
            )

    async def ask(self, platform: str, chat_id: str, message_id: str) -> AskRow | None:
        row = await self._one(
            "SELECT * FROM asks WHERE platform = ? AND chat_id = ? AND message_id = ?",
            platform,
            chat_id,
            message_id,
        )
        return AskRow(**dict(row)) if row else None

    async def record_ask(self, platform: str, chat_id: str, pending: str, message_id: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE asks SET message_id = ? WHERE platform = ? AND chat_id = ?"
                " AND message_id = ?",
                (message_id, platform, chat_id, pending),
            )

    async def unrecorded_ask(
        self, platform: str, chat_id: str, user_id: str, since: float
    ) -> AskRow | None:
        row = await self._one(
            "SELECT * FROM asks WHERE platform = ? AND chat_id = ? AND user_id = ?"
            " AND message_id LIKE ? AND answered_at IS NULL AND created_at >= ?"
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
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE asks SET answered_at = ?, answered_by = ? WHERE platform = ?"
                " AND chat_id = ? AND message_id IN (?, ?)"
                " AND (answered_at IS NULL OR answered_by = ?)",
                (
                    time.time(),
                    request or None,
                    platform,
                    chat_id,
                    message_id,
                    alias or message_id,
                    request or None,
                ),
            )
            return cur.rowcount == 1

    async def task_by_message(self, ref: MessageRef) -> TaskRow | None:
        """The task whose result (or progress) message this is: for /seed, /imagine replies."""
        encoded = ref.encode().rsplit("|", 1)[0] + "|%"
        row = await self._one(
            "SELECT * FROM tasks WHERE result_ref LIKE ? OR progress_ref LIKE ?"
            " ORDER BY created_at DESC LIMIT 1",
            encoded,
            encoded,
        )
        return TaskRow(**dict(row)) if row else None

    # --- settings ----------------------------------------------------------------------------
    # One JSON document per scope ("user:<platform>:<id>", "chat:<platform>:<id>",
    # "system:hooks"); names this version does not know are kept as they are.

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
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "SELECT taken FROM album_parts WHERE album = ? AND part = ?", (album, part)
            )
            found = await cur.fetchone()
            if found is not None and found[0]:
                return 0  # taken with its album: a redelivery
            if found is None:
                await db.execute(
                    "INSERT INTO album_parts (album, part, body, added_at) VALUES (?, ?, ?, ?)",
                    (album, part, body, now),
                )
            cur = await db.execute(
                "INSERT INTO albums (album, arrivals, started_at) VALUES (?, 1, ?)"
                " ON CONFLICT (album) DO UPDATE SET arrivals = arrivals + 1 RETURNING arrivals",
                (album, now),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

    async def take_album(self, album: str, arrivals: int, by: str) -> list[str] | None:
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "DELETE FROM albums WHERE album = ? AND arrivals = ?", (album, arrivals)
            )
            if cur.rowcount != 1:
                return None
            cur = await db.execute(
                "SELECT body FROM album_parts WHERE album = ? AND taken = 0"
                " ORDER BY added_at, rowid",
                (album,),
            )
            bodies = [str(r[0]) for r in await cur.fetchall()]
            await db.execute(
                "UPDATE album_parts SET taken = 1, taken_by = ? WHERE album = ? AND taken = 0",
                (by, album),
            )
            # Forgotten a day on: parts (a redelivery that late is not one) and windows
            # whose instance died waiting.
            await db.execute("DELETE FROM album_parts WHERE added_at < ?", (now - ALBUM_KEPT_S,))
            await db.execute("DELETE FROM albums WHERE started_at < ?", (now - ALBUM_KEPT_S,))
            return bodies

    async def retake_album(self, album: str, by: str) -> list[str] | None:
        found = await self._all(
            "SELECT body FROM album_parts WHERE album = ? AND taken_by = ?"
            " ORDER BY added_at, rowid",
            album,
            by,
        )
        return [str(r[0]) for r in found] or None

    async def claim_copy(self, slot: str, *, fresh_for: float | None = None) -> CopyClaim:
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "INSERT INTO copies (slot, claimed_at) VALUES (?, ?)"
                " ON CONFLICT (slot) DO UPDATE SET ref = NULL, claimed_at = excluded.claimed_at,"
                " posted_at = NULL"
                " WHERE (ref IS NULL AND claimed_at < ?) OR (ref IS NOT NULL AND ? IS NOT NULL"
                " AND posted_at < ?)",
                (slot, now, now - COPY_POSTING_S, fresh_for, now - (fresh_for or 0.0)),
            )
            if cur.rowcount == 1:
                return CopyClaim(mine=True)
            cur = await db.execute("SELECT ref FROM copies WHERE slot = ?", (slot,))
            row = await cur.fetchone()
            return CopyClaim(mine=False, ref=MessageRef.decode(row[0] if row else None))

    async def copy_posted(self, slot: str, ref: MessageRef) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE copies SET ref = ?, posted_at = ? WHERE slot = ?",
                (ref.encode(), time.time(), slot),
            )

    async def drop_copy(self, slot: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM copies WHERE slot = ?", (slot,))

    async def keep_photo(self, key: str, data: bytes, keep_for_s: float) -> None:
        if len(data) > KEPT_MAX_BYTES:
            raise ValueError(f"a kept photo is at most {KEPT_MAX_BYTES} bytes, not {len(data)}")
        now = time.time()
        async with self._transaction() as db:
            await db.execute("DELETE FROM kept WHERE expires_at <= ?", (now,))
            await db.execute(
                "INSERT OR REPLACE INTO kept (key, data, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (key, bytes(data), now, now + keep_for_s),
            )

    async def kept_photo(self, key: str, *, renew_for_s: float | None = None) -> bytes | None:
        now = time.time()
        if renew_for_s is not None:
            async with self._transaction() as db:
                await db.execute(
                    "UPDATE kept SET expires_at = MAX(expires_at, ?)"
                    " WHERE key = ? AND expires_at > ?",
                    (now + renew_for_s, key, now),
                )
        row = await self._one("SELECT data FROM kept WHERE key = ? AND expires_at > ?", key, now)
        return bytes(row[0]) if row else None

    async def prune(self) -> int:
        now = time.time()
        async with self._transaction() as db:
            kept = await db.execute("DELETE FROM kept WHERE expires_at <= ?", (now,))
            copies = await db.execute(
                "DELETE FROM copies WHERE (ref IS NULL AND claimed_at < ?)"
                " OR (ref IS NOT NULL AND posted_at < ?)",
                (now - COPY_POSTING_S, now - COPY_KEPT_S),
            )
            return kept.rowcount + copies.rowcount

    async def _settings(self, scope: str) -> dict[str, Any]:
        row = await self._one("SELECT data FROM settings WHERE scope = ?", scope)
        return _settings_data(row)

    # --- the ledger --------------------------------------------------------------------------

    async def charge(self, pay: Pay) -> str | None:
        async with self._transaction() as db:
            return await pay(_Ledger(db))

    async def settle_charge(self, charge_id: str, outcome: Outcome) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE ledger SET outcome = ?, settled_at = ? WHERE id = ?"
                " AND outcome = 'pending'",
                (outcome, time.time(), charge_id),
            )

    async def durations(self, kind: str, mode: str, since: float, limit: int = 200) -> list[float]:
        rows = await self._all(
            "SELECT finished_at - created_at AS s FROM tasks WHERE kind = ? AND mode = ?"
            " AND status = ? AND finished_at >= ? ORDER BY finished_at DESC LIMIT ?",
            kind,
            mode,
            TaskState.SUCCESS.value,
            since,
            limit,
        )
        return [float(r["s"]) for r in rows]

    async def refunded_units(self, charge_id: str) -> int:
        row = await self._one(
            "SELECT units FROM ledger WHERE id = ? AND outcome IN ('pending', 'refunded')",
            charge_id,
        )
        return int(row["units"]) if row else 0

    async def usage(self, platform: str, user_id: str, day: str, month: str) -> Usage:
        row = await self._one(
            "SELECT"
            f" COALESCE(SUM(CASE WHEN day = ? AND {_SPENT} THEN units END), 0) AS today,"
            f" COALESCE(SUM(CASE WHEN month = ? AND {_SPENT} THEN units END), 0) AS month,"
            " COUNT(CASE WHEN outcome = 'pending' THEN 1 END) AS running,"
            f" COUNT(CASE WHEN {_SPENT} THEN 1 END) AS jobs,"
            " COUNT(CASE WHEN outcome = 'refunded' THEN 1 END) AS refunded"
            " FROM ledger WHERE platform = ? AND user_id = ?",
            day,
            month,
            platform,
            user_id,
        )
        assert row is not None  # an aggregate always has a row
        return Usage(**dict(row))

    async def stats(self, day: str, week_from: str) -> Stats:
        totals = await self._one(
            "SELECT"
            f" COALESCE(SUM(CASE WHEN day = ? AND {_SPENT} THEN units END), 0) AS today,"
            " COUNT(CASE WHEN day = ? AND outcome != 'void' THEN 1 END) AS jobs_today,"
            f" COALESCE(SUM(CASE WHEN day >= ? AND {_SPENT} THEN units END), 0) AS week,"
            " COUNT(CASE WHEN day >= ? AND outcome != 'void' THEN 1 END) AS jobs_week,"
            " COUNT(CASE WHEN day >= ? AND outcome = 'refunded' THEN 1 END) AS failures_week"
            " FROM ledger",
            day,
            day,
            week_from,
            week_from,
            week_from,
        )
        assert totals is not None  # an aggregate always has a row
        top = await self._all(
            "SELECT l.platform, l.user_id, COALESCE(p.handle, '') AS handle,"
            " SUM(l.units) AS units FROM ledger l LEFT JOIN people p"
            " ON p.platform = l.platform AND p.user_id = l.user_id"
            f" WHERE l.day >= ? AND l.{_SPENT}"
            " GROUP BY l.platform, l.user_id ORDER BY units DESC LIMIT 5",
            week_from,
        )
        return Stats(**dict(totals), top=[Spender(**dict(r)) for r in top])

    # --- access and people -------------------------------------------------------------------

    async def access_rule(
        self, platform: str, subject: AccessSubject, ident: str
    ) -> AccessRule | None:
        row = await self._one(
            "SELECT rule FROM access WHERE platform = ? AND subject = ? AND id = ?",
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
        async with self._transaction() as db:
            if rule is None:
                await db.execute(
                    "DELETE FROM access WHERE platform = ? AND subject = ? AND id = ?",
                    (platform, subject, ident),
                )
            else:
                await db.execute(
                    "INSERT OR REPLACE INTO access (platform, subject, id, rule, by_user, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (platform, subject, ident, rule, by_user, time.time()),
                )

    async def remember_person(self, platform: str, user_id: str, handle: str, name: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO people (platform, user_id, handle, name, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (platform, user_id, handle, name, time.time()),
            )

    async def person_by_handle(self, platform: str, handle: str) -> str | None:
        row = await self._one(
            "SELECT user_id FROM people WHERE platform = ? AND handle = ?", platform, handle
        )
        return str(row["user_id"]) if row else None

    # --- reports -----------------------------------------------------------------------------

    async def unfinished_tasks(self, limit: int) -> list[TaskRow]:
        rows = await self._all(
            "SELECT * FROM tasks WHERE status NOT IN"
            f" ({', '.join('?' for _ in FINAL_STATES)}) ORDER BY created_at DESC LIMIT ?",
            *FINAL_STATES,
            limit,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def latest_tasks(self, limit: int) -> list[TaskRow]:
        rows = await self._all("SELECT * FROM tasks ORDER BY created_at DESC LIMIT ?", limit)
        return [TaskRow(**dict(r)) for r in rows]

    async def tasks_per_user(self, since: float) -> list[UserTasks]:
        rows = await self._all(
            "SELECT platform, user_id, COUNT(*) AS tasks,"
            " COALESCE(SUM(status = ?), 0) AS succeeded,"
            " COALESCE(SUM(status IN (?, ?, ?, ?)), 0) AS failed"
            " FROM tasks WHERE created_at >= ? GROUP BY platform, user_id ORDER BY tasks DESC",
            TaskState.SUCCESS,
            TaskState.FAILURE,
            TaskState.REJECTED,
            TaskState.TIMEOUT,
            TaskState.CANCEL,
            since,
        )
        return [UserTasks(**dict(r)) for r in rows]

    async def tasks_per_interval(self, since: float, interval_s: int) -> list[TaskCount]:
        rows = await self._all(
            "SELECT CAST(created_at / ? AS INTEGER) * ? AS start,"
            " COUNT(*) AS tasks, COALESCE(SUM(status = ?), 0) AS succeeded"
            " FROM tasks WHERE created_at >= ? GROUP BY start ORDER BY start",
            interval_s,
            interval_s,
            TaskState.SUCCESS,
            since,
        )
        return [TaskCount(**dict(r)) for r in rows]

    # --- instances and leases ----------------------------------------------------------------

    async def heartbeat(self, instance: InstanceRow, ttl_s: float) -> None:
        now = time.time()
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO instances (id, host, pid, started_at, heartbeat_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at",
                (instance.id, instance.host, instance.pid, instance.started_at, now, now + ttl_s),
            )
            await db.execute(
                "UPDATE tasks SET lease_until = ? WHERE delivered_at IS NULL AND lease_owner = ?",
                (now + ttl_s, instance.id),
            )
        await self._pruning.maybe(self.prune)

    async def instances(self) -> list[InstanceRow]:
        rows = await self._all("SELECT * FROM instances ORDER BY heartbeat_at DESC")
        return [InstanceRow(**dict(r)) for r in rows]

    async def lease_tasks(self, owner: str, ttl_s: float, limit: int) -> list[TaskRow]:
        """Those it holds, and the oldest free or lapsed ones (one writer at a time: no two
        instances can take the same task)."""
        now = time.time()
        live = (
            "delivered_at IS NULL AND task_id IS NOT NULL"
            f" AND status NOT IN ({', '.join('?' for _ in FINAL_STATES)}, ?)"
        )
        states = (*FINAL_STATES, TaskState.MODAL)
        async with self._transaction() as db:
            async with db.execute(
                f"SELECT key FROM tasks WHERE {live}"
                " AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < ?)"
                " ORDER BY created_at LIMIT ?",
                (*states, now, limit),
            ) as cur:
                keys = [str(r["key"]) for r in await cur.fetchall()]
            if keys:
                marks = ", ".join("?" for _ in keys)
                await db.execute(
                    f"UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE key IN ({marks})",
                    (owner, now + ttl_s, *keys),
                )
            async with db.execute(
                f"SELECT * FROM tasks WHERE {live} AND lease_owner = ? ORDER BY created_at",
                (*states, owner),
            ) as cur:
                return [TaskRow(**dict(r)) for r in await cur.fetchall()]

    async def release_tasks(self, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL"
                " WHERE delivered_at IS NULL AND lease_owner = ?",
                (owner,),
            )
            await db.execute(
                "UPDATE instances SET expires_at = ? WHERE id = ?", (time.time(), owner)
            )

    # --- shared limits and singletons ----------------------------------------------------------

    async def take_slot(self, rules: list[SendRule]) -> float:
        return await self._slot(rules, math.inf)

    async def try_slot(self, rules: list[SendRule]) -> float:
        return await self._slot(rules, 0.0)

    async def _slot(self, rules: list[SendRule], within_s: float) -> float:
        """The slot if it is at most ``within_s`` away (then the wait), else nothing taken and
        the wait it would have been."""
        now = time.time()
        scopes = [r.scope for r in rules]
        async with self._transaction() as db:
            marks = ", ".join("?" for _ in scopes)
            async with db.execute(
                f"SELECT scope, tat, last FROM send_slots WHERE scope IN ({marks})", scopes
            ) as cur:
                states = {str(r[0]): (float(r[1]), float(r[2])) for r in await cur.fetchall()}
            at, after = next_slot(now, rules, states)
            if at - now > within_s:
                return at - now
            await db.executemany(
                "INSERT INTO send_slots (scope, tat, last) VALUES (?, ?, ?) ON CONFLICT (scope)"
                " DO UPDATE SET tat = excluded.tat, last = excluded.last",
                [(scope, tat, last) for scope, (tat, last) in after.items()],
            )
        return max(0.0, at - now)

    async def forget_slots(self, idle_s: float) -> int:
        before = time.time() - idle_s
        async with self._transaction() as db:
            cur = await db.execute(
                "DELETE FROM send_slots WHERE tat < ? AND last < ?", (before, before)
            )
            return cur.rowcount

    async def hold_singleton(self, name: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        async with self._transaction() as db:
            async with db.execute(
                "INSERT INTO singletons (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at"
                " WHERE singletons.owner = excluded.owner OR singletons.expires_at < ?"
                " RETURNING owner",
                (name, owner, now + ttl_s, now),
            ) as cur:
                return await cur.fetchone() is not None

    async def release_singleton(self, name: str, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM singletons WHERE name = ? AND owner = ?", (name, owner))

    async def singleton(self, name: str) -> Holder | None:
        now = time.time()
        row = await self._one(
            "SELECT owner, expires_at FROM singletons WHERE name = ? AND expires_at >= ?",
            name,
            now,
        )
        return Holder(name, str(row[0]), float(row[1]) - now) if row is not None else None

    # --- the inbox -----------------------------------------------------------------------------

    async def accept_update(self, event: str, body: str, owner: str) -> bool:
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                "INSERT INTO inbox (event, body, owner, received_at, taken_at) VALUES"
                " (?, ?, ?, ?, ?) ON CONFLICT (event) DO NOTHING",
                (event, body, owner, now, now),
            )
            return cur.rowcount == 1

    async def keep_updates(self, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE inbox SET taken_at = ? WHERE owner = ?", (time.time(), owner))

    async def take_updates(self, owner: str, idle_s: float, limit: int) -> list[InboxRow]:
        """One writer at a time: the rows selected are this owner's before anyone looks."""
        now = time.time()
        # An update is its owner's while the owner's inbox round says so (keep_updates),
        # whatever its tracker's heartbeat: handling that hangs gives the update away.
        async with self._transaction() as db:
            async with db.execute(
                "SELECT event FROM inbox WHERE taken_at < ? ORDER BY received_at LIMIT ?",
                (now - idle_s, limit),
            ) as cur:
                events = [str(r["event"]) for r in await cur.fetchall()]
            if not events:
                return []
            marks = ", ".join("?" for _ in events)
            await db.execute(
                f"UPDATE inbox SET owner = ?, taken_at = ?, takes = takes + 1"
                f" WHERE event IN ({marks})",
                (owner, now, *events),
            )
            async with db.execute(
                f"SELECT * FROM inbox WHERE event IN ({marks}) ORDER BY received_at", events
            ) as cur:
                return [InboxRow(**dict(r)) for r in await cur.fetchall()]

    async def update_handled(self, event: str, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM inbox WHERE event = ? AND owner = ?", (event, owner))


class _Ledger:
    """``bot.store.Ledger`` inside one of the store's transactions."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def running(self, platform: str, user_id: str) -> int:
        return await self._count(
            "SELECT COUNT(*) FROM ledger WHERE platform = ? AND user_id = ?"
            " AND outcome = 'pending'",
            platform,
            user_id,
        )

    async def spent(
        self,
        *,
        day: str | None = None,
        month: str | None = None,
        platform: str | None = None,
        user_id: str | None = None,
        chat_id: str | None = None,
    ) -> int:
        given = {
            "platform": platform,
            "user_id": user_id,
            "chat_id": chat_id,
            "day": day,
            "month": month,
        }
        where = [(f"{name} = ?", value) for name, value in given.items() if value is not None]
        return await self._count(
            "SELECT COALESCE(SUM(units), 0) FROM ledger WHERE "
            + " AND ".join([_SPENT, *(clause for clause, _ in where)]),
            *(value for _, value in where),
        )

    async def record(self, charge: Charge) -> None:
        await self._db.execute(
            "INSERT INTO ledger (id, task_key, platform, user_id, chat_id, action, units,"
            " outcome, day, month, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (
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
            ),
        )

    async def _count(self, sql: str, *args: Any) -> int:
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0  # an aggregate always has a row


def _settings_data(row: aiosqlite.Row | None) -> dict[str, Any]:
    return settings_document(row["data"] if row else None)


async def _settings_in(db: aiosqlite.Connection, scope: str) -> dict[str, Any]:
    async with db.execute("SELECT data FROM settings WHERE scope = ?", (scope,)) as cur:
        return _settings_data(await cur.fetchone())


async def _set_settings(
    db: aiosqlite.Connection, scope: str, data: dict[str, Any], values: dict[str, Any]
) -> None:
    """Write ``values`` over ``data`` (None removes a name) as the scope's document."""
    merged = {**data, **values}
    kept = {name: value for name, value in merged.items() if value is not None}
    await db.execute(
        "INSERT OR REPLACE INTO settings (scope, data) VALUES (?, ?)",
        (scope, json.dumps(kept, ensure_ascii=False)),
    )


async def _connect_read_only(path: Path) -> aiosqlite.Connection:
    """A connection that cannot write (``mode=ro``)."""
    db = await aiosqlite.connect(_read_only_uri(path), uri=True)
    db.row_factory = aiosqlite.Row
    await db.execute("PRAGMA busy_timeout=5000")
    return db


def _read_only_uri(path: Path) -> str:
    """``file:`` URI in read-only mode; an absent database is an error, not a new empty one."""
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}")
    return f"{path.resolve().as_uri()}?mode=ro"


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def _set(db: aiosqlite.Connection, key: str, values: dict[str, Any]) -> None:
    """Set columns of one task; refs may be MessageRefs. Names are checked against the table
    (they become SQL): only a column of ``TaskRow`` may be set."""
    unknown = set(values) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"no such task column: {sorted(unknown)}")
    encoded = {k: v.encode() if isinstance(v, MessageRef) else v for k, v in values.items()}
    assignments = ", ".join(f"{k} = ?" for k in encoded)
    await db.execute(f"UPDATE tasks SET {assignments} WHERE key = ?", [*encoded.values(), key])


async def _insert(db: aiosqlite.Connection, row: TaskRow) -> None:
    marks = ", ".join("?" for _ in _COLUMNS)
    await db.execute(
        f"INSERT INTO tasks ({', '.join(_COLUMNS)}) VALUES ({marks})",
        [getattr(row, c) for c in _COLUMNS],
    )


async def _merge_rows(
    db: aiosqlite.Connection, rows: list[TaskRow], updates: dict[str, Task]
) -> list[tuple[TaskRow, Task]]:
    """Move each row forward to its update where that is progress; write and return those."""
    merged = moved_forward(rows, updates, time.time())
    await db.executemany(
        "UPDATE tasks SET snapshot = ?, status = ?, progress = ?, updated_at = ?,"
        " finished_at = ? WHERE key = ?",
        [(r.snapshot, r.status, r.progress, r.updated_at, r.finished_at, r.key) for r, _ in merged],
    )
    return merged


async def _confirm(db: aiosqlite.Connection, request: str, me: str) -> None:
    """Inside a paid write's transaction: the request it fulfils is done, if it is this
    instance's (``Store.claim_request``; done already too: the write comes after its
    handling, e.g. a submit a press spawned); RequestTaken, rolling the write back, when
    another instance took it over, whether that one is done with it or not (this one stalled
    past its claim: the request ran there). One never claimed (no row, or a mark without an
    owner) changes nothing."""
    if not request:
        return
    async with db.execute(
        "UPDATE seen SET done = (done OR owner = ?) WHERE event = ? AND owner IS NOT NULL"
        " RETURNING owner",
        (me, request),
    ) as cur:
        row = await cur.fetchone()
    if row is not None and row[0] != me:
        raise RequestTaken(request)
