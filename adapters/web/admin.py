"""The admin tab's data: tasks in flight, recent tasks, usage, a chart, API and hook health.

Read-only: tasks come from ``Store.query``; counters from the running App when there is one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Playground

log = logging.getLogger("adapters.web")

FINAL = ("SUCCESS", "FAILURE", "CANCEL", "REJECTED", "TIMEOUT")
BUCKET_S = 600  # the chart: tasks per 10 minutes
CHART_BUCKETS = 36  # six hours
PROBE_ID = "0000000000000000"  # no such task: a free authenticated round trip


async def admin_report(pg: Playground) -> dict[str, Any]:
    """Everything the admin tab shows, in one JSON-ready document (read-only queries)."""
    store = pg.svc.store
    now = time.time()
    marks = ", ".join("?" for _ in FINAL)
    in_flight = await store.query(
        "SELECT key, platform, user_id, kind, label, status, progress, prompt, created_at,"
        f" ? - created_at AS age FROM tasks WHERE status NOT IN ({marks})"
        " ORDER BY created_at DESC LIMIT 100",
        now,
        *FINAL,
    )
    recent = await store.query(
        "SELECT key, platform, user_id, kind, label, status, progress, prompt, error,"
        " created_at, finished_at, finished_at - created_at AS elapsed"
        " FROM tasks ORDER BY created_at DESC LIMIT 50"
    )
    midnight = time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1))
    usage = await store.query(
        "SELECT platform, user_id, COUNT(*) AS tasks,"
        " SUM(status = 'SUCCESS') AS succeeded,"
        " SUM(status IN ('FAILURE', 'REJECTED', 'TIMEOUT', 'CANCEL')) AS failed"
        " FROM tasks WHERE created_at >= ? GROUP BY platform, user_id ORDER BY tasks DESC",
        midnight,
    )
    first = (int(now) // BUCKET_S - CHART_BUCKETS + 1) * BUCKET_S
    counted = await store.query(
        f"SELECT CAST(created_at / {BUCKET_S} AS INTEGER) * {BUCKET_S} AS start,"
        " COUNT(*) AS tasks, SUM(status = 'SUCCESS') AS succeeded"
        " FROM tasks WHERE created_at >= ? GROUP BY start ORDER BY start",
        first,
    )
    by_start = {int(row["start"]): row for row in counted}
    chart = [
        {
            "start": start,
            "tasks": int(by_start.get(start, {}).get("tasks") or 0),
            "succeeded": int(by_start.get(start, {}).get("succeeded") or 0),
        }
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
    tracker = getattr(app, "tracker", None)
    outbox = getattr(app, "outbox", None) or getattr(pg.service, "outbox", None)
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
            "tracker": {
                "polls": getattr(tracker, "polls", None),
                "poll_errors": getattr(tracker, "poll_errors", None),
                "hooks": getattr(tracker, "hooks", None),
            },
            "outbox": {"rate_limited": getattr(outbox, "rate_limited", None)},
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
