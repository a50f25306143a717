"""The store: everything a restart must not lose, behind one interface in the domain's words.

``Store`` is the protocol the rest of the bot uses: tasks and their message refs, button
presses, questions (modals), asks (waiting for an upload), settings, the ledger, access rules,
people, and the reports the admin page and /stats show. Writes that decide something (claim a
delivery, a press, an answer; charge inside a claim) are single transactions of the store, so
two concurrent updates can never both win.

Every SQL statement of the project lives in an implementation of this protocol:
``bot.store.sqlite.SQLiteStore`` (the composition root, ``bot.app``, opens it). A second
implementation is one class that satisfies ``Store`` and ``Ledger``, checked by the same tests.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Literal, Protocol, TypedDict, TypeVar, Unpack

from bot.chat import MessageRef
from bot.mj.models import FINAL_STATES, Task, TaskState
from bot.mj.prompt import STYLIZE_LEVELS, Model, Options, Reference, RefKind

log = logging.getLogger("bot.store")

# How long a finished result the chat refuses is posted again; then it is given up, and the
# button that made it may be pressed again (``add_child``).
RESEND_FOR_S = 86400.0
# A photo kept for a later answer (``keep_photo``): at most this many bytes. The use cases
# shrink a bigger photo first to what the API would be sent anyway (bot/usecases/kept.py).
KEPT_MAX_BYTES = 4_000_000

_KEY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


class StoreUnavailable(Exception):
    """The database cannot be reached or opened; the message names it without its password."""


class RequestTaken(Exception):
    """The request this write fulfils was taken over by another instance (``claim_request``:
    this one looked dead, or its inbox row was taken): nothing is written, nothing charged."""


def shown_url(url: str) -> str:
    """A database URL with its password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def new_key() -> str:
    """A short random task key: 10 chars of a 32-letter alphabet (50 bits)."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(10))


@dataclass
class TaskRow:
    key: str
    platform: str
    chat_id: str
    user_id: str
    kind: str
    status: str = TaskState.SUBMITTING  # a TaskState's value (the API's states and ours)
    lang: str = "en"
    label: str = ""
    prompt: str = ""
    mode: str = ""
    task_id: str | None = None
    parent_key: str | None = None
    progress: int = 0
    snapshot: str | None = None
    error: str | None = None
    request_ref: str | None = None
    progress_ref: str | None = None
    result_ref: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    delivered_at: float | None = None
    delivering_at: float | None = None
    charge_id: str | None = None  # the ledger row the current run is paid by
    lease_owner: str | None = None  # the instance following this live task (``lease_tasks``)
    lease_until: float | None = None  # until then; a lapsed lease is anyone's to take
    submitted_by: str | None = None  # the instance that submitted it, or sent its answer
    delivering_by: str | None = None  # the instance posting its result (``claim_delivery``)

    @property
    def task(self) -> Task | None:
        return Task.from_json(json.loads(self.snapshot)) if self.snapshot else None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    def ref(self, name: Literal["request", "progress", "result"]) -> MessageRef | None:
        """The message the task was asked in, shows its progress, or shows its result."""
        encoded = {
            "request": self.request_ref,
            "progress": self.progress_ref,
            "result": self.result_ref,
        }[name]
        return MessageRef.decode(encoded)


class TaskChange(TypedDict, total=False):
    """The columns of a task ``Store.update`` and ``Store.claim_modal`` may set (refs may be
    given as MessageRef). A wrong name or type is a type error, not a runtime surprise."""

    status: str
    lang: str
    label: str
    prompt: str
    mode: str
    task_id: str | None
    progress: int
    snapshot: str | None
    error: str | None
    request_ref: MessageRef | str | None
    progress_ref: MessageRef | str | None
    result_ref: MessageRef | str | None
    created_at: float
    finished_at: float | None
    delivered_at: float | None
    delivering_at: float | None
    charge_id: str | None


@dataclass(frozen=True)
class Slot:
    """What claiming a button found: the earlier task that keeps it (then nothing was
    inserted or paid), or, when the press won, whether it follows an earlier task."""

    held_by: TaskRow | None = None
    again: bool = False


@dataclass
class ModalRow:
    key: str
    kind: str
    prefill: str
    ask_chat: str | None
    ask_message: str | None
    created_at: float
    answered_at: float | None


# The message id an ask is recorded under before its message is sent (then ``record_ask``
# names the real one): a reply typed the instant the question appears still finds it.
PENDING_ASK = "asking:"


@dataclass(frozen=True)
class AskRow:
    """A command waiting for an upload: the message that asked, and what to run with it."""

    platform: str
    chat_id: str
    message_id: str
    user_id: str
    command: str
    args: str
    lang: str
    created_at: float
    answered_at: float | None
    answered_by: str | None = None  # the request whose answer claimed it (``claim_ask``)


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveReference:
    """An image (or a style code) kept as a reference for the following prompts: what
    ``/oref``, ``/sref`` and ``/ref`` keep, shown on progress as "🎯 oref photo#3 · ow 100"."""

    kind: RefKind
    url: str  # an image URL; a STYLE reference may be a code ("1234", "random")
    weight: float | None = None  # --ow / --sw / --iw; None: Midjourney's default
    label: str = ""  # where it came from, for people: "photo#3", "result ab12"

    @property
    def reference(self) -> Reference:
        return Reference(self.kind, self.url, self.weight)


@dataclass(frozen=True)
class Preset:
    """A named set of prompting choices (``/preset save portrait``), applied in one tap; the
    fields are UserSettings' own (``PRESET_FIELDS``), ``None`` meaning "the default"."""

    name: str
    model: Model | None = None
    raw: bool | None = None
    stylize: str | None = None
    personalize: bool | None = None
    profile_code: str | None = None
    variation: str | None = None
    draft: bool | None = None
    hd: bool | None = None
    quality: str | None = None
    suffix: str | None = None


PRESET_FIELDS = tuple(f.name for f in fields(Preset) if f.name != "name")


@dataclass(frozen=True)
class UserSettings:
    """One person's choices (``None``: not chosen, the default applies). The store keeps what
    it is given; which values are offered is the service's rule (``SETTING_CHOICES``).

    Stored as one JSON document (``document()`` / ``from_document()``): a name this version
    does not know is kept as it is, and a value of the wrong shape reads as "not chosen", so
    documents of older and newer versions stay readable without a migration."""

    mode: str | None = None  # speed: fast, relax, turbo (the API path prefix)
    suffix: str | None = None  # added to every prompt
    delivery: str | None = None  # photo, or file too
    lang: str | None = None
    menus: tuple[str, ...] = ()  # the settings menus they opened (only they may press them)
    # prompting (issue 16): each becomes a parameter the prompt lacks (bot.mj.prompt.compose)
    model: Model | None = None  # V7, V8.1, niji 7
    raw: bool | None = None  # --style raw
    stylize: str | None = None  # a level of STYLIZE_LEVELS: low, med, high, very_high
    personalize: bool | None = None  # --p
    profile_code: str | None = None  # the --p code in use (None: bare --p, the default profile)
    profile_codes: tuple[str, ...] = ()  # saved --p codes
    style_codes: tuple[str, ...] = ()  # saved --sref codes
    variation: str | None = None  # high, low: what V1-V4 do (Vary Strong / Subtle)
    remix: bool | None = None  # V / 🔄 ask for the new prompt first (enableRemix)
    draft: bool | None = None  # --draft (V7)
    hd: bool | None = None  # --hd (V8)
    quality: str | None = None  # --q
    references: tuple[ActiveReference, ...] = ()
    presets: tuple[Preset, ...] = ()

    def document(self) -> dict[str, Any]:
        """The JSON document to store (``None`` and empty lists: the name is removed)."""
        data = asdict(self)
        return {name: (value if value not in ((), []) else None) for name, value in data.items()}

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> UserSettings:
        """Read a stored document leniently (see the class)."""
        return cls(
            mode=_text(data.get("mode")),
            suffix=_text(data.get("suffix")),
            delivery=_text(data.get("delivery")),
            lang=_text(data.get("lang")),
            menus=_texts(data.get("menus")),
            model=_enum(Model, data.get("model")),
            raw=_flag(data.get("raw")),
            stylize=_text(data.get("stylize")),
            personalize=_flag(data.get("personalize")),
            profile_code=_text(data.get("profile_code")),
            profile_codes=_texts(data.get("profile_codes")),
            style_codes=_texts(data.get("style_codes")),
            variation=_text(data.get("variation")),
            remix=_flag(data.get("remix")),
            draft=_flag(data.get("draft")),
            hd=_flag(data.get("hd")),
            quality=_text(data.get("quality")),
            references=tuple(
                r for r in map(_reference, _items(data.get("references"))) if r is not None
            ),
            presets=tuple(p for p in map(_preset, _items(data.get("presets"))) if p is not None),
        )

    def preset(self, name: str) -> Preset:
        """These settings' prompting choices as a preset called ``name``."""
        return Preset(name, **{f: getattr(self, f) for f in PRESET_FIELDS})

    def with_preset(self, preset: Preset) -> UserSettings:
        """These settings with a preset's choices applied (all of them, defaults included)."""
        return replace(self, **{f: getattr(preset, f) for f in PRESET_FIELDS})

    def under(self, chat: ChatSettings) -> UserSettings:
        """These settings with the chat's defaults (set by its admins) where none is chosen."""
        return replace(
            self,
            model=self.model or chat.model,
            raw=self.raw if self.raw is not None else chat.raw,
            stylize=self.stylize or chat.stylize,
            draft=self.draft if self.draft is not None else chat.draft,
            suffix=self.suffix or chat.suffix,
        )

    def options(self) -> Options:
        """The choices that become prompt parameters (``bot.mj.prompt.compose``)."""
        level = STYLIZE_LEVELS.get(self.stylize or "")
        codes = (self.profile_code,) if self.profile_code else ()
        return Options(
            model=self.model,
            raw=bool(self.raw),
            stylize=level,
            personalize=bool(self.personalize),
            profile_codes=codes,
            draft=bool(self.draft),
            hd=bool(self.hd),
            quality=self.quality,
            references=tuple(r.reference for r in self.references),
            suffix=self.suffix or "",
        )


@dataclass(frozen=True)
class ChatSettings:
    """One chat's choices, set by its admins (the same document rules as UserSettings)."""

    buttons: str | None = None  # chat: anyone may press a result's buttons; owner: its owner
    # prompting defaults for everyone in the chat (a person's own choice wins)
    model: Model | None = None
    raw: bool | None = None
    stylize: str | None = None
    speed: str | None = None
    draft: bool | None = None
    suffix: str | None = None

    def document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> ChatSettings:
        return cls(
            buttons=_text(data.get("buttons")),
            model=_enum(Model, data.get("model")),
            raw=_flag(data.get("raw")),
            stylize=_text(data.get("stylize")),
            speed=_text(data.get("speed")),
            draft=_flag(data.get("draft")),
            suffix=_text(data.get("suffix")),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], value: Any) -> _E | None:
    try:
        return kind(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _reference(data: dict[str, Any]) -> ActiveReference | None:
    kind, url = _enum(RefKind, data.get("kind")), _text(data.get("url"))
    if kind is None or not url:
        return None
    return ActiveReference(kind, url, _number(data.get("weight")), _text(data.get("label")) or "")


def _preset(data: dict[str, Any]) -> Preset | None:
    name = _text(data.get("name"))
    if not name:
        return None
    read = UserSettings.from_document(data)  # the same fields, read the same way
    return Preset(name, **{f: getattr(read, f) for f in PRESET_FIELDS})


# --- the ledger ------------------------------------------------------------------------------

# How an attempt's charge ended: kept, given back, or nothing ran (a press that became a
# question: neither spent nor a failure).
Outcome = Literal["success", "refunded", "void"]


@dataclass(frozen=True)
class Charge:
    """One attempt's charge, recorded as pending until it is settled."""

    id: str
    task_key: str
    platform: str
    user_id: str
    chat_id: str
    action: str
    units: int
    day: str  # UTC, YYYY-MM-DD
    month: str  # UTC, YYYY-MM
    created_at: float


class Ledger(Protocol):
    """The ledger as one transaction sees it: what a payment reads and writes inside a claim,
    so the check and the charge stand or fall with the claim (``Pay``)."""

    async def running(self, platform: str, user_id: str) -> int:
        """Charges of this person still pending (jobs in flight)."""
        ...

    async def spent(
        self,
        *,
        day: str | None = None,
        month: str | None = None,
        platform: str | None = None,
        user_id: str | None = None,
        chat_id: str | None = None,
    ) -> int:
        """Units spent (pending or kept) by the charges matching every given field."""
        ...

    async def record(self, charge: Charge) -> None:
        """Record a pending charge."""
        ...


# Pays for a claim inside the claim's own transaction: the charge's id (None when nothing is
# charged); raising rolls the claim back with the charge (``bot.policy.Policy.charge_in``).
Pay = Callable[[Ledger], Awaitable[str | None]]


@dataclass(frozen=True)
class Usage:
    """One person's units and jobs (/quota, /info)."""

    today: int
    month: int
    running: int
    jobs: int
    refunded: int


@dataclass(frozen=True)
class Spender:
    platform: str
    user_id: str
    handle: str
    units: int


@dataclass(frozen=True)
class Stats:
    """The bot's spending (/stats): today, the last seven days, its top spenders."""

    today: int
    jobs_today: int
    week: int
    jobs_week: int
    failures_week: int
    top: list[Spender] = field(default_factory=list)


# --- reports (the admin page) ----------------------------------------------------------------


@dataclass(frozen=True)
class UserTasks:
    """One person's tasks since a time."""

    platform: str
    user_id: str
    tasks: int
    succeeded: int
    failed: int


@dataclass(frozen=True)
class TaskCount:
    """Tasks created in one interval of a chart, starting at ``start``."""

    start: int
    tasks: int
    succeeded: int


# Access rules: subject "user" or "chat", rule "allow", "deny" or "ban".
AccessSubject = str
AccessRule = str


@dataclass(frozen=True)
class InstanceRow:
    """One mjbot process sharing the database, as it last reported itself (``heartbeat``)."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    expires_at: float  # alive until then unless it beats again

    def alive(self, now: float) -> bool:
        return self.expires_at > now


def this_instance() -> InstanceRow:
    """A new identity for this process among those sharing a database: its host and pid, and
    a random part (a pid is reused after a restart; an identity never is)."""
    host = socket.gethostname()
    pid = os.getpid()
    return InstanceRow(f"{host}-{pid}-{secrets.token_hex(3)}", host, pid, time.time(), 0.0, 0.0)


@dataclass(frozen=True)
class InboxRow:
    """An update the webhook receiver accepted (and answered 200 for) and that is not handled
    yet: the update's JSON as posted, and the instance handling it (``Store.accept_update``)."""

    event: str  # the gate's event, ``telegram:<update_id>``
    body: str
    owner: str
    received_at: float
    taken_at: float  # when ``owner`` took it or last said it still has it (``keep_updates``)
    takes: int  # 1 when its receiver handles it; more after each take-over


# A copy of a result being posted for this long without news: its poster died (``claim_copy``).
COPY_POSTING_S = 120.0
# Album parts (and abandoned windows) are forgotten this long after they arrived.
ALBUM_KEPT_S = 86400.0
# A posted copy is pointed to for this long; a press after that posts a new one (``prune``).
COPY_KEPT_S = 30 * 86400.0
# Rows past their time (kept photos, copies) are deleted at most this often, by the heartbeat
# every instance beats (``Store.prune``, ``PruneClock``).
PRUNE_EVERY_S = 600.0


class PruneClock:
    """When a store prunes next (``Store.prune``): from its heartbeat, the first beat and then
    at most every ``PRUNE_EVERY_S``. A failed prune is logged and tried at the next turn: it
    must never fail the heartbeat (an instance that cannot beat claims nothing)."""

    def __init__(self) -> None:
        self._last: float | None = None

    async def maybe(self, prune: Callable[[], Awaitable[int]]) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < PRUNE_EVERY_S:
            return
        self._last = now
        try:
            gone = await prune()
        except Exception as exc:
            log.warning(
                "pruning expired rows failed (%s); next try in %.0f s",
                type(exc).__name__,
                PRUNE_EVERY_S,
            )
        else:
            if gone:
                log.info("pruned %d expired rows (kept photos, copies)", gone)


@dataclass(frozen=True)
class CopyClaim:
    """What claiming a copy found: mine to post (then ``copy_posted`` or ``drop_copy``), or
    where the copy is (None while somebody else posts it)."""

    mine: bool
    ref: MessageRef | None = None


@dataclass(frozen=True)
class SendRule:
    """One limit a send must fit, shared by every instance (``Store.take_slot``): at most
    ``burst`` calls at once in ``scope``, then one per ``interval_s``. ``cost`` is how many
    calls this one counts as (an album's pictures); ``reserve`` calls of the burst are left to
    others (progress edits leave room for results). An ``ordered`` call keeps its place: it
    goes after the latest slot an ordered call got in the scope, and none goes before it. A
    progress edit is not ordered: one booked for later must not hold back the messages that
    come after it (with it ordered, the reserve was worth nothing: a result waited for the
    edit booked before it). ``margin_s`` is how late a call may reach the platform after its
    slot: a burst is that much shorter, so a call delayed on its way cannot arrive together
    with the calls booked after it (with a delay of at most ``margin_s``, any calls arriving
    within a window had their slots within that window widened by ``margin_s``)."""

    scope: str
    interval_s: float
    burst: int = 1
    cost: int = 1
    reserve: int = 0
    ordered: bool = True
    margin_s: float = 0.0

    @property
    def lead(self) -> float:
        """How far ahead of a scope's empty-bucket time this call may go (GCRA's tolerance,
        less what the cost, the reserve and the margin take)."""
        room = max(1, self.burst - self.reserve)
        return max(0.0, (room - min(self.cost, room)) * self.interval_s - self.margin_s)

    @property
    def step(self) -> float:
        """How far the call moves the scope's empty-bucket time."""
        return self.cost * self.interval_s


@dataclass(frozen=True)
class Holder:
    """Who holds a singleton (``Store.hold_singleton``) and for how many more seconds."""

    name: str
    owner: str
    expires_in: float


class Store(Protocol):
    """Everything the bot keeps. Each method is one transaction (or one consistent read).

    Several processes ("instances") may share one database. Each store object is one of them,
    ``instance``: what it submits, answers, posts and follows is recorded as its own, and an
    instance's claim is taken over only once its heartbeat has lapsed (``heartbeat``)."""

    instance: InstanceRow  # who this process is (``this_instance()`` unless given)

    async def close(self) -> None: ...

    # --- tasks ---------------------------------------------------------------------------------

    async def add_task(self, row: TaskRow, pay: Pay | None = None, *, request: str = "") -> TaskRow:
        """Insert a task, and pay for it in the same transaction (a refusal inserts nothing).
        ``request``: the update it fulfils, whose claim is confirmed in the same transaction
        (``claim_request``; RequestTaken when it is another instance's now)."""
        ...

    async def task(self, key: str) -> TaskRow | None: ...

    async def task_by_id(self, task_id: str) -> TaskRow | None: ...

    async def task_by_message(self, ref: MessageRef) -> TaskRow | None:
        """The task whose result (or progress) message this is."""
        ...

    async def update(self, key: str, **values: Unpack[TaskChange]) -> None:
        """Set columns of one task (``TaskChange`` names them)."""
        ...

    async def durations(self, kind: str, mode: str, since: float, limit: int = 200) -> list[float]:
        """How long (finish minus creation, seconds) the tasks of this kind and mode that
        succeeded since ``since`` took, newest first, at most ``limit``."""
        ...

    async def merge(self, tasks: Iterable[Task]) -> list[tuple[TaskRow, Task]]:
        """Apply the API updates that move their tasks forward, in one transaction; the rows
        that moved with their updates, finished tasks first."""
        ...

    async def live_tasks(self) -> list[TaskRow]:
        """Every task the API is still working on, whoever follows it (reports)."""
        ...

    async def queue_confirmation(self, task_id: str, image_url: str, window_s: float) -> bool:
        """A final callback to confirm with the API, for whichever instance confirms next.
        True when no other was queued in the last ``window_s``: this one opens the fleet's
        window (its instance takes the queue when the window ends; the others' callbacks
        wait for that). One queued longer ago than a window is left over (its window's take
        missed it, or its instance died): it opens nothing, and the next window takes it."""
        ...

    async def take_confirmations(
        self, limit: int, only: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        """Up to ``limit`` queued confirmations, oldest first, taken out of the queue (two
        instances never take the same one): (task id, the image its callback named). With
        ``only``, of those ids alone."""
        ...

    async def moved_tasks(self, owner: str, since: float) -> list[TaskRow]:
        """The live tasks ``owner`` holds the lease of whose row changed after ``since``
        (``updated_at``): steps another instance merged (a callback the load balancer sent
        there), for the holder to show (``Tracker``'s watch)."""
        ...

    async def undelivered(self) -> list[TaskRow]:
        """Final tasks whose result never reached the chat and that no live instance is on:
        the one posting it (``delivering_by``) or, before anyone claimed it, the one that
        followed it (``lease_owner``) is dead (or unknown). Not this instance's own."""
        ...

    async def unsent(self, idle_s: float, within_s: float = RESEND_FOR_S) -> list[TaskRow]:
        """Final results whose post failed (released) ``idle_s`` ago or more, finished within
        ``within_s``, that this instance owns or whose owner is dead."""
        ...

    async def interrupted(self) -> list[TaskRow]:
        """Submits whose instance died before the API answered them (``submitted_by`` has
        no live heartbeat). Taken over in the same transaction: the rows returned are this
        instance's to report, and no other instance gets them."""
        ...

    async def answers_in_flight(self) -> list[TaskRow]:
        """Answers (to a question) whose instance died before the API answered them; taken
        over like ``interrupted``."""
        ...

    async def stale_progress(self) -> list[TaskRow]: ...

    async def adopt_progress(self, key: str, ref: MessageRef) -> bool: ...

    async def claim_delivery(self, key: str) -> bool:
        """True exactly once per task at a time: whoever gets True posts the result. A claim
        of an instance whose heartbeat lapsed (it died while posting) is taken over."""
        ...

    async def delivered(self, key: str, result_ref: MessageRef | None) -> None: ...

    async def release_delivery(self, key: str) -> None: ...

    async def first_time(self, event: str) -> bool:
        """True the first time an event is seen, for good (e.g. an outsider told once)."""
        ...

    # A request (a platform update) is claimed by the instance handling it, and is only done
    # for good once its effect is durable: confirmed in the same transaction as its first
    # paid write (``request=`` of add_task, add_child, claim_modal), or when its handling
    # ended (``request_done``). An instance killed in between leaves a claim that is not
    # done; the update replayed elsewhere (Telegram's inbox, a redelivery) runs once more.

    async def claim_request(self, event: str) -> bool:
        """True when this instance is to handle the update ``event`` ("": always): it is
        new, or claimed by an instance that died before it was done (no live heartbeat, or
        its inbox row was taken over by this instance). False for a redelivery: done, or in
        the hands of a live instance (or of this one). Two instances never both get True."""
        ...

    async def request_done(self, event: str) -> None:
        """This instance's claim on ``event`` is done: later deliveries are redeliveries."""
        ...

    async def recent_tasks(self, platform: str, user_id: str, limit: int = 10) -> list[TaskRow]: ...

    # --- presses, questions, asks ----------------------------------------------------------

    async def add_child(
        self,
        row: TaskRow,
        parent_key: str,
        button: str,
        *,
        again: bool = True,
        pay: Pay | None = None,
        request: str = "",
    ) -> Slot: ...

    async def add_modal(self, key: str, kind: str, prefill: str) -> None: ...

    async def set_modal_ask(self, key: str, ref: MessageRef) -> None: ...

    async def modal(self, key: str) -> ModalRow | None: ...

    async def modal_for_reply(
        self, platform: str, chat_id: str, message_id: str
    ) -> ModalRow | None: ...

    async def unrecorded_modal(
        self, platform: str, chat_id: str, user_id: str
    ) -> ModalRow | None: ...

    async def claim_modal(
        self,
        key: str,
        pay: Pay | None = None,
        *,
        request: str = "",
        **values: Unpack[TaskChange],
    ) -> bool: ...

    async def reopen_modal(self, key: str, prefill: str) -> bool: ...

    async def add_ask(
        self, ref: MessageRef, user_id: str, command: str, args: str, lang: str
    ) -> None: ...

    async def ask(self, platform: str, chat_id: str, message_id: str) -> AskRow | None: ...

    async def record_ask(self, platform: str, chat_id: str, pending: str, message_id: str) -> None:
        """The message that asks was sent: its id replaces the ``pending`` one."""
        ...

    async def unrecorded_ask(
        self, platform: str, chat_id: str, user_id: str, since: float
    ) -> AskRow | None:
        """The user's newest open ask in that chat whose message id is still pending (a reply
        typed in the instant between sending the question and recording its id)."""
        ...

    async def claim_ask(
        self, platform: str, chat_id: str, message_id: str, alias: str = "", *, request: str = ""
    ) -> bool:
        """True once per ask, whether named by its message id or by ``alias`` (its pending
        id, when the reply found it before the id was recorded); the claim is ``request``'s
        (the gate's event of the answer). True again for that same request: it runs again
        only when the gate let it (its instance died before anything of it was paid, so the
        work the claim was for was never stored), and its answer must not be lost then."""
        ...

    # --- settings ------------------------------------------------------------------------------

    async def user_settings(self, platform: str, user_id: str) -> UserSettings: ...

    async def change_user_settings(
        self, platform: str, user_id: str, change: Callable[[UserSettings], UserSettings]
    ) -> UserSettings:
        """Read, ``change`` and write one person's settings in one transaction; the result."""
        ...

    async def chat_settings(self, platform: str, chat_id: str) -> ChatSettings: ...

    async def change_chat_settings(
        self, platform: str, chat_id: str, change: Callable[[ChatSettings], ChatSettings]
    ) -> ChatSettings: ...

    async def keep_hook_secret(self, candidate: str) -> str:
        """The notifyHook URL's secret: the one kept, or ``candidate`` kept from now on."""
        ...

    # --- what instances sharing the database agree on (album windows, copies) ----------------

    async def join_album(self, album: str, part: str, body: str) -> int:
        """Add a part (``body``: its message) to ``album``'s window: the window's arrivals
        now, this one included, which the caller hands to ``take_album`` after its wait. A
        part already in the open window (redelivered) arrives again: it re-arms the window.
        0 when the part was taken with its album already (drop it, unless it is the part
        that took it: ``retake_album``). A part of an album taken before it came opens a
        window of its own."""
        ...

    async def take_album(self, album: str, arrivals: int, by: str) -> list[str] | None:
        """Close ``album``'s window and take its parts' bodies (in the order they joined),
        if it has had exactly ``arrivals`` arrivals: of the parts waiting, the last one to
        arrive (``by``) takes them all, once. None when a part arrived since (it will take
        them), or the album was taken."""
        ...

    async def retake_album(self, album: str, by: str) -> list[str] | None:
        """The bodies the part ``by`` took ``album`` with (``take_album``), again, for its
        update replayed: its instance died before the album's work was stored, and the gate
        decides whether it runs again (it does only when nothing of it was paid). None when
        ``by`` took nothing (another part took the album: this one is a redelivery)."""
        ...

    async def claim_copy(self, slot: str, *, fresh_for: float | None = None) -> CopyClaim:
        """Claim the posting of a copy (``slot`` names it: result and what). Mine when none was
        posted, when its poster gave no sign for ``COPY_POSTING_S`` (it died), or when the
        copy posted is older than ``fresh_for`` seconds (None: a copy stays fresh). Otherwise
        where it is, or None while another caller posts it."""
        ...

    async def copy_posted(self, slot: str, ref: MessageRef) -> None:
        """The claimed copy is out, at ``ref``."""
        ...

    async def drop_copy(self, slot: str) -> None:
        """The claimed copy was not posted: the next press claims it again."""
        ...

    async def keep_photo(self, key: str, data: bytes, keep_for_s: float) -> None:
        """Keep ``data`` under ``key`` (replacing what was kept there) for ``keep_for_s``
        seconds, for whichever instance the answer reaches; photos past their time are pruned
        here. More than ``KEPT_MAX_BYTES`` raises ValueError."""
        ...

    async def kept_photo(self, key: str, *, renew_for_s: float | None = None) -> bytes | None:
        """The photo kept under ``key``; None when none is, or its time is up. ``renew_for_s``:
        it is kept that long from now on (unless it was kept longer already)."""
        ...

    async def prune(self) -> int:
        """Delete the rows past their time: kept photos past their ``expires_at``, copies
        claimed but not posted for ``COPY_POSTING_S`` (their poster died) and copies posted
        ``COPY_KEPT_S`` ago. How many rows went. The store's own ``heartbeat`` calls it, at
        most every ``PRUNE_EVERY_S`` (``PruneClock``): a bot that keeps nothing new still
        sheds what it kept."""
        ...

    # --- the ledger ----------------------------------------------------------------------------

    async def charge(self, pay: Pay) -> str | None:
        """Pay outside any claim, in a transaction of its own."""
        ...

    async def settle_charge(self, charge_id: str, outcome: Outcome) -> None:
        """End one pending charge (settling twice, or another attempt's, changes nothing)."""
        ...

    async def refunded_units(self, charge_id: str) -> int:
        """The units a failed attempt's charge gives back: its units while pending (a failure
        is settled as refunded) or refunded; 0 when voided, kept or unknown."""
        ...

    async def usage(self, platform: str, user_id: str, day: str, month: str) -> Usage: ...

    async def stats(self, day: str, week_from: str) -> Stats: ...

    # --- access and people ---------------------------------------------------------------------

    async def access_rule(
        self, platform: str, subject: AccessSubject, ident: str
    ) -> AccessRule | None: ...

    async def set_access_rule(
        self,
        platform: str,
        subject: AccessSubject,
        ident: str,
        rule: AccessRule | None,
        by_user: str,
    ) -> None: ...

    async def remember_person(
        self, platform: str, user_id: str, handle: str, name: str
    ) -> None: ...

    async def person_by_handle(self, platform: str, handle: str) -> str | None: ...

    # --- reports -------------------------------------------------------------------------------

    async def unfinished_tasks(self, limit: int) -> list[TaskRow]:
        """Tasks not final yet (in flight, asking, submitting), newest first."""
        ...

    async def latest_tasks(self, limit: int) -> list[TaskRow]:
        """Every platform's newest tasks."""
        ...

    async def tasks_per_user(self, since: float) -> list[UserTasks]:
        """Tasks created since a time, per person, most first."""
        ...

    async def tasks_per_interval(self, since: float, interval_s: int) -> list[TaskCount]:
        """Tasks created since a time, counted per interval (those with none are left out)."""
        ...

    # --- instances and leases (several processes on one database) ------------------------------

    async def heartbeat(self, instance: InstanceRow, ttl_s: float) -> None:
        """Say ``instance`` is alive for ``ttl_s`` more seconds, and extend every lease it
        holds as far (one statement for all its tasks)."""
        ...

    async def instances(self) -> list[InstanceRow]:
        """Every instance that ever beat, newest heartbeat first (dead ones show as such)."""
        ...

    async def lease_tasks(self, owner: str, ttl_s: float, limit: int) -> list[TaskRow]:
        """The live tasks ``owner`` follows: all those it holds (their leases are extended by
        ``heartbeat``, not here: a tick writes only what changes hands) and up to ``limit``
        more that nobody holds or whose lease lapsed (taken for ``ttl_s``). Two instances
        asking at once never get the same task."""
        ...

    async def release_tasks(self, owner: str) -> None:
        """Give up every lease of ``owner`` (a clean stop: the others take them at once)."""
        ...

    # --- shared limits and singletons (several instances, one database) --------------------------

    async def take_slot(self, rules: list[SendRule]) -> float:
        """Reserve the next moment a call fits every rule, for every instance on this database;
        the seconds to wait until then (0: now). Every rule's scope is charged at that same
        moment, in one transaction; a scope's slots go out in time order."""
        ...

    async def try_slot(self, rules: list[SendRule]) -> float:
        """Take a slot only if it is free now: 0 when taken, else the seconds until one could
        be, with nothing charged (the caller looks again then). For calls that can wait
        without holding anyone back: a slot booked ahead would delay the calls after it."""
        ...

    async def forget_slots(self, idle_s: float) -> int:
        """Delete the send slots of scopes idle for ``idle_s`` (a scope without a row is a full
        bucket, the same as one idle that long); how many went."""
        ...

    async def hold_singleton(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew ``name`` for ``owner`` for ``ttl_s`` seconds; False while another
        owner holds it (until its time runs out)."""
        ...

    async def release_singleton(self, name: str, owner: str) -> None:
        """Give ``name`` up if ``owner`` holds it (a clean stop: another takes it at once)."""
        ...

    async def singleton(self, name: str) -> Holder | None:
        """Who holds ``name`` now (None: nobody, or the time ran out)."""

    # --- the inbox (updates accepted by webhook, not handled yet) ------------------------------

    async def accept_update(self, event: str, body: str, owner: str) -> bool:
        """Keep an update before answering for it: True when it is new (``owner`` handles
        it), False when it is kept already (a redelivery while the first is in hand: a
        no-op)."""
        ...

    async def keep_updates(self, owner: str) -> None:
        """``owner`` still has its updates in hand: their ``taken_at`` becomes now."""
        ...

    async def take_updates(self, owner: str, idle_s: float, limit: int) -> list[InboxRow]:
        """Take, for ``owner``, up to ``limit`` updates (oldest first) whose owner has not
        said it still has them for ``idle_s`` seconds (it died; or it is ``owner`` itself and
        lost them, e.g. their end was not recorded). Two instances asking at once never take
        the same update."""
        ...

    async def update_handled(self, event: str, owner: str) -> None:
        """``owner`` handled the update: it leaves the inbox, if it is still ``owner``'s. One
        another instance took over meanwhile (``owner`` stalled) stays: it is the taker's to
        handle and take off; deleted here, a kill -9 of the taker would lose it."""
        ...
