"""A real PostgreSQL server for the tests: Debian's binaries, started in a temporary directory on
a free port (its unix socket in the same directory), one per test session, a fresh database per
test copied from a migrated template.

initdb and postgres refuse to run as root, and CI runs as root: then they run as the
``postgres`` system user (Debian's package creates it) through ``runuser``, in a directory
chowned to it. The superuser has a password, so the URLs the bot gets carry a secret the tests
can look for in logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

PASSWORD = "pg-e2e-secret-5678"
TEMPLATE = "mjbot_template"
running: PgServer | None = None  # the session's server, once a test asked for it
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def binaries() -> Path | None:
    """The directory of initdb/pg_ctl/postgres: $PG_BINDIR, else Debian's newest."""
    given = os.environ.get("PG_BINDIR")
    if given:
        return Path(given) if (Path(given) / "initdb").exists() else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PgServer:
    """One postgres process; ``database()`` makes a fresh migrated database and its URL."""

    def __init__(self, bindir: Path, *, durable: bool = False, settings: str = "") -> None:
        self.bindir = bindir
        # Tests run without syncing to disk (fast); a benchmark of what a deployment pays
        # asks for PostgreSQL's default durability.
        self.durable = durable
        self.settings = settings  # more server options ("-c name=value ...")
        self.dir = Path(tempfile.mkdtemp(prefix="mjbot-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        self._names = iter(range(1, 1_000_000))
        self._lock = threading.Lock()
        self._created: list[str] = []

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")  # KeyError: no such user (the package makes one)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD)
        if self._as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
            *([] if self.durable else ["--no-sync"]),
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += (
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_connections=200 -c shared_buffers=32MB"
            )
        if self.settings:
            options += f" {self.settings}"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w",
            "start",
        )  # fmt: skip
        blocking(self._template)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir,
        )

    async def _template(self) -> None:
        """A database migrated once: each test's database is a copy of it (fast)."""
        from bot.store.postgres import PostgresStore

        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await admin.close()
        store = await PostgresStore.open(self.url(TEMPLATE), exclusive=False)
        await store.close()

    def database(self, *, empty: bool = False) -> str:
        """A new database, migrated (a copy of the template) or ``empty`` (what an operator
        creates); its URL."""
        with self._lock:
            name = f"t{next(self._names)}"
        template = "" if empty else f" TEMPLATE {TEMPLATE}"

        async def create() -> None:
            admin = await asyncpg.connect(self.url())
            try:
                await admin.execute(f"CREATE DATABASE {name}{template}")
            finally:
                await admin.close()

        blocking(create)
        self._created.append(name)
        return self.url(name)

    def drop_created(self) -> None:
        """Drop the databases made since the last call (a test's), whoever is still connected:
        a session of a few hundred tests would otherwise leave gigabytes of copies behind."""
        with self._lock:
            names, self._created = self._created, []
        if not names:
            return

        async def drop() -> None:
            admin = await asyncpg.connect(self.url())
            try:
                for name in names:
                    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()

        blocking(drop)


def query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Committed rows of a query written with SQLite's ``?`` marks, read synchronously (tests
    poll rows from plain functions)."""
    text = _numbered(sql)

    async def read() -> list[dict[str, Any]]:
        db = await asyncpg.connect(url)
        try:
            return [dict(r) for r in await db.fetch(text, *args)]
        finally:
            await db.close()

    return blocking(read)


def blocking(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from synchronous code, in a thread with its own event loop
    (the caller may be inside a running loop)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(asyncio.run(work()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def _numbered(sql: str) -> str:
    """``?`` marks outside quotes as PostgreSQL's ``$1``, ``$2``..."""
    quoted = False
    count = 0
    parts = []
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            count += 1
            parts.append(f"${count}")
        else:
            parts.append(char)
    return "".join(parts)
