"""What keeping webhook updates durable costs before Telegram gets its 200 (issue 14): the
inbox INSERT alone (``Store.accept_update``), and a whole webhook POST answered by the
receiver, beside the receiver of another revision (``--baseline-rev``, default the commit
before the inbox) that answered without writing anything. SQLite on a file as the bot opens it
(WAL, synchronous=NORMAL), PostgreSQL with its defaults (fsync and synchronous_commit on; the
tests' server runs with them off). Idle stores, one request at a time: the floor, not load.

    python -m bench.inbox [--n 400] [--baseline-rev 83809f3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from telegram.ext import ApplicationBuilder

from adapters.telegram.webhook import SECRET_HEADER, WebhookIntake
from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.fakes.telegram import FakeTelegram
from tests.pgserver import PgServer, binaries

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Bench_secret"
UPDATE: dict[str, Any] = {
    "update_id": 1,
    "message": {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": 7001, "type": "private", "first_name": "A"},
        "from": {"id": 7001, "is_bot": False, "first_name": "A"},
        "text": "/imagine a quiet harbour at dawn, mist over the water, fishing boats, " * 3,
    },
}


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    n = len(ordered)
    p50, p95, p99 = (ordered[min(n - 1, int(n * q))] * 1000 for q in (0.5, 0.95, 0.99))
    return f"p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms"


async def inserts(store: Store, n: int) -> list[float]:
    times = []
    for i in range(n):
        event, body = f"telegram:{10_000 + i}", json.dumps({**UPDATE, "update_id": 10_000 + i})
        start = time.perf_counter()
        await store.accept_update(event, body, "bench")
        times.append(time.perf_counter() - start)
        await store.update_handled(event, "bench")
    return times[n // 20 :]  # the first ones warm connections and caches


async def posts(receiver_class: Any, store: Store | None, n: int) -> list[float]:
    async with FakeTelegram() as fake:
        app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).updater(None).build()
        await app.initialize()
        receiver = receiver_class(app, "http://127.0.0.1:1/tg/in", SECRET)
        if store is not None:
            receiver.attach(store)
        await receiver.start("127.0.0.1:0")
        url = f"http://127.0.0.1:{receiver.port}/tg/in"
        headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        times = []
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(n):
                    data = json.dumps({**UPDATE, "update_id": 20_000 + i}).encode()
                    start = time.perf_counter()
                    async with http.post(url, data=data, headers=headers) as resp:
                        assert resp.status == 200, resp.status
                    times.append(time.perf_counter() - start)
                    app.update_queue.get_nowait()  # nothing handles them here
                    if store is not None:
                        await store.update_handled(f"telegram:{20_000 + i}", store.instance.id)
        finally:
            await receiver.stop()
            await app.shutdown()
    return times[n // 20 :]


def baseline_receiver(rev: str) -> Any:
    """WebhookIntake as it was at ``rev`` (loaded from git, beside this tree's modules)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:adapters/telegram/webhook.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "webhook_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("adapters.telegram.webhook_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WebhookIntake


async def run(n: int, rev: str) -> None:
    print(f"{n} updates, one at a time (python {sys.version.split()[0]})")
    before = await posts(baseline_receiver(rev), None, n)
    print(f"  receiver at {rev} (no inbox), POST: {percentiles(before)}")
    folder = Path(tempfile.mkdtemp())
    sqlite = await SQLiteStore.open(folder / "bench.db")
    try:
        print(f"  sqlite     accept_update: {percentiles(await inserts(sqlite, n))}")
        print(f"  sqlite     inbox, POST:   {percentiles(await posts(WebhookIntake, sqlite, n))}")
    finally:
        await sqlite.close()
    bindir = binaries()
    if bindir is None:
        print("  postgresql: no binaries found (Debian's postgresql package)")
        return
    server = PgServer(bindir, durable=True)  # PostgreSQL's default durability
    server.start()
    try:
        pg = await PostgresStore.open(server.url())
        try:
            print(f"  postgresql accept_update: {percentiles(await inserts(pg, n))}")
            print(f"  postgresql inbox, POST:   {percentiles(await posts(WebhookIntake, pg, n))}")
        finally:
            await pg.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--baseline-rev", default="83809f3")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.baseline_rev))


if __name__ == "__main__":
    main()
