"""Commands that spend money: validate, then hand the job to the Submitter (submitter.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import assert_never

from bot import media, studio
from bot.chat import Requester
from bot.i18n import t
from bot.mj.client import MjClient
from bot.mj.models import Submission
from bot.mj.prompt import Bot, Composed
from bot.outbox import Outbox
from bot.policy import OverQuota, Policy
from bot.settings_menu import references_line
from bot.store import Store, TaskRow, UserSettings, new_key
from bot.usecases import jobs
from bot.usecases.asking import ask_by_reply
from bot.usecases.base import BLEND_DIMENSIONS, MAX_PROMPT, clean
from bot.usecases.jobs import Kind
from bot.usecases.kept import Kept
from bot.usecases.prompting import Confirmed, Prompting
from bot.usecases.runtime import Runtime
from bot.usecases.submitter import Submitter, over_quota
from bot.views import Ask, View

# /video's answer to its end-frame question: the first frame kept under this key.
_START = re.compile(r"^\s*start=([a-z2-9]{10})\b\s*")


class Submitting:
    """The commands that spend money (imagine, describe, blend, swap, shorten, video, edit):
    a plain class handed what it uses (``Service`` builds it; its entrances run the gate)."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        policy: Policy | None,
        runtime: Runtime,
        submitter: Submitter,
        *,
        kept: Kept,
        notify_hook: str,
        default_mode: str,
        user_settings: Callable[[Requester], Awaitable[UserSettings]],
        prompting: Prompting,
    ) -> None:
        self.store = store
        self.client = client
        self.prompting = prompting
        self.reply = outbox.reply
        self.tell = outbox.tell
        self.ask_by_reply = partial(ask_by_reply, store, outbox)
        self.policy = policy
        self.convert = runtime.convert
        self.submitter = submitter
        self.kept = kept
        self.notify_hook = notify_hook
        self.default_mode = default_mode
        self.user_settings = user_settings

    async def start_kind(
        self, kind: Kind, req: Requester, args: str, images: Sequence[bytes] = ()
    ) -> None:
        """The command of ``kind`` with its text and photos (a typed dispatch: the commands'
        table and an answered question name a kind, never a method)."""
        match kind:
            case Kind.IMAGINE:
                await self.imagine(req, args, images)
            case Kind.DESCRIBE:
                await self.describe(req, args, images)
            case Kind.BLEND:
                await self.blend(req, args, images)
            case Kind.SWAP:
                await self.swap(req, args, images)
            case Kind.SHORTEN:
                await self.shorten(req, args)
            case Kind.VIDEO:
                await self.video(req, args, images)
            case Kind.EDIT:
                await self.edit(req, args, images)
            case Kind.RETEXTURE:
                await self.retexture(req, args, images)
            case _:
                assert_never(kind)

    async def imagine(
        self,
        req: Requester,
        prompt: str,
        images: Sequence[bytes] = (),
        *,
        confirmed: Confirmed | None = None,
    ) -> None:
        """/imagine: the settings applied (bot.mj.prompt.compose), the prompt checked against
        the model before anything is spent (held with its problems until the user fixes or
        confirms it: ``confirmed``), then submitted; the tracker does the rest."""
        chat = await self.store.chat_settings(req.platform, req.chat_id)
        settings = (await self.user_settings(req)).under(chat)  # the chat's defaults beneath
        typed = clean(prompt)
        if confirmed is not None:
            sent, bot = confirmed.prompt, confirmed.bot
        else:
            if not await self._prompt_ok(req, typed):
                return
            composed = self.prompting.compose(typed, settings)
            if not await self.prompting.passes(req, "imagine", composed, settings, images):
                return  # held: nothing stored, nothing charged
            sent, bot = composed.prompt, composed.bot
        # refs without a URL (a reference whose photo is gone is dropped, and said so)
        kept, settings = await self.prompting.cached_references(req, settings)
        note = references_line(settings.references, req.language)
        job = jobs.imagine(sent, checked=typed or sent, bot_type=bot.value if bot else "")
        await self._run(req, job, [*images, *kept][:5], note=note)

    async def confirmed(self, req: Requester, confirmed: Confirmed) -> None:
        """A held request its author sent after all (prompting.py), through its own path,
        with the prompt they chose (as typed, or fixed) and the photos kept beside it."""
        prompt, photos = confirmed.prompt, confirmed.photos
        match confirmed.kind:
            case Kind.IMAGINE:
                await self.imagine(req, prompt, photos, confirmed=confirmed)
            case Kind.VIDEO:
                await self.video(req, confirmed.args, photos, prompt=prompt)
            case Kind.EDIT:
                await self._run(req, jobs.edit(prompt, prompt, check=True), photos, checked=True)
            case Kind.RETEXTURE:
                job = jobs.retexture(prompt, prompt, check=True)
                await self._run(req, job, photos, checked=True)
            case Kind.SHORTEN:
                await self._run(req, jobs.shorten(prompt), (), checked=True)

    async def describe(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/describe: four prompts Midjourney would write for a photo (in Chinese for a zh
        user, where the provider takes ``language``)."""
        await self._run(req, jobs.describe(args, describe_language(self.client, req)), images)

    async def blend(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/blend [portrait|square|landscape]: mix 2-5 photos into one grid."""
        word = args.strip().lower()
        if word and word not in BLEND_DIMENSIONS:
            await self.tell(req, t("blend.dimensions", req.language))
            return
        await self._run(req, jobs.blend(args, BLEND_DIMENSIONS.get(word, "SQUARE")), images)

    async def swap(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/swap: put the face of the first photo onto the second."""
        face = re.fullmatch(r"face=([a-z2-9]{10})", args.strip())
        if face:
            # The second half of the conversation: the face came first, this is the target.
            kept = await self.kept.get(f"face-{face.group(1)}")
            if kept is None:  # its time is up: the question expired, nothing is spent
                await self.tell(req, t("modal.expired", req.language))
                return
            images = [kept, *images]
        elif len(images) == 1:
            # One photo: keep it as the face and ask for the photo to put it on.
            key = new_key()
            if not await self._keep(req, f"face-{key}", images[0]):
                return
            view = View(
                t("ask.swap_target", req.language),
                ask=Ask(t("ask.placeholder", req.language), title="swap"),
            )
            await self.ask_by_reply(req, view, "swap", f"face={key}")
            return
        if len(images) == 2 and images[0] == images[1]:
            await self.tell(req, t("swap.same", req.language))
            return
        await self._run(req, jobs.swap(args), images)

    async def shorten(self, req: Requester, prompt: str) -> None:
        """/shorten: which words of a prompt matter, and five shorter versions."""
        await self._run(req, jobs.shorten(clean(prompt)), ())

    async def video(
        self, req: Requester, args: str, images: Sequence[bytes] = (), *, prompt: str | None = None
    ) -> None:
        """/video [--motion high|low] [--bs 1|2|4] [--loop] [--hd] [--end] <prompt> with a
        photo: clips from it (bot.studio.parse_video). A second photo is the end frame;
        ``--end`` with one photo keeps it and asks for the end frame by reply. ``prompt``: the
        one its author chose under the prompt check (then it is not checked again)."""
        lang = req.language
        start = _START.match(args)
        if start is not None:  # the end frame's answer: the first frame was kept
            kept = await self.kept.get(f"start-{start.group(1)}")
            if kept is None:  # its time is up: the question expired, nothing is spent
                await self.tell(req, t("modal.expired", lang))
                return
            images = [kept, *images]
            args = args[start.end() :]
        try:
            typed, options = studio.parse_video(args)
        except studio.BadOption as bad:
            await self.tell(req, t(bad.key, lang, value=bad.value))
            return
        if options.end_frame and len(images) == 1:
            key = new_key()
            if not await self._keep(req, f"start-{key}", images[0]):
                return
            view = View(
                t("studio.ask_end_frame", lang),
                ask=Ask(t("ask.placeholder", lang), title="video"),
            )
            await self.ask_by_reply(req, view, "video", f"start={key} {args}")
            return
        options = replace(options, end_frame=len(images) > 1)
        units = self.policy.units(options.cost) if self.policy else 0
        label = options.summary(lang)
        if units > 1:  # what it costs, in the user's units, before it is spent
            label = f"{label} · {t('studio.cost', lang, units=units)}"
        job = jobs.video(
            args, typed if prompt is None else prompt, options, label, check=bool(images)
        )
        await self._run(req, job, images, checked=prompt is not None)

    async def _keep(self, req: Requester, name: str, photo: bytes) -> bool:
        """Keep a photo for the answer to come (any instance may get it); False after telling
        the user why it cannot be (it is no image, or far too big)."""
        try:
            await self.kept.put(name, photo)
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", req.language))
            return False
        return True

    async def edit(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/edit <prompt> with a photo: four edited versions of it."""
        await self._run(req, jobs.edit(args, clean(args), check=bool(images)), images)

    async def retexture(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/retexture <prompt> with a photo: its shapes in a new look, where the provider has
        /submit/retexture (its profile says so); elsewhere it says so and spends nothing."""
        if not self.client.profile.retexture:
            await self.tell(req, t("retexture.unsupported", req.language))
            return
        await self._run(req, jobs.retexture(args, clean(args), check=bool(images)), images)

    async def _run(
        self,
        req: Requester,
        job: jobs.Job,
        images: Sequence[bytes],
        *,
        note: str = "",
        checked: bool = False,
    ) -> None:
        """Any kind of submission: its prompt checked (the rules, then its parameters against
        the model, unless ``checked``: its author already chose under the check), its photos
        validated (or asked for), then handed to the Submitter."""
        kind = job.kind.value
        if job.checked is not None:
            if not await self._prompt_ok(req, job.checked, kind):
                return
            if not checked and job.kind is not Kind.IMAGINE:  # /imagine composes, then checks
                if not await self._parameters_ok(req, job, images):
                    return  # held: nothing stored, nothing charged
        uris: list[str] = []
        if job.photos is not None:
            least, most = job.photos
            got = await self._uploads(req, images, kind, job.args, least=least, most=most)
            if got is None:
                return
            uris = got
        notify_hook = self.notify_hook
        await self._start(
            req,
            kind,
            job.prompt,
            lambda key, mode: job.call(self.client, uris, jobs.Sent(mode, notify_hook, key)),
            note=note or job.label,
            cost=job.cost,
        )

    async def _parameters_ok(self, req: Requester, job: jobs.Job, images: Sequence[bytes]) -> bool:
        """The prompt check (bot.mj.prompt) on a command's prompt as typed: a problem holds it
        with its photos, as /imagine's are, until its author fixes, confirms or cancels."""
        assert job.checked is not None
        settings = await self.user_settings(req)
        bot = Bot.MIDJOURNEY if self.client.profile.bot_types else None
        return await self.prompting.passes(
            req,
            job.kind.value,
            Composed(job.checked, bot),
            settings,
            images,
            video=job.kind is Kind.VIDEO,
            args=job.args,
        )

    async def _prompt_ok(self, req: Requester, prompt: str, command: str = "imagine") -> bool:
        if not prompt:
            await self.tell(req, t(f"{command}.empty", req.language))
            return False
        if len(prompt) > MAX_PROMPT:
            await self.tell(req, t("prompt.too_long", req.language, limit=MAX_PROMPT))
            return False
        word = self.policy.banned_word(prompt) if self.policy else None
        if word:
            await self.tell(req, t("refused.banned", req.language, word=word))
            return False
        return True

    async def _uploads(
        self,
        req: Requester,
        images: Sequence[bytes],
        command: str,
        args: str,
        *,
        least: int,
        most: int,
    ) -> list[str] | None:
        """Validated data URIs, or None after telling the user what is wrong.

        No photo at all for a photo command starts a short conversation instead: the bot asks
        for the photos with a ForceReply, which works in groups under privacy mode.
        """
        lang = req.language
        if not images and least > 0:
            ask = Ask(t("ask.placeholder", lang), title=command)
            view = View(t(f"ask.{command}", lang), ask=ask)
            await self.ask_by_reply(req, view, command, args)
            return None
        if len(images) < least or len(images) > most:
            key = "upload.count_exact" if least == most else "upload.count"  # not "2–2"
            text = t(key, lang, least=least, most=most, got=len(images))
            await self.reply(req, View(text))
            return None
        try:
            return [await self.convert(media.upload_data_uri, data) for data in images]
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", lang))
            return None

    async def _start(
        self,
        req: Requester,
        kind: str,
        prompt: str,
        call: Callable[[str, str], Awaitable[Submission]],
        *,
        note: str = "",
        cost: str = "",
    ) -> None:
        mode = (await self.user_settings(req)).mode or self.default_mode
        if mode == "turbo" and not self.client.profile.turbo:
            mode = "fast"  # the provider has no turbo: run as fast, and say so
            await self.tell(req, t("speed.turbo_fallback", req.language))
        row = TaskRow(
            key=new_key(),
            platform=req.platform,
            chat_id=req.chat_id,
            user_id=req.user_id,
            lang=req.language,
            kind=kind,
            label=note or kind,  # an imagine's label is not shown: its references are
            prompt=prompt,
            mode=mode,
            request_ref=req.message.encode() if req.message else None,
        )
        try:
            await self.submitter.add(req, row, cost)
        except OverQuota as over:
            await self.tell(req, over_quota(req, over.refusal))
            return
        await self.submitter.submit(row, lambda: self._turbo_or_fast(req, row, call, mode))

    async def _turbo_or_fast(
        self,
        req: Requester,
        row: TaskRow,
        call: Callable[[str, str], Awaitable[Submission]],
        mode: str,
    ) -> Submission:
        """A turbo submit no account can take (code 3, trueai's "无可用的账号实例") goes again
        as fast, once, and the user is told. Nothing was accepted the first time, so the row's
        one charge pays for the one job."""
        submission = await call(row.key, mode)
        if mode != "turbo" or submission.code != 3:
            return submission
        await self.tell(req, t("speed.turbo_fallback", req.language))
        row.mode = "fast"
        await self.store.update(row.key, mode="fast")
        return await call(row.key, "fast")


def describe_language(client: MjClient, req: Requester) -> str:
    """The language to ask describe's suggestions in: "zh" for a Chinese-speaking user where
    the provider translates them (trueai's ``language``), else "" (Midjourney's English)."""
    return "zh" if req.language == "zh" and client.profile.describe_link else ""
