"""Reading a SQLite store's database beside it, for tests that check what was written.

The store has no raw-SQL door (every statement is one of its methods); a test that wants to see
the rows opens the file itself, read-only. Committed rows only, as plain dicts.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from bot.store.sqlite import SQLiteStore


def stored(store: SQLiteStore, sql: str, *args: Any) -> list[dict[str, Any]]:
    uri = f"{Path(store.path).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, args)]
