"""Every unit charged once: ten simultaneous attempts of each kind that spends money (button
presses, answers to questions as replies and as masks, album questions, 🔁, redelivered
commands) make one submit and one charge, and a refund only undoes its own attempt's charge.

The Service runs in-process against the simulator, with the real store, policy, outbox and
tracker; the chat platform is a double that keeps every message as the chat would show it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from PIL import Image

from bot import media
from bot.chat import MessageGone, MessageRef, Requester
from bot.config import AccessConfig, QuotaConfig
from bot.egress import Egress
from bot.media import Downloader, MediaCache
from bot.mj.client import MjClient
from bot.outbox import Outbox
from bot.policy import Policy
from bot.service import Service
from bot.sim import SimConfig, Simulator
from bot.store import Store
from bot.tracker import Tracker
from bot.views import View
from tests.harness import API_KEY

CHAT = "-100"
OWNER = "7"
TEN = 10


class Chat:
    """The platform double: every message as the chat shows it now, and what happened."""

    platform = "t"

    def __init__(self) -> None:
        self.shown: dict[str, View] = {}  # message id -> its current content
        self.deleted: set[str] = set()
        self.sent: list[tuple[str, View]] = []
        self._ids = itertools.count(1000)

    async def send(self, chat_id: str, view: View, reply_to: MessageRef | None = None):
        ref = MessageRef("t", chat_id, str(next(self._ids)), "photo" if view.media else "text")
        self.shown[ref.message_id] = view
        self.sent.append((ref.message_id, view))
        return ref

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        if ref.message_id in self.deleted or ref.message_id not in self.shown:
            raise MessageGone(ref.message_id)
        self.shown[ref.message_id] = view
        return ref

    async def delete(self, ref: MessageRef) -> None:
        self.deleted.add(ref.message_id)
        self.shown.pop(ref.message_id, None)

    def tokens(self, message_id: str) -> dict[str, str]:
        """The buttons of a message: label -> token."""
        view = self.shown[message_id]
        return {c.label: c.token for row in view.rows for c in row if c.token}

    def texts(self) -> list[str]:
        return [view.text for _, view in self.sent]


class World:
    """mjbot's core put together as ``bot.app`` does, around one chat double."""

    def __init__(self, tmp: Path, sim: Simulator, quota: QuotaConfig, buttons: str) -> None:
        self.tmp, self.sim, self.quota, self.buttons = tmp, sim, quota, buttons
        self.chat = Chat()
        self._events = itertools.count(1)

    async def __aenter__(self) -> World:
        await self.sim.start()
        self.store = await Store.open(self.tmp / "mjbot.db")
        self.client = MjClient(self.sim.base_url, API_KEY)
        # The simulator is one of the origins the operator configured (its base URL).
        self.downloader = Downloader(Egress(origins=[self.sim.base_url]))
        self.outbox = Outbox({"t": self.chat}, edit_interval_s=0.05, send_interval_s=0)
        self.policy = Policy(self.store, AccessConfig(buttons=self.buttons), self.quota)
        self.service = Service(
            self.store,
            self.client,
            self.outbox,
            self.downloader,
            cache=MediaCache(self.tmp / "media"),
            policy=self.policy,
        )
        self.tracker = Tracker(self.store, self.client, self.service, poll_interval_s=0.1)
        self._tracking = asyncio.create_task(self.tracker.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._tracking.cancel()
        await asyncio.gather(self._tracking, return_exceptions=True)
        await self.service.close()
        await self.outbox.close()
        await self.client.aclose()
        await self.downloader.aclose()
        await self.store.close()
        await self.sim.stop()

    def who(self, user: str = OWNER, message: str = "1") -> Requester:
        """A new update from ``user`` (each with its own event id, as the platform sends)."""
        return Requester(
            "t",
            CHAT,
            user,
            message=MessageRef("t", CHAT, message),
            event=f"update-{next(self._events)}",
        )

    async def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if asyncio.iscoroutine(found):
                found = await found
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {check}")

    async def result(self, key: str) -> str:
        """Wait until the task's result is in the chat; its message id."""

        async def posted() -> str | None:
            row = await self.store.task(key)
            return row.result_ref.split("|")[2] if row and row.delivered_at else None

        return await self.until(posted)

    async def settled(self, key: str) -> list[dict[str, Any]]:
        """The task's ledger rows once none is pending any more."""

        async def done() -> list[dict[str, Any]] | None:
            rows = await self.store.query(
                "SELECT * FROM ledger WHERE task_key = ? ORDER BY created_at", key
            )
            return rows if rows and all(r["outcome"] != "pending" for r in rows) else None

        return await self.until(done)

    async def spent(self) -> int:
        rows = await self.store.query(
            "SELECT COALESCE(SUM(units), 0) AS units FROM ledger"
            " WHERE outcome IN ('pending', 'success')"
        )
        return rows[0]["units"]

    async def imagine(self, prompt: str = "a lighthouse at dawn") -> tuple[str, str]:
        """An /imagine from the owner, finished: (task key, result message id)."""
        before = {r["key"] for r in await self.store.query("SELECT key FROM tasks")}
        await self.service.imagine(self.who(), prompt)
        rows = await self.store.query("SELECT key FROM tasks")
        (key,) = {r["key"] for r in rows} - before
        return key, await self.result(key)

    async def press(self, message_id: str, label: str, times: int = 1, user: str = OWNER):
        """Press one button of a message ``times`` at once; the notices the pressers got."""
        token = self.chat.tokens(message_id)[label]
        return await asyncio.gather(
            *(self.service.press(self.who(user), token) for _ in range(times))
        )

    async def child(self, parent: str, label_part: str) -> str:
        """The newest task a button of ``parent`` made."""

        async def found() -> str | None:
            rows = await self.store.query(
                "SELECT key FROM tasks WHERE parent_key = ? AND label LIKE ?"
                " ORDER BY created_at DESC LIMIT 1",
                parent,
                f"%{label_part}%",
            )
            return rows[0]["key"] if rows else None

        return await self.until(found)

    async def question(self, key: str) -> str:
        """The message id of the question a task asks (a modal)."""

        async def asked() -> str | None:
            modal = await self.store.modal(key)
            return modal.ask_message if modal and modal.ask_message else None

        return await self.until(asked)

    def submits(self, route: str) -> int:
        return len(self.sim.submits(route))


@pytest.fixture
def world(tmp_path):
    """Build a World: ``async with world(remix=True, quota=...) as w``."""

    def make(
        remix: bool = False, quota: QuotaConfig | None = None, buttons: str = "owner"
    ) -> World:
        sim = Simulator(SimConfig(api_key=API_KEY, time_scale=0.01, remix=remix))
        return World(tmp_path, sim, quota or QuotaConfig(concurrency=0), buttons)

    return make


def png(size=(64, 64), colour="white") -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


# --- answers to one question --------------------------------------------------------------------


async def test_ten_replies_to_one_question_charge_once_and_the_charge_stands(world):
    async with world(remix=True) as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        child = await w.child(grid, "V1")
        asked = await w.question(child)  # remix: the press turned into a question
        await asyncio.gather(
            *(
                w.service.answer(w.who(message=f"r{n}"), asked, f"a lighthouse at dusk {n}")
                for n in range(TEN)
            )
        )
        await w.result(child)
        rows = await w.settled(child)
        assert w.submits("modal") == 1
        # The press's charge is void (nothing ran then), the one answer that won is kept.
        assert [r["outcome"] for r in rows] == ["void", "success"]
        assert len({r["id"] for r in rows}) == 2
        assert await w.spent() == 1 + 1  # the grid and the variation


async def test_ten_masks_and_replies_to_one_vary_region_charge_once(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "U1")
        shown = await w.result(upscale)
        await w.press(shown, "🖌️ Vary (Region)")
        region = await w.child(upscale, "Vary (Region)")
        asked = await w.question(region)
        masks = [w.service.answer_mask(w.who(), region, png(), "a red boat") for _ in range(5)]
        replies = [w.service.answer(w.who(message=f"m{n}"), asked, "1 2 a boat") for n in range(5)]
        await asyncio.gather(*masks, *replies)
        await w.result(region)
        rows = await w.settled(region)
        assert w.submits("modal") == 1
        assert [r["outcome"] for r in rows] == ["void", "success"]
        assert await w.spent() == 1 + 0 + 1  # grid, upscale (free by default), region


async def test_an_answer_over_quota_leaves_the_question_open(world):
    async with world(remix=True, quota=QuotaConfig(daily_units=2, concurrency=0)) as w:
        grid, message = await w.imagine()  # 1 of 2
        await w.press(message, "V1")  # charged, then void: it became a question
        child = await w.child(grid, "V1")
        asked = await w.question(child)
        await w.service.imagine(w.who(), "another one")  # 2 of 2
        await w.service.answer(w.who(message="late"), asked, "at dusk")
        assert "quota" in w.chat.texts()[-1].lower() or "limit" in w.chat.texts()[-1].lower()
        assert w.submits("modal") == 0
        modal = await w.store.modal(child)
        assert modal is not None and modal.answered_at is None  # it can still be answered


# --- buttons pressed again ----------------------------------------------------------------------


async def test_ten_presses_of_one_button_submit_once(world):
    async with world() as w:
        grid, message = await w.imagine()
        notices = await w.press(message, "V2", times=TEN)
        child = await w.child(grid, "V2")
        await w.result(child)
        rows = await w.settled(child)
        assert w.submits("action") == 1
        assert [r["outcome"] for r in rows] == ["success"]
        assert sum("submitted" in n.text for n in notices) == 1


async def test_a_finished_upscale_is_posted_again_and_not_submitted(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "U1")
        upscale = await w.child(grid, "U1")
        first = await w.result(upscale)
        sent_before = len(w.chat.sent)
        notices = await w.press(message, "U1", times=TEN)
        await asyncio.sleep(0.5)  # give a wrong second submit time to happen
        assert w.submits("action") == 1
        assert all("U1 submitted" not in n.text for n in notices)
        assert all("posted again" in n.text for n in notices), [n.text for n in notices]
        assert all(n.where == MessageRef("t", CHAT, first, "photo") for n in notices)
        # Posted again once, with working buttons (the upscale's own, e.g. Vary (Region)).
        reposts = await w.until(lambda: w.chat.sent[sent_before:])
        await asyncio.sleep(0.3)
        assert len(w.chat.sent) == sent_before + 1
        again = reposts[0][0]
        assert "🖌️ Vary (Region)" in w.chat.tokens(again)
        ledger = await w.store.query("SELECT * FROM ledger WHERE task_key = ?", upscale)
        assert len(ledger) == 1


async def test_a_finished_variation_may_be_pressed_again_for_a_new_job(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        first = await w.child(grid, "V1")
        await w.result(first)
        notices = await w.press(message, "V1", times=TEN)
        second = await w.child(grid, "V1")
        assert second != first
        await w.result(second)
        await w.settled(second)
        assert w.submits("action") == 2
        started = [n for n in notices if "new job" in n.text]
        assert len(started) == 1, [n.text for n in notices]
        assert await w.spent() == 1 + 1 + 1


async def test_a_running_button_says_how_far_it_is(world):
    async with world() as w:
        grid, message = await w.imagine()
        w.sim.faults.hang_s = 0.5  # the submit is still on its way when the others press
        notices = await w.press(message, "V3", times=3)
        w.sim.faults.hang_s = 0.0
        assert sum("Already running" in n.text for n in notices) == 2
        await w.result(await w.child(grid, "V3"))


async def test_someone_else_cannot_press_a_finished_button_again(world):
    async with world() as w:
        grid, message = await w.imagine()
        await w.press(message, "V1")
        await w.result(await w.child(grid, "V1"))
        (notice,) = await w.press(message, "V1", user="8")
        assert notice.alert and "Only the person" in notice.text
        assert w.submits("action") == 1


async def test_ten_retries_of_a_failed_job_submit_once(world):
    async with world() as w:
        key, message = await w.imagine("this will fail")  # the simulator fails "fail"
        assert (await w.settled(key))[0]["outcome"] == "refunded"
        notices = await w.press(message, "🔁 Try again", times=TEN)
        await w.until(lambda: w.submits("imagine") >= 2)
        await asyncio.sleep(0.5)  # give a wrong second retry time to happen
        assert w.submits("imagine") == 2
        (retry,) = await w.store.query("SELECT key FROM tasks WHERE key != ?", key)
        await w.result(retry["key"])
        assert [r["outcome"] for r in await w.settled(retry["key"])] == ["refunded"]
        assert sum("Already running" not in n.text for n in notices) == 1, [n.text for n in notices]


# --- commands -----------------------------------------------------------------------------------


async def test_ten_photo_replies_to_one_album_question_charge_once(world):
    async with world() as w:
        await w.service.describe(w.who())
        asked = w.chat.sent[-1][0]
        photo = png((300, 200), "navy")
        await asyncio.gather(
            *(w.service.answer(w.who(message=f"p{n}"), asked, "", [photo]) for n in range(TEN))
        )
        (row,) = await w.store.query("SELECT key FROM tasks WHERE kind = 'describe'")
        await w.result(row["key"])
        assert w.submits("describe") == 1
        assert [r["outcome"] for r in await w.settled(row["key"])] == ["success"]


async def test_a_redelivered_command_is_charged_once(world):
    async with world() as w:
        req = w.who()
        await asyncio.gather(*(w.service.imagine(req, "a fox") for _ in range(TEN)))
        rows = await w.store.query("SELECT * FROM ledger")
        assert len(rows) == 1 and w.submits("imagine") == 1


async def test_a_quota_refusal_leaves_no_task_and_no_charge(world):
    async with world(quota=QuotaConfig(daily_units=1, concurrency=0)) as w:
        await asyncio.gather(*(w.service.imagine(w.who(), f"a fox {n}") for n in range(TEN)))
        assert len(await w.store.query("SELECT * FROM ledger")) == 1
        assert len(await w.store.query("SELECT * FROM tasks")) == 1
        assert w.submits("imagine") == 1


# --- the ledger of older databases --------------------------------------------------------------


async def test_a_version_4_ledger_is_kept_and_still_settles(tmp_path):
    path = tmp_path / "old.db"
    scripts = sorted(Path(media.__file__).parent.joinpath("migrations").glob("000[1-4]_*.sql"))
    async with aiosqlite.connect(path) as db:
        for script in scripts:
            await db.executescript(script.read_text())
        await db.execute("PRAGMA user_version=4")
        await db.execute(
            "INSERT INTO tasks (key, platform, chat_id, user_id, kind, status, created_at,"
            " updated_at) VALUES ('oldtask234', 't', '-1', '7', 'imagine', 'IN_PROGRESS', 1, 1)"
        )
        await db.execute(
            "INSERT INTO ledger (task_key, platform, user_id, chat_id, action, units, day,"
            " month, created_at) VALUES ('oldtask234', 't', '7', '-1', 'imagine', 1,"
            " '2026-01-01', '2026-01', 1)"
        )
        await db.commit()
    store = await Store.open(path)
    try:
        row = await store.task("oldtask234")
        assert row is not None and row.charge_id == "oldtask234"
        policy = Policy(store, AccessConfig(), QuotaConfig())
        await policy.settle(row.charge_id, success=True)
        (entry,) = await store.query("SELECT * FROM ledger")
        assert entry["id"] == "oldtask234" and entry["outcome"] == "success"
    finally:
        await store.close()
