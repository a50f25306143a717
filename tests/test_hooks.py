"""The notifyHook receiver and the poller against odd input: a task the parser cannot use is
skipped (and logged once) while the rest of the answer counts, bad bodies answer 4xx (never
500), and slow clients are cut off. A real HookServer, the simulator, and a proxy in front of
the simulator that slips odd tasks into its answers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import AccessConfig, QuotaConfig
from bot.egress import Egress
from bot.media import Downloader
from bot.metrics import Metrics
from bot.mj.client import MjClient
from bot.mj.models import TaskState
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import Store, TaskRow
from bot.store.postgres import PostgresStore
from bot.tracking import HOOK_PATH, HookServer, Tracker
from bot.tracking.hooks import BACKSTOP, CONFIRM_WAIT_S
from bot.usecases import Service
from mjsim import SimConfig, Simulator
from tests import storage
from tests.dbrows import stored
from tests.harness import API_KEY, free_port
from tests.inprocess import CHAT, Chat
from tests.storage import BOTH
from tests.test_downloads import serve

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH

DEEP = "[" * 5000 + "]" * 5000  # the standard parser raises RecursionError on this
ODD_TASKS = [
    '{"id": "odd-1", "status": "SUCCESS", "progress": 1e400, "submitTime": 1e400}',
    '{"id": "odd-2", "status": "IN_PROGRESS", "buttons": 5, "properties": 7}',
    '{"id": "odd-3", "status": "SUCCESS", "imageUrl": ' + DEEP + "}",
    '{"id": "odd-4", "status": "SUCCESS", "properties": {"x": ' + DEEP + "}}",
    '{"id": {"not": "an id"}, "status": "SUCCESS"}',
    "NaN",
    "[5, 6]",
]


def odd_api(sim_url: str) -> web.Application:
    """The simulator behind a proxy whose list answers carry odd tasks among the real ones."""
    app = web.Application()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                request.method,
                sim_url + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as answer:
                body = (await answer.read()).decode()
                status, kind = answer.status, answer.content_type
        if request.path.endswith("/list-by-condition") and body.startswith("["):
            real = body[1:-1]
            body = (
                "[" + ", ".join([*ODD_TASKS[:2], real, *ODD_TASKS[2:]] if real else ODD_TASKS) + "]"
            )
        return web.Response(status=status, text=body, content_type=kind)

    app.router.add_route("*", "/{tail:.*}", forward)
    return app


@contextlib.asynccontextmanager
async def core(
    tmp_path, api_url: str, sim_url: str
) -> AsyncIterator[tuple[Service, MjClient, Store, Chat]]:
    store = await storage.open_store(tmp_path / "mjbot.db")
    client = MjClient(api_url, API_KEY)
    downloader = Downloader(Egress([sim_url, api_url]))
    chat = Chat()
    outbox = Outbox({"t": chat}, edit_interval_s=0.05, send_interval_s=0)
    service = Service(store, client, outbox, downloader)
    try:
        yield service, client, store, chat
    finally:
        await service.close()
        await outbox.close()
        await client.aclose()
        await downloader.aclose()
        await store.close()


@pytest.fixture
async def sim():
    simulator = Simulator(SimConfig(api_key=API_KEY, time_scale=0.02))
    await simulator.start()
    yield simulator
    await simulator.stop()


def who():
    from bot.chat import MessageRef, Requester

    return Requester("t", CHAT, "7", message=MessageRef("t", CHAT, "1"), event="update-1")


async def test_one_odd_task_does_not_stall_the_poll_answer(tmp_path, sim, caplog):
    caplog.set_level(logging.WARNING, logger="bot.mj.client")
    async with serve(odd_api(sim.base_url)) as api, core(tmp_path, api, sim.base_url) as parts:
        service, client, store, chat = parts
        tracker = Tracker(store, client, service, poll_interval_s=0.1)
        tracking = asyncio.create_task(tracker.run())
        try:
            await service.imagine(who(), "a lighthouse at dawn")
            deadline = time.monotonic() + 20
            while not any(view.media for _, view in chat.sent):
                assert time.monotonic() < deadline, f"no result posted: {chat.texts()}"
                await asyncio.sleep(0.05)
        finally:
            tracking.cancel()
            await asyncio.gather(tracking, return_exceptions=True)
    assert tracker.counts.poll_errors == 0
    assert tracker.counts.polls >= 3  # the odd tasks came back on every one of them
    skipped = [r.getMessage() for r in caplog.records if "skipping task" in r.getMessage()]
    assert sorted(m.split()[2] for m in skipped) == ["odd-3:", "odd-4:"]  # once each


async def test_the_hook_answers_4xx_to_bad_bodies_and_still_takes_good_ones(tmp_path, sim):
    async with core(tmp_path, sim.base_url, sim.base_url) as (service, client, store, _chat):
        hooks = HookServer(store, client, service, "s3cret", lambda: {})
        port = free_port()
        await hooks.start(f"127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}{HOOK_PATH}s3cret"
        try:
            async with aiohttp.ClientSession() as http:
                for body in [*ODD_TASKS, "not json", "\xff\xfe", DEEP, "{" * 3000]:
                    async with http.post(url, data=body.encode("latin-1")) as answer:
                        assert answer.status in (200, 400), (body[:40], answer.status)
                gzipped = {"Content-Encoding": "gzip"}
                async with http.post(url, data=b"not gzip", headers=gzipped) as answer:
                    assert answer.status == 400
                async with http.post(
                    url, data=gzip.compress(b" " * 2_000_000), headers=gzipped
                ) as answer:
                    assert answer.status == 413
                async with http.post(url, data=b"x" * 300_000) as answer:
                    assert answer.status == 413
                # After all that, a real callback is still taken: progress is shown as it came.
                await service.imagine(who(), "a fox")
                (row,) = await store.live_tasks()
                task = {"id": row.task_id, "status": "IN_PROGRESS", "progress": "10%"}
                async with http.post(url, data=json.dumps(task)) as answer:
                    assert answer.status == 200
            deadline = time.monotonic() + 10
            while (fresh := await store.task(row.key)) is None or fresh.progress < 10:
                assert time.monotonic() < deadline, "the good callback was never shown"
                await asyncio.sleep(0.05)
            assert hooks.counts.shown >= 1
        finally:
            await hooks.stop()
    assert hooks.counts.dropped_invalid >= 6


# --- slow clients -----------------------------------------------------------------------------


async def closed_after(port: int, send: list[bytes], every_s: float, limit_s: float) -> float:
    """Seconds until the server closes a connection that sends ``send`` piece by piece."""
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    started = time.monotonic()
    try:
        pieces = iter(send)
        while time.monotonic() - started < limit_s:
            piece = next(pieces, None)
            if piece is not None:
                try:
                    await loop.sock_sendall(sock, piece)
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), every_s)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return time.monotonic() - started
            if data == b"":
                return time.monotonic() - started
            if data.startswith(b"HTTP/1.1 2"):
                continue  # an answer to a whole request: the connection may stay a while
        return float("inf")
    finally:
        sock.close()


SLOW_HEADERS = [b"POST /mj/hook/s3cret HTTP/1.1\r\n", b"Host: x\r\n"] + [b"X-A: b\r\n"] * 100
SLOW_BODY = [b"POST /mj/hook/s3cret HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"] + [
    b"{"
] * 99


@pytest.mark.parametrize(
    "send", [[], SLOW_HEADERS, SLOW_BODY], ids=["silent", "slow-headers", "slow-body"]
)
async def test_slow_clients_are_cut_off(tmp_path, sim, send):
    async with core(tmp_path, sim.base_url, sim.base_url) as (service, client, store, _chat):
        hooks = HookServer(store, client, service, "s3cret", lambda: {}, read_timeout_s=1.0)
        port = free_port()
        await hooks.start(f"127.0.0.1:{port}")
        try:
            took = await closed_after(port, send, every_s=0.2, limit_s=5.0)
        finally:
            await hooks.stop()
    assert 0.8 < took < 2.0, took


# --- what a callback may do -------------------------------------------------------------------


@dataclasses.dataclass
class Receiver:
    """A HookServer in front of the whole core (with the money), no poller: every API request
    after a submit is one a callback caused."""

    url: str
    hooks: HookServer
    service: Service
    store: Store
    chat: Chat
    metrics: Metrics
    prefetched: list[str]  # image URLs fetched early (a SUCCESS callback named them)
    downloader: Downloader

    async def post(self, body: dict[str, object]) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.post(self.url, data=json.dumps(body)) as answer:
                assert answer.status == 200

    async def submit(self, prompt: str) -> TaskRow:
        await self.service.imagine(dataclasses.replace(who(), event=f"update-{prompt}"), prompt)
        (row,) = [r for r in await self.store.live_tasks() if r.prompt == prompt]
        return row


@contextlib.asynccontextmanager
async def receiver(
    tmp_path,
    sim: Simulator,
    hooked: bool = False,
    confirm_wait_s: float = CONFIRM_WAIT_S,
    *,
    on: str = "",
) -> AsyncIterator[Receiver]:
    """``hooked``: submits hand the API the hook URL (the simulator then calls back). ``on``:
    a PostgreSQL URL this receiver shares with others, as one instance of a fleet."""
    metrics = Metrics()
    port = free_port()
    url = f"http://127.0.0.1:{port}{HOOK_PATH}s3cret"
    if on:
        store: Store = await PostgresStore.open(on, exclusive=False)
    else:
        store = await storage.open_store(tmp_path / "mjbot.db")
    client = MjClient(sim.base_url, API_KEY, metrics=metrics)
    downloader = Downloader(Egress([sim.base_url]))
    chat = Chat()
    outbox = Outbox({"t": chat}, edit_interval_s=0.05, send_interval_s=0, metrics=metrics)
    policy = Policy(store, AccessConfig(), QuotaConfig(concurrency=0), metrics=metrics)
    prefetched: list[str] = []
    hook = url if hooked else ""
    service = Service(store, client, outbox, downloader, policy=policy, notify_hook=hook)
    hooks = HookServer(
        store,
        client,
        service,
        "s3cret",
        lambda: {},  # type: ignore[arg-type,return-value]
        metrics=metrics,
        confirm_wait_s=confirm_wait_s,
        prefetch=lambda url: (prefetched.append(url), downloader.prefetch(url))[-1],
        shared=bool(on),
    )
    await hooks.start(f"127.0.0.1:{port}")
    try:
        yield Receiver(url, hooks, service, store, chat, metrics, prefetched, downloader)
    finally:
        await hooks.stop()
        await service.close()
        await outbox.close()
        await client.aclose()
        await downloader.aclose()
        await store.close()


@pytest.fixture
async def slow_sim():
    """Tasks that stay in progress for the whole test (a grid takes minutes)."""
    simulator = Simulator(SimConfig(api_key=API_KEY, time_scale=10.0))
    await simulator.start()
    yield simulator
    await simulator.stop()


async def until(check, timeout: float = 10.0):  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {check}"
        await asyncio.sleep(0.05)
    return found


async def test_a_progress_callback_is_shown_as_it_came_without_asking_the_api(tmp_path, slow_sim):
    async with receiver(tmp_path, slow_sim) as r:
        row = await r.submit("a fox")
        before = r.metrics.api.requests
        # Claims beyond its progress (buttons, another prompt) are not kept.
        await r.post(
            {
                "id": row.task_id,
                "status": "IN_PROGRESS",
                "progress": "40%",
                "prompt": "EVIL",
                "buttons": [{"customId": "MJ::JOB::upsample::1::evil", "label": "EVIL"}],
            }
        )

        async def shown() -> TaskRow | None:
            fresh = await r.store.task(row.key)
            return fresh if fresh is not None and fresh.progress == 40 else None

        fresh = await until(shown)
        assert fresh.task is not None and fresh.task.buttons == () and fresh.task.prompt == ""
        await until(lambda: _true(any("40%" in v.text for v in r.chat.shown.values())))
        assert r.metrics.api.requests == before  # nothing asked of the API
        assert r.metrics.hooks.shown == 1 and r.metrics.tracking.confirms == 0


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE"])
async def test_a_forged_final_callback_posts_nothing_and_settles_nothing(
    tmp_path, slow_sim, status
):
    """Right secret, wrong content: the API is asked, its answer (still running) is what
    counts. No result, no settlement, no refund."""
    async with receiver(tmp_path, slow_sim) as r:
        row = await r.submit("a slow river")
        sent = len(r.chat.sent)
        await r.post(
            {
                "id": row.task_id,
                "status": status,
                "progress": "100%",
                "imageUrl": f"{slow_sim.base_url}/evil.png",
                "failReason": "forged",
                "buttons": [{"customId": "MJ::JOB::upsample::1::evil", "label": "EVIL"}],
            }
        )
        await until(lambda: _true(r.metrics.hooks.confirmed == 1))
        await asyncio.sleep(0.3)  # room for anything the forgery might have started
        fresh = await r.store.task(row.key)
        assert fresh is not None and not fresh.is_final and fresh.delivered_at is None
        assert len(r.chat.sent) == sent  # no result, no failure notice
        ledger = stored(r.store, "SELECT outcome FROM ledger WHERE task_key = ?", row.key)
        assert [entry["outcome"] for entry in ledger] == ["pending"]
        counts = r.metrics.ledger
        assert (counts.charges, counts.kept, counts.refunds) == (1, 0, 0)
        assert r.metrics.deliveries.results == 0
        assert r.metrics.api.by_route["task/list-by-condition"] == 1
        # Its image may be fetched early (within the egress rules), never shown.
        assert r.prefetched == ([f"{slow_sim.base_url}/evil.png"] if status == "SUCCESS" else [])


async def test_final_callbacks_are_confirmed_together(tmp_path, slow_sim):
    async with receiver(tmp_path, slow_sim) as r:
        rows = [await r.submit(f"a harbour {n}") for n in range(5)]
        await asyncio.gather(*(r.post({"id": row.task_id, "status": "SUCCESS"}) for row in rows))
        await until(lambda: _true(r.metrics.hooks.confirmed == 5))
        await asyncio.sleep(CONFIRM_WAIT_S + 0.1)
        assert r.metrics.tracking.confirms == 1
        assert r.metrics.api.by_route["task/list-by-condition"] == 1
        asked = [q.body["ids"] for q in slow_sim.requests if q.path.endswith("list-by-condition")]
        assert sorted(asked[0]) == sorted(row.task_id for row in rows)


@contextlib.asynccontextmanager
async def two_receivers(
    tmp_path, sim: Simulator, confirm_wait_s: float, url: str
) -> AsyncIterator[tuple[Receiver, Receiver]]:
    """Two instances' receivers on one PostgreSQL database (a fleet of two)."""
    async with (
        receiver(tmp_path / "a", sim, confirm_wait_s=confirm_wait_s, on=url) as a,
        receiver(tmp_path / "b", sim, confirm_wait_s=confirm_wait_s, on=url) as b,
    ):
        yield a, b


async def test_final_callbacks_heard_by_two_instances_are_confirmed_together(
    tmp_path, slow_sim, pg_server
):
    """The balancer splits the callbacks over the fleet; one list request still asks about
    all of them (confirmed by each instance, every instance sent its own)."""
    url = pg_server.database()
    wait_s = 2.0  # room for the six posts on a loaded machine (CI once spread them over 0.3 s)
    async with two_receivers(tmp_path, slow_sim, wait_s, url) as (a, b):
        rows = [await a.submit(f"a harbour {n}") for n in range(6)]
        heard = zip([a, b] * 3, rows, strict=True)
        await asyncio.gather(
            *(r.post({"id": row.task_id, "status": "SUCCESS"}) for r, row in heard)
        )
        await until(lambda: _true(a.metrics.hooks.confirmed + b.metrics.hooks.confirmed == 6))
        await asyncio.sleep(wait_s + 0.2)  # the other instance's wait ends too: nothing left
        asked = [q.body["ids"] for q in slow_sim.requests if q.path.endswith("list-by-condition")]
        assert len(asked) == 1 and sorted(asked[0]) == sorted(row.task_id for row in rows)
        assert a.metrics.tracking.confirms + b.metrics.tracking.confirms == 1
        assert storage.rows(url, "SELECT task_id FROM confirming") == []


async def succeed_at(schedule: Iterable[tuple[float, Any, TaskRow]]) -> float:
    """Post each task's SUCCESS callback to its instance at its time (seconds from now, in
    order); the moment the first was due (monotonic)."""
    started = time.monotonic()
    for at, r, row in schedule:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        await r.post({"id": row.task_id, "status": "SUCCESS"})
    return started


async def test_a_callback_joining_the_fleets_window_waits_for_its_take(
    tmp_path, slow_sim, pg_server
):
    """Windows open in the fleet, not per instance: a final callback heard while another
    instance's window is open is confirmed with that window, not in a window of its own
    (each instance taking the queue when its own wait ended made 2.2x the list requests of
    one instance at 1,000 tasks)."""
    url = pg_server.database()
    wait_s = 2.0
    async with two_receivers(tmp_path, slow_sim, wait_s, url) as (a, b):
        rows = [await a.submit(f"a lighthouse {n}") for n in range(4)]
        await succeed_at(zip([0.0, 1.0, 2.5, 3.5], [a, b, a, b], rows, strict=True))
        await until(lambda: _true(a.metrics.hooks.confirmed + b.metrics.hooks.confirmed == 4))
        await asyncio.sleep(wait_s * BACKSTOP)  # every window and backstop has ended
        asked = [q.body["ids"] for q in slow_sim.requests if q.path.endswith("list-by-condition")]
        ids = [row.task_id for row in rows]
        # a's window (0 s to 2 s) takes b's callback at 1 s; the one a hears at 2.5 s opens
        # the next window, which takes b's at 3.5 s (b's own window would have ended at 5.5;
        # the window b's first opened before, ending at 3 s, took a's second alone)
        assert [sorted(batch) for batch in asked] == [sorted(ids[:2]), sorted(ids[2:])]
        assert (a.metrics.tracking.confirms, b.metrics.tracking.confirms) == (2, 0)
        assert storage.rows(url, "SELECT task_id FROM confirming") == []


async def test_a_window_opened_behind_a_backstop_ends_on_time(tmp_path, slow_sim, pg_server):
    """An instance waiting out a backstop (its callback joined another's window) that then
    hears one opening a window confirms it when that window ends, not at the backstop."""
    url = pg_server.database()
    wait_s = 2.0
    async with two_receivers(tmp_path, slow_sim, wait_s, url) as (a, b):
        rows = [await a.submit(f"a quay {n}") for n in range(3)]
        started = await succeed_at(zip([0.0, 1.0, 3.0], [a, b, b], rows, strict=True))
        await until(lambda: _true(a.metrics.hooks.confirmed + b.metrics.hooks.confirmed == 3))
        # b's backstop for the second ends at 7 s; the window the third opens, at 5 s
        assert time.monotonic() - started < 6.5
        assert (a.metrics.tracking.confirms, b.metrics.tracking.confirms) == (1, 1)


async def test_a_callback_left_in_the_queue_holds_no_window_up(tmp_path, slow_sim, pg_server):
    """A take can miss a callback queued while it ran (or its instance dies): that one is
    left over. Before, every callback after it joined a window nobody would take and waited
    out its backstop, and those late takes took their own callbacks only, so the left-over
    one stayed (seen as 0.4-1 s more for most results at 1,000 tasks). Now a left-over one
    opens nothing, and the next window takes it along."""
    url = pg_server.database()
    wait_s = 1.0
    async with two_receivers(tmp_path, slow_sim, wait_s, url) as (a, b):
        left, later = [await a.submit(f"a jetty {n}") for n in range(2)]
        await a.store.queue_confirmation(left.task_id, "", wait_s)  # nobody's window
        await asyncio.sleep(wait_s + 0.2)
        started = time.monotonic()
        await b.post({"id": later.task_id, "status": "SUCCESS"})
        await until(lambda: _true(b.metrics.hooks.confirmed == 2))
        assert time.monotonic() - started < wait_s * 2  # its own window, not the backstop
        asked = [q.body["ids"] for q in slow_sim.requests if q.path.endswith("list-by-condition")]
        assert [sorted(batch) for batch in asked] == [sorted([left.task_id, later.task_id])]
        assert storage.rows(url, "SELECT task_id FROM confirming") == []


async def test_a_late_take_takes_the_whole_queue(tmp_path, slow_sim, pg_server):
    """A callback that joined a window nobody takes (its opener missed it, or died) is taken
    by its own instance BACKSTOP windows later, with everything queued then."""
    url = pg_server.database()
    wait_s = 1.0
    async with two_receivers(tmp_path, slow_sim, wait_s, url) as (a, b):
        left, later = [await a.submit(f"a pier {n}") for n in range(2)]
        await a.store.queue_confirmation(left.task_id, "", wait_s)  # nobody's window
        await b.post({"id": later.task_id, "status": "SUCCESS"})  # joins it
        await until(lambda: _true(b.metrics.hooks.confirmed == 2), timeout=wait_s * BACKSTOP + 5)
        asked = [q.body["ids"] for q in slow_sim.requests if q.path.endswith("list-by-condition")]
        assert [sorted(batch) for batch in asked] == [sorted([left.task_id, later.task_id])]
        assert storage.rows(url, "SELECT task_id FROM confirming") == []


async def test_progress_for_a_task_waiting_for_an_answer_is_confirmed_not_shown(tmp_path, slow_sim):
    """A task waiting for a question's answer moves on only when the API says so: a forged
    progress callback would otherwise let it time out (and be refunded) unanswered."""
    async with receiver(tmp_path, slow_sim) as r:
        row = await r.submit("a remix")
        await r.store.update(row.key, status=TaskState.MODAL)
        await r.post({"id": row.task_id, "status": "IN_PROGRESS", "progress": "50%"})
        await until(lambda: _true(r.metrics.tracking.confirms == 1))
        assert r.metrics.hooks.shown == 0
        fresh = await r.store.task(row.key)
        assert fresh is not None and fresh.progress != 50


async def test_a_real_run_through_callbacks_costs_one_confirmation(tmp_path, sim):
    """The simulator calls back every step of a grid: the steps are shown as they come, the
    SUCCESS is confirmed once, and the result is posted and paid for once."""
    async with receiver(tmp_path, sim, hooked=True) as r:
        row = await r.submit("a lighthouse")
        await until(lambda: _true(r.metrics.deliveries.results == 1), timeout=20)
        assert r.metrics.hooks.shown >= 1
        assert r.metrics.api.tracking == r.metrics.tracking.confirms == 1
        assert (r.metrics.ledger.charges, r.metrics.ledger.kept) == (1, 1)
        fresh = await r.store.task(row.key)
        assert fresh is not None and fresh.delivered_at is not None
        assert sum(1 for _, view in r.chat.sent if view.media) == 1
        # The grid was fetched while its SUCCESS was being confirmed, and that download served
        # the result (none is left waiting for a taker).
        assert fresh.task is not None and fresh.task.image_url in r.prefetched
        assert r.downloader._early == {}


@pytest.mark.parametrize(("wait", "requests"), [(0.0, 2), (1.5, 1)])
async def test_how_long_final_callbacks_wait_for_company_is_the_setting(
    tmp_path, slow_sim, wait, requests
):
    async with receiver(tmp_path, slow_sim, confirm_wait_s=wait) as r:
        first, second = [await r.submit(f"a lake {n}") for n in range(2)]
        await r.post({"id": first.task_id, "status": "SUCCESS"})
        await asyncio.sleep(0.3)
        await r.post({"id": second.task_id, "status": "SUCCESS"})
        await until(lambda: _true(r.metrics.hooks.confirmed == 2))
        assert r.metrics.tracking.confirms == requests
