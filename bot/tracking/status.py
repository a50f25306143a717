"""What a running bot is doing, as one JSON document: `mjbot status`, the ``/status`` endpoint
on ``tracking.listen`` and the playground's admin tab all show this, and the benchmarks read it.

The counters are the one :class:`~bot.metrics.Metrics` object every part counts into; this
module adds the store's view (tasks in flight, and every instance sharing the database with
what it holds) and keeps the few flat keys older readers of `mjbot status` know.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from bot.metrics import Metrics
from bot.store import Store, TaskRow

# What reverse proxies add (nginx only when told to: see the README on /status).
LOOPBACK = ("127.0.0.1", "::1")
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP", "Via")

Report = Callable[[], Awaitable[dict[str, Any]]]


async def document(store: Store, metrics: Metrics, adapters: Sequence[str]) -> dict[str, Any]:
    """Tasks in flight and their oldest age, then every counter by part."""
    live = await store.live_tasks()
    now = time.time()
    counts = metrics.snapshot()
    return {
        "tasks_in_flight": len(live),
        "oldest_task_age_s": round(now - min((r.created_at for r in live), default=now), 1),
        "instance": store.instance.id,
        "instances": await instances(store, live),
        "adapters": list(adapters),
        # "uvloop" under `mjbot run` where installed (bot/cli.py: _serve), else "asyncio"
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        **counts,
        # The flat names `mjbot status` showed before the sections existed.
        "polls": metrics.tracking.polls,
        "poll_errors": metrics.tracking.poll_errors,
        "api_requests": metrics.api.requests,
        "api_errors": counts["api"]["errors"],
        "rate_limited": metrics.outbox.rate_limited,
    }


async def instances(store: Store, live: list[TaskRow]) -> list[dict[str, Any]]:
    """Every instance that ever beat on this database, newest heartbeat first: who it is,
    when it last beat, whether it counts as alive, and how many live tasks it holds."""
    now = time.time()
    held: dict[str, int] = {}
    for row in live:
        if row.lease_owner and (row.lease_until or 0.0) > now:
            held[row.lease_owner] = held.get(row.lease_owner, 0) + 1
    return [
        {
            "id": i.id,
            "host": i.host,
            "pid": i.pid,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i.started_at)) + " UTC",
            "last_heartbeat_s_ago": round(now - i.heartbeat_at, 1),
            "alive": i.alive(now),
            "tasks_held": held.get(i.id, 0),
        }
        for i in await store.instances()
    ]


def local_only(report: Report) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The ``/status`` handler: ``report()`` as JSON to this machine asking directly."""

    async def status(request: web.Request) -> web.Response:
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
        return web.json_response(await report())

    return status
