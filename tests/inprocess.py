"""The Service in-process, put together as ``bot.app`` does, against the simulator: the real
store, policy, outbox and tracker, and a chat double that keeps every message as the chat
would show it. For tests of use cases (layer 2 in DESIGN.md)."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from bot.chat import MessageGone, MessageRef, Requester
from bot.config import AccessConfig, QuotaConfig
from bot.egress import Egress
from bot.media import Downloader, MediaCache
from bot.metrics import Metrics
from bot.mj.client import MjClient
from bot.mj.profiles import profile_for
from bot.outbox import Outbox
from bot.policy import Policy
from bot.tracking import Tracker
from bot.usecases import Service
from bot.views import View
from mjsim import SimConfig, Simulator
from tests import storage
from tests.dbrows import stored
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

    def __init__(
        self,
        tmp: Path,
        sim: Simulator,
        quota: QuotaConfig,
        buttons: str,
        chat: Chat,
        *,
        provider: str = "",
        default_mode: str = "",
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.tmp, self.sim, self.quota, self.buttons = tmp, sim, quota, buttons
        self.overrides = overrides or {}  # profile keys, as [midjourney] overrides them
        self.chat = chat
        # the client's provider profile ("" = the default, openai-hk's) and default speed
        self.provider, self.default_mode = provider, default_mode
        self._events = itertools.count(1)

    async def __aenter__(self) -> World:
        await self.sim.start()
        self.metrics = Metrics()  # one for every part, as bot.app hands it
        self.store = await storage.open_store(self.tmp / "mjbot.db")  # the test's store
        profile = (
            profile_for(self.provider or "openai-hk", **self.overrides)
            if self.provider or self.overrides
            else None
        )
        self.client = MjClient(self.sim.base_url, API_KEY, metrics=self.metrics, profile=profile)
        # The simulator is one of the origins the operator configured (its base URL).
        self.downloader = Downloader(Egress(origins=[self.sim.base_url]))
        self.outbox = Outbox(
            {"t": self.chat}, edit_interval_s=0.05, send_interval_s=0, metrics=self.metrics
        )
        self.policy = Policy(
            self.store, AccessConfig(buttons=self.buttons), self.quota, metrics=self.metrics
        )
        self.service = Service(
            self.store,
            self.client,
            self.outbox,
            self.downloader,
            cache=MediaCache(self.tmp / "media"),
            policy=self.policy,
            default_mode=self.default_mode,
        )
        self.tracker = Tracker(
            self.store, self.client, self.service, poll_interval_s=0.1, metrics=self.metrics
        )
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
            rows = stored(
                self.store, "SELECT * FROM ledger WHERE task_key = ? ORDER BY created_at", key
            )
            return rows if rows and all(r["outcome"] != "pending" for r in rows) else None

        return await self.until(done)

    async def spent(self) -> int:
        rows = stored(
            self.store,
            "SELECT COALESCE(SUM(units), 0) AS units FROM ledger"
            " WHERE outcome IN ('pending', 'success')",
        )
        return rows[0]["units"]

    async def imagine(self, prompt: str = "a lighthouse at dawn") -> tuple[str, str]:
        """An /imagine from the owner, finished: (task key, result message id)."""
        before = {r["key"] for r in stored(self.store, "SELECT key FROM tasks")}
        await self.service.imagine(self.who(), prompt)
        rows = stored(self.store, "SELECT key FROM tasks")
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
            rows = stored(
                self.store,
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


def worlds(tmp_path: Path) -> Callable[..., World]:
    """A factory of Worlds for one test: ``async with make(remix=True, quota=...) as w``."""

    def make(
        remix: bool = False,
        quota: QuotaConfig | None = None,
        buttons: str = "owner",
        chat: Chat | None = None,
        time_scale: float = 0.01,
        flavour: str = "superset",
        provider: str = "",
        default_mode: str = "",
        overrides: dict[str, Any] | None = None,
    ) -> World:
        sim = Simulator(
            SimConfig(api_key=API_KEY, time_scale=time_scale, remix=remix, flavour=flavour)
        )
        quota = quota or QuotaConfig(concurrency=0)
        return World(
            tmp_path,
            sim,
            quota,
            buttons,
            chat or Chat(),
            provider=provider,
            default_mode=default_mode,
            overrides=overrides,
        )

    return make


def png(size=(64, 64), colour="white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()
