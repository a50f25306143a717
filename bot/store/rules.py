"""What the stores decide alike, whatever their SQL: which earlier task keeps a button, which
API update moves a task forward, and how a settings document reads. Pure functions: each store
calls them inside its own transaction."""

from __future__ import annotations

import json
from typing import Any

from bot.mj.models import Task, TaskState
from bot.store import RESEND_FOR_S, ChatSettings, SendRule, TaskRow, UserSettings


def holds(earlier: TaskRow, again: bool, now: float) -> bool:
    """Whether a button's earlier task keeps it: while it runs; while its result is being
    posted (until posting is given up, RESEND_FOR_S); and for good once its result was
    posted, when the button is done once (``again`` False)."""
    if not earlier.is_final:
        return True
    if earlier.delivered_at is None:
        return (earlier.finished_at or earlier.created_at) > now - RESEND_FOR_S
    return not again and earlier.status == TaskState.SUCCESS


def moved_forward(
    rows: list[TaskRow], updates: dict[str, Task], now: float
) -> list[tuple[TaskRow, Task]]:
    """Move each row forward to its update (by task id) where that is progress, in place;
    the rows that moved with their updates. Duplicate, stale and out-of-order updates move
    nothing; the same rank moves a row only with a new preview image."""
    merged = []
    for row in rows:
        if row.task_id is None or row.is_final:
            continue
        task = updates[row.task_id]
        current = row.task
        if current is not None and task.rank <= current.rank:
            if task.rank < current.rank or task.image_url == current.image_url:
                continue
        row.snapshot = json.dumps(task.raw, ensure_ascii=False)
        row.status = task.status.value
        row.progress = task.progress
        row.updated_at = now
        if task.is_final:
            row.finished_at = now
        merged.append((row, task))
    return merged


def settings_document(text: str | None) -> dict[str, Any]:
    """A stored settings document (JSON text); anything but an object reads as empty."""
    data = json.loads(text) if text else {}
    return data if isinstance(data, dict) else {}


def user_settings(data: dict[str, Any]) -> UserSettings:
    return UserSettings.from_document(data)  # the type reads its own document (leniently)


def chat_settings(data: dict[str, Any]) -> ChatSettings:
    return ChatSettings.from_document(data)


def next_slot(
    now: float, rules: list[SendRule], states: dict[str, tuple[float, float]]
) -> tuple[float, dict[str, tuple[float, float]]]:
    """GCRA over several scopes at once: the first moment (not before ``now``) a call fits every
    rule, given each scope's (empty-bucket time, latest slot); and the scopes' states after the
    call is charged at that moment. The PostgreSQL store does the same in one statement."""
    at = now
    for rule in rules:
        tat, last = states.get(rule.scope, (0.0, 0.0))
        at = max(at, last if rule.ordered else at, tat - rule.lead)
    after = {}
    for rule in rules:
        tat, last = states.get(rule.scope, (0.0, 0.0))
        after[rule.scope] = (max(tat, at) + rule.step, at if rule.ordered else last)
    return at, after
