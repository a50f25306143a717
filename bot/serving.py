"""Every HTTP server mjbot runs listens through ``serve``: the notifyHook receiver, the Mini App
and the playground.

aiohttp has no read timeout of its own: a client may take forever to send its headers (a
"slowloris"), drip a body a byte at a time, or open a connection and send nothing, and each
holds a connection and a handler; idle keep-alive connections stay for an hour. Here a
connection must deliver a complete request (headers and body) within ``read_timeout_s`` of
opening or of its previous response, or it is closed. A request that has arrived whole is
never cut: its handler may take as long as it needs, and a WebSocket lives as long as it is
open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("bot.serving")

READ_TIMEOUT_S = 10.0  # a callback is a few KB: seconds are plenty
UPLOAD_READ_TIMEOUT_S = 30.0  # pages that take photos and masks from phones on slow links
SHUTDOWN_TIMEOUT_S = 5.0  # requests in flight at stop get this long


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> tuple[web.AppRunner, int]:
    """Start ``app`` on host:port (0 = any free port); the runner (cleanup() stops it) and
    the port it listens on."""
    watches: dict[RequestHandler, _Watch] = {}
    app.middlewares.insert(0, _middleware(watches))  # outermost: sees every request
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=read_timeout_s,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    site = _WatchedSite(runner, host, port, watches, read_timeout_s)
    await site.start()
    return runner, site.port


class _Watch:
    """One connection's deadline: armed when it opens and after every response; disarmed
    while a request that arrived whole is being handled."""

    def __init__(
        self,
        handler: RequestHandler,
        timeout_s: float,
        watches: dict[RequestHandler, _Watch],
    ) -> None:
        self.handler = handler
        self.timeout_s = timeout_s
        self.watches = watches
        self.request: web.BaseRequest | None = None  # the one being handled
        self._timer: asyncio.TimerHandle | None = None
        self.arm()

    def arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self._expire)

    def _expire(self) -> None:
        self._timer = None
        transport = self.handler.transport
        if transport is None or transport.is_closing():
            self.watches.pop(self.handler, None)  # gone: forget it
            return
        if self.request is not None and self.request.content.is_eof():
            return  # arrived whole and being handled: armed again after its response
        peer = transport.get_extra_info("peername")
        log.info("closing a connection from %s: no whole request in %.0f s", peer, self.timeout_s)
        transport.close()
        self.watches.pop(self.handler, None)


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _middleware(watches: dict[RequestHandler, _Watch]) -> Any:
    @web.middleware
    async def watched(request: web.Request, handler: _Handler) -> web.StreamResponse:
        watch = watches.get(request.protocol)
        if watch is None:
            return await handler(request)
        watch.request = request
        try:
            return await handler(request)
        finally:
            watch.request = None
            watch.arm()  # the next request (keep-alive) or the response's own writing

    return watched


class _WatchedSite(web.BaseSite):
    """aiohttp's TCPSite, with a _Watch on every connection it accepts."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        watches: dict[RequestHandler, _Watch],
        timeout_s: float,
    ) -> None:
        super().__init__(runner)  # the shutdown timeout is the runner's
        self._app_runner = runner
        self._where = (host, port)
        self._watches = watches
        self._timeout_s = timeout_s
        self.port = port

    @property
    def name(self) -> str:
        return f"http://{self._where[0]}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._app_runner.server
        assert server is not None

        def accept() -> RequestHandler:
            handler = server()
            self._watches[handler] = _Watch(handler, self._timeout_s, self._watches)
            return handler

        loop = asyncio.get_running_loop()
        # BaseSite.stop() closes self._server: the same attribute aiohttp's TCPSite sets.
        self._server = await loop.create_server(accept, *self._where)
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
