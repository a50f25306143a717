"""Rendering out: the ChatPort for Discord, turning Views into messages and components.

Two routes reach a channel. An interaction (a slash command, a modal answer) is deferred at
once and remembered here under its ref (``i<interaction id>-<user id>``): the first message
that replies to that ref replaces the "thinking…" placeholder through the interaction webhook,
and the messages born there are edited through it while its token lives (15 minutes; we stop
at 14). Everything else, and everything after the token expires (or when Discord says it has,
code 50027), goes through the channel with the bot token, so a slow relax job still gets its
progress and its result. Messages that reply to an interaction on the channel route mention
its user, as the official bot does, so the result notifies them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from bot import media
from bot.chat import MessageGone, MessageRef, RateLimited
from bot.i18n import t
from bot.views import Choice, Media, Style, View, clip

from .handlers import open_answer, press
from .ids import (
    ASK_PREFIX,
    ASK_TEMPLATE,
    PLATFORM,
    SELECT_PREFIX,
    SELECT_TEMPLATE,
    TOKEN_TEMPLATE,
)

log = logging.getLogger("adapters.discord")

CONTENT_LIMIT = 2000
LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
MAX_ROWS = 5
MAX_PER_ROW = 5
MAX_FILES = 10
DESCRIPTION_LIMIT = 1024  # an attachment's description (alt text)
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's default per file (attachment_size_limit)
TOKEN_LIFETIME_S = 14 * 60.0  # interaction tokens live 15 minutes; leave a margin

_INTERACTION_REF = re.compile(r"^i(\d+)-(\d+)$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_DEAD_TOKEN_CODES = (50027, 10015, 10062)  # invalid webhook token, unknown webhook/interaction

_STYLES = {
    Style.DEFAULT: discord.ButtonStyle.secondary,
    Style.PRIMARY: discord.ButtonStyle.primary,
    Style.SUCCESS: discord.ButtonStyle.success,
    Style.DANGER: discord.ButtonStyle.danger,
}


# --- components ----------------------------------------------------------------------------

_Button = discord.ui.Button[discord.ui.View]


def _clicked(item: discord.ui.Item[Any]) -> _Button:
    """The component a DynamicItem was matched on: ours are all buttons."""
    if not isinstance(item, discord.ui.Button):
        raise TypeError(f"expected a button, got {type(item).__name__}")
    return item


class TokenButton(discord.ui.DynamicItem[_Button], template=TOKEN_TEMPLATE):
    """A button carrying one of our short tokens; parsed back from its custom_id on every
    click, so buttons keep working after a restart."""

    def __init__(
        self,
        data: str,
        label: str = "•",
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=data), row=row)
        self.data = data

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> TokenButton:
        button = _clicked(item)
        return cls(match["data"], button.label or "•", button.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        await press(interaction, self.data)


_Select = discord.ui.Select[discord.ui.View]
_SETTING_TOKEN = re.compile(r"^s1:([a-z]{1,12}):")
SELECT_AT_LEAST = 3  # a settings row of this many options of one setting becomes a select


def select_name(row: Sequence[Choice]) -> str | None:
    """The setting a row of choices is about, when it is one setting's options (a select
    menu on Discord, as the official bot's /settings has); None for any other row."""
    names = {m.group(1) if (m := _SETTING_TOKEN.match(c.token)) else None for c in row}
    if len(row) < SELECT_AT_LEAST or len(names) != 1:
        return None
    return next(iter(names))


class SettingSelect(discord.ui.DynamicItem[_Select], template=SELECT_TEMPLATE):
    """One setting's options as a select menu; choosing one presses its s1: token."""

    def __init__(self, name: str, row: Sequence[Choice] = (), index: int | None = None) -> None:
        options = [
            discord.SelectOption(
                label=_label(c.label.removeprefix("✅ ")),
                value=c.token,
                default=c.label.startswith("✅ "),
            )
            for c in row
        ] or [discord.SelectOption(label="•", value="-")]
        select: _Select = discord.ui.Select(custom_id=f"{SELECT_PREFIX}{name}", options=options)
        super().__init__(select, row=index)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> SettingSelect:
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction) -> None:
        values: list[Any] = list(getattr(self.item, "values", []) or [])
        await press(interaction, str(values[0]) if values else "")


class AskButton(discord.ui.DynamicItem[_Button], template=ASK_TEMPLATE):
    """The "Answer" button under a question: opens the modal (the question is the message)."""

    def __init__(self, ref: str, label: str, row: int | None = None) -> None:
        button: _Button = discord.ui.Button(
            label=label, style=discord.ButtonStyle.primary, custom_id=f"{ASK_PREFIX}{ref}"
        )
        super().__init__(button, row=row)
        self.ref = ref

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> AskButton:
        return cls(match["ref"], _clicked(item).label or "✏️")

    async def callback(self, interaction: discord.Interaction) -> None:
        await open_answer(interaction, self.ref)


def language_of(view: View) -> str:
    """The language the service wrote ``view`` in (for our own few words on it): a View
    carries none, but its question's placeholder, or else its text, comes from the catalog
    in the user's language."""
    sample = view.ask.placeholder if view.ask is not None else view.text
    return "zh" if _CJK.search(sample or "") else "en"


def _label(text: str) -> str:
    return clip(text.strip() or "•", LABEL_LIMIT)


def pack(rows: Sequence[Sequence[Choice]], max_rows: int) -> list[list[Choice]]:
    """Rows of at most 5 that fit in ``max_rows``: the smallest neighbouring rows are merged
    first (after an upscale: Animate + 🌱📎 share a row), and only what still does not fit
    is dropped. A row that becomes a select menu (``select_name``) is never merged."""
    packed = [list(row[i : i + MAX_PER_ROW]) for row in rows for i in range(0, len(row), 5)]
    while len(packed) > max_rows:
        pairs = [
            (len(packed[i]) + len(packed[i + 1]), i)
            for i in range(len(packed) - 1)
            if select_name(packed[i]) is None and select_name(packed[i + 1]) is None
        ]
        if not pairs:
            break
        size, at = min(pairs)
        if size > MAX_PER_ROW:
            break
        packed[at : at + 2] = [packed[at] + packed[at + 1]]
    if len(packed) > max_rows:
        log.warning("dropping %d button rows Discord cannot show", len(packed) - max_rows)
    return packed[:max_rows]


def components(view: View) -> discord.ui.View | None:
    """The View's rows as buttons (5 per row, 5 rows), plus an Answer button when it asks
    something."""
    rows = pack([row for row in view.rows if row], MAX_ROWS - (view.ask is not None))
    ui = discord.ui.View(timeout=None)
    seen: set[str] = set()
    for index, row in enumerate(rows):
        name = select_name(row)
        if name is not None:
            ui.add_item(SettingSelect(name, row, index))
            continue
        for choice in row:
            if choice.url:
                link: _Button = discord.ui.Button(
                    label=_label(choice.label), url=choice.url, row=index
                )
                ui.add_item(link)
            elif choice.token and len(choice.token) <= CUSTOM_ID_LIMIT and choice.token not in seen:
                seen.add(choice.token)
                style = _STYLES.get(choice.style, discord.ButtonStyle.secondary)
                ui.add_item(TokenButton(choice.token, _label(choice.label), style, row=index))
            else:
                log.warning("dropping a button Discord cannot carry: %r", choice.label)
    if view.ask is not None:
        label = _label(t("discord.answer", language_of(view)))
        ui.add_item(AskButton(view.ask.ref, label, row=len(rows)))
    return ui if ui.children else None


# --- text and files ------------------------------------------------------------------------


def content(text: str, mention: str = "") -> str:
    """Plain text as Discord shows it: markdown escaped (prompts are not markup), clipped to
    2000 characters with the mention in front."""
    body = discord.utils.escape_markdown(text or "")
    if mention:
        body = f"<@{mention}> {body}"
    return clip(body, CONTENT_LIMIT)


FIT_MAX_SIDE = 4096  # every image media.decode accepts keeps its size


def fit(item: Media, limit: int) -> Media | None:
    """The attachment within ``limit`` bytes: as is, or an image re-encoded smaller as JPEG;
    None when it cannot be made to fit (a video)."""
    if len(item.data) <= limit:
        return item
    if item.kind == "video":
        return None
    try:
        # Under the pixel cap, as every decode: this may be the API's original file (📎),
        # which nothing has decoded before (a 160 KB PNG can claim 40 megapixels).
        image = media.decode(item.data, FIT_MAX_SIDE).convert("RGB")
    except Exception:
        return None
    stem = item.filename.rsplit(".", 1)[0] or "image"
    quality = 90
    for _ in range(12):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= limit:
            return Media(item.kind, out.getvalue(), f"{stem}.jpg", caption=item.caption)
        if quality > 70:
            quality -= 10
        else:
            image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))
    return None


@dataclass(frozen=True, slots=True)
class _Rendered:
    content: str
    media: tuple[Media, ...]
    kind: str

    def files(self) -> list[discord.File]:
        # Fresh File objects per attempt: discord.py closes them after a request. An item's
        # own caption is its attachment's description (alt text; Discord allows 1024).
        return [
            discord.File(
                io.BytesIO(m.data),
                filename=m.filename,
                description=clip(m.caption, DESCRIPTION_LIMIT) if m.caption else None,
            )
            for m in self.media
        ]

    def files_or_missing(self) -> Any:
        return self.files() if self.media else discord.utils.MISSING


async def render(view: View, limit: int, mention: str = "", lang: str = "en") -> _Rendered:
    media: list[Media] = []
    notes: list[str] = []
    for item in view.media[:MAX_FILES]:
        fitted = await asyncio.to_thread(fit, item, limit) if len(item.data) > limit else item
        if fitted is None:
            size = f"{len(item.data) / 1024 / 1024:.1f}"
            notes.append(t("discord.too_large", lang, name=item.filename, size=size))
        else:
            media.append(fitted)
    body = "\n".join([view.text, *notes]) if notes else view.text
    kind = media[0].kind if media else "text"
    return _Rendered(content(body, mention), tuple(media), kind)


# --- the port ------------------------------------------------------------------------------


@dataclass(eq=False)
class Session:
    """An interaction we can still answer through its webhook."""

    interaction: discord.Interaction
    started: float = field(default_factory=time.monotonic)
    placeholder: bool = True  # the deferred "thinking…" response is not used yet
    dead: bool = False  # Discord said the token is no longer valid


class DiscordPort:
    platform = PLATFORM
    # A refusal is a private answer to the person's own interaction: nobody else sees it.
    private_replies = True

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self.token_lifetime = TOKEN_LIFETIME_S
        self._sessions: dict[str, Session] = {}  # "i<id>-<user>" -> session
        self._born: dict[str, Session] = {}  # message id -> the session it was posted through
        self._limits: dict[str, int] = {}  # channel -> latest attachment_size_limit seen
        self.channel_fallbacks = 0  # webhook calls redone on the channel route (token expired)

    # interactions ---------------------------------------------------------------------------

    def register(self, interaction: discord.Interaction) -> MessageRef:
        """Remember a deferred interaction; its ref is the Requester's ``message``."""
        self._prune()
        key = f"i{interaction.id}-{interaction.user.id}"
        self._sessions[key] = Session(interaction)
        limit = getattr(interaction, "filesize_limit", 0) or DEFAULT_UPLOAD_LIMIT
        self._limits[str(interaction.channel_id)] = limit
        return MessageRef(PLATFORM, str(interaction.channel_id), key, "interaction")

    async def finish(self, ref: MessageRef) -> None:
        """After the command ran: a placeholder nobody used ("thinking…" forever) is removed."""
        session = self._sessions.get(ref.message_id)
        if session is None or not session.placeholder or not self._alive(session):
            return
        session.placeholder = False
        try:
            await session.interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.info("could not remove an unused placeholder: %s", exc.code)

    def _alive(self, session: Session) -> bool:
        return not session.dead and time.monotonic() - session.started < self.token_lifetime

    def _prune(self) -> None:
        now = time.monotonic()
        old = [k for k, s in self._sessions.items() if now - s.started > 16 * 60]
        for key in old:
            self._sessions.pop(key, None)
        if old:
            live = set(self._sessions.values())
            self._born = {m: s for m, s in self._born.items() if s in live}

    def _dead(self, session: Session, exc: discord.HTTPException) -> bool:
        """True (and the session marked) when ``exc`` says the interaction token is gone."""
        if exc.code in _DEAD_TOKEN_CODES or exc.status == 401:
            session.dead = True
            self.channel_fallbacks += 1
            log.info("interaction token expired (%s): using the channel route", exc.code)
            return True
        return False

    def _limit(self, chat_id: str, session: Session | None = None) -> int:
        if session is not None:
            return getattr(session.interaction, "filesize_limit", 0) or DEFAULT_UPLOAD_LIMIT
        return self._limits.get(chat_id, DEFAULT_UPLOAD_LIMIT)

    def _channel(self, chat_id: str) -> discord.abc.Messageable:
        channel = self.client.get_channel(int(chat_id))
        if isinstance(channel, discord.abc.Messageable):
            return channel
        return self.client.get_partial_messageable(int(chat_id))

    def _message(self, ref: MessageRef) -> discord.PartialMessage:
        """A posted message to edit or delete, by its ids (nothing fetched)."""
        channel = self.client.get_partial_messageable(int(ref.chat_id))
        return channel.get_partial_message(int(ref.message_id))

    # ChatPort -------------------------------------------------------------------------------

    async def send(
        self, chat_id: str, view: View, reply_to: MessageRef | None = None
    ) -> MessageRef:
        return await self._send(chat_id, view, reply_to)

    async def _send(self, chat_id: str, view: View, reply_to: MessageRef | None) -> MessageRef:
        session = self._sessions.get(reply_to.message_id) if reply_to else None
        lang = language_of(view)
        ui = components(view)
        if session is not None and self._alive(session) and (session.placeholder or view.ephemeral):
            rendered = await render(view, self._limit(chat_id, session), lang=lang)
            try:
                if view.ephemeral and session.placeholder:
                    # A refusal is for the requester only: drop the public "thinking" message
                    # and answer privately instead of filling the placeholder for everyone.
                    with _translated():
                        await session.interaction.delete_original_response()
                    session.placeholder = False
                with _translated():
                    message = await session.interaction.followup.send(
                        rendered.content or discord.utils.MISSING,
                        files=rendered.files_or_missing(),
                        view=ui or discord.utils.MISSING,
                        ephemeral=view.ephemeral and not session.placeholder,
                        wait=True,
                    )
                session.placeholder = False
                self._born[str(message.id)] = session
                return MessageRef(PLATFORM, chat_id, str(message.id), rendered.kind)
            except discord.HTTPException as exc:
                if not self._dead(session, exc):
                    raise
        return await self._channel_send(chat_id, view, ui, reply_to, lang)

    async def _channel_send(
        self,
        chat_id: str,
        view: View,
        ui: discord.ui.View | None,
        reply_to: MessageRef | None,
        lang: str,
    ) -> MessageRef:
        mention = ""
        reference: discord.MessageReference | None = None
        if reply_to is not None and reply_to.chat_id == chat_id:
            interaction = _INTERACTION_REF.match(reply_to.message_id)
            if interaction:
                mention = interaction.group(2)
            elif reply_to.message_id.isdigit():
                reference = discord.MessageReference(
                    message_id=int(reply_to.message_id),
                    channel_id=int(chat_id),
                    fail_if_not_exists=False,
                )
        rendered = await render(view, self._limit(chat_id), mention, lang)
        channel = self._channel(chat_id)
        allowed = discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(int(mention))] if mention else False
        )
        with _translated():
            message = await channel.send(
                rendered.content or None,
                files=rendered.files_or_missing(),
                view=ui or discord.utils.MISSING,
                # discord.py takes None (its default); only its overloads leave None out.
                reference=reference,  # type: ignore[arg-type]
                allowed_mentions=allowed,
                mention_author=False,
            )
        return MessageRef(PLATFORM, chat_id, str(message.id), rendered.kind)

    async def edit(self, ref: MessageRef, view: View) -> MessageRef:
        interaction = _INTERACTION_REF.match(ref.message_id)
        if interaction:
            # Never posted yet: whatever replies to the interaction is the edit.
            return await self.send(ref.chat_id, view, ref)
        session = self._born.get(ref.message_id)
        lang = language_of(view)
        ui = components(view)
        if session is not None and self._alive(session):
            rendered = await render(view, self._limit(ref.chat_id, session), lang=lang)
            try:
                with _translated():
                    await session.interaction.followup.edit_message(
                        int(ref.message_id),
                        content=rendered.content,
                        attachments=rendered.files_or_missing(),
                        view=ui,
                    )
                return _with_kind(ref, rendered)
            except discord.HTTPException as exc:
                if not self._dead(session, exc):
                    raise
        rendered = await render(view, self._limit(ref.chat_id), lang=lang)
        message = self._message(ref)
        with _translated():
            await message.edit(
                content=rendered.content,
                attachments=rendered.files_or_missing(),
                view=ui,
            )
        return _with_kind(ref, rendered)

    async def delete(self, ref: MessageRef) -> None:
        if _INTERACTION_REF.match(ref.message_id):
            await self.finish(ref)
            return
        session = self._born.pop(ref.message_id, None)
        try:
            if session is not None and self._alive(session):
                try:
                    with _translated():
                        await session.interaction.followup.delete_message(int(ref.message_id))
                    return
                except discord.HTTPException as exc:
                    if not self._dead(session, exc):
                        raise
            message = self._message(ref)
            with _translated():
                await message.delete()
        except MessageGone:
            pass


def _with_kind(ref: MessageRef, rendered: _Rendered) -> MessageRef:
    kind = rendered.kind if rendered.media else ref.kind
    return MessageRef(ref.platform, ref.chat_id, ref.message_id, kind)


class _translated:
    """Map discord.py's errors to the port's: a vanished message -> MessageGone, a rate limit
    discord.py gave up waiting for -> RateLimited. Others propagate (an expired token is
    handled by the caller, which retries on the channel route)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> None:  # None: the exception, if any, propagates
        if isinstance(exc, discord.RateLimited):
            raise RateLimited(exc.retry_after) from exc
        if isinstance(exc, discord.NotFound) and exc.code in (10008, 10003):
            raise MessageGone(str(exc)) from exc
        if isinstance(exc, discord.HTTPException) and exc.status == 429:
            raise RateLimited(5.0) from exc


__all__ = [
    "PLATFORM",
    "AskButton",
    "DiscordPort",
    "Session",
    "SettingSelect",
    "TokenButton",
    "components",
    "content",
    "fit",
]
