"""Copying a deployment from SQLite into PostgreSQL (``mjbot migrate --to``): every table, row
for row, in one PostgreSQL transaction (all of it lands, or none); the target is checked empty
first and counted after.

Both schemas are migrated to their newest version before the copy (each store does that when
it opens). A table or a column the SQLite database has and the PostgreSQL schema lacks stops the
copy before anything is written, instead of being lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.postgres import TABLES, PostgresStore
from bot.store.sqlite import SQLiteStore

_BATCH = 5000  # rows read and written at a time (a big ledger never sits in memory whole)


class TargetNotEmpty(Exception):
    """The target database already has rows (``counts`` says where)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        filled = ", ".join(f"{t} {n}" for t, n in counts.items() if n)
        super().__init__(f"the target already has rows ({filled})")


class SchemaMismatch(Exception):
    """The two schemas differ: a table or column would be lost."""


@dataclass(frozen=True)
class Copied:
    table: str
    source: int  # rows in SQLite
    target: int  # rows in PostgreSQL after the copy


async def copy(source: SQLiteStore, target: PostgresStore, *, replace: bool) -> list[Copied]:
    """Copy every table of ``source`` into ``target``; ``replace`` empties a target that has
    rows (else ``TargetNotEmpty``). The counts of both sides, table by table."""
    have = await source.table_columns()
    want = await target.table_columns()
    lost = [
        f"{table}.{column}" if table in want else table
        for table, columns in have.items()
        for column in (columns if table in want else columns[:1])
        if table not in want or column not in want[table]
    ]
    if lost:
        raise SchemaMismatch(f"PostgreSQL's schema has no place for {', '.join(lost)}")
    before = await target.counts()
    if any(before.values()) and not replace:
        raise TargetNotEmpty(before)
    copied: dict[str, int] = {}
    async with target.loading(replace=replace) as load:
        for table in TABLES:
            columns = have.get(table, [])
            copied[table] = 0
            if not columns:
                continue
            async for rows in source.dump(table, columns, _BATCH):
                await load(table, columns, rows)
                copied[table] += len(rows)
    after = await target.counts()
    return [Copied(t, copied[t], after[t]) for t in TABLES]
