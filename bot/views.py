"""Platform-neutral messages: what the user sees, before any adapter renders it.

A ``View`` is text, optional media and rows of buttons. Buttons carry our short tokens (never
customIds); adapters turn a View into an InlineKeyboard, Discord components or HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.i18n import t


class Style(StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    SUCCESS = "success"
    DANGER = "danger"


@dataclass(frozen=True, slots=True)
class Choice:
    """One button: pressing it sends ``token`` back; a ``url`` button opens a link instead."""

    label: str
    token: str = ""
    url: str = ""
    style: Style = Style.DEFAULT
    webapp: bool = False  # open ``url`` as an in-app page (Telegram Mini App) where supported


@dataclass(frozen=True, slots=True)
class Media:
    """An attachment: bytes we already hold (results are re-hosted, never linked).

    A View with several media is an album (a Telegram media group, one Discord message with
    several attachments, tiles in the playground); each item may say what it is in its own
    ``caption`` (shown under that picture where the platform can; the View's text is the
    album's). A video may carry a ``thumbnail`` (a small JPEG: its first frame or cover), which
    Telegram shows before the clip is loaded and the playground uses as the poster."""

    kind: str  # "photo" | "video" | "document"
    data: bytes
    filename: str = "image.jpg"
    caption: str = ""
    thumbnail: bytes = b""


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask the user for an answer: a ForceReply on Telegram, a modal on Discord, a dialog on the
    web. ``kind`` "mask" means a Vary (Region) mask is wanted (a mask editor where the platform
    has one; a reply naming grid cells everywhere). ``ref`` goes back with the answer."""

    placeholder: str
    prefill: str = ""
    title: str = ""
    kind: str = "text"  # "text" | "mask"
    ref: str = ""


@dataclass(frozen=True, slots=True)
class View:
    text: str
    media: tuple[Media, ...] = ()
    rows: tuple[tuple[Choice, ...], ...] = ()
    ask: Ask | None = None
    ephemeral: bool = False  # only the requester sees it, where the platform can do that

    @property
    def photo(self) -> Media | None:
        return next((m for m in self.media if m.kind == "photo"), None)

    @property
    def is_album(self) -> bool:
        """Several pictures or clips posted together (the buttons follow the whole album)."""
        return len(self.media) > 1


# --- the messages of a task's life --------------------------------------------------------

BAR_WIDTH = 10


def progress_bar(percent: int) -> str:
    filled = max(0, min(BAR_WIDTH, round(percent * BAR_WIDTH / 100)))
    return "▰" * filled + "▱" * (BAR_WIDTH - filled)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(title: str, prompt: str, limit: int = 700) -> str:
    """The first lines of every task message: what was asked, then what it is."""
    prompt = clip(prompt.strip(), limit)
    return f"{prompt}\n{title}" if prompt else title


def _mode_label(mode: str, lang: str) -> str:
    mode = (mode or "").strip("/").lower()
    if "relax" in mode:
        return t("mode.relax", lang)
    if "turbo" in mode:
        return t("mode.turbo", lang)
    return t("mode.fast", lang)


def progress_view(
    prompt: str,
    title: str,
    lang: str,
    *,
    percent: int | None = None,
    queue: int | None = None,
    mode: str = "",
    preview: bytes | None = None,
    note: str = "",
    typical: float | None = None,
) -> View:
    """The one message edited in place while a task runs (``note``: a line under its title,
    e.g. the references it goes with, "🎯 oref photo#3 · ow 100"; ``typical``: how long such
    a task takes here, in seconds, shown while it waits)."""
    if percent is None:
        state = t("progress.queued", lang, ahead=queue) if queue else t("progress.waiting", lang)
        if typical is not None:
            state += " · " + t("progress.typical", lang, seconds=max(1, round(typical)))
    else:
        state = t(
            "progress.running",
            lang,
            bar=progress_bar(percent),
            percent=percent,
            mode=_mode_label(mode, lang),
        )
    media = (Media("photo", preview, "preview.jpg"),) if preview else ()
    title = f"{title}\n{note}" if note else title
    return View(headline(f"{title}\n{state}", prompt), media=media)


def result_caption(prompt: str, title: str, lang: str, *, mode: str, seconds: float) -> str:
    line = t("result.done", lang, title=title, mode=_mode_label(mode, lang), seconds=round(seconds))
    return headline(line, prompt, limit=900)
