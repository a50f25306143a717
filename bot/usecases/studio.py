"""The studio's presses: our own buttons under each picture of a four-image result and under
each clip of a video (bot/studio.py draws them and says which are offered).

Each press is checked against the rule that drew it (``studio.offers``): a forged token for a
button never drawn, a clip already 21 s long or a picture the result does not have buys
nothing. What costs money is claimed and paid like any button (the Presses' claim: one job
per press burst, refunded when the API refuses or the job fails):

- 🎬 animate a picture: /submit/video with it as the first frame ([quota.weights] video);
- 🔍 describe a picture: /submit/describe (describe);
- ➕ / 🔁 extend a clip 4 s: /submit/video ``action: extend`` with the clip's index (video),
  where the video's own buttons do not extend it (openai-hk's ``buttons: []``, trueai refusing
  animate customIds); where they do, those buttons are drawn and pressed instead;
- ✏️ edit again / 🖼 as an image prompt: the picture is kept and the bot asks for the prompt
  (the answer runs /edit or /imagine with it, charged then);
- 📎 the picture's or clip's original file, posted once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot import media, studio
from bot.chat import Requester
from bot.i18n import t
from bot.mj.client import MjClient
from bot.mj.models import Submission, Task
from bot.outbox import Outbox
from bot.store import Store, TaskRow, new_key
from bot.studio import Verb
from bot.usecases.asking import ask_by_reply
from bot.usecases.base import Notice, log
from bot.usecases.kept import Kept
from bot.usecases.runtime import Runtime
from bot.usecases.submitter import Submitter
from bot.usecases.submitting import describe_language
from bot.views import Ask, View

# The Presses' claim: (requester, child row, slot, cost action, label, submit) -> notice.
Claim = Callable[
    [Requester, TaskRow, str, str, str, Callable[[], Coroutine[Any, Any, None]]],
    Awaitable[Notice],
]
# The Presses' post-once: (requester, row, slot, label, make the view) -> notice.
PostOnce = Callable[
    [Requester, TaskRow, str, str, Callable[[], Awaitable[View | None]]], Awaitable[Notice]
]

# What a press submits, given the child task it made.
_Call = Callable[[TaskRow], Awaitable[Submission]]

PICTURE_ARG = "pic="  # an ask's args naming a picture kept for it (questions.py reads it back)
_ASKS = {Verb.EDIT: ("edit", "studio.ask_edit"), Verb.PROMPT: ("imagine", "studio.ask_prompt")}
_MOTION = {Verb.EXTEND_HIGH: "high", Verb.EXTEND_LOW: "low", Verb.LOOP: "low"}


def kept_key(key: str) -> str:
    """The name of a picture kept for a question (bot/usecases/kept.py)."""
    return f"pic-{key}"


class StudioPresses:
    """Per-picture and per-clip presses: a plain class handed what it uses (the Presses build
    it and hand it their claim and post-once)."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        runtime: Runtime,
        submitter: Submitter,
        *,
        kept: Kept,
        claim: Claim,
        post_once: PostOnce,
        notify_hook: str,
    ) -> None:
        self.store = store
        self.kept = kept
        self.client = client
        self.outbox = outbox
        self.runtime = runtime
        self.submitter = submitter
        self.claim = claim
        self.post_once = post_once
        self.notify_hook = notify_hook

    async def press(self, req: Requester, row: TaskRow, verb: Verb, index: int) -> Notice:
        lang = req.language
        task = row.task
        url = studio.item_url(task, verb, index)
        hidden = self.client.hidden_buttons
        seconds = None
        if verb in studio.EXTEND_VERBS and studio.offers(task, verb, index, hidden=hidden):
            seconds = await self._length(url)
            if not studio.can_extend(seconds):
                return Notice(t("studio.too_long", lang, seconds=round(seconds or 0)), alert=True)
        if task is None or not url or not studio.offers(task, verb, index, hidden=hidden):
            return Notice(t("press.expired", lang), alert=True)
        label = studio.choice(row.key, verb, index, lang).label
        slot = studio.slot(verb, index)
        match verb:
            case Verb.FILE:
                return await self.post_once(
                    req, row, slot, label, lambda: self._file(row, url, index)
                )
            case Verb.EDIT | Verb.PROMPT:
                return await self._ask(req, row, verb, index, url)
            case Verb.ANIMATE:
                return await self._submit(req, row, task, slot, "video", label, self._animate(url))
            case Verb.DESCRIBE:
                return await self._submit(
                    req, row, task, slot, "describe", label, self._describe(url, req)
                )
            case Verb.EXTEND_HIGH | Verb.EXTEND_LOW | Verb.LOOP:
                extend = self._extend(task, index, _MOTION[verb], loop=verb is Verb.LOOP)
                return await self._submit(req, row, task, slot, "video", label, extend)

    # -- what each press submits -------------------------------------------------------------

    def _animate(self, url: str) -> _Call:
        async def call(child: TaskRow) -> Submission:
            uri = await self._upload(url)
            return await self.client.video(
                child.prompt or "motion",
                uri,
                mode=child.mode,
                notify_hook=self.notify_hook,
                state=child.key,
            )

        return call

    def _describe(self, url: str, req: Requester) -> _Call:
        language = describe_language(self.client, req)

        async def call(child: TaskRow) -> Submission:
            if self.client.profile.describe_link:  # hosted already: no re-upload
                return await self.client.describe(
                    link=url,
                    language=language,
                    mode=child.mode,
                    notify_hook=self.notify_hook,
                    state=child.key,
                )
            uri = await self._upload(url)
            return await self.client.describe(
                uri,
                language=language,
                mode=child.mode,
                notify_hook=self.notify_hook,
                state=child.key,
            )

        return call

    def _extend(self, task: Task, index: int, motion: str, *, loop: bool) -> _Call:
        async def call(child: TaskRow) -> Submission:
            return await self.client.extend_video(
                task.id,
                index,
                motion=motion,
                prompt=child.prompt,
                loop=loop,
                mode=child.mode,
                notify_hook=self.notify_hook,
                state=child.key,
            )

        return call

    async def _submit(
        self,
        req: Requester,
        parent: TaskRow,
        task: Task,
        slot: str,
        action: str,
        label: str,
        call: _Call,
    ) -> Notice:
        """Claim and pay like any button, then submit in the background."""
        child = TaskRow(
            key=new_key(),
            platform=parent.platform,
            chat_id=parent.chat_id,
            user_id=req.user_id,
            lang=req.language,
            kind="action",
            label=label,
            prompt=task.prompt or parent.prompt,
            mode=parent.mode,
            parent_key=parent.key,
            request_ref=parent.result_ref,
        )
        return await self.claim(
            req,
            child,
            slot,
            action,
            label,
            lambda: self.submitter.submit(child, lambda: call(child)),
        )

    # -- the picture kept for a question, the files ---------------------------------------

    async def _ask(self, req: Requester, row: TaskRow, verb: Verb, index: int, url: str) -> Notice:
        """✏️ / 🖼: keep the picture and ask for the prompt; the answer runs /edit or /imagine
        with it (questions.py), paid then. Nothing is charged for asking."""
        lang = req.language
        data = await self._download(url)
        if data is None:
            return Notice(t("press.expired", lang), alert=True)
        key = new_key()
        try:  # kept in the store: the answer may reach another instance
            await self.kept.put(kept_key(key), data)
        except media.MediaError:
            return Notice(t("press.expired", lang), alert=True)
        command, text = _ASKS[verb]
        view = View(
            t(text, lang, n=index + 1),
            ask=Ask(t("studio.placeholder", lang), title=command),
        )
        self.runtime.spawn(self._post_ask(req, view, command, f"{PICTURE_ARG}{key}"))
        return Notice(t("press.sending", lang))

    async def _post_ask(self, req: Requester, view: View, command: str, args: str) -> None:
        try:
            await ask_by_reply(self.store, self.outbox, req, view, command, args)
        except Exception:  # nothing was charged; pressing again asks again
            log.exception("asking for the prompt failed (%s)", command)

    async def _file(self, row: TaskRow, url: str, index: int) -> View | None:
        data = await self._download(url)
        return studio.file_view(row.key, index, data, row.lang) if data is not None else None

    async def _download(self, url: str) -> bytes | None:
        try:
            return await self.runtime.downloader.get(url)
        except media.MediaError:
            return None

    async def _length(self, url: str) -> float | None:
        """The clip's length: as its album read it, else read from the clip itself."""
        kept = await studio.known_length(self.runtime.cache, url)
        if kept is not None:
            return kept
        data = await self._download(url)
        return media.mp4_seconds(data) if data else None

    async def _upload(self, url: str) -> str:
        """A picture as the data URI the API takes (downloaded now: CDN links expire)."""
        data = await self.runtime.downloader.get(url)
        return await self.runtime.convert(media.upload_data_uri, data)
