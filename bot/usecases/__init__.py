"""Use cases: what a user can ask of mjbot, independent of any chat platform.

Adapters call the command methods (``imagine``, ``describe``, ``blend``...), ``press`` and
``answer`` with a ``Requester``; the tracker calls ``on_tasks`` with every forward step of a
task. Each concept is a plain class of this package handed exactly what it uses; ``Service``
builds them once and is their facade: typed methods that delegate, the request entrances
(``gate.py``: access, redeliveries, log context) wrapped around those a user calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

from bot import media
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj.client import MjClient
from bot.mj.models import Task
from bot.mj.prompt import RefKind
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import RequestTaken, Store, TaskRow, UserSettings
from bot.usecases.admin import Admin
from bot.usecases.base import MAX_PROMPT, SETTING_CHOICES, Notice
from bot.usecases.delivery import Delivery
from bot.usecases.gate import Gate, gated
from bot.usecases.jobs import Kind
from bot.usecases.kept import Kept
from bot.usecases.preferences import Preferences
from bot.usecases.presses import Presses
from bot.usecases.prompting import Confirmed, Prompting
from bot.usecases.questions import Asker, Questions
from bot.usecases.runtime import Runtime
from bot.usecases.submitter import Submitter
from bot.usecases.submitting import Submitting
from bot.views import Ask, View

__all__ = ["MAX_PROMPT", "Notice", "Service"]

T = TypeVar("T")


class Service:
    """Everything a user can do; built once by the composition root (``bot.app``)."""

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
        photo_as_is_max_bytes: int = media.PHOTO_AS_IS_MAX_BYTES,
    ) -> None:
        # Read by the adapters and the web admin tab (the store, the client's counts, the
        # outbox's queues); the use cases below are handed what they use.
        self.store = store
        self.client = client
        self.outbox = outbox
        self.downloader = downloader
        self.cache = cache
        self.policy = policy
        self.runtime = Runtime(
            client, downloader, cache, photo_as_is_max_bytes=photo_as_is_max_bytes
        )
        # Photos kept for a later answer, in the store: any instance may get the answer.
        self.kept = Kept(store, self.runtime.convert, legacy=cache)
        turbo = ("turbo",) if client.profile.turbo else ()
        self.gate = Gate(store, policy, outbox, modes=(*SETTING_CHOICES["mode"], *turbo))
        settings = self.gate.user_settings
        self.asker = Asker(store, outbox, self.runtime, webapp_url=webapp_url)
        self.submitter = Submitter(
            store, client, outbox, policy, spawn=self.runtime.spawn, asker=self.asker
        )
        self.administration = Admin(
            store,
            policy,
            outbox,
            default_mode=default_mode,
            who=self.gate.who,
            user_settings=settings,
        )
        self.preferences = Preferences(
            store,
            client,
            outbox,
            policy,
            sources=self.runtime,
            spawn=self.runtime.spawn,
            default_mode=default_mode,
            who=self.gate.who,
            user_settings=settings,
        )
        self.prompting = Prompting(
            store,
            client,
            outbox,
            kept=self.kept,
            convert=self.runtime.convert,
            spawn=self.runtime.spawn,
            user_settings=settings,
        )
        self.submitting = Submitting(
            store,
            client,
            outbox,
            policy,
            self.runtime,
            self.submitter,
            kept=self.kept,
            notify_hook=notify_hook,
            default_mode=default_mode,
            user_settings=settings,
            prompting=self.prompting,
        )
        self.questions = Questions(
            store,
            client,
            outbox,
            self.runtime,
            self.submitter,
            self.asker,
            kept=self.kept,
            start=self.submitting.start_kind,
        )
        self.presses = Presses(
            store,
            client,
            outbox,
            policy,
            self.runtime,
            self.submitter,
            kept=self.kept,
            press_setting=self.preferences.press_setting,
            press_held=self._press_held,
            seed_of=self.preferences.seed_of,
            notify_hook=notify_hook,
            default_mode=default_mode,
            user_settings=settings,
        )
        self.delivery = Delivery(store, client, outbox, self.runtime, self.submitter, self.asker)

    # -- the entrance (gate.py) and what every part shares --

    @asynccontextmanager
    async def entrance(
        self, req: Requester, *, quiet: bool = False
    ) -> AsyncIterator[Requester | None]:
        """Open the request's entrance before the use case is known, e.g. to decide before
        downloading an upload (outsiders and banned users cost no bandwidth): the requester
        to go on with (language applied), or None (an outsider, told unless ``quiet``; a
        redelivered update). The methods called inside for the same request reuse this
        decision: the gate's bookkeeping runs once."""
        async with self.gate.entrance(req, quiet=quiet) as entry:
            yield entry.passed

    async def who(self, req: Requester) -> Requester:
        """The requester with their language setting applied."""
        return await self.gate.who(req)

    async def user_settings(self, req: Requester) -> UserSettings:
        return await self.gate.user_settings(req)

    async def reply(self, req: Requester, view: View) -> MessageRef:
        return await self.outbox.reply(req, view)

    async def tell(self, req: Requester, text: str) -> MessageRef:
        return await self.outbox.tell(req, text)

    def help(self, req: Requester) -> View:
        return View(t("help", req.language, platform=req.platform))

    async def convert(self, function: Callable[..., T], *args: Any) -> T:
        """Image work in the bounded pool (the Discord adapter draws region masks with it)."""
        return await self.runtime.convert(function, *args)

    async def close(self, grace_s: float = 10.0) -> None:
        await self.runtime.close(grace_s)

    # -- submitting.py: the commands that spend money --

    async def start_kind(
        self, kind: Kind, req: Requester, args: str, images: Sequence[bytes] = ()
    ) -> None:
        """The command of ``kind`` (the commands' table names a kind, never a method)."""
        async with self.gate.entrance(req) as entry:
            if entry.passed is not None:
                await self.submitting.start_kind(kind, entry.passed, args, images)

    @gated
    async def imagine(self, req: Requester, prompt: str, images: Sequence[bytes] = ()) -> None:
        """/imagine: validate, submit, show progress; the tracker does the rest."""
        await self.submitting.imagine(req, prompt, images)

    @gated
    async def describe(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/describe: four prompts Midjourney would write for a photo."""
        await self.submitting.describe(req, args, images)

    @gated
    async def blend(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/blend [portrait|square|landscape]: mix 2-5 photos into one grid."""
        await self.submitting.blend(req, args, images)

    @gated
    async def swap(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/swap: put the face of the first photo onto the second."""
        await self.submitting.swap(req, args, images)

    @gated
    async def shorten(self, req: Requester, prompt: str) -> None:
        """/shorten: which words of a prompt matter, and five shorter versions."""
        await self.submitting.shorten(req, prompt)

    @gated
    async def video(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/video [--motion high|low] <prompt> with a photo: four short videos."""
        await self.submitting.video(req, args, images)

    @gated
    async def edit(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/edit <prompt> with a photo: four edited versions of it."""
        await self.submitting.edit(req, args, images)

    # -- presses.py --

    async def press(self, req: Requester, data: str) -> Notice:
        """A button press: answered at once with a short notice; the work goes on after."""
        async with self.gate.entrance(req, quiet=True) as entry:
            if not entry.admitted:
                return Notice(t("access.denied", entry.req.language), alert=True)
            if entry.passed is None:  # a redelivered press
                return Notice(t("press.running", entry.req.language))
            try:
                return await self.presses.press(entry.passed, data)
            except RequestTaken:  # another instance took this press over (gate.py): it runs it
                return Notice(t("press.running", entry.req.language))

    async def _press_held(self, req: Requester, key: str, verb: str) -> Notice:
        """A button under a prompt the check held (prompting.py): what its author chose is
        sent through the command's own path, after the press is answered."""
        notice, confirmed = await self.prompting.press(req, key, verb)
        if confirmed is not None:
            self.runtime.spawn(self._send_held(replace(req, event=confirmed.request), confirmed))
        return notice

    async def _send_held(self, req: Requester, confirmed: Confirmed) -> None:
        """The held request sent as the request the press claimed (``req.event``): its task
        row confirms the claim; a kill before that leaves it for the next press."""
        async with self.gate.carried_on(req.event):
            await self.submitting.confirmed(req, confirmed)

    # -- prompting.py: references and presets --

    @gated
    async def keep_reference(
        self, req: Requester, kind: RefKind, args: str, images: Sequence[bytes] = ()
    ) -> None:
        """/oref, /sref, /ref: a photo or result kept as a reference for the next prompts."""
        await self.prompting.keep_reference(req, kind, args, images)

    @gated
    async def references(self, req: Requester, args: str = "") -> None:
        """/refs: the active references; /refs clear: none from now on."""
        if args.strip().lower() == "clear":
            await self.prompting.clear_references(req)
        else:
            await self.reply(req, await self.prompting.refs_view(req))

    @gated
    async def preset(self, req: Requester, args: str = "") -> None:
        """/preset save NAME, /preset NAME, /preset delete NAME, /preset."""
        await self.prompting.preset(req, args)

    @gated
    async def personalize(self, req: Requester, args: str = "") -> None:
        """/personalize CODE (use it, and keep it), /personalize off, /personalize (list)."""
        await self.prompting.personalize(req, args)

    # -- questions.py --

    async def answer(
        self, req: Requester, reply_to_message_id: str, text: str, images: Sequence[bytes] = ()
    ) -> bool:
        """A reply to one of our questions; False when it answers nothing of ours (nor is
        it a request to the bot: the gate does not run for it)."""
        asked = await self.questions.asked(req, reply_to_message_id)
        if asked is None:
            return False
        async with self.gate.entrance(req) as entry:
            if entry.passed is not None:
                await self.questions.answer(entry.passed, asked, text, images)
        return True

    async def asks(self, req: Requester, message_id: str) -> bool:
        """Whether a reply to this message would answer a question of ours: an adapter asks
        before downloading what a reply carries (a photo reply to anything else is not ours)."""
        return await self.questions.asked(req, message_id) is not None

    async def answer_mask(self, req: Requester, ref: str, mask_png: bytes, prompt: str) -> bool:
        """Vary (Region): submit the painted mask (white = repaint) with the prompt."""
        async with self.gate.entrance(req) as entry:
            if entry.passed is None:
                return False
            try:
                return await self.questions.answer_mask(entry.passed, ref, mask_png, prompt)
            except RequestTaken:  # another instance took this answer over (gate.py)
                return False

    async def question(
        self, req: Requester, message_id: str, ref: str = ""
    ) -> tuple[Ask, str] | None:
        """The question a message of ours asks, and who may answer it (see Questions)."""
        return await self.questions.question(req, message_id, ref)

    async def region_image(self, ref: str) -> bytes | None:
        """The image a Vary (Region) modal repaints (the parent's result)."""
        return await self.asker.region_image(ref)

    # -- delivery.py: called by the tracker and the notifyHook receiver --

    async def on_tasks(self, tasks: Iterable[Task]) -> None:
        await self.delivery.on_tasks(tasks)

    def show_stored(self, rows: Iterable[TaskRow]) -> None:
        self.delivery.show_stored(rows)

    async def deliver(self, row: TaskRow) -> None:
        await self.delivery.deliver(row)

    async def retry_unsent(self, idle_s: float) -> int:
        return await self.delivery.retry_unsent(idle_s)

    async def time_out(self, row: TaskRow) -> None:
        await self.delivery.time_out(row)

    async def resume(self) -> None:
        await self.delivery.resume()

    async def take_over(self) -> None:
        await self.delivery.take_over()

    # -- preferences.py: settings, history, seeds --

    async def settings_view(self, req: Requester) -> View:
        return await self.preferences.settings_view(req)

    @gated
    async def open_settings(self, req: Requester) -> None:
        """/settings: the menu, recorded as the requester's (only they may press it)."""
        await self.preferences.open_settings(req)

    async def press_setting(self, req: Requester, name: str, value: str) -> Notice:
        """A settings-menu button (the press has passed its gate already)."""
        return await self.preferences.press_setting(req, name, value)

    @gated
    async def set_mode(self, req: Requester, mode: str) -> None:
        """/fast and /relax."""
        await self.preferences.set_mode(req, mode)

    @gated
    async def set_suffix(self, req: Requester, suffix: str) -> None:
        await self.preferences.set_suffix(req, suffix)

    async def tasks_view(self, req: Requester) -> View:
        """/tasks: the user's recent tasks, newest first."""
        return await self.preferences.tasks_view(req)

    @gated
    async def show(self, req: Requester, ref: str) -> None:
        """/task <id>: post a finished task again, with working buttons."""
        await self.preferences.show(req, ref)

    @gated
    async def seed(self, req: Requester, args: str = "") -> None:
        """/seed: the seed of a result."""
        await self.preferences.seed(req, args)

    # -- admin.py --

    async def quota_view(self, req: Requester, user_id: str = "") -> View:
        """/quota and /info: what a user has used and what is left."""
        return await self.administration.quota_view(req, user_id)

    async def admin(self, req: Requester, name: str, args: str) -> None:
        """/allow /deny /ban /unban /stats /usage /buttons: admins only."""
        await self.administration.admin(req, name, args)
