"""One process per database: a second ``mjbot run`` on the same database is refused with one
line naming the holder; the first keeps working; kill -9 frees the database for the next one."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from bot import dblock
from bot.store.sqlite import SQLiteStore
from tests.conftest import ALICE, GROUP
from tests.harness import ROOT, BotProcess


async def started(bot: BotProcess, tg, calls_before: int) -> None:
    bot.start()
    await tg.wait_for(
        lambda: len(tg.calls_to("deleteWebhook")) > calls_before, timeout=30, message="bot up"
    )


async def exited(bot: BotProcess) -> int:
    assert bot.proc is not None
    return await asyncio.wait_for(asyncio.to_thread(bot.proc.wait), 30)


async def imagine_works(tg, prompt: str) -> None:
    asked = await tg.send_text(GROUP, tg.users[ALICE], f"/imagine {prompt}")
    await tg.wait_for(
        lambda: any(
            m.reply_to_message_id == asked.message_id and m.photo and m.buttons
            for m in tg.bot_messages(GROUP)
        ),
        timeout=30,
        message="result",
    )


def on_db(tmp: Path, name: str, sim, tg, db: Path) -> BotProcess:
    (tmp / name).mkdir()
    # INFO, not the harness's DEBUG (asyncio's "Using selector"): the whole output is asserted.
    return BotProcess(
        tmp / name, sim.base_url, tg.url, storage={"path": str(db)}, logging={"level": "INFO"}
    )


async def test_a_second_process_on_one_database_is_refused(tmp_path, sim, tg):
    db = tmp_path / "data" / "mjbot.db"
    first = on_db(tmp_path, "first", sim, tg, db)
    second = on_db(tmp_path, "second", sim, tg, db)
    third = on_db(tmp_path, "third", sim, tg, db)
    try:
        await started(first, tg, calls_before=0)
        assert first.proc is not None

        second.start()
        assert await exited(second) == 1
        lines = second.log().strip().splitlines()
        assert len(lines) == 1, lines
        (line,) = lines
        assert line.startswith(f"mjbot: {db} is in use by another mjbot")
        assert f"pid {first.proc.pid} on {socket.gethostname()}, since " in line
        assert len(tg.calls_to("deleteWebhook")) == 1  # it never reached Telegram

        # `mjbot status` reads the database beside the running bot (its status page is not
        # reachable through this config) and changes nothing.
        status = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot.cli", "status", "--config", str(second.config)),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(status.communicate(), 60)
        assert status.returncode == 0, err
        assert "mjbot status (database)" in out.decode()

        await imagine_works(tg, "a lighthouse in a storm")  # the first one is unharmed
        assert first.alive

        await first.stop(kill=True)
        await started(third, tg, calls_before=1)  # the kernel dropped the dead one's lock
        await imagine_works(tg, "a paper boat")
        assert "Traceback" not in first.log() + second.log() + third.log()
    finally:
        for bot in (first, second, third):
            if bot.proc is not None:
                await bot.stop()


async def test_the_store_is_exclusive_until_closed(tmp_path):
    path = tmp_path / "s.db"
    store = await SQLiteStore.open(path)
    with pytest.raises(dblock.DatabaseInUse, match=r"s\.db is in use by another mjbot \(pid"):
        await SQLiteStore.open(path)
    reader = await SQLiteStore.open(path, read_only=True)  # a reader shares, and cannot write
    assert await reader.live_tasks() == []
    with pytest.raises(Exception, match="readonly"):
        await reader.first_time("x")
    await reader.close()
    await store.close()
    again = await SQLiteStore.open(path)  # closing gave it back
    await again.close()


async def test_the_demo_with_a_config_is_refused_a_database_in_use(tmp_path):
    db = tmp_path / "data" / "mjbot.db"
    config = tmp_path / "config.toml"
    config.write_text(f"[storage]\npath = '{db}'\n")
    holder = await SQLiteStore.open(db)  # this test process plays the running bot
    try:
        demo = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot.cli", "demo", "--config", str(config), "--port", "0"),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(demo.communicate(), 60)
    finally:
        await holder.close()
    assert demo.returncode == 1
    assert out == b""  # no playground URL: it never started
    (line,) = err.decode().strip().splitlines()  # and nothing else started either
    assert line.startswith(f"mjbot: {db} is in use by another mjbot (pid {os.getpid()} on ")
