"""Human text from the API -> typed reasons: the only place mjbot reads the API's wording.

Logic keys on codes, statuses and customIds (mj-api.md §0, §14), but two things are said only
in words: a submit's ``description`` (trueai's queue full is code 9 with a text, P3; a button
the provider cannot do is code 4 with new-api's ``unknown_action:<customId>`` or trueai's
``未知的 Action 类型``, P11) and a failed task's ``failReason`` (§11.4: a few buckets for the
user, the raw text shown beside as detail). Everything else branches on the :class:`Reason`.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Reason(StrEnum):
    QUEUE_FULL = "queue_full"  # the provider's queue is full: try again later
    UNKNOWN_ACTION = "unknown_action"  # the provider cannot do this button
    MODERATION = "moderation"  # banned prompt, output or image filters, community standards
    INVALID = "invalid"  # invalid prompt, parameter or link
    TIMEOUT = "timeout"  # the provider gave up waiting for Midjourney
    ACCOUNT = "account"  # the provider's Midjourney account: subscription, blocked, no instance
    OTHER = "other"  # anything else (the text is still shown as it is)


_QUEUE_FULL = re.compile(r"队列已满|queue (is )?full", re.I)
_UNKNOWN_ACTION = re.compile(r"^unknown_action|未知的 ?Action", re.I)

# failReason buckets, case-insensitive, the first that matches wins (§11.4).
_FAIL_REASONS: tuple[tuple[Reason, re.Pattern[str]], ...] = (
    (Reason.MODERATION, re.compile(r"banned prompt|敏感词|filters|community standards|违规", re.I)),
    (Reason.INVALID, re.compile(r"invalid", re.I)),
    (Reason.TIMEOUT, re.compile(r"超时|timeout|timed out", re.I)),
    (Reason.QUEUE_FULL, re.compile(r"queue full|队列已满", re.I)),
    (Reason.ACCOUNT, re.compile(r"subscription|实例不可用|blocked", re.I)),
)


def of_description(text: str) -> Reason:
    """What a submit's description says beyond its code: QUEUE_FULL, UNKNOWN_ACTION or OTHER."""
    if _QUEUE_FULL.search(text):
        return Reason.QUEUE_FULL
    if _UNKNOWN_ACTION.search(text):
        return Reason.UNKNOWN_ACTION
    return Reason.OTHER


def of_fail_reason(text: str) -> Reason:
    """The bucket of a failed task's failReason (OTHER when none fits)."""
    return next((reason for reason, words in _FAIL_REASONS if words.search(text)), Reason.OTHER)
