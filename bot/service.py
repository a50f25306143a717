"""Use cases: what a user can ask of mjbot, independent of any chat platform.

Adapters call the command methods (``imagine``, ``describe``, ``blend``...), ``press`` and
``answer`` with a ``Requester``; the tracker calls ``on_task`` with every forward step of a
task. The service decides, stores, submits, and answers through the ``Outbox`` (which talks to
the adapters' ChatPorts). Rendering of finished tasks lives in ``bot.results``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot import buttons, logs, mask, media, results
from bot.buttons import Token
from bot.chat import MessageRef, Requester
from bot.i18n import normalize, t
from bot.mj.client import MjClient, MjError
from bot.mj.models import Action, Button, Outcome, Status, Submission, Task
from bot.outbox import Outbox
from bot.policy import Policy, action_of
from bot.store import REJECTED, Store, TaskRow, new_key
from bot.views import Ask, Choice, Media, View, clip, headline, progress_view

log = logging.getLogger("bot.service")

MAX_PROMPT = 4000  # MJ refuses longer prompts; say so before spending anything
MODAL_KINDS = (
    ("MJ::CustomZoom::", "zoom"),
    ("MJ::Inpaint::", "region"),
    ("MJ::Job::PicReader::", "pick"),
    ("MJ::Job::PromptAnalyzer::", "pick"),
)
# What answering a modal costs, by the kind of question (see policy weights).
MODAL_ACTIONS = {"zoom": "zoom", "region": "region", "pick": "imagine", "remix": "variation"}
BLEND_DIMENSIONS = {"portrait": "PORTRAIT", "square": "SQUARE", "landscape": "LANDSCAPE"}
MODES = ("fast", "relax")
_QUEUE_FULL = re.compile(r"队列已满|queue (is )?full", re.I)
PHOTO_COMMANDS = ("imagine", "describe", "blend", "swap", "video", "edit")

Submit = Callable[[], Awaitable[Submission]]


@dataclass(frozen=True)
class Notice:
    """A short answer to a button press (a toast)."""

    text: str
    alert: bool = False


class Service:
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
        self.client = client
        self.outbox = outbox
        self.downloader = downloader
        self.cache = cache
        self.notify_hook = notify_hook
        self.default_mode = default_mode
        self.webapp_url = webapp_url
        self._previews: dict[str, tuple[str, bytes]] = {}  # key -> (url, jpeg)
        self._background: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work after answering the user (a press is acknowledged before the submit)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)

    # --- who is asking -------------------------------------------------------------------------

    async def who(self, req: Requester) -> Requester:
        """The requester with their language setting applied (the client language otherwise)."""
        lang = (await self.user_settings(req)).get("lang")
        return replace(req, language=normalize(lang)) if lang else req

    async def enter(self, req: Requester, *, quiet: bool = False) -> Requester | None:
        """The gate every use case passes: the requester (language applied) if admitted.

        An outsider hears one polite message per chat, then silence (no spam loops).
        """
        req = await self.who(req)
        if self.policy is None:
            return req
        await self.policy.remember(req)
        if await self.policy.admitted(req):
            return req
        told = f"told:{req.platform}:{req.chat_id}:{req.user_id}"
        if not quiet and await self.store.first_time(told):
            await self.tell(req, t("access.denied", req.language))
        return None

    async def user_settings(self, req: Requester) -> dict[str, Any]:
        return await self.store.settings(f"user:{req.user_key}")

    async def reply(self, req: Requester, view: View) -> MessageRef:
        return await self.outbox.send(req.platform, req.chat_id, view, req.message)

    async def tell(self, req: Requester, text: str) -> MessageRef:
        """A message only the requester needs (a refusal, a hint): private where possible."""
        return await self.reply(req, View(text, ephemeral=True))

    def help(self, req: Requester) -> View:
        return View(t("help", req.language))

    # --- commands that submit ------------------------------------------------------------------

    async def imagine(self, req: Requester, prompt: str, images: Sequence[bytes] = ()) -> None:
        """/imagine: validate, submit, show progress; the tracker does the rest."""
        req = await self.enter(req)
        if req is None:
            return
        settings = await self.user_settings(req)
        prompt = _clean(prompt)
        if not await self._prompt_ok(req, prompt):
            return
        suffix = settings.get("suffix", "")
        if suffix and suffix not in prompt:
            prompt = f"{prompt} {suffix}"
        uris = await self._uploads(req, images, "imagine", prompt, least=0, most=5)
        if uris is None:
            return
        await self._start(
            req,
            "imagine",
            prompt,
            lambda key, mode: self.client.imagine(
                prompt, uris, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def describe(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/describe: four prompts Midjourney would write for a photo."""
        req = await self.enter(req)
        if req is None:
            return
        uris = await self._uploads(req, images, "describe", args, least=1, most=1)
        if uris is None:
            return
        await self._start(
            req,
            "describe",
            "",
            lambda key, mode: self.client.describe(
                uris[0], mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def blend(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/blend [portrait|square|landscape]: mix 2-5 photos into one grid."""
        req = await self.enter(req)
        if req is None:
            return
        word = args.strip().lower()
        if word and word not in BLEND_DIMENSIONS:
            await self.tell(req, t("blend.dimensions", req.language))
            return
        uris = await self._uploads(req, images, "blend", args, least=2, most=5)
        if uris is None:
            return
        dimensions = BLEND_DIMENSIONS.get(word, "SQUARE")
        await self._start(
            req,
            "blend",
            "",
            lambda key, mode: self.client.blend(
                uris, dimensions, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def swap(self, req: Requester, args: str = "", images: Sequence[bytes] = ()) -> None:
        """/swap: put the face of the first photo onto the second."""
        req = await self.enter(req)
        if req is None:
            return
        face = re.fullmatch(r"face=([a-z2-9]{10})", args.strip())
        if face and self.cache is not None:
            # The second half of the conversation: the face came first, this is the target.
            kept = await asyncio.to_thread(self.cache.get, f"face-{face.group(1)}")
            images = [kept, *images] if kept else list(images)
        elif len(images) == 1 and self.cache is not None:
            # One photo: keep it as the face and ask for the photo to put it on.
            key = new_key()
            await asyncio.to_thread(self.cache.put, f"face-{key}", images[0])
            ask = await self.reply(
                req,
                View(
                    t("ask.swap_target", req.language),
                    ask=Ask(t("ask.placeholder", req.language), title="swap"),
                ),
            )
            await self.store.add_ask(ask, req.user_id, "swap", f"face={key}", req.language)
            return
        if len(images) == 2 and images[0] == images[1]:
            await self.tell(req, t("swap.same", req.language))
            return
        uris = await self._uploads(req, images, "swap", args, least=2, most=2)
        if uris is None:
            return
        await self._start(
            req,
            "swap",
            "",
            lambda key, mode: self.client.swap_face(
                uris[0], uris[1], mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def shorten(self, req: Requester, prompt: str) -> None:
        """/shorten: which words of a prompt matter, and five shorter versions."""
        req = await self.enter(req)
        if req is None:
            return
        prompt = _clean(prompt)
        if not await self._prompt_ok(req, prompt, command="shorten"):
            return
        await self._start(
            req,
            "shorten",
            prompt,
            lambda key, mode: self.client.shorten(
                prompt, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def video(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/video [--motion high|low] <prompt> with a photo: four short videos."""
        req = await self.enter(req)
        if req is None:
            return
        motion_match = re.search(r"--motion\s+(high|low)\b", args, re.I)
        motion = motion_match.group(1).lower() if motion_match else "low"
        prompt = _clean(re.sub(r"--motion\s+\S+", "", args))
        if images and not await self._prompt_ok(req, prompt, command="video"):
            return
        uris = await self._uploads(req, images, "video", args, least=1, most=1)
        if uris is None:
            return
        await self._start(
            req,
            "video",
            prompt,
            lambda key, mode: self.client.video(
                prompt, uris[0], motion=motion, mode=mode, notify_hook=self.notify_hook, state=key
            ),
        )

    async def edit(self, req: Requester, args: str, images: Sequence[bytes] = ()) -> None:
        """/edit <prompt> with a photo: four edited versions of it."""
        req = await self.enter(req)
        if req is None:
            return
        prompt = _clean(args)
        if images and not await self._prompt_ok(req, prompt, command="edit"):
            return
        uris = await self._uploads(req, images, "edit", args, least=1, most=1)
        if uris is None:
            return
        await self._start(
            req,
            "edit",
            prompt,
            lambda key, mode: self.client.edits(
                prompt, uris[0], mode=mode, notify_hook=self.notify_hook, state=key
            ),
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
            ask = await self.reply(
                req,
                View(
                    t(f"ask.{command}", lang),
                    ask=Ask(t("ask.placeholder", lang), title=command),
                ),
            )
            await self.store.add_ask(ask, req.user_id, command, args, lang)
            return None
        if len(images) < least or len(images) > most:
            text = t("upload.count", lang, least=least, most=most, got=len(images))
            await self.reply(req, View(text))
            return None
        try:
            return [await asyncio.to_thread(media.upload_data_uri, data) for data in images]
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", lang))
            return None

    async def _start(
        self,
        req: Requester,
        kind: str,
        prompt: str,
        call: Callable[[str, str], Awaitable[Submission]],
    ) -> None:
        if not await self.store.first_time(req.event):
            log.info("ignoring a redelivered update %s", req.event)
            return
        mode = (await self.user_settings(req)).get("mode", self.default_mode)
        row = TaskRow(
            key=new_key(),
            platform=req.platform,
            chat_id=req.chat_id,
            user_id=req.user_id,
            lang=req.language,
            kind=kind,
            label=kind,
            prompt=prompt,
            mode=mode,
            request_ref=req.message.encode() if req.message else None,
        )
        refusal = await self._charge(req, row.key, kind)
        if refusal is not None:
            await self.tell(req, refusal)
            return
        await self.store.add_task(row)
        await self._submit(row, lambda: call(row.key, mode))

    async def _charge(self, req: Requester, key: str, action: str) -> str | None:
        """Charge the quota for one submit; the refusal text when over a limit."""
        if self.policy is None:
            return None
        refusal = await self.policy.charge(req, key, action)
        return t(refusal.key, req.language, **refusal.fields) if refusal else None

    async def _settle(self, key: str, success: bool) -> None:
        if self.policy is not None:
            await self.policy.settle(key, success)

    # --- settings, history, seed ---------------------------------------------------------------

    async def settings_view(self, req: Requester) -> View:
        req = await self.who(req)
        lang = req.language
        current = await self.user_settings(req)
        mode = current.get("mode", self.default_mode) or "fast"
        delivery = current.get("delivery", "photo")

        def mark(on: bool, label: str) -> str:
            return f"✅ {label}" if on else label

        rows = (
            tuple(
                Choice(mark(mode == m, t(f"mode.{m}", lang)), buttons.setting("mode", m))
                for m in MODES
            ),
            tuple(
                Choice(
                    mark(delivery == d, t(f"settings.delivery.{d}", lang)),
                    buttons.setting("delivery", d),
                )
                for d in ("photo", "file")
            ),
            (
                Choice(mark(lang == "en", "English"), buttons.setting("lang", "en")),
                Choice(mark(lang == "zh", "中文"), buttons.setting("lang", "zh")),
            ),
            (Choice(t("settings.suffix.clear", lang), buttons.setting("suffix", "-")),),
        )
        text = t(
            "settings.text",
            lang,
            mode=t(f"mode.{mode}", lang) if mode in MODES else mode,
            suffix=current.get("suffix") or "—",
        )
        return View(text, rows=rows)

    async def set_mode(self, req: Requester, mode: str) -> None:
        """/fast and /relax: the speed mode (the API path prefix) for this user's next jobs."""
        req = await self.enter(req)
        if req is None:
            return
        await self.store.set_setting(f"user:{req.user_key}", "mode", mode)
        await self.reply(
            req, View(t("settings.mode_set", req.language, mode=t(f"mode.{mode}", req.language)))
        )

    async def set_suffix(self, req: Requester, suffix: str) -> None:
        req = await self.enter(req)
        if req is None:
            return
        value = _clean(suffix)[:200] or None
        await self.store.set_setting(f"user:{req.user_key}", "suffix", value)
        await self.reply(req, View(t("settings.suffix_set", req.language, suffix=value or "—")))

    async def tasks_view(self, req: Requester) -> View:
        """/tasks: the user's recent tasks, newest first."""
        req = await self.who(req)
        lang = req.language
        rows = await self.store.recent_tasks(req.platform, req.user_id, limit=10)
        if not rows:
            return View(t("tasks.none", lang))
        lines = [t("tasks.title", lang)]
        for row in rows:
            icon = {"SUCCESS": "✅", "FAILURE": "❌", REJECTED: "❌", "TIMEOUT": "⌛"}.get(
                row.status, "⏳"
            )
            what = clip(row.prompt or row.label, 40)
            lines.append(f"{icon} {self._title(row)} · {what}  /task {row.key}")
        return View("\n".join(lines))

    async def show(self, req: Requester, ref: str) -> None:
        """/task <id>: post a finished task again, with working buttons (like MJ's /show)."""
        req = await self.enter(req)
        if req is None:
            return
        ref = ref.strip()
        row = await self.store.task(ref) or (await self.store.task_by_id(ref) if ref else None)
        if row is None and req.replied is not None:
            row = await self.store.task_by_message(req.replied)
        if row is None or row.platform != req.platform or not row.is_final:
            await self.tell(req, t("task.unknown", req.language))
            return
        if row.chat_id != req.chat_id and row.user_id != req.user_id:
            await self.tell(req, t("task.unknown", req.language))
            return
        view = await results.final_view(self, row)
        ref_ = await self.reply(req, view)
        if row.chat_id == req.chat_id:
            await self.store.update(row.key, result_ref=ref_)

    async def seed(self, req: Requester, args: str = "") -> None:
        """/seed: the seed of a result (asked in the background: it may take a minute)."""
        req = await self.enter(req)
        if req is None:
            return
        target = args.strip()
        row = await self.store.task(target) if target else None
        if row is None and target:
            row = await self.store.task_by_id(target)
        if row is None and req.replied is not None:
            row = await self.store.task_by_message(req.replied)
        if row is None or not row.task_id or row.platform != req.platform:
            await self.tell(req, t("seed.which", req.language))
            return
        self.spawn(self._seed(req, row))

    async def _seed(self, req: Requester, row: TaskRow) -> None:
        lang = req.language
        assert row.task_id
        try:
            submission = await self.client.image_seed(row.task_id)
        except MjError as exc:
            await self.reply(req, View(t(f"api.{exc.kind}", lang)))
            return
        if submission.outcome is Outcome.ACCEPTED and submission.task_id:
            await self.reply(req, View(t("seed.value", lang, seed=submission.task_id)))
        else:
            await self.reply(
                req, View(t("seed.none", lang, detail=clip(submission.description, 200)))
            )

    # --- quotas and administration ---------------------------------------------------------------

    async def quota_view(self, req: Requester, user_id: str = "") -> View:
        """/quota and /info: what a user has used and what is left, like Midjourney's /info."""
        lang = req.language
        if self.policy is None:
            return View(t("quota.unlimited", lang))
        q = self.policy.quota
        usage = await self.policy.usage(req.platform, user_id or req.user_id)
        mode = (await self.user_settings(req)).get("mode", self.default_mode) or "fast"

        def limit(value: int) -> str:
            return str(value) if value else "∞"

        def left(value: int, used: int) -> str:
            return str(max(0, value - used)) if value else "∞"

        return View(
            t(
                "quota.info",
                lang,
                user=user_id or req.user_id,
                mode=t(f"mode.{mode}", lang) if mode in MODES else mode,
                today=usage["today"],
                daily=limit(q.daily_units),
                daily_left=left(q.daily_units, usage["today"]),
                month=usage["month"],
                monthly=limit(q.monthly_units),
                monthly_left=left(q.monthly_units, usage["month"]),
                running=usage["running"],
                concurrency=limit(q.concurrency),
                jobs=usage["jobs"],
                refunded=usage["refunded"],
            )
        )

    async def admin(self, req: Requester, name: str, args: str) -> None:
        """/allow /deny /ban /unban /stats /usage /buttons: admins only."""
        req = await self.who(req)
        lang = req.language
        if self.policy is None or not self.policy.is_admin(req):
            await self.tell(req, t("admin.only", lang))
            return
        if name == "stats":
            await self.reply(req, View(self._stats_text(await self.policy.stats(), lang)))
            return
        if name == "buttons":
            value = args.strip().lower()
            if value not in ("chat", "owner"):
                await self.tell(req, t("admin.buttons_usage", lang))
                return
            await self.store.set_setting(f"chat:{req.chat_key}", "buttons", value)
            await self.reply(req, View(t(f"admin.buttons_{value}", lang)))
            return
        target = await self._target(req, args)
        if name == "usage":
            if not target:
                await self.tell(req, t("admin.who", lang))
                return
            await self.reply(req, await self.quota_view(req, target))
            return
        rule = {"allow": "allow", "deny": "deny", "ban": "ban", "unban": None}[name]
        if target:
            await self.policy.set_rule(req, "user", target, rule)
            await self.reply(req, View(t(f"admin.user_{name}", lang, user=target)))
        elif name in ("allow", "deny") and not req.is_private:
            await self.policy.set_rule(req, "chat", req.chat_id, rule)
            await self.reply(req, View(t(f"admin.chat_{name}", lang)))
        else:
            await self.tell(req, t("admin.who", lang))

    async def _target(self, req: Requester, args: str) -> str:
        """The user an admin names: by reply, @handle or id."""
        word = args.strip().split()[0] if args.strip() else ""
        if word.startswith("@") and self.policy is not None:
            return await self.policy.find_user(req.platform, word) or ""
        if word.isdigit():
            return word
        return req.replied_user if not word else ""

    def _stats_text(self, stats: dict[str, Any], lang: str) -> str:
        names = [f"@{row['handle']}" if row["handle"] else row["user_id"] for row in stats["top"]]
        top = (
            "\n".join(
                f"  {i}. {name}: {row['units']}"
                for i, (name, row) in enumerate(zip(names, stats["top"], strict=True), start=1)
            )
            or "  —"
        )
        return t(
            "admin.stats",
            lang,
            today=stats["today"],
            jobs_today=stats["jobs_today"],
            week=stats["week"],
            jobs_week=stats["jobs_week"],
            failures=stats["failures_week"],
            top=top,
        )

    # --- buttons -------------------------------------------------------------------------------

    async def press(self, req: Requester, data: str) -> Notice:
        """A button press: resolve the token, act once, acknowledge at once."""
        entered = await self.enter(req, quiet=True)
        if entered is None:
            return Notice(t("access.denied", req.language), alert=True)
        req = entered
        lang = req.language
        setting = buttons.decode_setting(data)
        if setting is not None:
            return await self._press_setting(req, *setting)
        token = buttons.decode(data)
        row = await self.store.task(token.key) if token else None
        if token is None or row is None or row.platform != req.platform:
            return Notice(t("press.expired", lang), alert=True)
        if row.chat_id != req.chat_id:
            return Notice(t("press.foreign", lang), alert=True)
        if row.user_id != req.user_id and not await self._anyone_may_press(req):
            return Notice(t("press.not_owner", lang), alert=True)
        if not await self.store.first_time(req.event):
            return Notice(t("press.running", lang))
        if token.index is None:
            return await self._press_extra(req, row, token.slot)
        task = row.task
        button = _button(task, token)
        if task is None or task.status is not Status.SUCCESS or button is None:
            return Notice(t("press.expired", lang), alert=True)
        return await self._press(req, row, task, token.slot, button)

    async def _press(
        self, req: Requester, parent: TaskRow, task: Task, slot: str, button: Button
    ) -> Notice:
        lang = req.language
        label = buttons.label(button, lang)
        child = TaskRow(
            key=new_key(),
            platform=parent.platform,
            chat_id=parent.chat_id,
            user_id=req.user_id,
            lang=lang,
            kind="action",
            label=label,
            prompt=task.display_prompt or parent.prompt,
            mode=parent.mode,
            parent_key=parent.key,
            request_ref=parent.result_ref,
        )
        if await self.store.add_child(child, parent.key, slot) is not None:
            return Notice(t("press.running", lang))
        refusal = await self._charge(req, child.key, action_of(button.custom_id))
        if refusal is not None:
            # Nothing was submitted: close the child so the button can be pressed again.
            await self.store.update(child.key, status=REJECTED, error="quota")
            await self.store.delivered(child.key, None)
            return Notice(refusal, alert=True)
        self.spawn(
            self._submit(
                child,
                lambda: self.client.action(
                    task.id,
                    button.custom_id,
                    mode=parent.mode,
                    notify_hook=self.notify_hook,
                    state=child.key,
                ),
                modal_kind=_modal_kind(button.custom_id),
                pick=_pick_text(task, button.custom_id),
            )
        )
        return Notice(t("press.submitted", lang, label=label))

    async def _anyone_may_press(self, req: Requester) -> bool:
        """Buttons belong to the task's owner, unless the chat (or the config) shares them."""
        chat = await self.store.settings(f"chat:{req.chat_key}")
        default = self.policy.access.buttons if self.policy else "owner"
        return chat.get("buttons", default) == "chat"

    async def _press_extra(self, req: Requester, row: TaskRow, verb: str) -> Notice:
        """Our own buttons beside the API's: seed, original file, split grid, retry."""
        lang = req.language
        match verb:
            case "seed":
                self.spawn(self._seed(req, row))
                return Notice(t("seed.asking", lang))
            case "file" | "split":
                original = await results.original(self, row)
                if original is None:
                    return Notice(t("press.expired", lang), alert=True)
                view = (
                    results.file_view(row, original)
                    if verb == "file"
                    else await asyncio.to_thread(results.split_view, row, original)
                )
                self.spawn(self.outbox.send(row.platform, row.chat_id, view, row.ref("result")))
                return Notice(t("press.sending", lang))
            case "retry":
                if row.kind != "imagine" or not row.prompt:
                    return Notice(t("press.expired", lang), alert=True)
                self.spawn(self.imagine(replace(req, message=row.ref("result")), row.prompt))
                return Notice(t("press.submitted", lang, label="🔁"))
        return Notice(t("press.expired", lang), alert=True)

    async def _press_setting(self, req: Requester, name: str, value: str) -> Notice:
        lang = req.language
        scope = f"user:{req.user_key}"
        if name == "suffix":
            await self.store.set_setting(scope, "suffix", None)
        elif name in ("mode", "delivery", "lang"):
            await self.store.set_setting(scope, name, value)
        else:
            return Notice(t("press.expired", lang), alert=True)
        req = await self.who(req)
        view = await self.settings_view(req)
        # The menu the button sits on is redrawn in place (req.message is that message).
        if req.message is not None:
            self.spawn(self.outbox.edit(req.message, view))
        else:
            self.spawn(self.reply(req, view))
        return Notice(t("settings.saved", req.language))

    # --- answers to our questions --------------------------------------------------------------

    async def answer(
        self, req: Requester, reply_to_message_id: str, text: str, images: Sequence[bytes] = ()
    ) -> bool:
        """A reply to one of our questions; False when it answers nothing of ours."""
        modal = await self.store.modal_for_reply(
            req.platform, req.chat_id, reply_to_message_id
        ) or await self.store.unrecorded_modal(req.platform, req.chat_id, req.user_id)
        ask = await self.store.ask(req.platform, req.chat_id, reply_to_message_id)
        if modal is None and ask is None:
            return False
        entered = await self.enter(req)
        if entered is None:
            return True
        req = entered
        if modal is not None:
            await self._answer_modal(req, modal.key, text, images)
            return True
        if ask["user_id"] != req.user_id:
            await self.tell(req, t("modal.not_owner", req.language))
            return True
        if not images:
            await self.tell(req, t("ask.photo_needed", req.language))
            return True
        if not await self.store.claim_ask(req.platform, req.chat_id, reply_to_message_id):
            await self.tell(req, t("modal.expired", req.language))
            return True
        command = ask["command"]
        args = ask["args"] if ask["args"].startswith("face=") else text.strip() or ask["args"]
        await getattr(self, command)(req, args, images)
        return True

    async def _answer_modal(
        self, req: Requester, key: str, text: str, images: Sequence[bytes] = ()
    ) -> None:
        modal = await self.store.modal(key)
        row = await self.store.task(key)
        lang = req.language
        if modal is None or row is None or modal.answered_at is not None:
            await self.tell(req, t("modal.expired", lang))
            return
        if row.user_id != req.user_id:
            await self.tell(req, t("modal.not_owner", lang))
            return
        if modal.kind == "region":
            await self._answer_region(req, row, modal.prefill, text, images)
            return
        prompt = _clean(text)
        if len(prompt) > MAX_PROMPT:
            await self.tell(req, t("prompt.too_long", lang, limit=MAX_PROMPT))
            return
        await self._submit_modal(req, row, prompt or modal.prefill, "")

    async def _answer_region(
        self, req: Requester, row: TaskRow, prefill: str, text: str, images: Sequence[bytes]
    ) -> None:
        lang = req.language
        base = await self.region_image(row.key)
        if base is None:
            await self.tell(req, t("modal.expired", lang))
            return
        size = await asyncio.to_thread(media.image_size, base)
        if images:
            try:
                png = await asyncio.to_thread(mask.normalise_mask, images[0], size)
            except Exception:
                await self.tell(req, t("upload.not_image", lang))
                return
            prompt = _clean(text) or prefill
        else:
            cells_text, prompt = mask.split_answer(text)
            cells = mask.parse_cells(cells_text)
            if not cells:
                await self.tell(req, t("region.cells_needed", lang))
                return
            png = await asyncio.to_thread(mask.cells_mask, size, cells)
            prompt = prompt or prefill
        await self.answer_mask(req, row.key, png, prompt)

    async def answer_mask(self, req: Requester, ref: str, mask_png: bytes, prompt: str) -> bool:
        """Vary (Region): submit the painted mask (white = repaint) with the prompt."""
        entered = await self.enter(req)
        if entered is None:
            return False
        req = entered
        lang = req.language
        row = await self.store.task(ref)
        modal = await self.store.modal(ref)
        if row is None or modal is None or modal.kind != "region" or modal.answered_at:
            await self.tell(req, t("modal.expired", lang))
            return False
        if row.user_id != req.user_id or row.platform != req.platform:
            await self.tell(req, t("modal.not_owner", lang))
            return False
        base = await self.region_image(ref)
        try:
            size = await asyncio.to_thread(media.image_size, base) if base else None
            png = await asyncio.to_thread(mask.normalise_mask, mask_png, size or (1024, 1024))
        except Exception:
            await self.tell(req, t("upload.not_image", lang))
            return False
        if await asyncio.to_thread(mask.is_empty, png):
            await self.tell(req, t("region.cells_needed", lang))
            return False
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        return await self._submit_modal(req, row, _clean(prompt) or modal.prefill, uri)

    async def region_image(self, ref: str) -> bytes | None:
        """The image a Vary (Region) modal repaints (the parent's result)."""
        row = await self.store.task(ref)
        if row is None or not row.parent_key:
            return None
        parent = await self.store.task(row.parent_key)
        return await results.original(self, parent) if parent else None

    async def _submit_modal(self, req: Requester, row: TaskRow, prompt: str, mask_uri: str) -> bool:
        modal = await self.store.modal(row.key)
        action = MODAL_ACTIONS.get(modal.kind if modal else "", "other")
        refusal = await self._charge(req, row.key, action)
        if refusal is not None:
            await self.tell(req, refusal)
            return False
        if not await self.store.claim_modal(row.key):
            await self._settle(row.key, success=False)
            await self.tell(req, t("modal.expired", req.language))
            return False
        await self.store.update(
            row.key,
            prompt=prompt,
            request_ref=req.message.encode() if req.message else row.request_ref,
        )
        fresh = await self.store.task(row.key)
        assert fresh is not None and fresh.task_id
        modal_id = fresh.task_id
        await self._submit(fresh, lambda: self.client.modal(modal_id, prompt, mask_base64=mask_uri))
        return True

    # --- submitting ----------------------------------------------------------------------------

    async def _submit(
        self, row: TaskRow, call: Submit, modal_kind: str = "", pick: str = ""
    ) -> None:
        """Show the progress message, call the API once, record and show the outcome."""
        with logs.context(task=row.key, chat=row.chat_id, user=row.user_id):
            log.info("submitting %s", row.kind)
            await self._submit_logged(row, call, modal_kind, pick)

    async def _submit_logged(self, row: TaskRow, call: Submit, modal_kind: str, pick: str) -> None:
        lang = row.lang
        title = self._title(row)
        progress = await self.outbox.send(
            row.platform,
            row.chat_id,
            progress_view(row.prompt, title, lang),
            MessageRef.decode(row.request_ref),
        )
        await self.store.update(row.key, progress_ref=progress)
        try:
            submission = await call()
        except MjError as exc:
            log.warning("submit failed: %s (task %s)", exc.kind, row.key)
            await self._reject(row, progress, t(f"api.{exc.kind}", lang))
            return
        except Exception:
            log.exception("submit crashed (task %s)", row.key)
            await self._reject(row, progress, t("api.bad_response", lang))
            return
        outcome = submission.outcome
        if outcome is Outcome.MODAL and submission.task_id:
            await self._ask_modal(row, progress, submission, modal_kind or "remix", pick)
            return
        # EXISTS (Java OSS code 21): that job was done before; its id is already tracked
        if outcome.is_accepted and outcome is not Outcome.EXISTS and submission.task_id:
            await self.store.update(
                row.key, task_id=submission.task_id, status=Status.NOT_START.value
            )
            if submission.queue_position:
                view = progress_view(row.prompt, title, lang, queue=submission.queue_position)
                await self.outbox.edit(progress, view)
            return
        await self._reject(row, progress, self._refusal(submission, lang))

    async def _reject(self, row: TaskRow, progress: MessageRef, text: str) -> None:
        await self.store.update(row.key, status=REJECTED, error=text, finished_at=time.time())
        await self._settle(row.key, success=False)
        shown = await self.outbox.edit(progress, View(headline(f"❌ {text}", row.prompt)))
        await self.store.delivered(row.key, shown)
        await self.store.update(row.key, progress_ref=None)

    def _refusal(self, submission: Submission, lang: str) -> str:
        detail = clip(submission.description, 300)
        match submission.outcome:
            case Outcome.BANNED:
                return t("refused.banned", lang, word=submission.banned_word or "?")
            case Outcome.QUEUE_FULL:
                return t("refused.queue_full", lang)
            case Outcome.INVALID:
                return t("refused.invalid", lang, detail=detail)
            case Outcome.NOT_FOUND:
                return t("refused.not_found", lang)
            case Outcome.UNSUPPORTED:
                return t("refused.unsupported", lang)
            case Outcome.EXISTS:
                return t("refused.exists", lang)
        if submission.code == 9 and _QUEUE_FULL.search(submission.description):
            # trueai says "queue full" with the generic failure code 9 (P3)
            return t("refused.queue_full", lang)
        return t("refused.failed", lang, detail=detail)

    async def _ask_modal(
        self, row: TaskRow, progress: MessageRef, submission: Submission, kind: str, pick: str
    ) -> None:
        """Code 21: the API waits for an answer (Custom Zoom, remix, region, a pick): ask."""
        prefill = submission.final_prompt or pick or row.prompt
        if kind == "zoom" and "--zoom" not in prefill:
            prefill = f"{prefill} --zoom 2".strip()
        await self.store.update(
            row.key, task_id=submission.task_id, status=Status.MODAL.value, prompt=prefill
        )
        await self.store.add_modal(row.key, kind, prefill)
        await self._settle(row.key, success=False)  # nothing runs yet; the answer is charged
        await self.outbox.delete(progress)
        view = await self._modal_view(row, kind, prefill)
        ask = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        await self.store.set_modal_ask(row.key, ask)
        await self.store.update(row.key, progress_ref=None)

    async def _modal_view(self, row: TaskRow, kind: str, prefill: str) -> View:
        lang = row.lang
        text = t(f"modal.ask.{kind}", lang, prompt=clip(prefill, 3000))
        ask = Ask(
            t(f"modal.placeholder.{kind}", lang),
            prefill=prefill,
            title=row.label,
            kind="mask" if kind == "region" else "text",
            ref=row.key,
        )
        if kind != "region":
            return View(text, ask=ask)
        base = await self.region_image(row.key)
        grid = await asyncio.to_thread(mask.labelled_grid, base) if base else None
        rows: tuple[tuple[Choice, ...], ...] = ()
        if self.webapp_url and row.platform == "telegram" and not row.chat_id.startswith("-"):
            url = f"{self.webapp_url}?ref={row.key}"
            rows = ((Choice(t("region.open_editor", lang), url=url, webapp=True),),)
        photo = (Media("photo", grid, "grid.jpg"),) if grid else ()
        return View(text, media=photo, rows=rows, ask=ask)

    def _title(self, row: TaskRow) -> str:
        return t(f"kind.{row.kind}", row.lang, label=row.label)

    # --- following tasks -----------------------------------------------------------------------

    async def on_task(self, task: Task) -> None:
        """One update from the API (poll or webhook): merge it, then show what changed."""
        row = await self.store.task_by_id(task.id)
        if row is None:
            return
        with logs.context(task=row.key, chat=row.chat_id):
            await self._on_task(row, task)

    async def _on_task(self, row: TaskRow, task: Task) -> None:
        merged = await self.store.merge(row.key, task)
        if merged is None:
            return
        if task.is_final:
            log.info("task %s: %s", task.id, task.status)
            await self._settle(row.key, success=task.status is Status.SUCCESS)
            await self.deliver(merged)
        else:
            await self._show_progress(merged, task)

    async def _show_progress(self, row: TaskRow, task: Task) -> None:
        ref = row.ref("progress")
        if ref is None:
            return
        preview = await self._preview(row.key, task.image_url) if task.image_url else None
        percent = None if task.status in (Status.NOT_START, Status.MODAL) else task.progress
        view = progress_view(
            row.prompt,
            self._title(row),
            row.lang,
            percent=percent,
            mode=row.mode,
            preview=preview,
        )

        async def remember(new_ref: MessageRef) -> None:
            if new_ref != ref:
                await self.store.update(row.key, progress_ref=new_ref)

        self.outbox.edit_later(ref, view, remember)

    async def _preview(self, key: str, url: str) -> bytes | None:
        cached = self._previews.get(key)
        if cached and cached[0] == url:
            return cached[1]
        try:
            data = await self.downloader.get(url)
            jpeg = await asyncio.to_thread(media.to_jpeg, data, 640, 70)
        except media.MediaError:
            return cached[1] if cached else None
        self._previews[key] = (url, jpeg)
        return jpeg

    async def deliver(self, row: TaskRow) -> None:
        """Post the final result exactly once (a new message, so people are notified)."""
        if not await self.store.claim_delivery(row.key):
            return
        self._previews.pop(row.key, None)
        progress = row.ref("progress")
        if progress:
            self.outbox.discard_edits(progress)
        try:
            view = await results.final_view(self, row)
            ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
        except Exception:
            log.exception("delivery failed (task %s); will retry", row.key)
            await self.store.release_delivery(row.key)
            return
        await self.store.delivered(row.key, ref)
        if progress:
            await self.outbox.delete(progress)
            await self.store.update(row.key, progress_ref=None)
        if row.status == "SUCCESS":
            settings = await self.store.settings(f"user:{row.platform}:{row.user_id}")
            if settings.get("delivery") == "file":
                original = await results.original(self, row)
                if original:
                    await self.outbox.send(
                        row.platform, row.chat_id, results.file_view(row, original), ref
                    )

    async def time_out(self, row: TaskRow) -> None:
        """A task the API never finished: tell the user instead of leaving it dangling."""
        await self.store.update(row.key, status="TIMEOUT", error="timeout", finished_at=time.time())
        await self._settle(row.key, success=False)
        fresh = await self.store.task(row.key)
        if fresh is not None:
            await self.deliver(fresh)

    async def resume(self) -> None:
        """After a restart: finish what the previous process left half done.

        Results that finished but never reached their chat are posted (once); progress
        messages of delivered tasks are removed; a submit cut off before the API answered is
        reported with a retry button, since nobody can know whether it was accepted.
        """
        for row in await self.store.undelivered():
            await self.deliver(row)
        for row in await self.store.interrupted():
            await self.store.update(
                row.key, status=REJECTED, error="interrupted", finished_at=time.time()
            )
            await self._settle(row.key, success=False)
            progress = row.ref("progress")
            text = headline(f"⚠️ {t('submit.interrupted', row.lang)}", row.prompt)
            rows = ()
            if row.kind == "imagine":
                rows = ((Choice(t("btn.retry", row.lang), buttons.encode(row.key, "retry")),),)
            view = View(text, rows=rows)
            ref = await self.outbox.edit(progress, view) if progress else None
            if ref is None:
                ref = await self.outbox.send(row.platform, row.chat_id, view, row.ref("request"))
            await self.store.delivered(row.key, ref)
            await self.store.update(row.key, progress_ref=None)  # it is the notice now
        for row in await self.store.stale_progress():
            ref = row.ref("progress")
            if ref is not None:
                await self.outbox.delete(ref)
            await self.store.update(row.key, progress_ref=None)


def _clean(text: str) -> str:
    return " ".join((text or "").split())


def _button(task: Task | None, token: Token) -> Button | None:
    index = token.index
    if task is None or index is None or index >= len(task.buttons):
        return None
    return task.buttons[index]


def _modal_kind(custom_id: str) -> str:
    return next((kind for prefix, kind in MODAL_KINDS if custom_id.startswith(prefix)), "")


def _pick_text(task: Task, custom_id: str) -> str:
    """For describe/shorten picks: the chosen suggestion, as a prefill when the API has none."""
    match = re.match(r"MJ::Job::(?:PicReader|PromptAnalyzer)::(\d)$", custom_id)
    if not match or task.action not in (Action.DESCRIBE, Action.SHORTEN):
        return ""
    return results.numbered_options(task.final_prompt).get(int(match.group(1)), "")
