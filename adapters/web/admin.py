"""The admin tab's data: tasks in flight, recent tasks, usage, a chart, API and hook health.

Read-only: tasks come from the store's reports; counters from the running App when there is one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bot.store import TaskCount, TaskRow

if TYPE_CHECKING:
    from .playground import Playground

log = logging.getLogger("adapters.web")

BUCKET_S = 600  # the chart: tasks per 10 minutes
CHART_BUCKETS = 36  # six hours
PROBE_ID = "0000000000000000"  # no such task: a free authenticated round trip


async def admin_report(pg: Playground) -> dict[str, Any]:
    """Everything the admin tab shows, in one JSON-ready document (the store's reports)."""
    store = pg.svc.store
    now = time.time()
    in_flight = [
        {**_task_fields(row), "age": now - row.created_at}
        for row in await store.unfinished_tasks(100)
    ]
    recent = [
        {
            **_task_fields(row),
            "error": row.error,
            "finished_at": row.finished_at,
            "elapsed": None if row.finished_at is None else row.finished_at - row.created_at,
        }
        for row in await store.latest_tasks(50)
    ]
    midnight = time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1))
    usage = [asdict(row) for row in await store.tasks_per_user(midnight)]
    first = (int(now) // BUCKET_S - CHART_BUCKETS + 1) * BUCKET_S
    by_start = {count.start: count for count in await store.tasks_per_interval(first, BUCKET_S)}
    chart = [
        asdict(by_start.get(start) or TaskCount(start, 0, 0))
        for start in range(first, first + CHART_BUCKETS * BUCKET_S, BUCKET_S)
    ]
    return {
        "now": now,
        "in_flight": in_flight,
        "recent": recent,
        "usage": usage,
        "chart": {"bucket_s": BUCKET_S, "buckets": chart},
        "health": await health(pg),
    }


def _task_fields(row: TaskRow) -> dict[str, Any]:
    """What the tables show of a task."""
    fields = ("key", "platform", "user_id", "kind", "label", "status", "progress", "prompt")
    return {**{name: getattr(row, name) for name in fields}, "created_at": row.created_at}


async def health(pg: Playground) -> dict[str, Any]:
    """API and webhook health plus tracker/outbox counters; the API probe is cached 10 s."""
    now = time.time()
    if pg.health_cache is not None and now - pg.health_cache[0] < 10:
        cached = dict(pg.health_cache[1])
    else:
        cached = {"api": await _probe_api(pg)}
        pg.health_cache = (now, cached)
    app = pg.app
    config = getattr(app, "config", None)
    hook = getattr(getattr(config, "tracking", None), "webhook_public_url", "") if config else ""
    status = getattr(app, "status", None)
    try:
        report = await status() if status is not None else {}
    except Exception:
        log.exception("app status failed")
        report = {}
    cached.update(
        {
            "app": report,
            "api_url": _api_label(app),
            "webhook": {
                "configured": bool(hook),
                "url": hook or "",
                **(report.get("webhook") or {}),
            },
            # The app's one metrics object, as its status document carries it.
            "tracker": report.get("tracking") or {},
            "outbox": report.get("outbox") or {},
            "ledger": report.get("ledger") or {},
            "deliveries": report.get("deliveries") or {},
            "web": {
                "sessions": len(pg.port.clients),
                "events": pg.port.events,
                "uptime_s": round(now - pg.started),
            },
        }
    )
    return cached


def _api_label(app: Any) -> str:
    config = getattr(app, "config", None)
    if config is None:
        return ""
    base = config.midjourney.base_url
    if base == "simulator":
        simulator = getattr(app, "simulator", None)
        url = getattr(simulator, "base_url", "") or ""
        return f"simulator {url}".strip()
    return str(base)


async def _probe_api(pg: Playground) -> dict[str, Any]:
    """A free, read-only round trip (list-by-condition with a task id that does not exist)."""
    client = getattr(pg.service, "client", None)
    if client is None:
        return {"ok": None}
    started = time.monotonic()
    try:
        await asyncio.wait_for(client.list_by_condition([PROBE_ID]), 5)
    except Exception as exc:
        return {"ok": False, "error": getattr(exc, "kind", type(exc).__name__)}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000)}
