"""The studio: what one can do next with each picture of a four-image result and with each clip
of a video, and the options of /video.

An EDITS result (and any result that comes as ``imageUrls`` with no buttons) is four pictures
and the API offers nothing to press under them; a video on openai-hk is four clips and ``[]``.
So mjbot draws its own buttons, one row per picture or clip, each a verb and the item's index
in the token's slot (``edit2``, ``exth0``). The rules that draw a button (``offers``) are the
rules a press checks: a forged token for a button that was never drawn buys nothing.

Video lengths follow Midjourney's: a clip is about 5 s and each extend adds about 4 s, up to
about 21 s (5 -> 9 -> 13 -> 17 -> 21); the length shown is read from the clip itself
(``bot.media.mp4_seconds``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot import buttons, media
from bot.i18n import t
from bot.mj import custom_ids
from bot.mj.client import VIDEO_TYPES
from bot.mj.models import Action, Task, TaskState
from bot.views import Choice, Media, View

log = logging.getLogger("bot.studio")

# What the album builders use of the service: a download, and a way to run CPU-bound work off
# the loop (results.Sources.convert).
Fetch = Callable[[str], Awaitable[bytes]]
Convert = Callable[..., Awaitable[Any]]

CLIP_SECONDS = 5
EXTEND_SECONDS = 4
MAX_SECONDS = 21
_SLACK_S = 1.0  # real clips run a little over their nominal length (5.2 s)


class Verb(StrEnum):
    """Our own per-item buttons (the slot of a token is the verb and the item's 0-based index)."""

    FILE = "file"  # the item's original file
    EDIT = "edit"  # edit this picture again (asks for the prompt)
    ANIMATE = "anim"  # four clips from this picture
    PROMPT = "ref"  # imagine with this picture as an image prompt (asks for the prompt)
    DESCRIBE = "desc"  # four prompts for this picture
    EXTEND_HIGH = "exth"  # this clip 4 s longer, high motion
    EXTEND_LOW = "extl"  # this clip 4 s longer, low motion
    LOOP = "loop"  # this clip 4 s longer, ending where it began


IMAGE_VERBS = (Verb.FILE, Verb.EDIT, Verb.ANIMATE, Verb.PROMPT, Verb.DESCRIBE)
EXTEND_VERBS = (Verb.EXTEND_HIGH, Verb.EXTEND_LOW, Verb.LOOP)
_SLOT = re.compile(r"^([a-z]{3,4})([0-3])$")


def slot(verb: Verb, index: int) -> str:
    return f"{verb.value}{index}"


def parse_slot(text: str) -> tuple[Verb, int] | None:
    """``edit2`` -> (Verb.EDIT, 2); None for anything else (a plain verb, an API index)."""
    match = _SLOT.match(text)
    if match is None:
        return None
    try:
        return Verb(match.group(1)), int(match.group(2))
    except ValueError:
        return None


# --- what a result is made of ---------------------------------------------------------------


def pictures(task: Task | None) -> tuple[str, ...]:
    """The pictures of a finished result that comes as ``imageUrls`` and no buttons (openai-hk's
    EDITS: "the results are the 4 links in imageUrls", ``buttons: []``); () otherwise."""
    if task is None or task.status is not TaskState.SUCCESS or task.buttons:
        return ()
    if task.action is Action.VIDEO:
        return ()
    return task.image_urls[:4]


def clips(task: Task | None) -> tuple[str, ...]:
    """The clips of a finished video: ``videoUrls`` (openai-hk: four, ``videoUrl`` "") or else
    the one ``videoUrl``."""
    if task is None or task.status is not TaskState.SUCCESS or task.action is not Action.VIDEO:
        return ()
    return (task.video_urls or ((task.video_url,) if task.video_url else ()))[:4]


def api_extends(task: Task | None, hidden: Sequence[str] = ()) -> bool:
    """Whether the task's own buttons (those the provider can do) extend it: then those are
    pressed, and our per-clip extend is not drawn."""
    if task is None:
        return False
    hidden = tuple(hidden)
    return any(
        custom_ids.extends(b.custom_id) and not (hidden and b.custom_id.startswith(hidden))
        for b in task.buttons
    )


def can_extend(seconds: float | None) -> bool:
    """Another 4 s fits under the 21 s Midjourney allows (an unknown length: yes, the API
    has the last word)."""
    return seconds is None or seconds + EXTEND_SECONDS <= MAX_SECONDS + _SLACK_S


def offers(
    task: Task | None,
    verb: Verb,
    index: int,
    *,
    hidden: Sequence[str] = (),
    seconds: float | None = None,
) -> bool:
    """Whether the button ``verb`` for item ``index`` is drawn under this result (and so may
    be pressed): the one rule both the drawing and the press follow."""
    if verb in IMAGE_VERBS and index < len(pictures(task)):
        return True
    if index >= len(clips(task)):
        return False
    if verb is Verb.FILE:
        return True
    return verb in EXTEND_VERBS and not api_extends(task, hidden) and can_extend(seconds)


# --- the rows under a result --------------------------------------------------------------

_LABELS = {
    Verb.FILE: "studio.btn.file",
    Verb.EDIT: "studio.btn.edit",
    Verb.ANIMATE: "studio.btn.animate",
    Verb.PROMPT: "studio.btn.prompt",
    Verb.DESCRIBE: "studio.btn.describe",
    Verb.EXTEND_HIGH: "studio.btn.extend_high",
    Verb.EXTEND_LOW: "studio.btn.extend_low",
    Verb.LOOP: "studio.btn.loop",
}


def choice(key: str, verb: Verb, index: int, lang: str) -> Choice:
    return Choice(t(_LABELS[verb], lang, n=index + 1), buttons.encode(key, slot(verb, index)))


def picture_rows(key: str, task: Task | None, lang: str) -> tuple[tuple[Choice, ...], ...]:
    """One row per picture: its file, edit again, animate, as an image prompt, describe."""
    return tuple(
        tuple(choice(key, verb, index, lang) for verb in IMAGE_VERBS)
        for index in range(len(pictures(task)))
    )


def clip_rows(
    key: str,
    task: Task | None,
    lang: str,
    *,
    hidden: Sequence[str] = (),
    lengths: Sequence[float | None] = (),
) -> tuple[tuple[Choice, ...], ...]:
    """One row per clip: ➕ high, ➕ low, 🔁 loop (while another 4 s fits, and only where the
    API's own buttons do not extend), and its file."""
    rows = []
    for index in range(len(clips(task))):
        seconds = lengths[index] if index < len(lengths) else None
        verbs = (*EXTEND_VERBS, Verb.FILE)
        rows.append(
            tuple(
                choice(key, verb, index, lang)
                for verb in verbs
                if offers(task, verb, index, hidden=hidden, seconds=seconds)
            )
        )
    return tuple(row for row in rows if row)


def clip_caption(index: int, seconds: float | None, lang: str) -> str:
    """'2 · 9 s' (and that it is as long as a clip gets)."""
    if seconds is None:
        return str(index + 1)
    shown = round(seconds)
    key = "studio.clip_max" if not can_extend(seconds) else "studio.clip"
    return t(key, lang, n=index + 1, seconds=shown)


# --- the albums --------------------------------------------------------------------------


async def picture_album(
    key: str, task: Task, caption: str, lang: str, *, fetch: Fetch, convert: Convert
) -> View | None:
    """The four pictures themselves (an album: one Telegram media group, one Discord message,
    four tiles), numbered, with a row of what to do next under each; None when not one of them
    could be downloaded (the caller shows the links)."""
    items = []
    for index, url in enumerate(pictures(task)):
        try:
            jpeg = await convert(media.to_jpeg, await fetch(url))
        except media.MediaError:
            log.warning("picture %d of task %s could not be downloaded", index + 1, key)
            continue
        items.append(Media("photo", jpeg, f"{key}_{index + 1}.jpg", caption=str(index + 1)))
    if not items:
        return None
    text = f"{caption}\n{t('studio.pictures', lang)}"
    return View(text, media=tuple(items), rows=picture_rows(key, task, lang))


async def clip_album(
    key: str,
    task: Task,
    caption: str,
    lang: str,
    *,
    fetch: Fetch,
    convert: Convert,
    api_rows: tuple[tuple[Choice, ...], ...] = (),
    hidden: Sequence[str] = (),
    cache: media.MediaCache | None = None,
) -> View | None:
    """The clips as real videos (an album of up to four), each with its running length and the
    cover as thumbnail, the API's own buttons (if any) and a row per clip; None when not one
    clip could be downloaded."""
    cover = await _thumbnail(task.image_url, fetch, convert)
    own = _clip_thumbnails(task)
    items: list[Media] = []
    lengths: list[float | None] = []
    for index, url in enumerate(clips(task)):
        thumbnail = cover
        if index < len(own) and own[index]:  # trueai: each clip's own first frame
            thumbnail = await _thumbnail(own[index], fetch, convert) or cover
        try:
            data = await fetch(url)
        except media.MediaError:
            log.warning("clip %d of task %s could not be downloaded", index + 1, key)
            lengths.append(None)
            continue
        seconds = media.mp4_seconds(data)
        lengths.append(seconds)
        if cache is not None and seconds is not None:  # a ➕ press reads it, not the clip
            await asyncio.to_thread(cache.put, length_key(url), f"{seconds:.3f}".encode())
        items.append(
            Media(
                "video",
                data,
                f"{key}_{index + 1}.mp4",
                caption=clip_caption(index, seconds, lang),
                thumbnail=thumbnail,
            )
        )
    if not items:
        return None
    rows = clip_rows(key, task, lang, hidden=hidden, lengths=lengths)
    text = f"{caption}\n{t('studio.clips_legend', lang)}"
    return View(text, media=tuple(items), rows=(*api_rows, *rows))


async def _thumbnail(url: str, fetch: Fetch, convert: Convert) -> bytes:
    """A clip's thumbnail from ``url`` (its own, or the video's cover: ``imageUrl``, the first
    frame); none when it cannot be had (the platforms then make their own)."""
    if not url:
        return b""
    try:
        thumb: bytes = await convert(media.to_thumbnail, await fetch(url))
    except media.MediaError:
        return b""
    return thumb


def _clip_thumbnails(task: Task) -> list[str]:
    """Each clip's own thumbnail where the API names one (trueai: ``videoUrls: [{url,
    thumbnail}]``); "" where it does not."""
    items = task.raw.get("videoUrls")
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        thumb = item.get("thumbnail") if isinstance(item, dict) else None
        found.append(thumb if isinstance(thumb, str) else "")
    return found


def length_key(url: str) -> str:
    """Where a clip's length is kept in the media cache (by its URL: a clip never changes)."""
    return "len-" + hashlib.sha256(url.encode()).hexdigest()[:32]


async def known_length(cache: media.MediaCache | None, url: str) -> float | None:
    """A clip's length as the album that showed it read it; None when not kept."""
    if cache is None:
        return None
    kept = await asyncio.to_thread(cache.get, length_key(url))
    try:
        return float(kept) if kept else None
    except ValueError:
        return None


def item_url(task: Task | None, verb: Verb, index: int) -> str:
    """The picture or clip a press acts on ("" when the result has no such item)."""
    items = clips(task) if verb in EXTEND_VERBS else pictures(task) or clips(task)
    return items[index] if 0 <= index < len(items) else ""


def file_view(key: str, index: int, data: bytes, lang: str) -> View:
    """One picture's or clip's original file, as a document."""
    kind = media.sniff(data).rpartition("/")[2] or "bin"
    name = f"{key}_{index + 1}.{'jpg' if kind == 'jpeg' else kind}"
    return View(t("result.file", lang), media=(Media("document", data, name),))


# --- /video's options ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """What /video was asked for beside the prompt and the photo(s)."""

    motion: str = "low"
    loop: bool = False
    batch: int = 4
    hd: bool = False
    end_frame: bool = False  # a second photo ends the clips

    @property
    def video_type(self) -> str:
        """Sent only for HD: without it every provider makes 480p (openai-hk's documented
        request has no videoType)."""
        return VIDEO_TYPES[1] if self.hd else ""

    @property
    def batch_size(self) -> int:
        """Sent only when not the default four (openai-hk's documented request has none)."""
        return 0 if self.batch == 4 else self.batch

    @property
    def cost(self) -> str:
        """The action the policy weighs ([quota.weights] video, video_hd)."""
        return "video_hd" if self.hd else "video"

    def summary(self, lang: str) -> str:
        """What was asked for, for the progress message: '480p · 4 clips · low motion'."""
        parts = [
            "720p" if self.hd else "480p",
            t("studio.clips", lang, count=self.batch),
            t(f"studio.motion_{self.motion}", lang),
        ]
        if self.loop:
            parts.append(t("studio.loop", lang))
        if self.end_frame:
            parts.append(t("studio.end_frame", lang))
        return " · ".join(parts)


_FLAG = re.compile(r"(?<!\S)--(motion|bs|batch|loop|hd|end)\b(?:\s+(?!--)(\S+))?", re.I)
_VALUED = ("motion", "bs", "batch")


class BadOption(ValueError):
    """An option /video cannot take; ``key`` is the i18n key of the answer."""

    def __init__(self, key: str, value: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.value = value


def parse_video(args: str) -> tuple[str, VideoOptions]:
    """``--motion high --bs 2 --loop --hd a fox runs`` -> ("a fox runs", options); ``--end``
    asks for an end frame. Raises BadOption for a value /video cannot send (nothing is
    submitted then)."""
    motion, loop, batch, hd, end_frame = "low", False, 4, False, False
    kept: list[str] = []
    last = 0
    for match in _FLAG.finditer(args):
        name, value = match.group(1).lower(), match.group(2) or ""
        end = match.end() if name in _VALUED else match.start(2) if value else match.end()
        kept.append(args[last : match.start()])
        last = end
        if name == "motion":
            if value.lower() not in ("low", "high"):
                raise BadOption("studio.bad_motion", value)
            motion = value.lower()
        elif name in ("bs", "batch"):
            if value not in ("1", "2", "4"):
                raise BadOption("studio.bad_batch", value)
            batch = int(value)
        elif name == "loop":
            loop = True
        elif name == "end":
            end_frame = True
        else:
            hd = True
    kept.append(args[last:])
    prompt = " ".join("".join(kept).split())
    return prompt, VideoOptions(motion=motion, loop=loop, batch=batch, hd=hd, end_frame=end_frame)
