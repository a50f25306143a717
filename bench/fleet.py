"""The deployment a benchmark column runs: one ``mjbot run`` (the default), or ``instances`` of
them behind a real nginx running deploy/nginx.conf on one PostgreSQL database (issue 14).

In the fleet both kinds of outside traffic go through nginx, as in production: the fake Bot API
posts updates to ``<nginx>/telegram/update`` (Telegram webhook mode) and the simulator's
notifyHook callbacks go to ``<nginx>/mj/hook/...``. nginx and its config rendering are the
load-balancer test's (tests/test_webhook_lb.py), so the benchmark measures what CI checks.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from tests.harness import free_port
from tests.pgserver import PgServer, binaries
from tests.test_webhook_lb import Nginx


def merged(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """The instances' ``/status`` counts as one: numbers summed, anything else the first's."""
    out: dict[str, Any] = {}
    for status in statuses:
        for key, value in status.items():
            if isinstance(value, dict):
                out[key] = merged([out.get(key, {}), value]) if key in out else dict(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
            else:
                out.setdefault(key, value)
    return out


class Store:
    """Where the instances keep their data: SQLite files of their own, or one PostgreSQL
    database (a fresh server, with PostgreSQL's default durability like a deployment)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.server: PgServer | None = None
        self.url = ""

    async def start(self) -> None:
        if self.kind != "postgresql":
            return
        bindir = binaries()
        if bindir is None:
            raise SystemExit("--store postgresql: no PostgreSQL binaries (initdb) found")
        self.server = PgServer(bindir, durable=True)
        await asyncio.to_thread(self.server.start)
        self.url = await asyncio.to_thread(self.server.database)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class Balancer:
    """nginx with deploy/nginx.conf, its upstreams the instances' ports."""

    def __init__(self, count: int) -> None:
        self.hooks = [free_port() for _ in range(count)]  # tracking.listen (notifyHook, /status)
        self.webhooks = [free_port() for _ in range(count)]  # telegram.webhook_listen
        webapps = [free_port() for _ in range(count)]  # not configured: nothing asks for it
        self.dir = Path(tempfile.mkdtemp(prefix="mjbot-bench-nginx-"))
        upstreams = {8092: self.webhooks, 8090: self.hooks, 8091: webapps}
        self.nginx = Nginx(self.dir, upstreams)

    @property
    def url(self) -> str:
        return self.nginx.url

    async def start(self) -> None:
        await self.nginx.start()

    def stop(self) -> None:
        self.nginx.stop()

    def instance(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (telegram, tracking) config of instance ``i`` behind this balancer."""
        telegram = {
            "webhook_url": f"{self.url}/telegram/update",
            "webhook_listen": f"127.0.0.1:{self.webhooks[i]}",
        }
        tracking = {"listen": f"127.0.0.1:{self.hooks[i]}", "webhook_public_url": self.url}
        return telegram, tracking
