"""Uploads in: a multipart form read with caps, inside the port's one memory budget, and every
file checked to be an image before anything is kept or shown.

The bytes being received are reserved in the budget chunk by chunk, so many large uploads at
once are refused (with a message that says so) instead of growing the process; junk is
dropped as soon as its header shows it is no image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

from aiohttp import BodyPartReader, MultipartReader, web

from bot import media
from bot.i18n import normalize, t

from .port import WebPort

__all__ = ["MAX_FILES", "MAX_FILE_BYTES", "Form", "read_form"]

MAX_FILES = 5
MAX_FILE_BYTES = media.MAX_UPLOAD  # the same limit as a Telegram photo
MAX_FIELD = 64 * 1024  # text fields: a prompt is far shorter
CHUNK = 256 * 1024
HEAD = 4096  # bytes read before the first check


@dataclass
class Form:
    """What an upload carried; ``reserved`` bytes stay counted until ``done``."""

    text: str = ""
    lang: str = ""
    session: str = ""
    reply_to: str = ""
    images: list[bytes] = field(default_factory=list)
    reserved: int = 0

    def done(self, port: WebPort) -> None:
        port.release(self.reserved)
        self.reserved = 0


def refuse(status: type[web.HTTPException], text: str) -> NoReturn:
    raise status(text=text)


def too_large(most: int, got: int, text: str) -> NoReturn:
    raise web.HTTPRequestEntityTooLarge(max_size=most, actual_size=got, text=text)


async def read_form(request: web.Request, port: WebPort, lang: str) -> Form:
    """Read the form; on any refusal the reservation is released and an HTTP error raised
    whose text is meant for the user (the page shows it)."""
    form = Form()
    try:
        reader = await _multipart(request, lang)
        while (part := await _next(reader, lang)) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            lang = normalize(form.lang) if form.lang else lang
            if part.name in ("files", "file"):
                if len(form.images) >= MAX_FILES:
                    text = t("web.upload.too_many", lang, most=MAX_FILES)
                    too_large(MAX_FILES, MAX_FILES + 1, text)
                data = await _read_file(part, form, port, lang)
                if data:
                    form.images.append(data)
            elif part.name in ("text", "lang", "session", "reply_to"):
                setattr(form, part.name, await _read_field(part, lang))
    except BaseException:
        form.done(port)
        raise
    return form


async def _multipart(request: web.Request, lang: str) -> MultipartReader:
    # aiohttp asserts the content type and raises KeyError without one: a 500 otherwise.
    if not request.content_type.startswith("multipart/"):
        refuse(web.HTTPBadRequest, t("web.upload.not_form", lang))
    try:
        return await request.multipart()
    except (AssertionError, KeyError, ValueError):
        refuse(web.HTTPBadRequest, t("web.upload.not_form", lang))


async def _next(reader: MultipartReader, lang: str) -> BodyPartReader | MultipartReader | None:
    """The next part; a body that does not follow its boundary is the sender's error (400)."""
    try:
        return await reader.next()
    except ValueError:  # "Could not find starting boundary", a bad part header
        refuse(web.HTTPBadRequest, t("web.upload.not_form", lang))


async def _read_field(part: BodyPartReader, lang: str) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(8192):
        data += chunk
        if len(data) > MAX_FIELD:
            too_large(MAX_FIELD, len(data), t("prompt.too_long", lang, limit=MAX_FIELD))
    return data.decode("utf-8", "replace")


async def _read_file(part: BodyPartReader, form: Form, port: WebPort, lang: str) -> bytes:
    """One file, streamed: within the size cap and the budget, and an image by its header."""
    buffer = bytearray()
    checked = False
    while chunk := await part.read_chunk(CHUNK):
        if len(buffer) + len(chunk) > MAX_FILE_BYTES:
            too_large(MAX_FILE_BYTES, len(buffer) + len(chunk), t("upload.too_big", lang))
        if not port.reserve(len(chunk)):
            mb = port.budget // (1024 * 1024)
            refuse(web.HTTPServiceUnavailable, t("web.upload.busy", lang, mb=mb))
        form.reserved += len(chunk)
        buffer += chunk
        if not checked and len(buffer) >= HEAD:
            checked = True  # the header tells an image from junk: stop reading junk early
            if not _plausible(buffer):
                refuse(web.HTTPBadRequest, t("upload.not_image", lang))
    data = bytes(buffer)
    buffer.clear()
    if data and not media.looks_like_image(data):
        refuse(web.HTTPBadRequest, t("upload.not_image", lang))
    return data


def _plausible(head: bytearray) -> bool:
    """The first bytes tell an image from junk, so 20 MB of junk is refused after 4 KB (the
    full check is Pillow's, at the end)."""
    return media.sniff(bytes(head[:16])).startswith("image/") or media.looks_like_image(
        bytes(head[:65536])
    )
