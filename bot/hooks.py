"""The notifyHook receiver and the status endpoint, on ``tracking.listen``.

A callback is only a hint: the API family sends them unauthenticated, lossy and out of order
(mj-api.md §9). The URL carries an unguessable secret; unknown ids and wrong secrets are
dropped and counted; the body size is bounded; and the state shown to users always comes from
fetching the task, so a forged payload cannot put an image or a button in a chat.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from bot.mj.client import MjClient, MjError
from bot.mj.models import Task, loads
from bot.serving import READ_TIMEOUT_S, serve
from bot.store import Store
from bot.usecases import Service

log = logging.getLogger("bot.hooks")

MAX_BODY = 256 * 1024  # a task JSON is a few KB; anything bigger is not a callback
HOOK_PATH = "/mj/hook/"
CONFIRM_WINDOW_S = 0.05  # callbacks arriving this close together are confirmed in one request
# What reverse proxies add (nginx only when told to: see the README on /status).
LOOPBACK = ("127.0.0.1", "::1")
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP", "Via")


async def hook_secret(store: Store) -> str:
    """The secret path segment, kept in the store so in-flight tasks keep a valid URL."""
    return await store.keep_hook_secret(secrets.token_urlsafe(24))


class HookServer:
    def __init__(
        self,
        store: Store,
        client: MjClient,
        service: Service,
        secret: str,
        stats: Any,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.client = client
        self.service = service
        self.secret = secret
        self.stats = stats  # a callable returning the status document
        self.received = 0
        self.confirmed = 0
        self.dropped_secret = 0
        self.dropped_unknown = 0
        self.dropped_invalid = 0
        self.last_hook_at = 0.0
        self._hinted: set[str] = set()  # task ids called back, waiting to be confirmed
        self._flusher: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.read_timeout_s = read_timeout_s
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(HOOK_PATH + "{secret}", self._hook)
        app.router.add_get("/status", self._status)
        self.app = app

    async def start(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self._runner, _ = await serve(
            self.app, host.strip("[]"), int(port), read_timeout_s=self.read_timeout_s
        )
        log.info("hook receiver and status on %s", listen)

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def flowing(self) -> bool:
        """Callbacks arrived recently: the poller may slow down to reconciliation pace."""
        return time.monotonic() - self.last_hook_at < 60

    async def _hook(self, request: web.Request) -> web.Response:
        self.received += 1
        if not hmac.compare_digest(request.match_info["secret"], self.secret):
            self.dropped_secret += 1
            return web.Response(status=404)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._invalid(413, f"a callback is at most {MAX_BODY} bytes")
        except Exception as exc:  # a body that cannot be read (bad Content-Encoding, cut off)
            log.info("unreadable callback body: %s", type(exc).__name__)
            return self._invalid(400, "the body cannot be read")
        try:
            task = Task.from_json(loads(body))
        except Exception:  # nested beyond reason, or a type the parser did not foresee
            task = None
        if task is None:
            return self._invalid(400, "not a task object")
        if await self.store.task_by_id(task.id) is None:
            self.dropped_unknown += 1
            return web.Response(status=200)  # not ours: say nothing useful to a prober
        self.last_hook_at = time.monotonic()
        # Answer at once; confirm after responding (the sender does not wait), and confirm the
        # callbacks of a short window together: one list request instead of one fetch each.
        self._hinted.add(task.id)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._confirm_soon())
        return web.Response(status=200)

    def _invalid(self, status: int, why: str) -> web.Response:
        """A clear 4xx, and the connection closed: its body may be half read."""
        self.dropped_invalid += 1
        response = web.Response(status=status, text=f"{status}: {why}\n")
        response.force_close()
        return response

    async def _confirm_soon(self) -> None:
        await asyncio.sleep(CONFIRM_WINDOW_S)
        while self._hinted:
            ids, self._hinted = sorted(self._hinted), set()
            try:
                tasks = await self.client.list_by_condition(ids)
            except MjError as exc:
                log.info("confirming callbacks failed (%s); the poller will catch up", exc.kind)
                return
            self.confirmed += len(tasks)
            try:
                await self.service.on_tasks(tasks)
            except Exception:
                log.exception("handling confirmed callbacks failed")

    async def _status(self, request: web.Request) -> web.Response:
        # Only this machine, asking directly (`mjbot status`): a reverse proxy on the same
        # host connects from loopback too, but says so in a forwarding header; a web page
        # reaching loopback by DNS rebinding sends its own name as Host.
        host = (request.url.host or "").strip("[]")
        if (
            request.remote not in LOOPBACK
            or host not in (*LOOPBACK, "localhost")
            or any(name in request.headers for name in FORWARDING_HEADERS)
        ):
            return web.Response(status=403, text="403: /status answers local requests only\n")
        return web.json_response(await self.stats())

    def counters(self) -> dict[str, int]:
        return {
            "received": self.received,
            "confirmed": self.confirmed,
            "dropped_secret": self.dropped_secret,
            "dropped_unknown": self.dropped_unknown,
            "dropped_invalid": self.dropped_invalid,
        }
