"""Prompting as people do it in 2026 (issue 16): the check before anything is spent, active
references from any photo or result, presets, and ✨ Full quality under a draft grid.

A plain class handed what it uses (``Service`` builds it). It never charges or submits itself:
what passes (or what the user confirms) goes back through ``Submit`` — the commands' own path
to the Submitter — so the money path stays the one in ``submitter.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from bot import buttons, media
from bot.chat import MessageRef, Requester
from bot.i18n import t
from bot.mj.client import MjClient, MjError
from bot.mj.models import TaskState
from bot.mj.prompt import (
    DEFAULT_MODEL,
    Bot,
    Composed,
    Model,
    RefKind,
    Target,
    UrlKind,
    compose,
    url_kind,
)
from bot.outbox import Outbox
from bot.prompt_check import DROP, HELD_COMMAND, Held, held_event, held_ref_id, review, view
from bot.settings_menu import references_line
from bot.store import ActiveReference, Preset, Store, TaskRow, UserSettings, new_key
from bot.usecases.base import Notice
from bot.usecases.kept import REFERENCE_KEPT_FOR_S, Kept
from bot.views import Choice, View, clip

log = logging.getLogger("bot.service")

MAX_IMAGE_REFS = 3  # image prompts kept at once (more than a few drown the text)
MAX_PRESETS = 10
CACHED = "cached:"  # a reference kept as bytes (no URL could be had): sent as base64Array
_WEIGHT = re.compile(r"^\d+(\.\d+)?$")
_PRESET_NAME = re.compile(r"^[\w-]{1,24}$")
_PROFILE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # as bot.mj.prompt reads --p codes
MAX_CODES = 10


@dataclass(frozen=True)
class Confirmed:
    """A held request its author sent after all: what the command's own path submits
    (the prompt already composed and checked; photos as the user gave them)."""

    kind: str
    prompt: str
    bot: Bot | None
    photos: tuple[bytes, ...] = ()
    args: str = ""  # the command's own arguments (/video's options around the prompt)
    request: str = ""  # the request its send fulfils, claimed by the press (``held_event``)


def target_for(settings: UserSettings, bot: Bot | None, *, video: bool = False) -> Target:
    """Where a composed prompt goes, for the check: the user's model where it is theirs."""
    model = settings.model or DEFAULT_MODEL
    default = model.version if model is not Model.NIJI7 else DEFAULT_MODEL.version
    if model is Model.NIJI7 and bot is Bot.NIJI:
        default = model.version
    return Target(bot=bot, default=default, video=video)


class Prompting:
    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        *,
        kept: Kept,
        convert: Callable[..., Awaitable[str]],
        spawn: Callable[..., None],
        user_settings: Callable[[Requester], Awaitable[UserSettings]],
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.reply = outbox.reply
        self.tell = outbox.tell
        self.kept = kept
        self.convert = convert
        self.spawn = spawn
        self.user_settings = user_settings

    # --- composing and checking -------------------------------------------------------------

    def compose(self, typed: str, settings: UserSettings) -> Composed:
        options = settings.options()
        # A reference kept as bytes is not a URL: it goes as base64Array, not in the prompt.
        kept = tuple(r for r in options.references if not r.url.startswith(CACHED))
        return compose(
            typed, replace(options, references=kept), bot_types=self.client.profile.bot_types
        )

    async def cached_references(
        self, req: Requester, settings: UserSettings
    ) -> tuple[list[bytes], UserSettings]:
        """The photos of references that could not be given a URL (sent as image prompts;
        each use keeps its photo longer), and ``settings`` without those whose photo is gone
        (unused for REFERENCE_KEPT_FOR_S): they are dropped, and the user is told so."""
        out: list[bytes] = []
        lost: list[ActiveReference] = []
        for ref in settings.references:
            if ref.url.startswith(CACHED):
                name = ref.url.removeprefix(CACHED)
                data = await self.kept.get(name, renew_for_s=REFERENCE_KEPT_FOR_S)
                if data:
                    out.append(data)
                else:
                    lost.append(ref)
        if not lost:
            return out, settings
        gone = {r.url for r in lost}

        def without(kept: UserSettings) -> UserSettings:
            return replace(kept, references=tuple(r for r in kept.references if r.url not in gone))

        await self.store.change_user_settings(req.platform, req.user_id, without)
        labels = ", ".join(r.label for r in lost)
        await self.tell(req, t("refs.lost", req.language, refs=labels))
        return out, without(settings)

    async def passes(
        self,
        req: Requester,
        kind: str,
        composed: Composed,
        settings: UserSettings,
        images: Sequence[bytes] = (),
        *,
        video: bool = False,
        args: str = "",
    ) -> bool:
        """True: send it. False: it was held — the check's message is shown, nothing is
        stored as a task, nothing is charged; its buttons bring it back (``press``)."""
        target = target_for(settings, composed.bot, video=video)
        problems, held = review(kind, composed.prompt, target)
        if held is None:
            return True
        key = new_key()
        try:
            for n, data in enumerate(images):
                await self.kept.put(f"held-{key}-{n}", data)
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", req.language))
            return False
        held = replace(held, photos=len(images), args=args)
        await self.store.add_ask(
            MessageRef(req.platform, req.chat_id, held_ref_id(key)),
            req.user_id,
            HELD_COMMAND,
            held.encode(),
            req.language,
        )
        await self.reply(req, view(composed.prompt, problems, held, key, req.language))
        return False

    async def press(self, req: Requester, key: str, verb: str) -> tuple[Notice, Confirmed | None]:
        """A button under a held prompt: fix and send, send anyway, or cancel. Only its author
        may press, and only once: the held request is claimed before anything is sent; what
        to send is handed back (the caller submits it through the command's own path, as the
        request ``Confirmed.request``, which its task row confirms).

        The claim is a request's claim (``held_event``; bot.usecases.gate): an instance killed
        after it and before the send's task was stored leaves it undone, and a press of the
        same buttons claims it again once that instance is dead: the send is not lost."""
        lang = req.language
        ref_id = held_ref_id(key)
        event = held_event(key)
        ask = await self.store.ask(req.platform, req.chat_id, ref_id)
        held = Held.decode(ask.args) if ask is not None and ask.command == HELD_COMMAND else None
        answered = ask is not None and ask.answered_at is not None and ask.answered_by != event
        if ask is None or held is None or answered:
            return Notice(t("check.expired", lang), alert=True), None
        if ask.user_id != req.user_id:
            return Notice(t("check.not_yours", lang), alert=True), None
        chosen = held.prompt_for(verb)
        if verb != DROP and chosen is None:
            return Notice(t("check.expired", lang), alert=True), None
        photos: list[bytes] = []
        for n in range(held.photos):
            data = await self.kept.get(f"held-{key}-{n}")
            if data is None:
                return Notice(t("check.photos_lost", lang), alert=True), None
            photos.append(data)
        # Done, or in a live instance's hands (sent or being sent): nothing to do here.
        if not await self.store.claim_request(event):
            return Notice(t("check.expired", lang), alert=True), None
        if not await self.store.claim_ask(req.platform, req.chat_id, ref_id, request=event):
            await self.store.request_done(event)  # answered by a version that kept no claim
            return Notice(t("check.expired", lang), alert=True), None
        if req.message is not None:  # the choices are spent: the message keeps its text only
            self.spawn(self._settle_message(req.message, verb, lang))
        if chosen is None:
            await self.store.request_done(event)  # nothing to send
            return Notice(t("check.dropped", lang)), None
        prompt, bot = chosen
        confirmed = Confirmed(held.kind, prompt, bot, tuple(photos), held.args, event)
        return Notice(t("press.sending", lang)), confirmed

    async def _settle_message(self, ref: MessageRef, verb: str, lang: str) -> None:
        text = t("check.dropped", lang) if verb == DROP else t("press.sending", lang)
        await self.outbox.edit(ref, View(text))

    # --- references -------------------------------------------------------------------------

    async def keep_reference(
        self, req: Requester, kind: RefKind, args: str, images: Sequence[bytes]
    ) -> None:
        """/oref, /sref, /ref: the photo given (caption or reply), the result replied to, or
        the URL / style code typed becomes an active reference for the following prompts."""
        lang = req.language
        words = args.split()
        if kind is RefKind.STYLE and not images and req.replied is None and words:
            # /sref 1234 [weight]: without a photo or a result, a first number is a style code
            if re.fullmatch(r"\d{1,12}|random", words[0], re.I):
                words = [f"code:{words[0]}", *words[1:]]
        weight = next((float(w) for w in words if _WEIGHT.match(w)), None)
        rest = [w for w in words if not _WEIGHT.match(w)]
        if rest and rest[0].lower() == "clear":
            await self.clear_references(req)
            return
        url, label, note = "", "", ""
        # A result of ours keeps its own CDN URL (the platform's copy of it is only a photo):
        # the message replied to, or a Discord message link to it.
        linked = _message_link(req, rest[0]) if rest else None
        if linked is not None:
            rest = rest[1:]
        about = req.replied or linked
        row = await self.store.task_by_message(about) if about is not None else None
        task = row.task if row is not None else None
        if row is not None and task is not None and task.status is TaskState.SUCCESS:
            if task.image_url:
                url, label = task.image_url, f"result {row.key[:4]}"
        if not url and images:
            url, label, note = await self._photo_url(req, images[0])
        if not url and rest:
            word = rest[0].strip("<>")
            if url_kind(word) is not UrlKind.NOT_IMAGE and word.startswith(("http://", "https://")):
                url, label = word, clip(word.rsplit("/", 1)[-1], 24)
            elif kind is RefKind.STYLE and word.startswith("code:"):
                code = word.removeprefix("code:").lower()
                url, label = code, f"code {code}"
        if not url:
            await self.tell(req, t(f"refs.how.{kind.value}", lang))
            return
        if url.startswith(CACHED):
            kind = RefKind.IMAGE  # only an image prompt can be sent as bytes
        limit = {RefKind.OMNI: (0, 1000), RefKind.STYLE: (0, 1000), RefKind.IMAGE: (0, 3)}[kind]
        if weight is not None and not limit[0] <= weight <= limit[1]:
            await self.tell(
                req,
                t("refs.weight", lang, param=kind.weight_param, low=limit[0], high=limit[1]),
            )
            return
        ref = ActiveReference(kind, url, weight, label)

        def kept(settings: UserSettings) -> UserSettings:
            others = [r for r in settings.references if r.kind is not kind or kind is RefKind.IMAGE]
            if kind is RefKind.IMAGE:
                others = [r for r in others if r.url != url][-(MAX_IMAGE_REFS - 1) :]
            saved = settings.style_codes
            if kind is RefKind.STYLE and not url.startswith("http") and url not in saved:
                saved = (*saved, url)[-10:]
            return replace(settings, references=(*others, ref), style_codes=saved)

        settings = await self.store.change_user_settings(req.platform, req.user_id, kept)
        text = t("refs.kept", lang, refs=references_line(settings.references, lang))
        if note:
            text = f"{text}\n{note}"
        await self.reply(req, View(text, rows=((self.clear_choice(lang),),)))

    def clear_choice(self, lang: str) -> Choice:
        return Choice(t("refs.clear", lang), buttons.setting("refs", "clear"))

    async def clear_references(self, req: Requester) -> None:
        await self.store.change_user_settings(
            req.platform, req.user_id, lambda s: replace(s, references=())
        )
        await self.reply(req, View(t("refs.cleared", req.language)))

    async def refs_view(self, req: Requester) -> View:
        """/refs: the active references, and the saved style codes one tap each."""
        lang = req.language
        settings = await self.user_settings(req)
        line = references_line(settings.references, lang)
        codes = tuple(
            (Choice(f"🎨 --sref {code}", buttons.setting("scode", str(i))),)
            for i, code in enumerate(settings.style_codes)
        )
        if not line and not codes:
            return View(t("refs.none", lang))
        text = "\n".join(
            x for x in (line or t("refs.none", lang), codes and t("refs.codes", lang)) if x
        )
        clear = ((self.clear_choice(lang),),) if line else ()
        return View(text, rows=(*codes, *clear))

    async def _photo_url(self, req: Requester, photo: bytes) -> tuple[str, str, str]:
        """(url, label, note): a URL for the photo where the provider hosts uploads; else the
        photo kept as bytes (an image prompt sent as base64Array), and a note saying so."""
        lang = req.language
        try:
            uri = await self.convert(media.upload_data_uri, photo)
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", lang))
            return "", "", ""
        settings = await self.user_settings(req)
        number = 1 + sum(1 for r in settings.references if r.label.startswith("photo#"))
        number = max(number, len(settings.references) + 1)
        label = f"photo#{number}"
        try:
            urls = await self.client.upload_images([uri])
        except MjError as exc:
            log.warning("upload-discord-images failed: %s", exc)
            urls = None
        if urls:
            return urls[0], label, ""
        key = new_key()
        try:
            await self.kept.put(f"ref-{key}", photo, keep_for_s=REFERENCE_KEPT_FOR_S)
        except media.MediaError as exc:
            await self.tell(req, t(f"upload.{exc.reason}", lang))
            return "", "", ""
        return f"{CACHED}ref-{key}", label, t("refs.no_upload", lang)

    # --- presets ----------------------------------------------------------------------------

    async def preset(self, req: Requester, args: str) -> None:
        """/preset save NAME · /preset NAME (apply) · /preset delete NAME · /preset (list)."""
        lang = req.language
        words = args.split()
        verb = words[0].lower() if words else ""
        name = words[1] if len(words) > 1 else ""
        if verb in ("save", "delete") and not _PRESET_NAME.match(name):
            await self.tell(req, t("preset.name", lang))
            return
        if verb == "save":

            def saved(settings: UserSettings) -> UserSettings:
                others = [p for p in settings.presets if p.name != name]
                return replace(settings, presets=(*others, settings.preset(name))[-MAX_PRESETS:])

            await self.store.change_user_settings(req.platform, req.user_id, saved)
            await self.reply(req, View(t("preset.saved", lang, name=name)))
            return
        if verb == "delete":
            await self.store.change_user_settings(
                req.platform,
                req.user_id,
                lambda s: replace(s, presets=tuple(p for p in s.presets if p.name != name)),
            )
            await self.reply(req, View(t("preset.deleted", lang, name=name)))
            return
        settings = await self.user_settings(req)
        if verb:
            found = next((p for p in settings.presets if p.name == words[0]), None)
            if found is None:
                await self.tell(req, t("preset.unknown", lang, name=words[0]))
                return
            await self.apply_preset(req, found)
            return
        await self.reply(req, self.presets_view(settings, lang))

    async def personalize(self, req: Requester, args: str) -> None:
        """--p codes: ``/personalize CODE`` turns personalization on with that profile code
        and keeps it among the saved ones; ``off`` turns it off; alone: the saved codes, one
        tap each (``s1:pcode:<n>``), and "default" for a bare --p."""
        lang = req.language
        word = args.strip()
        if word.lower() == "off":
            await self.store.change_user_settings(
                req.platform, req.user_id, lambda s: replace(s, personalize=None)
            )
            await self.reply(req, View(t("personalize.off", lang)))
            return
        if word:
            if not _PROFILE_CODE.match(word):
                await self.tell(req, t("personalize.bad", lang))
                return

            def chosen(settings: UserSettings) -> UserSettings:
                codes = (*(c for c in settings.profile_codes if c != word), word)[-MAX_CODES:]
                return replace(settings, personalize=True, profile_code=word, profile_codes=codes)

            await self.store.change_user_settings(req.platform, req.user_id, chosen)
            await self.reply(req, View(t("personalize.on", lang, code=word)))
            return
        settings = await self.user_settings(req)

        def code_choice(index: int, code: str) -> Choice:
            mark = "✅ " if code == settings.profile_code else ""
            return Choice(f"{mark}--p {code}", buttons.setting("pcode", str(index)))

        rows = tuple((code_choice(i, c),) for i, c in enumerate(settings.profile_codes))
        default = Choice(t("personalize.default", lang), buttons.setting("pcode", "default"))
        await self.reply(req, View(t("personalize.list", lang), rows=(*rows, (default,))))

    def presets_view(self, settings: UserSettings, lang: str) -> View:
        if not settings.presets:
            return View(t("preset.none", lang))
        rows = tuple(
            (Choice(f"📌 {p.name}", buttons.setting("preset", str(i))),)
            for i, p in enumerate(settings.presets)
        )
        return View(t("preset.list", lang), rows=rows)

    async def apply_preset(self, req: Requester, preset: Preset) -> None:
        await self.store.change_user_settings(
            req.platform, req.user_id, lambda s: s.with_preset(preset)
        )
        await self.reply(req, View(t("preset.applied", req.language, name=preset.name)))


_DISCORD_LINK = re.compile(
    r"^<?https://(?:ptb\.|canary\.)?discord(?:app)?\.com/channels/(?:\d+|@me)/(\d+)/(\d+)>?$"
)


def _message_link(req: Requester, word: str) -> MessageRef | None:
    """A Discord message link (Copy Message Link) as the message it names, in this chat."""
    match = _DISCORD_LINK.match(word)
    if match is None or req.platform != "discord" or match.group(1) != req.chat_id:
        return None
    return MessageRef(req.platform, match.group(1), match.group(2))


def bot_of(row: TaskRow) -> Bot | None:
    """The bot a task ran on, as its task says (Plus: properties.botType); None: not said."""
    task = row.task
    if task is None:
        return None
    raw = task.raw
    props = raw.get("properties")
    value = raw.get("botType") or (props.get("botType") if isinstance(props, dict) else None)
    return Bot.NIJI if value == Bot.NIJI.value else None
