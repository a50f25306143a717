"""Persistence: one aiosqlite connection, WAL, numbered migrations by ``user_version``.

Everything a restart must not lose lives here: tasks and their message refs, button snapshots
(through the task JSON), pending modals, presses and settings. Writes that decide something
(claim a delivery, claim a press, answer a modal) are single transactions, so two concurrent
updates can never both win.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot import dblock
from bot.chat import MessageRef
from bot.mj.models import Task

# Statuses of our own, beside the API's: the submit is in flight / the API refused it.
SUBMITTING = "SUBMITTING"
REJECTED = "REJECTED"
FINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCEL", REJECTED, "TIMEOUT")
# How long a finished result the chat refuses is posted again; then it is given up, and the
# button that made it may be pressed again (``add_child``).
RESEND_FOR_S = 86400.0

# Pays for a claim inside the claim's own transaction: the charge's id (None when nothing is
# charged); raising rolls the claim back with the charge (``bot.policy.Policy.charge_in``).
Pay = Callable[[aiosqlite.Connection], Awaitable[str | None]]

_KEY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_IDS_PER_QUERY = 500  # SQLite allows 999 parameters in older builds


def new_key() -> str:
    """A short random task key: 10 chars of a 32-letter alphabet (50 bits)."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(10))


@dataclass
class TaskRow:
    key: str
    platform: str
    chat_id: str
    user_id: str
    kind: str
    status: str = SUBMITTING
    lang: str = "en"
    label: str = ""
    prompt: str = ""
    mode: str = ""
    task_id: str | None = None
    parent_key: str | None = None
    progress: int = 0
    snapshot: str | None = None
    error: str | None = None
    request_ref: str | None = None
    progress_ref: str | None = None
    result_ref: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    delivered_at: float | None = None
    delivering_at: float | None = None
    charge_id: str | None = None  # the ledger row the current run is paid by

    @property
    def task(self) -> Task | None:
        return Task.from_json(json.loads(self.snapshot)) if self.snapshot else None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def ref(self, name: str) -> MessageRef | None:
        return MessageRef.decode(getattr(self, f"{name}_ref"))


_COLUMNS = [f.name for f in fields(TaskRow)]


@dataclass(frozen=True)
class Slot:
    """What claiming a button found: the earlier task that keeps it (then nothing was
    inserted or paid), or, when the press won, whether it follows an earlier task."""

    held_by: TaskRow | None = None
    again: bool = False


@dataclass
class ModalRow:
    key: str
    kind: str
    prefill: str
    ask_chat: str | None
    ask_message: str | None
    created_at: float
    answered_at: float | None


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._db_lock: dblock.DatabaseLock | None = None  # set by open() for a writer
        self._lock = asyncio.Lock()
        self.started_at = time.time()

    @classmethod
    async def open(cls, path: str | Path, *, read_only: bool = False) -> Store:
        """Open (creating and migrating) the database, holding its lock for this process.

        Every writer is exclusive (bot/dblock.py): a second process that writes would take
        over the first one's claims, so it is refused here, whoever opens the store. Only
        ``read_only`` (``mjbot status`` beside a running bot) shares: it takes no lock, never
        migrates and cannot write, so it can take nothing over. ``:memory:`` is private.
        """
        if read_only:
            return cls(await _connect_read_only(Path(path)))
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
        store = cls(db)
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
            for p in resources.files("bot.migrations").iterdir()
            if re.match(r"\d{4}_.*\.sql$", p.name)
        )
        for number, script in scripts:
            if number <= version:
                continue
            # Statements run one by one inside the transaction: executescript() would commit.
            async with self.transaction() as db:
                for statement in _statements(script.read_text("utf-8")):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version={number}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
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

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """A read-only query for reports (admin pages, status): rows as plain dicts."""
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            raise ValueError("query() is for reads")
        return [dict(row) for row in await self._all(sql, *args)]

    # --- tasks -------------------------------------------------------------------------------

    async def add_task(self, row: TaskRow, pay: Pay | None = None) -> TaskRow:
        """Insert a task, and pay for it in the same transaction (a refusal inserts nothing)."""
        row.created_at = row.updated_at = time.time()
        async with self.transaction() as db:
            if pay is not None:
                row.charge_id = await pay(db)
            await _insert(db, row)
        return row

    async def task(self, key: str) -> TaskRow | None:
        row = await self._one("SELECT * FROM tasks WHERE key = ?", key)
        return TaskRow(**dict(row)) if row else None

    async def task_by_id(self, task_id: str) -> TaskRow | None:
        row = await self._one("SELECT * FROM tasks WHERE task_id = ?", task_id)
        return TaskRow(**dict(row)) if row else None

    async def update(self, key: str, **values: Any) -> None:
        """Set columns of one task (refs may be given as MessageRef)."""
        values = {k: v.encode() if isinstance(v, MessageRef) else v for k, v in values.items()}
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in values)
        async with self.transaction() as db:
            await db.execute(
                f"UPDATE tasks SET {assignments} WHERE key = ?", [*values.values(), key]
            )

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
        async with self.transaction() as db:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" for _ in chunk)
                sql = f"SELECT * FROM tasks WHERE task_id IN ({marks})"
                async with db.execute(sql, chunk) as cur:
                    found = [TaskRow(**dict(r)) for r in await cur.fetchall()]
                merged += await _merge_rows(db, found, newest)
        merged.sort(key=lambda pair: not pair[1].is_final)
        return merged

    async def live_tasks(self) -> list[TaskRow]:
        """Tasks the API is still working on (accepted, not final, not a waiting modal)."""
        # `delivered_at IS NULL` adds nothing (only final tasks are delivered) but lets SQLite
        # use the partial index instead of scanning every task ever made, on every tick.
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND task_id IS NOT NULL"
            " AND status NOT IN"
            f" ({', '.join('?' for _ in FINAL_STATUSES)}, 'MODAL') ORDER BY created_at",
            *FINAL_STATUSES,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def undelivered(self) -> list[TaskRow]:
        """Final tasks whose result never reached the chat (e.g. killed while sending), but
        not those given up (``RESEND_FOR_S``): their buttons may have made new jobs since."""
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND status IN"
            f" ({', '.join('?' for _ in FINAL_STATUSES)})"
            " AND COALESCE(finished_at, created_at) > ? ORDER BY created_at",
            *FINAL_STATUSES,
            time.time() - RESEND_FOR_S,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def unsent(self, idle_s: float, within_s: float = RESEND_FOR_S) -> list[TaskRow]:
        """Final tasks nobody is posting, untouched for ``idle_s`` (a failed post, released),
        that finished less than ``within_s`` ago (a chat that refuses for a day is given up)."""
        now = time.time()
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NULL AND delivering_at IS NULL"
            f" AND status IN ({', '.join('?' for _ in FINAL_STATUSES)}) AND updated_at < ?"
            " AND COALESCE(finished_at, created_at) > ? ORDER BY created_at",
            *FINAL_STATUSES,
            now - idle_s,
            now - within_s,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def interrupted(self) -> list[TaskRow]:
        """Submits a previous process started but never saw answered."""
        rows = await self._all(
            "SELECT * FROM tasks WHERE status = ? AND created_at < ?", SUBMITTING, self.started_at
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def answers_in_flight(self) -> list[TaskRow]:
        """Answers a previous process claimed (and charged) but never saw the API answer:
        the question is answered, the task still waits for it (``claim_modal``)."""
        rows = await self._all(
            "SELECT t.* FROM tasks t JOIN modals m ON m.key = t.key WHERE t.status = 'MODAL'"
            " AND m.answered_at IS NOT NULL AND m.answered_at < ? ORDER BY m.answered_at",
            self.started_at,
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def stale_progress(self) -> list[TaskRow]:
        """Delivered tasks whose progress message is still there (killed before the cleanup)."""
        rows = await self._all(
            "SELECT * FROM tasks WHERE delivered_at IS NOT NULL AND progress_ref IS NOT NULL"
        )
        return [TaskRow(**dict(r)) for r in rows]

    async def adopt_progress(self, key: str, ref: MessageRef) -> bool:
        """Record a progress message that arrived after its submit went ahead, if the task
        still runs and has none (False: posted, refused or asking; the message is not needed)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE tasks SET progress_ref = ?, updated_at = ? WHERE key = ?"
                " AND progress_ref IS NULL AND delivered_at IS NULL AND delivering_at IS NULL"
                f" AND status NOT IN ({', '.join('?' for _ in FINAL_STATUSES)}, 'MODAL')",
                (ref.encode(), time.time(), key, *FINAL_STATUSES),
            )
            return cur.rowcount == 1

    async def claim_delivery(self, key: str) -> bool:
        """True exactly once per task at a time: whoever gets True posts the result.

        A claim made before this process started belongs to a process that died while
        posting; it is taken over (the result is posted again rather than lost).
        """
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE tasks SET delivering_at = ? WHERE key = ? AND delivered_at IS NULL"
                " AND (delivering_at IS NULL OR delivering_at < ?)",
                (time.time(), key, self.started_at),
            )
            return cur.rowcount == 1

    async def delivered(self, key: str, result_ref: MessageRef | None) -> None:
        """The result reached the chat: the claim becomes final."""
        await self.update(
            key, delivered_at=time.time(), result_ref=result_ref.encode() if result_ref else None
        )

    async def release_delivery(self, key: str) -> None:
        """Give a claim back after a failure to send, so the next round retries it."""
        await self.update(key, delivering_at=None)

    async def first_time(self, event: str) -> bool:
        """True the first time an event (an update id) is seen: redeliveries do nothing."""
        if not event:
            return True
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO seen (event, seen_at) VALUES (?, ?)", (event, time.time())
            )
            return cur.rowcount == 1

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
    ) -> Slot:
        """Insert the task a button press creates and pay for it, unless the button's earlier
        task keeps the slot: while it runs (or its result is still being posted), and for
        good once it succeeded when ``again`` is False (a U: its result is shown again).

        One transaction: ten simultaneous presses produce exactly one child, one charge and
        one submit; a refused charge inserts nothing, so the button can be pressed later.
        """
        now = time.time()
        row.created_at = row.updated_at = now
        async with self.transaction() as db:
            async with db.execute(
                "SELECT t.* FROM presses p JOIN tasks t ON t.key = p.child_key"
                " WHERE p.parent_key = ? AND p.button = ?",
                (parent_key, button),
            ) as cur:
                found = await cur.fetchone()
            earlier = TaskRow(**dict(found)) if found else None
            if earlier is not None and _holds(earlier, again, now):
                return Slot(held_by=earlier)
            if pay is not None:
                row.charge_id = await pay(db)
            await _insert(db, row)
            await db.execute(
                "INSERT OR REPLACE INTO presses (parent_key, button, child_key, created_at)"
                " VALUES (?, ?, ?, ?)",
                (parent_key, button, row.key, now),
            )
            return Slot(again=earlier is not None)

    # --- modals ------------------------------------------------------------------------------

    async def add_modal(self, key: str, kind: str, prefill: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO modals (key, kind, prefill, created_at)"
                " VALUES (?, ?, ?, ?)",
                (key, kind, prefill, time.time()),
            )

    async def set_modal_ask(self, key: str, ref: MessageRef) -> None:
        async with self.transaction() as db:
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

    async def claim_modal(self, key: str, pay: Pay | None = None, **values: Any) -> bool:
        """True exactly once per modal: the answer that wins is the one submitted. The winner
        pays and its ``values`` are written to the task in the same transaction; losers pay
        nothing. A refused payment leaves the question open.

        The task's ``created_at`` becomes the answer's time: the job starts now, and its time
        limit (the tracker), its age and its elapsed time count from here, not from the press
        that asked (an answer given an hour later was timed out at once)."""
        now = time.time()
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE modals SET answered_at = ? WHERE key = ? AND answered_at IS NULL",
                (now, key),
            )
            if cur.rowcount != 1:
                return False
            if pay is not None:
                values["charge_id"] = await pay(db)
            values["created_at"] = values["updated_at"] = now
            assignments = ", ".join(f"{k} = ?" for k in values)
            await db.execute(
                f"UPDATE tasks SET {assignments} WHERE key = ?", [*values.values(), key]
            )
            return True

    async def reopen_modal(self, key: str, prefill: str) -> bool:
        """Open an answered question again (its answer never reached the API): the next
        answer claims it as the first did. ``prefill`` is the answer that was lost."""
        async with self.transaction() as db:
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

    async def pending_modals(self) -> list[ModalRow]:
        rows = await self._all("SELECT * FROM modals WHERE answered_at IS NULL")
        return [ModalRow(**dict(r)) for r in rows]

    # --- asks (waiting for an upload) --------------------------------------------------------

    async def add_ask(
        self, ref: MessageRef, user_id: str, command: str, args: str, lang: str
    ) -> None:
        async with self.transaction() as db:
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

    async def ask(self, platform: str, chat_id: str, message_id: str) -> dict[str, Any] | None:
        row = await self._one(
            "SELECT * FROM asks WHERE platform = ? AND chat_id = ? AND message_id = ?",
            platform,
            chat_id,
            message_id,
        )
        return dict(row) if row else None

    async def claim_ask(self, platform: str, chat_id: str, message_id: str) -> bool:
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE asks SET answered_at = ? WHERE platform = ? AND chat_id = ?"
                " AND message_id = ? AND answered_at IS NULL",
                (time.time(), platform, chat_id, message_id),
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

    async def settings(self, scope: str) -> dict[str, Any]:
        row = await self._one("SELECT data FROM settings WHERE scope = ?", scope)
        return json.loads(row["data"]) if row else {}

    async def set_setting(self, scope: str, name: str, value: Any) -> dict[str, Any]:
        async with self.transaction() as db:
            async with db.execute("SELECT data FROM settings WHERE scope = ?", (scope,)) as cur:
                row = await cur.fetchone()
            data = json.loads(row["data"]) if row else {}
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
            await db.execute(
                "INSERT OR REPLACE INTO settings (scope, data) VALUES (?, ?)",
                (scope, json.dumps(data, ensure_ascii=False)),
            )
            return data


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


def _holds(earlier: TaskRow, again: bool, now: float) -> bool:
    """Whether a button's earlier task keeps it: while it runs; while its result is being
    posted (until posting is given up, RESEND_FOR_S); and for good once its result was
    posted, when the button is done once (``again`` False)."""
    if not earlier.is_final:
        return True
    if earlier.delivered_at is None:
        return (earlier.finished_at or earlier.created_at) > now - RESEND_FOR_S
    return not again and earlier.status == "SUCCESS"


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
    merged = []
    now = time.time()
    for row in rows:
        if row.task_id is None or row.is_final:
            continue
        task = updates[row.task_id]
        current = row.task
        if current is not None and task.rank <= current.rank:
            # Same rank may still bring a new preview image; anything lower is stale.
            if task.rank < current.rank or task.image_url == current.image_url:
                continue
        row.snapshot = json.dumps(task.raw, ensure_ascii=False)
        row.status = task.status.value
        row.progress = task.progress
        row.updated_at = now
        if task.is_final:
            row.finished_at = now
        merged.append((row, task))
    await db.executemany(
        "UPDATE tasks SET snapshot = ?, status = ?, progress = ?, updated_at = ?,"
        " finished_at = ? WHERE key = ?",
        [(r.snapshot, r.status, r.progress, r.updated_at, r.finished_at, r.key) for r, _ in merged],
    )
    return merged
