"""Nothing lost on kill -9 between the gate and the work (issue 14): a request is only seen for
good once its effect is durable (bot/usecases/gate.py). Two instances on one database, in
process (tests/test_fleet.py's ``fleet``: SQLite and PostgreSQL), each with its own Service,
against the simulator. An instance "dies" as the others see kill -9: its heartbeat lapses
while its handling stands still where it was cut off (``die``); the update is then replayed on
the other one, as Telegram's inbox (adapters/telegram/inbox.py) hands a dead instance's
updates to another instance or to the next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.chat import MessageRef, Requester
from bot.config import AccessConfig, QuotaConfig
from bot.media import Downloader
from bot.mj.client import MjClient
from bot.mj.profiles import profile_for
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import RequestTaken, Store
from bot.usecases import Service
from bot.views import View
from tests.harness import API_KEY
from tests.inprocess import CHAT, OWNER, Chat, png
from tests.storage import rows
from tests.test_fleet import beat, die, fleet  # noqa: F401  (fleet: the fixture)
from tests.test_store import row

PROMPT = "a lighthouse at dawn"
HELD_S = 60.0  # longer than any test: what ends a held submit is the test's cleanup


def where(store: Store) -> str:
    return getattr(store, "url", None) or store.path  # type: ignore[attr-defined]


def update(event: str = "telegram:501", message: str = "1") -> Requester:
    """The same platform update each time it is built (a redelivery, a replay)."""
    return Requester(
        "t", CHAT, OWNER, message=MessageRef("t", CHAT, message), event=event, language="en"
    )


@pytest.fixture
async def nodes(fleet, sim) -> AsyncIterator[tuple[Service, Service]]:  # noqa: F811
    """Instances a and b on one database, both alive: each its own Service (as ``bot.app``
    puts one together: policy, outbox, client) around its own chat double."""
    a, b = await fleet("a", "b")
    async with services_on(((a, Chat()), (b, Chat())), MjClient(sim.base_url, API_KEY)) as pair:
        yield pair


@asynccontextmanager
async def services_on(
    nodes: tuple[tuple[Store, Chat], tuple[Store, Chat]], client: MjClient, **options: Any
) -> AsyncIterator[tuple[Service, Service]]:
    """A Service per (store, chat double), alive, as ``bot.app`` puts one together (policy,
    outbox, client); closed after."""
    downloader = Downloader()
    services = []
    for store, chat in nodes:
        await beat(store, 30.0)
        outbox = Outbox({"t": chat}, edit_interval_s=0.05, send_interval_s=0)
        policy = Policy(store, AccessConfig(), QuotaConfig(concurrency=0))
        services.append(Service(store, client, outbox, downloader, policy=policy, **options))
    try:
        yield services[0], services[1]
    finally:
        for service in services:
            await service.close(grace_s=0.1)
            await service.outbox.close()
        await client.aclose()
        await downloader.aclose()


def table(service: Service, sql: str, *args: Any) -> list[dict[str, Any]]:
    return rows(where(service.store), sql, *args)


async def cut_off(task: asyncio.Task[Any]) -> None:
    """The end of a handling that was frozen by the kill (the test's own cleanup)."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_request_killed_after_the_gate_runs_once_on_the_replay(nodes, sim):
    a, b = nodes
    req = update()
    downloading, never = asyncio.Event(), asyncio.Event()

    async def handle_on_a() -> None:
        # As adapters/telegram's command handler: the entrance opened before the photo the
        # command replies to is downloaded; the download never ends (the kill lands there).
        async with a.entrance(req) as entered:
            assert entered is not None
            downloading.set()
            await never.wait()
            await a.imagine(entered, PROMPT)

    handling = asyncio.create_task(handle_on_a())
    try:
        await downloading.wait()
        await b.imagine(update(), PROMPT)  # redelivered while a handles it, alive: ignored
        assert table(b, "SELECT * FROM tasks") == []

        await die(a.store)  # kill -9: a's heartbeat lapses, its handling stays where it was
        await b.imagine(update(), PROMPT)  # the replay: it runs, here
        (task,) = table(b, "SELECT * FROM tasks")
        assert (task["prompt"], task["submitted_by"]) == (PROMPT, "b")
        assert len(sim.submits("imagine")) == 1
        (charge,) = table(b, "SELECT * FROM ledger")
        assert (charge["task_key"], charge["units"], charge["outcome"]) == (
            task["key"],
            1,
            "pending",
        )

        # A plain redelivery of the handled update, on either instance: nothing.
        await b.imagine(update(), PROMPT)
        await a.imagine(update(), PROMPT)
        # a comes back (it was stalled, not dead): its handling goes on, and the write it
        # makes is refused, since the request is b's: nothing submitted or charged twice.
        await beat(a.store, 30.0)
        never.set()
        await handling
        assert len(table(b, "SELECT * FROM tasks")) == 1
        assert len(sim.submits("imagine")) == 1
        assert len(table(b, "SELECT * FROM ledger")) == 1
    finally:
        await cut_off(handling)


async def test_a_request_killed_after_its_submit_is_not_submitted_again_by_the_replay(nodes, sim):
    """The paid write marks the request done in its own transaction: a replay after it is a
    redelivery, and the submit it made (which the API took) is recovered as every half-done
    submit is (``Service.take_over``): reported and refunded, never submitted again."""
    a, b = nodes
    sim.faults.answer_late("/submit/imagine", HELD_S)  # taken by the API, the answer held
    submitting = asyncio.create_task(a.imagine(update(), PROMPT))
    try:
        await until(lambda: sim.submits("imagine"))
        (task,) = table(a, "SELECT * FROM tasks")
        await die(a.store)

        await b.imagine(update(), PROMPT)  # the replay: a redelivery now
        await b.take_over()
        assert len(sim.submits("imagine")) == 1
        (after,) = table(b, "SELECT * FROM tasks")
        assert (after["key"], after["status"], after["error"]) == (
            task["key"],
            "REJECTED",
            "interrupted",
        )
        assert [c["outcome"] for c in table(b, "SELECT * FROM ledger")] == ["refunded"]
        # done in the transaction that stored and charged it, by a
        assert table(b, "SELECT owner, done FROM seen") == [{"owner": "a", "done": 1}]
    finally:
        await cut_off(submitting)


async def until(check: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


# --- the store's claims, on their own ---------------------------------------------------------


async def test_a_claim_is_taken_only_from_a_dead_instance_and_only_until_it_is_done(fleet):  # noqa: F811
    a, b, c = await fleet("a", "b", "c")
    for store in (a, b, c):
        await beat(store, 30.0)
    assert await a.claim_request("telegram:1")
    assert not await a.claim_request("telegram:1")  # its own, in hand
    assert not await b.claim_request("telegram:1")  # a lives: a redelivery
    await die(a)
    taken = await asyncio.gather(b.claim_request("telegram:1"), c.claim_request("telegram:1"))
    assert sorted(taken) == [False, True]  # one of them
    heir = b if taken[0] else c
    await heir.request_done("telegram:1")
    await die(heir)
    assert not await a.claim_request("telegram:1")  # done: for good, whoever died since
    assert await a.claim_request("")  # no event: nothing to tell apart


async def test_an_update_the_inbox_took_over_is_claimed_before_its_instance_lapses(fleet):  # noqa: F811
    """The inbox gives up on an instance that stopped keeping its updates, which may be
    before its heartbeat lapses: the instance that took the update over claims it at once
    (otherwise the update it was handed would be dropped as a redelivery, and lost)."""
    a, b = await fleet("a", "b")
    await beat(a, 30.0)
    await beat(b, 30.0)
    event = "telegram:77"
    assert await a.accept_update(event, "{}", "a")
    assert await a.claim_request(event)
    await asyncio.sleep(0.05)
    assert not await b.claim_request(event)  # a's, in hand
    (taken,) = await b.take_updates("b", 0.01, 10)
    assert taken.event == event
    assert await b.claim_request(event)
    # a, still alive, goes on: its paid write is refused and rolls back (nothing charged)
    with pytest.raises(RequestTaken):
        await a.add_task(row(), request=event)
    await b.add_task(row(), request=event)
    assert [r["submitted_by"] for r in rows(where(a), "SELECT * FROM tasks")] == ["b"]
    assert rows(where(a), "SELECT owner, done FROM seen") == [{"owner": "b", "done": 1}]


async def test_every_paid_write_of_a_request_taken_over_is_refused_and_charges_nothing(fleet):  # noqa: F811
    """A button claim and an answer claim too, not only a new task: each rolls back whole."""
    a, b = await fleet("a", "b")
    await beat(b, 30.0)
    parent = await a.add_task(row(task_id="1", status="SUCCESS"))
    asking = await a.add_task(row(task_id="2", status="MODAL"))
    await a.add_modal(asking.key, "zoom", "a fox --zoom 2")
    assert await a.claim_request("telegram:9")
    await die(a)
    assert await b.claim_request("telegram:9")
    await beat(a, 30.0)  # back from a stall

    async def pay(ledger) -> str:
        paid.append(ledger)
        return "never"

    paid: list[object] = []
    with pytest.raises(RequestTaken):
        await a.add_child(
            row(parent_key=parent.key), parent.key, "U1", pay=pay, request="telegram:9"
        )
    with pytest.raises(RequestTaken):
        await a.claim_modal(asking.key, pay, request="telegram:9", prompt="a fox --zoom 1.5")
    assert paid == []  # refused before paying
    assert sorted(r["key"] for r in rows(where(a), "SELECT key FROM tasks")) == sorted(
        [parent.key, asking.key]
    )
    assert rows(where(a), "SELECT * FROM presses") == []
    assert (await a.modal(asking.key)).answered_at is None  # the question is still open
    assert await b.claim_modal(asking.key, request="telegram:9", prompt="a fox --zoom 1.5")


async def test_a_request_that_failed_is_done_and_one_cut_short_is_left_for_the_replay(nodes):
    a, b = nodes
    with pytest.raises(RuntimeError):
        async with a.entrance(update("telegram:601")):
            raise RuntimeError("a bug")  # handled, badly: the error handler tells the user
    entered = asyncio.Event()

    async def cut_short() -> None:
        async with a.entrance(update("telegram:602")):
            entered.set()
            await asyncio.Event().wait()

    handling = asyncio.create_task(cut_short())
    await entered.wait()
    await cut_off(handling)  # a stop that did not wait for it
    seen = table(a, "SELECT event, owner, done FROM seen ORDER BY event")
    assert seen == [
        {"event": "telegram:601", "owner": "a", "done": 1},
        {"event": "telegram:602", "owner": "a", "done": 0},
    ]
    await die(a.store)
    assert not await b.store.claim_request("telegram:601")
    assert await b.store.claim_request("telegram:602")


# --- claims made on the way to the paid write: an ask's answer, a held prompt's send ----------
# The kill lands after the claim and before the task row: the last thing before the row is the
# turbo notice (the provider has no turbo, the user's speed is turbo), and on instance a the
# chat never returns from it.

TURBO_NOTICE = "Turbo is not available"


class Stalling(Chat):
    """A chat double that does not return from the turbo notice until ``going_on`` is set:
    the handling that sends it stands still there, as a kill leaves it (or a stall)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled, self.going_on = asyncio.Event(), asyncio.Event()

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        if TURBO_NOTICE in view.text:
            self.stalled.set()
            await self.going_on.wait()
        return await super().send(chat_id, view, reply_to)


@pytest.fixture
async def stalling(fleet, sim) -> AsyncIterator[tuple[Service, Service]]:  # noqa: F811
    """As ``nodes``, on a provider without turbo and with turbo the default speed; a's chat
    stalls at the turbo notice (``Stalling``)."""
    a, b = await fleet("a", "b")
    client = MjClient(sim.base_url, API_KEY, profile=profile_for("openai-hk"))
    async with services_on(((a, Stalling()), (b, Chat())), client, default_mode="turbo") as pair:
        yield pair


def chat_of(service: Service) -> Any:
    return service.outbox.ports["t"]


async def test_an_answer_killed_after_its_ask_was_claimed_runs_once_on_the_replay(stalling, sim):
    """A reply with the photos /blend asked for: the ask is claimed, then the kill, before
    the blend was stored. The replay claims the ask again (it is the same request's) and
    blends once. (Claimed for good, the replay was told the question had expired.)"""
    a, b = stalling
    await a.blend(update("telegram:700", message="1"))  # no photos: asked for them by reply
    (asked,) = table(a, "SELECT * FROM asks")
    reply = Requester(
        "t",
        CHAT,
        OWNER,
        message=MessageRef("t", CHAT, "2"),
        replied=MessageRef("t", CHAT, asked["message_id"]),
        event="telegram:701",
        language="en",
    )
    photos = [png(colour="red"), png(colour="green")]
    answering = asyncio.create_task(a.answer(reply, asked["message_id"], "", photos))
    try:
        await chat_of(a).stalled.wait()
        assert table(a, "SELECT answered_at FROM asks")[0]["answered_at"] is not None
        assert table(a, "SELECT * FROM tasks") == []
        await die(a.store)

        assert await b.answer(reply, asked["message_id"], "", photos)  # the replay
        (task,) = table(b, "SELECT * FROM tasks")
        assert (task["kind"], task["submitted_by"]) == ("blend", "b")
        await until(lambda: sim.submits("blend"))
        assert len(sim.submits("blend")[0].body["base64Array"]) == 2
        assert [c["action"] for c in table(b, "SELECT * FROM ledger")] == ["blend"]
        # a plain redelivery of it now: nothing
        assert await b.answer(reply, asked["message_id"], "", photos)
        # a was stalled, not dead: its handling goes on, and its paid write is refused
        await beat(a.store, 30.0)
        chat_of(a).going_on.set()
        await answering
        assert len(table(b, "SELECT * FROM tasks")) == 1
        assert len(sim.submits("blend")) == 1 and len(table(b, "SELECT * FROM ledger")) == 1
    finally:
        await cut_off(answering)


async def test_a_held_prompt_whose_send_was_killed_is_sent_by_the_next_press(stalling, sim):
    """A press of "Fix and send" claims the held prompt and answers; its send (spawned after
    the answer) is killed before its task was stored. The next press, on another instance,
    sends it: once. (Claimed for good, every later press said the prompt had expired.)"""
    a, b = stalling
    await a.imagine(update("telegram:710"), "a fox --s 5000")  # held: out of range
    held_id, _ = chat_of(a).sent[-1]
    token = chat_of(a).tokens(held_id)["✅ Fix and send"]

    def press(event: str) -> Requester:
        return Requester(
            "t", CHAT, OWNER, message=MessageRef("t", CHAT, held_id), event=event, language="en"
        )

    notice = await a.press(press("telegram:711"), token)
    assert not notice.alert
    await chat_of(a).stalled.wait()  # its send stands still before the task row
    assert table(a, "SELECT * FROM tasks") == [] and not sim.submits("imagine")
    await die(a.store)

    again = await b.press(press("telegram:712"), token)
    assert not again.alert, again.text
    await until(lambda: sim.submits("imagine"))
    (task,) = table(b, "SELECT * FROM tasks")
    assert (task["kind"], task["submitted_by"]) == ("imagine", "b")
    assert sim.submits("imagine")[0].body["prompt"] == "a fox --s 1000"
    assert [c["action"] for c in table(b, "SELECT * FROM ledger")] == ["imagine"]
    # a was stalled, not dead: its send goes on, and its paid write is refused
    await beat(a.store, 30.0)
    chat_of(a).going_on.set()
    await asyncio.sleep(0.2)
    assert len(table(b, "SELECT * FROM tasks")) == 1
    # sent: a press now, on either instance, sends nothing more
    assert (await a.press(press("telegram:713"), token)).alert
    assert (await b.press(press("telegram:714"), token)).alert
    await asyncio.sleep(0.2)
    assert len(sim.submits("imagine")) == 1 and len(table(b, "SELECT * FROM ledger")) == 1
