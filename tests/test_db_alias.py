"""One process per database, whatever name the second one uses for it: a symlink to the
database file got a lock file of its own (``alias.db.lock``), so a second ``mjbot demo
--config`` ran on the held database (seen: both playgrounds up on one database)."""

from __future__ import annotations

import asyncio
import os
import sys

from bot.store.sqlite import SQLiteStore
from tests.harness import ROOT


async def test_a_symlink_to_a_database_in_use_is_refused(tmp_path):
    db = tmp_path / "data" / "mjbot.db"
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)
    config = tmp_path / "config.toml"
    config.write_text(f"[storage]\npath = '{alias}'\n[tracking]\nlisten = '127.0.0.1:0'\n")
    holder = await SQLiteStore.open(db)  # this test process plays the running bot
    try:
        demo = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot.cli", "demo", "--config", str(config), "--port", "0"),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(demo.communicate(), 15)
        except TimeoutError:
            demo.kill()
            await demo.wait()
            raise AssertionError("a second mjbot ran on the database through a symlink") from None
    finally:
        await holder.close()
    assert demo.returncode == 1
    assert out == b""  # no playground URL: it never started
    (line,) = err.decode().strip().splitlines()
    assert f"is in use by another mjbot (pid {os.getpid()} on " in line
