"""Typed, lenient models of the midjourney-proxy wire format.

Every server of the API family (Java OSS, Plus, trueai, new-api relays, openai-hk) speaks a
slightly different dialect; these parsers accept all of them and never raise on an unknown
status, action or extra field. Logic keys on numeric codes, statuses and customIds only, never
on human-readable text (see reference/mj-api.md §0, §14): what a description says is read
once, by bot.mj.failures, into ``Submission.reason``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.mj.failures import Reason, of_description


class TaskState(StrEnum):
    """Where a task is: the API's states and mjbot's own, one enum. The values are the strings
    stored in ``tasks.status`` (no migration: they always were)."""

    # mjbot's own: before the API knows the task, or after it gave up on it
    SUBMITTING = "SUBMITTING"  # the submit is in flight (the row is written first)
    REJECTED = "REJECTED"  # the API refused the submit, or it was lost (interrupted)
    TIMEOUT = "TIMEOUT"  # the tracker's time limit passed without a final state
    # the API's (mj-api.md §6)
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"  # waiting for /submit/modal (our question is asked meanwhile)
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCEL = "CANCEL"
    UNKNOWN = "UNKNOWN"  # a state the API invented; never stored

    @classmethod
    def parse(cls, value: Any) -> TaskState:
        """A state as the API sends it: one of its own, else UNKNOWN (an API saying
        "REJECTED" or "TIMEOUT" does not speak for mjbot)."""
        try:
            state = cls(str(value).upper())
        except ValueError:
            return cls.UNKNOWN
        return state if state in _API_STATES else cls.UNKNOWN

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def rank(self) -> int:
        """Merge rank: a task only ever moves to a higher rank (mj-api.md §6.3)."""
        return _RANK[self]


# Where a task ends; the store's queries list them in this order.
FINAL_STATES = (
    TaskState.SUCCESS,
    TaskState.FAILURE,
    TaskState.CANCEL,
    TaskState.REJECTED,
    TaskState.TIMEOUT,
)
_API_STATES = frozenset(
    {
        TaskState.NOT_START,
        TaskState.SUBMITTED,
        TaskState.MODAL,
        TaskState.IN_PROGRESS,
        TaskState.SUCCESS,
        TaskState.FAILURE,
        TaskState.CANCEL,
    }
)
_RANK = {
    TaskState.UNKNOWN: -1,
    TaskState.SUBMITTING: -1,
    TaskState.MODAL: 0,
    TaskState.NOT_START: 0,
    TaskState.SUBMITTED: 1,
    TaskState.IN_PROGRESS: 3,
    TaskState.FAILURE: 5,
    TaskState.CANCEL: 5,
    TaskState.SUCCESS: 5,
    TaskState.REJECTED: 5,
    TaskState.TIMEOUT: 5,
}


class Action(StrEnum):
    IMAGINE = "IMAGINE"
    UPSCALE = "UPSCALE"
    UPSCALE_HD = "UPSCALE_HD"
    VARIATION = "VARIATION"
    REROLL = "REROLL"
    DESCRIBE = "DESCRIBE"
    BLEND = "BLEND"
    SHORTEN = "SHORTEN"
    ZOOM = "ZOOM"
    PAN = "PAN"
    SWAP_FACE = "SWAP_FACE"
    VIDEO = "VIDEO"
    EDIT = "EDIT"
    RETEXTURE = "RETEXTURE"
    OTHER = "OTHER"

    @classmethod
    def parse(cls, value: Any) -> Action:
        text = str(value or "").upper()
        text = {
            "EDITS": "EDIT",
            "CUSTOM_ZOOM": "ZOOM",
            "OUTPAINT": "ZOOM",
            "INPAINT": "VARIATION",
            "HIGH_VARIATION": "VARIATION",
            "LOW_VARIATION": "VARIATION",
            "PIC_READER": "IMAGINE",
            "VIDEO_EXTEND": "VIDEO",
        }.get(text, text)
        try:
            return cls(text)
        except ValueError:
            return cls.OTHER


MAX_DEPTH = 16  # a task object nests 3 or 4 levels; deeper is junk (Unparseable)
_PRUNE_DEPTH = 2 * MAX_DEPTH  # a whole answer holds tasks: pruned ones still count as too deep
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class Unparseable(ValueError):
    """A task object we cannot use (nested beyond MAX_DEPTH); its ``id`` is known."""


def loads(text: str | bytes) -> Any:
    """JSON from the API (answers and callbacks), leniently: numbers out of range (``1e400``,
    ``NaN``, a 5,000-digit integer) become null, and nesting too deep for the standard parser
    (it recurses: a few KB of brackets raised RecursionError, not ValueError, and crashed the
    hook receiver) is cut off below _PRUNE_DEPTH. Raises ValueError when it is not JSON."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        return _json(text)
    except RecursionError:
        return _json(_prune(text, _PRUNE_DEPTH))


def _json(text: str) -> Any:
    return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_nothing)


def _int(text: str) -> int | None:
    return int(text) if len(text) <= 40 else None


def _float(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _nothing(text: str) -> None:
    return None


def _prune(text: str, limit: int) -> str:
    """``text`` with every array or object opened below ``limit`` levels replaced by null
    (a string-aware scan without recursion; only run when the parser hit its limit)."""
    parts, depth, cut, last = [], 0, -1, 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth == limit + 1:
                cut = match.start()
        elif token in ("]", "}"):
            if depth == limit + 1 and cut >= 0:
                parts += [text[last:cut], "null"]
                last, cut = match.end(), -1
            depth -= 1
    parts.append(text[last:])
    return "".join(parts)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iterative: no recursion to exhaust);
    such a value could not be stored again (json.dumps recurses as well)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _str(value: Any) -> str:
    """Coerce ids and texts to str; numbers become their decimal form (never floats); an
    object or a list where a text belongs is no text."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    try:
        return str(value)
    except ValueError:  # an integer beyond Python's digit limit
        return ""


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_or(value: Any, default: int) -> int:
    """An integer field: numbers and numeric strings; bools, inf, NaN and junk -> default."""
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _ms(value: Any) -> int | None:
    """Epoch milliseconds; 0, null and junk all mean 'not reached yet' (P14)."""
    return _int_or(value, 0) or None


_PERCENT = re.compile(r"(\d{1,3})(?:\.\d+)?\s*%?")


def parse_progress(value: Any) -> int:
    """'46%' -> 46; null, '' and non-numeric text -> 0 (P5, §6.6)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0, min(100, int(value))) if math.isfinite(value) else 0
    match = _PERCENT.search(_str(value))
    return max(0, min(100, int(match.group(1)))) if match else 0


@dataclass(frozen=True, slots=True)
class Button:
    """One button of a finished task, exactly as the API returned it."""

    custom_id: str
    label: str = ""
    emoji: str = ""
    style: int = 2

    @classmethod
    def from_json(cls, data: Any) -> Button | None:
        if not isinstance(data, dict):
            return None
        custom_id = _str(data.get("customId") or data.get("custom_id")).strip()
        if not custom_id:  # link buttons (style 5) carry no customId: nothing to press
            return None
        style = _int_or(data.get("style") or 2, 2)
        return cls(custom_id, _str(data.get("label")), _str(data.get("emoji")), style)


def _urls(value: Any) -> tuple[str, ...]:
    """imageUrls / videoUrls come as strings or as [{url, thumbnail}] objects."""
    if not isinstance(value, list):
        return ()
    urls = []
    for item in value:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and url:
            urls.append(url)
    return tuple(urls)


@dataclass(frozen=True, slots=True)
class Task:
    """A task as fetched, listed or called back. Unknown fields stay in ``raw``."""

    id: str
    action: Action = Action.OTHER
    status: TaskState = TaskState.UNKNOWN
    progress: int = 0
    prompt: str = ""
    prompt_en: str = ""
    description: str = ""
    state: str = ""
    image_url: str = ""
    fail_reason: str = ""
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    final_prompt: str = ""
    message_hash: str = ""
    mode: str = ""
    buttons: tuple[Button, ...] = ()
    image_urls: tuple[str, ...] = ()
    video_url: str = ""
    video_urls: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Task | None:
        """Parse one task object; None when it has no id (empty or foreign bodies).

        Every field is coerced or defaulted (``"buttons": 5`` is no buttons); a task nested
        beyond MAX_DEPTH raises Unparseable."""
        if not isinstance(data, dict):
            return None
        raw_id = data.get("id")
        if not isinstance(raw_id, str | int | float) or isinstance(raw_id, bool):
            return None  # an object or a list is no task id
        task_id = _str(raw_id).strip()
        if not task_id:
            return None
        if _deeper_than(data, MAX_DEPTH):
            raise Unparseable(task_id)
        props = _table(data.get("properties"))
        status = TaskState.parse(data.get("status"))
        items = data.get("buttons")
        buttons = tuple(
            b
            for b in (Button.from_json(item) for item in (items if isinstance(items, list) else ()))
            if b
        )
        progress = parse_progress(data.get("progress"))
        if status is TaskState.SUCCESS:
            progress = 100
        video_urls = _urls(data.get("videoUrls"))
        action = Action.parse(data.get("action"))
        final_prompt = _str(props.get("finalPrompt"))
        if not final_prompt and action in (Action.DESCRIBE, Action.SHORTEN):
            # Java OSS < 2.4 and older gateways put the result text only in promptEn/prompt
            final_prompt = _str(data.get("promptEn")) or _str(data.get("prompt"))
        return cls(
            id=task_id,
            action=action,
            status=status,
            progress=progress,
            prompt=_str(data.get("prompt")),
            prompt_en=_str(data.get("promptEn")),
            description=_str(data.get("description")),
            state=_str(data.get("state")),
            image_url=_str(data.get("imageUrl")),
            fail_reason=_str(data.get("failReason")),
            submit_time=_ms(data.get("submitTime")),
            start_time=_ms(data.get("startTime")),
            finish_time=_ms(data.get("finishTime")),
            final_prompt=final_prompt,
            message_hash=_str(props.get("messageHash") or data.get("jobId")),
            mode=_str(data.get("mode")).upper(),
            buttons=buttons,
            image_urls=_urls(data.get("imageUrls")),
            video_url=_str(data.get("videoUrl")) or (video_urls[0] if video_urls else ""),
            video_urls=video_urls,
            raw=data,
        )

    @property
    def rank(self) -> tuple[int, int]:
        """(status rank, progress): the order the merge never goes back on."""
        return (self.status.rank, self.progress)

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def display_prompt(self) -> str:
        """The prompt to show and prefill: MJ's normalised version when present (P16)."""
        return self.final_prompt or self.prompt_en or self.prompt


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # code 1
    QUEUED = "queued"  # code 22
    MODAL = "modal"  # code 21 on Plus/trueai: a MODAL task waits for /submit/modal
    EXISTS = "exists"  # code 21 on old Java OSS: the same job already exists
    QUEUE_FULL = "queue_full"  # code 23 (or 9 with that meaning, per provider)
    BANNED = "banned"  # code 24
    INVALID = "invalid"  # code 4 and friends
    NOT_FOUND = "not_found"  # code 3
    UNSUPPORTED = "unsupported"  # code 4 for a button this provider cannot do (P11)
    FAILED = "failed"  # code 9, 5, -1 and anything else

    @property
    def is_accepted(self) -> bool:
        return self in (Outcome.ACCEPTED, Outcome.QUEUED, Outcome.MODAL, Outcome.EXISTS)


_CODE_OUTCOME = {
    1: Outcome.ACCEPTED,
    22: Outcome.QUEUED,
    23: Outcome.QUEUE_FULL,
    24: Outcome.BANNED,
    4: Outcome.INVALID,
    3: Outcome.NOT_FOUND,
}


@dataclass(frozen=True, slots=True)
class Submission:
    """The envelope a submit answers with, classified by its numeric code."""

    code: int
    outcome: Outcome
    task_id: str = ""
    description: str = ""
    reason: Reason = Reason.OTHER  # what the description says beyond the code (failures.py)
    queue_position: int | None = None
    banned_word: str = ""
    final_prompt: str = ""
    result: Any = None
    properties: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Submission:
        """Parse an envelope ({code, description, result}) or trueai's {success, message}."""
        if not isinstance(data, dict):
            text = _str(data)[:500]
            return cls(-1, Outcome.FAILED, description=text, reason=of_description(text))
        code = _int_or(data.get("code", -1), -1)
        props = _table(data.get("properties"))
        description = _str(data.get("description") or data.get("message"))
        outcome = _CODE_OUTCOME.get(code, Outcome.FAILED)
        if code == 21:
            # P2: old Java OSS answers 21 "already exists" with the existing task's status.
            outcome = Outcome.EXISTS if "status" in props else Outcome.MODAL
        result = data.get("result")
        queue = _str(props.get("numberOfQueues"))
        submission = cls(
            code=code,
            outcome=outcome,
            description=description,
            reason=of_description(description),
            queue_position=int(queue) if queue.isdecimal() and len(queue) < 10 else None,
            banned_word=_str(props.get("bannedWord")),
            final_prompt=_str(props.get("finalPrompt")),
            result=result,
            properties=props,
        )
        ids = submission.task_ids
        return replace(submission, task_id=ids[0] if ids else "")

    @property
    def task_ids(self) -> tuple[str, ...]:
        """All ids in ``result`` (PicReader::all returns several, comma-joined)."""
        if isinstance(self.result, list):
            return tuple(_str(item) for item in self.result if _str(item))
        if isinstance(self.result, dict):  # relays that put the task object in ``result``
            task_id = _str(self.result.get("id")).strip()
            return (task_id,) if task_id else ()
        text = _str(self.result)
        return tuple(part.strip() for part in text.split(",") if part.strip())
