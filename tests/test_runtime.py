"""The use cases' runtime (bot/usecases/runtime.py): image work runs in its own bounded pool,
background work is waited for on close for a grace period and cut off after it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.egress import Egress
from bot.media import Downloader
from bot.mj.client import MjClient
from bot.usecases.runtime import IMAGE_WORKERS, Runtime


@pytest.fixture
async def runtime():
    client = MjClient("http://127.0.0.1:9", "key")
    downloader = Downloader(Egress())
    parts = Runtime(client, downloader, None)
    yield parts
    await parts.close(0)
    await client.aclose()
    await downloader.aclose()


async def test_image_work_runs_in_the_pool_at_most_two_at_a_time(runtime):
    running, peak, names = 0, 0, set()
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            names.add(threading.current_thread().name)
        time.sleep(0.05)
        with lock:
            running -= 1
        return n * 2

    got = await asyncio.gather(*(runtime.convert(work, n) for n in range(6)))
    assert got == [0, 2, 4, 6, 8, 10]
    assert peak == IMAGE_WORKERS == 2
    assert all(name.startswith("images") for name in names)


async def test_close_waits_for_background_work_then_cuts_off_what_is_late(runtime):
    done: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0.05)
        done.append("quick")

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
            done.append("slow")
        except asyncio.CancelledError:
            done.append("cancelled")
            raise

    runtime.spawn(quick())
    runtime.spawn(slow())
    started = time.monotonic()
    await runtime.close(grace_s=0.3)
    assert time.monotonic() - started < 2
    assert sorted(done) == ["cancelled", "quick"]
    with pytest.raises(RuntimeError):  # the pool is shut: no image work after close
        await runtime.convert(sum, [1, 2])
