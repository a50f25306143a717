"""Which store a test runs on: SQLite (the default) or PostgreSQL, chosen by the ``storage``
fixture (tests/conftest.py). A module runs on both with ``pytestmark = BOTH``, and the
harnesses read the choice here: the in-process World opens its store with
``open_store``, ``mjbot run`` subprocesses get it as their config's ``storage.url``, and
``rows`` reads what either one wrote.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.pgserver import query


@dataclass(frozen=True)
class Storage:
    kind: str = "sqlite"
    url: str = ""  # a PostgreSQL database of its own for this test


SQLITE = Storage()
current = SQLITE  # set by the ``storage`` fixture for the test that runs


async def open_store(sqlite_path: Path) -> Store:
    """The current test's store (SQLite at ``sqlite_path``)."""
    if current.url:
        return await PostgresStore.open(current.url)
    return await SQLiteStore.open(sqlite_path)


def config_section(sqlite_path: Path) -> dict[str, Any]:
    """The ``[storage]`` of a config for ``mjbot run`` on the current store."""
    section: dict[str, Any] = {"path": str(sqlite_path)}
    if current.url:
        section["url"] = current.url
    return section


def rows(location: str | Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Committed rows of a query (SQLite's ``?`` marks) in a store's database: a PostgreSQL
    URL or a SQLite file (opened read-only)."""
    if str(location).startswith("postgresql://"):
        return query(str(location), sql, *args)
    uri = f"{Path(location).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, args)]


# A module runs on both stores with ``pytestmark = BOTH`` (each test gets a fresh database on
# the session's PostgreSQL server; tests/conftest.py's ``storage`` fixture).
BOTH = pytest.mark.parametrize("storage", ["sqlite", "postgresql"], indirect=True)
