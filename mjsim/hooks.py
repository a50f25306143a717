"""notifyHook delivery: POST the task JSON, fire-and-forget, no retries (§9)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from .faults import Faults

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HookDelivery:
    """One attempted callback, as recorded in ``Simulator.hook_log``."""

    url: str
    task_id: str
    status: str  # the task status carried
    progress: str | None
    http_status: int | None  # None when the request failed
    error: str
    time: float


class HookSender:
    """Posts task snapshots to their notifyHook; faults may drop, duplicate or reorder them."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.log: list[HookDelivery] = []
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._held: dict[str, tuple[str, dict[str, Any]]] = {}
        self._last: dict[str, asyncio.Task[None]] = {}  # per task: deliveries go out in order

    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=30)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def send(self, url: str, payload: dict[str, Any], final: bool) -> None:
        """Queue one delivery (called from the task clock; never blocks, never raises)."""
        if self._session is None or self.faults.drop_hooks:
            return
        task_id = str(payload.get("id"))
        batch = [(url, payload)]
        if self.faults.reorder_hooks:
            held = self._held.pop(task_id, None)
            if held is None and not final:
                self._held[task_id] = (url, payload)  # goes out after the next update
                return
            if held is not None:
                batch.append(held)
        else:
            held = self._held.pop(task_id, None)
            if held is not None:
                batch.insert(0, held)
        if self.faults.duplicate_hooks:
            batch = [item for item in batch for _ in (0, 1)]
        body = [(u, json.dumps(p, ensure_ascii=False).encode(), p) for u, p in batch]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # advance() called outside the event loop: nowhere to send from
            return
        task = loop.create_task(self._post_all(body, self._last.get(task_id)))
        self._last[task_id] = task
        self._pending.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._pending.discard(finished)
            if self._last.get(task_id) is finished:
                del self._last[task_id]

        task.add_done_callback(done)

    async def _post_all(
        self, batch: list[tuple[str, bytes, dict[str, Any]]], previous: asyncio.Task[None] | None
    ) -> None:
        if self.faults.hook_delay_s > 0:
            await asyncio.sleep(self.faults.hook_delay_s)
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        for url, body, payload in batch:
            await self._post(url, body, payload)

    async def _post(self, url: str, body: bytes, payload: dict[str, Any]) -> None:
        assert self._session is not None
        status: int | None = None
        error = ""
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                status = response.status
                await response.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the real servers only log failed callbacks
            error = f"{type(exc).__name__}: {exc}"
            log.debug("notifyHook %s failed: %s", url, error)
        self.log.append(
            HookDelivery(
                url,
                str(payload.get("id")),
                str(payload.get("status")),
                payload.get("progress"),
                status,
                error,
                time.time(),
            )
        )
