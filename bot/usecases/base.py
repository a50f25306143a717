"""What every use case shares: the service's parts, who is asking, and how to answer.

The use cases themselves live beside this file, one module per concept (submitting,
preferences, administration, presses, questions, following); ``bot.usecases.Service`` puts
them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from bot import media, results
from bot.buttons import Token
from bot.chat import MessageRef, Requester
from bot.i18n import LANGUAGES, normalize, t
from bot.mj import custom_ids
from bot.mj.client import MjClient
from bot.mj.models import Action, Button, Submission, Task
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import Store, TaskRow, UserSettings
from bot.usecases.jobs import Kind
from bot.usecases.submitter import Submitter
from bot.views import View

log = logging.getLogger("bot.service")  # the name log readers already filter on
T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="ServiceBase")

# The requester admitted by the gate for the request being handled (set by ``through``): a
# use case called from inside that request with that requester does not pass the gate again.
_ADMITTED: ContextVar[Requester | None] = ContextVar("admitted", default=None)

MAX_PROMPT = 4000  # MJ refuses longer prompts; say so before spending anything
BLEND_DIMENSIONS = {"portrait": "PORTRAIT", "square": "SQUARE", "landscape": "LANDSCAPE"}
MODES = ("fast", "relax")
# What the settings menu offers, per setting (bot/usecases/preferences.py draws the menu from
# it): a press must name one of these values, and a stored value outside them (a forged
# ``mode=turbo`` saved before presses were checked) is ignored when settings are read.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": MODES,
    "delivery": ("photo", "file"),
    "lang": LANGUAGES,
    "suffix": ("-",),  # clears it; a suffix itself is typed: /settings <suffix>
}
IMAGE_WORKERS = 2  # image conversions at once (bench/hostile_uploads.py measures the peak)


@dataclass(frozen=True)
class Notice:
    """A short answer to a button press (a toast)."""

    text: str
    alert: bool = False
    # The message it is about (the task already running), for platforms that can link to it.
    where: MessageRef | None = None


class ServiceBase:
    """The parts every use case works with, and the gate every request passes."""

    if TYPE_CHECKING:
        # What one use case calls on another. Each is defined by one module of this package
        # (named below) and ``Service`` has them all; declared here so that every module is
        # checked against the same signatures.

        # submitting.py
        async def start_kind(
            self, kind: Kind, req: Requester, args: str, images: Sequence[bytes] = ()
        ) -> None: ...

        # preferences.py
        async def press_setting(self, req: Requester, name: str, value: str) -> Notice: ...
        async def _seed(self, req: Requester, row: TaskRow) -> None: ...

        # questions.py
        async def _ask_modal(
            self,
            row: TaskRow,
            progress: MessageRef | None,
            submission: Submission,
            kind: str,
            pick: str,
        ) -> None: ...
        async def _ask_again(self, row: TaskRow) -> None: ...

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        downloader: media.Downloader,
        *,
        cache: media.MediaCache | None = None,
        notify_hook: str = "",
        default_mode: str = "",
        webapp_url: str = "",
        policy: Policy | None = None,
    ) -> None:
        self.policy = policy
        self.store = store
        # The one path that spends money (submitter.py); a question the API asks on a
        # submit is asked by questions.py.
        self.submitter = Submitter(
            store, client, outbox, policy, spawn=self.spawn, ask_modal=self._ask_modal
        )
        self.client = client
        self.outbox = outbox
        self.downloader = downloader
        self.cache = cache
        self.notify_hook = notify_hook
        self.default_mode = default_mode
        self.webapp_url = webapp_url
        self._previews: dict[str, tuple[str, bytes]] = {}  # key -> (url, jpeg)
        self._showing: set[str] = set()  # finished tasks being posted again (presses.py)
        # (task, "file"|"split") -> where its copy was posted; None while posting (presses.py)
        self._extras: dict[tuple[str, str], MessageRef | None] = {}
        # task id -> (rank, preview url) last handled: a cache only, the store's merge decides
        self._last_seen: dict[str, tuple[tuple[int, int], str]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # All image work (uploads, results, masks, previews) runs here, two at a time: under
        # load this bounds memory and keeps threads from starving the event loop. A pool of
        # its own, not the shared default executor: decoding big grids in many threads at
        # once drove peak memory up in the benchmark (251 -> 186 MB); with decoding capped
        # at media.MAX_PIXELS two conversions at once stay under ~170 MB.
        self._images = ThreadPoolExecutor(max_workers=IMAGE_WORKERS, thread_name_prefix="images")

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work after answering the user (a press is acknowledged before the submit)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def convert(self, function: Callable[..., T], *args: Any) -> T:
        """Run image work (bot.media, bot.mask) off the event loop in the bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._images, functools.partial(function, *args))

    async def close(self, grace_s: float = 10.0) -> None:
        """Let work in flight (submits, results being posted) finish, for a while: what is
        cut off is picked up by the next start (interrupted submits, unposted results)."""
        if self._background:
            _, late = await asyncio.wait(self._background, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._images.shutdown(wait=False, cancel_futures=True)

    async def who(self, req: Requester) -> Requester:
        """The requester with their language setting applied (the client language otherwise)."""
        lang = (await self.user_settings(req)).lang
        return replace(req, language=normalize(lang)) if lang else req

    async def enter(self, req: Requester, *, quiet: bool = False) -> Requester | None:
        """The gate every use case passes: the requester (language applied) if admitted.

        Outsiders hear one polite message per chat, then silence: per chat, not per person,
        so a group full of strangers is not filled with refusals (nor a spam loop fed). Where
        refusals are private (Discord answers the person's own interaction), nobody else sees
        them and an unanswered command would just hang: there every attempt is told.
        """
        if _ADMITTED.get() is req:
            return req  # already through the gate in this request (see ``through``)
        req = await self.who(req)
        if self.policy is None:
            return req
        await self.policy.remember(req)
        if await self.policy.admitted(req):
            return req
        private = self.outbox.private_replies(req.platform)
        told = f"told:{req.platform}:{req.chat_id}"
        if not quiet and (private or await self.store.first_time(told)):
            await self.tell(req, t("access.denied", req.language))
        return None

    @contextlib.contextmanager
    def through(self, req: Requester) -> Iterator[None]:
        """Handle the rest of a request with ``req``, the requester the gate admitted:
        the use cases it reaches do not run the gate (nor its bookkeeping) a second time."""
        token = _ADMITTED.set(req)
        try:
            yield
        finally:
            _ADMITTED.reset(token)

    async def admits(self, req: Requester, *, quiet: bool = False) -> bool:
        """Whether ``req`` may use the bot (an outsider is told, as by ``enter``, unless
        ``quiet``): adapters ask before downloading what a message carries, so outsiders and
        banned users cost no bandwidth."""
        return await self.enter(req, quiet=quiet) is not None

    async def user_settings(self, req: Requester) -> UserSettings:
        """The user's settings; a value the menu does not offer counts as not set."""
        stored = await self.store.user_settings(req.platform, req.user_id)

        def offered(name: str, value: str | None) -> str | None:
            return value if value in SETTING_CHOICES[name] else None

        return replace(
            stored,
            mode=offered("mode", stored.mode),
            delivery=offered("delivery", stored.delivery),
            lang=offered("lang", stored.lang),
        )

    async def reply(self, req: Requester, view: View) -> MessageRef:
        return await self.outbox.reply(req, view)

    async def tell(self, req: Requester, text: str) -> MessageRef:
        return await self.outbox.tell(req, text)

    def help(self, req: Requester) -> View:
        return View(t("help", req.language, platform=req.platform))


def clean(text: str) -> str:
    return " ".join((text or "").split())


def button_of(task: Task | None, token: Token) -> Button | None:
    index = token.index
    if task is None or index is None or index >= len(task.buttons):
        return None
    return task.buttons[index]


def pick_text(task: Task, custom_id: str) -> str:
    """For describe/shorten picks: the chosen suggestion, as a prefill when the API has none."""
    number = custom_ids.pick_number(custom_id)
    if number is None or task.action not in (Action.DESCRIBE, Action.SHORTEN):
        return ""
    return results.numbered_options(task.final_prompt).get(number, "")


def gated(
    method: Callable[Concatenate[S, Requester, P], Awaitable[None]],
) -> Callable[Concatenate[S, Requester, P], Awaitable[None]]:
    """The entrance of a command: the access gate, once per request. An outsider is told
    (once per chat) and nothing runs; an admitted request runs with its language applied."""

    @functools.wraps(method)
    async def entrance(self: S, req: Requester, /, *args: P.args, **kwargs: P.kwargs) -> None:
        entered = await self.enter(req)
        if entered is None:
            return
        with self.through(entered):
            await method(self, entered, *args, **kwargs)

    return entrance
