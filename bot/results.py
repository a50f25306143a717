"""Finished tasks as Views: images, videos, describe/shorten texts, failures.

Result media is downloaded right after success (CDN links expire), cached on disk by task key
(so /task, 📎 and Vary (Region) keep working), and re-encoded for chat apps.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from bot import buttons, media, studio
from bot.i18n import t
from bot.mj.failures import Reason, of_fail_reason
from bot.mj.models import Action, Task, TaskState
from bot.mj.prompt import is_draft
from bot.store import TaskRow
from bot.views import Choice, Media, View, clip, headline, result_caption

log = logging.getLogger("bot.results")

T = TypeVar("T")


class Sources(Protocol):
    """Where result media comes from: what these functions use of the service (passed in,
    so this module does not import the service that imports it)."""

    @property
    def cache(self) -> media.MediaCache | None: ...

    @property
    def downloader(self) -> media.Downloader: ...

    @property
    def client(self) -> object: ...  # the API client: only its hidden_buttons are read

    @property
    def photo_as_is_max_bytes(self) -> int: ...  # media.to_photo's cap

    async def convert(self, function: Callable[..., T], *args: Any) -> T: ...


TEXT_ACTIONS = (Action.DESCRIBE, Action.SHORTEN)
GRID_ACTIONS = (
    Action.IMAGINE,
    Action.VARIATION,
    Action.REROLL,
    Action.BLEND,
    Action.PAN,
    Action.ZOOM,
    Action.EDIT,
    Action.RETEXTURE,
)
_OPTION = re.compile(r"^\s*([1-5])\ufe0f?\u20e3\s*(.+)$", re.M)


def numbered_options(text: str) -> dict[int, str]:
    """The numbered suggestions (1️⃣ ... 5️⃣) of a describe or shorten result."""
    return {int(n): body.strip() for n, body in _OPTION.findall(text or "")}


async def original(service: Sources, row: TaskRow) -> bytes | None:
    """The result image's original bytes: from the cache, else downloaded (and cached)."""
    if service.cache is not None:
        cached = await asyncio.to_thread(service.cache.get, row.key)
        if cached:
            return cached
    task = row.task
    if task is None or not task.image_url:
        return None
    try:
        data = await service.downloader.get(task.image_url)
    except media.MediaError:
        return None
    if not media.looks_like_image(data):  # an error page served with 200: not worth keeping
        log.warning("the result image is not an image (task %s)", row.key)
        return None
    if service.cache is not None:
        await asyncio.to_thread(service.cache.put, row.key, data)
    return data


def offers_retry(row: TaskRow) -> bool:
    """Whether 🔁 belongs under this task: an imagine that ended without its grid (failed,
    refused, timed out, interrupted). The press checks the same rule, so a forged 🔁 under a
    grid that succeeded buys nothing."""
    task = row.task
    failed = task is None or task.status is not TaskState.SUCCESS
    return row.kind == "imagine" and bool(row.prompt) and row.is_final and failed


def offers_full_quality(row: TaskRow) -> bool:
    """Whether ✨ Full quality belongs under this task: a draft grid (V7's --draft) that
    succeeded. The press checks the same rule, so a forged ✨ elsewhere buys nothing."""
    task = row.task
    return (
        task is not None
        and task.status is TaskState.SUCCESS
        and task.action in GRID_ACTIONS
        and is_draft(row.prompt)
    )


async def final_view(service: Sources, row: TaskRow, money: str = "") -> View:
    """The finished task's message; ``money``, a failure's last line (what its charge came
    to: bot.usecases.submitter.Submitter.money_said)."""
    task = row.task
    lang = row.lang
    if task is None or task.status is not TaskState.SUCCESS:
        reason = describe_failure((task.fail_reason if task else "") or row.error or "", lang)
        rows: tuple[tuple[Choice, ...], ...] = ()
        if offers_retry(row):
            rows = ((Choice(t("btn.retry", lang), buttons.encode(row.key, "retry")),),)
        text = headline(f"❌ {reason}", row.prompt)
        return View(f"{text}\n{money}" if money else text, rows=rows)
    title = t(f"kind.{row.kind}", lang, label=row.label)
    caption = result_caption(
        _without_links(task.display_prompt) if task.action not in TEXT_ACTIONS else row.prompt,
        title,
        lang,
        mode=row.mode or task.mode,
        seconds=_elapsed(task, row),
    )
    # what the provider cannot do is not offered (its profile, and refusals seen since start)
    hidden = getattr(service.client, "hidden_buttons", ())
    rows = buttons.layout(row.key, task.buttons, lang, hidden=hidden)
    if task.action in TEXT_ACTIONS:
        text = f"{title}\n\n{clip(_plain(task.final_prompt), 3500)}"
        return View(text, rows=rows)
    if studio.pictures(task):  # imageUrls and no buttons (openai-hk's EDITS): the four
        album = await studio.picture_album(
            row.key, task, caption, lang, fetch=service.downloader.get, convert=service.convert
        )
        if album is not None:
            return album
    if task.action is Action.VIDEO and (task.video_urls or task.video_url):
        return await _video_view(service, row, task, caption, rows)
    data = await original(service, row)
    try:
        photo = (
            await service.convert(media.to_photo, data, service.photo_as_is_max_bytes)
            if data is not None
            else None
        )
    except media.MediaError:  # not an image after all: the link still works
        photo = None
    if photo is None:
        return View(f"{caption}\n\n{t('result.link', lang, url=task.image_url)}", rows=rows)
    picture, extension = photo
    extras = [
        Choice("🌱", buttons.encode(row.key, "seed")),
        Choice("📎", buttons.encode(row.key, "file")),
    ]
    if task.action in GRID_ACTIONS:
        extras.append(Choice("✂️", buttons.encode(row.key, "split")))
    if offers_full_quality(row):
        extras.append(Choice(t("btn.full_quality", lang), buttons.encode(row.key, "full")))
    return View(
        caption,
        media=(Media("photo", picture, f"{row.key}.{extension}"),),
        rows=(*rows, tuple(extras)),
    )


async def _video_view(
    service: Sources,
    row: TaskRow,
    task: Task,
    caption: str,
    rows: tuple[tuple[Choice, ...], ...],
) -> View:
    """The clips as real videos with their lengths and per-clip buttons (bot.studio)."""
    album = await studio.clip_album(
        row.key,
        task,
        caption,
        row.lang,
        fetch=service.downloader.get,
        convert=service.convert,
        api_rows=rows,
        hidden=getattr(service.client, "hidden_buttons", ()),
        cache=service.cache,
    )
    if album is None:
        links = "\n".join(task.video_urls or (task.video_url,))
        return View(f"{caption}\n\n{t('result.link', row.lang, url=links)}", rows=rows)
    return album


def file_view(row: TaskRow, data: bytes) -> View:
    kind = _extension(data)
    return View(t("result.file", row.lang), media=(Media("document", data, f"{row.key}.{kind}"),))


def split_view(row: TaskRow, data: bytes) -> View:
    """A 2x2 grid as its four images (an album); an original over the pixel cap says so.

    The original is whatever the API served (cached after a header check only), so it is
    decoded under the same cap as everything else; an accepted grid keeps every pixel."""
    try:
        image = media.decode(data, 2 * media.PHOTO_MAX_SIDE).convert("RGB")
    except media.MediaError:
        return View(t("result.split_too_big", row.lang))
    width, height = image.size
    tiles = []
    for index, (x, y) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1)), start=1):
        box = (x * width // 2, y * height // 2, (x + 1) * width // 2, (y + 1) * height // 2)
        out = io.BytesIO()
        image.crop(box).save(out, "JPEG", quality=92)
        tiles.append(Media("photo", out.getvalue(), f"{row.key}_{index}.jpg"))
    return View(t("result.split", row.lang), media=tuple(tiles))


def _extension(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bin"


def _without_links(prompt: str) -> str:
    """Reference images and blends put upload URLs into the prompt (P16): not for captions."""
    return " ".join(re.sub(r"<?https?://\S+>?", " ", prompt).split())


def _plain(text: str) -> str:
    """Shorten's markdown (**bold**, ~~struck~~, ## headings) as readable plain text."""
    text = re.sub(r"^##\s*", "", text, flags=re.M)
    return text.replace("**", "").replace("~~", "")


def _elapsed(task: Task, row: TaskRow) -> float:
    if task.finish_time and task.submit_time:
        return max(0.0, (task.finish_time - task.submit_time) / 1000)
    return max(0.0, time.time() - row.created_at)


# The headline (an i18n key) for each kind of failReason; the raw text follows as detail.
_HEADLINES = {
    Reason.MODERATION: "failure.moderation",
    Reason.INVALID: "failure.invalid",
    Reason.TIMEOUT: "failure.timeout",
    Reason.QUEUE_FULL: "failure.account",
    Reason.ACCOUNT: "failure.account",
}


def describe_failure(reason: str, lang: str) -> str:
    """The failReason in the user's words: a headline by its kind plus the raw text as detail."""
    text = t(_HEADLINES.get(of_fail_reason(reason), "failure.generic"), lang)
    detail = clip(reason.strip(), 300)
    return f"{text}\n{detail}" if detail and reason != "timeout" else text
