"""Reading a store's database beside it, for tests that check what was written.

The store has no raw-SQL door (every statement is one of its methods); a test that wants to see
the rows opens the database itself (a SQLite file read-only, or the PostgreSQL database by its
URL). Committed rows only, as plain dicts; queries use SQLite's ``?`` marks on both.
"""

from __future__ import annotations

from typing import Any

from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.storage import rows


def stored(store: Store, sql: str, *args: Any) -> list[dict[str, Any]]:
    if isinstance(store, PostgresStore):
        return rows(store.url, sql, *args)
    assert isinstance(store, SQLiteStore)
    return rows(store.path, sql, *args)
