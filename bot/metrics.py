"""One object every part counts into: `mjbot status`, the status endpoint, the admin tab and
the benchmarks all read it.

The composition root builds one :class:`Metrics` and hands it to the parts (stamina's idea:
observability is one typed object passed around, not integers each part keeps and others read
back with ``getattr``). Its shape is fixed: ``Metrics`` is frozen and every section is slotted,
so a misspelt counter is an AttributeError (and a mypy error), never a new number nobody reads.
Counting is one integer addition on the event loop's thread: no locks, no registry.

A part built without one (a unit test) gets a fresh ``Metrics`` of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class ApiCounts:
    """Requests to the Midjourney API (bot/mj/transport.py)."""

    requests: int = 0  # HTTP attempts, retries included
    by_route: Counter[str] = field(default_factory=Counter)  # "submit/imagine", "task/{id}/fetch"
    errors: Counter[str] = field(default_factory=Counter)  # failed attempts by ErrorKind

    @property
    def tracking(self) -> int:
        """Requests spent following tasks (fetch and list), not submitting them."""
        return sum(n for route, n in self.by_route.items() if is_tracking(route))


def is_tracking(route: str) -> bool:
    """A route that follows tasks: ``task/{id}/fetch`` or a ``task/list...`` route."""
    return route == "task/{id}/fetch" or route.startswith("task/list")


def route_of(path: str) -> str:
    """The route a request path asks for, without the mode prefix and with the task id
    replaced: ``/fast/mj/task/123/fetch`` -> ``task/{id}/fetch``."""
    path = path.split("?", 1)[0]
    head, mj, rest = path.partition("/mj/")
    parts = (rest if mj else head.lstrip("/")).split("/")
    if len(parts) == 3 and parts[0] == "task":
        parts[1] = "{id}"
    return "/".join(parts)


@dataclass(slots=True)
class TrackingCounts:
    """The poller and the confirmation of callbacks (bot/tracking/)."""

    polls: int = 0  # list requests of the poller that were answered
    poll_errors: int = 0
    confirms: int = 0  # list requests confirming callbacks that reported a final state
    confirm_errors: int = 0
    timed_out: int = 0  # tasks given up on after the configured time


@dataclass(slots=True)
class HookCounts:
    """The notifyHook receiver (bot/tracking/hooks.py)."""

    received: int = 0  # requests on the hook path, any secret
    shown: int = 0  # progress callbacks shown as they came (a hint, never confirmed)
    confirmed: int = 0  # tasks the API's answer carried after a callback reported them final
    dropped_secret: int = 0
    dropped_unknown: int = 0  # a task id that is not ours
    dropped_invalid: int = 0  # not a task, too big, unreadable


@dataclass(slots=True)
class UpdateCounts:
    """Telegram's webhook posts (adapters/telegram/webhook.py)."""

    received: int = 0  # posts on the webhook path
    queued: int = 0  # updates handed to the handlers
    refused: int = 0  # no or a wrong secret header (403): growing, a misconfigured instance
    invalid: int = 0  # not an update, too big, unreadable
    kept_already: int = 0  # a redelivery of an update still in the inbox: 200, not queued again
    unkept: int = 0  # the inbox could not be written (503: Telegram sends it again)
    taken_over: int = 0  # updates another instance accepted and never finished, handled here


@dataclass(slots=True)
class OutboxCounts:
    """What the outbox asked of the chat platforms (bot/outbox.py)."""

    sends: int = 0  # new messages (results, progress messages, answers)
    edits: int = 0  # edits made (coalesced ones never count)
    coalesced: int = 0  # edits replaced by a newer view before their turn came
    deletes: int = 0
    rate_limited: int = 0  # RateLimited (429) answers: each was waited out and tried again


@dataclass(slots=True)
class LedgerCounts:
    """Money (bot/policy.py): charges recorded and settle calls by outcome. A settle is
    idempotent in the store; one repeated after a restart or a re-post counts again here."""

    charges: int = 0
    units: int = 0  # units those charges were for
    kept: int = 0  # settled as spent (the task succeeded)
    refunds: int = 0  # settled as refunded (failed, rejected, timed out, interrupted)
    voids: int = 0  # a press that became a question: the answer pays instead


@dataclass(slots=True)
class DeliveryCounts:
    results: int = 0  # final results posted to their chat (claimed once, posted, recorded)


@dataclass(slots=True)
class LimiterCounts:
    """What the shared limiter (bot/limiter.py) cost: slots taken, the time spent asking the
    store for them, and the time calls waited for their slot (all zero without one)."""

    slots: int = 0
    refused: int = 0  # spare slots asked for and not free (the call looked again later)
    forgotten: int = 0  # rows of idle scopes deleted
    unavailable: int = 0  # calls sent on the in-memory pacing alone: the store did not answer
    store_s: float = 0.0
    waited_s: float = 0.0  # for every slot, the progress edits' turns included
    # waited, by kind of call: send, edit, delete, and "turn" (a progress edit's turn)
    waited_by_kind: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metrics:
    api: ApiCounts = field(default_factory=ApiCounts)
    tracking: TrackingCounts = field(default_factory=TrackingCounts)
    hooks: HookCounts = field(default_factory=HookCounts)
    updates: UpdateCounts = field(default_factory=UpdateCounts)
    outbox: OutboxCounts = field(default_factory=OutboxCounts)
    ledger: LedgerCounts = field(default_factory=LedgerCounts)
    deliveries: DeliveryCounts = field(default_factory=DeliveryCounts)
    limiter: LimiterCounts = field(default_factory=LimiterCounts)

    def snapshot(self) -> dict[str, Any]:
        """Every counter as plain JSON: one section per part (``webhook`` is the hook
        receiver's, the name `mjbot status` has always shown it under)."""
        return {
            "api": {**_plain(self.api), "tracking": self.api.tracking},
            "tracking": _plain(self.tracking),
            "webhook": _plain(self.hooks),
            "telegram_webhook": _plain(self.updates),
            "outbox": _plain(self.outbox),
            "ledger": _plain(self.ledger),
            "deliveries": _plain(self.deliveries),
            "limiter": _plain(self.limiter),
        }


def _plain(section: Any) -> dict[str, Any]:
    """A section's counters, a Counter as a plain dict (``asdict`` would mangle it)."""
    out: dict[str, Any] = {}
    for item in fields(section):
        value = getattr(section, item.name)
        out[item.name] = dict(sorted(value.items())) if isinstance(value, Counter) else value
    return out
