"""A fake Telegram Bot API server on 127.0.0.1 for adapter and end-to-end tests.

The real python-telegram-bot talks to it over HTTP through its documented seam::

    async with FakeTelegram() as fake:
        app = (
            ApplicationBuilder().token(fake.token)
            .base_url(fake.base_url).base_file_url(fake.base_file_url).build()
        )

The fake keeps users, chats, messages and files in memory, lets the test act as users (send text,
photos and albums, press inline buttons), records every API call, and answers like the real server
would, including its errors: every request is validated against the Bot API spec
(``../shared/specs/telegram-bot-api.json``, see :mod:`tests.fakes.spec`) and against the documented
limits (platforms.md §1). Every response object is checked against the spec and round-tripped
through python-telegram-bot's ``de_json`` so a malformed fake cannot silently pass.

Error descriptions follow the real server where they are known ("Bad Request: message is not
modified: ...", "Bad Request: BUTTON_DATA_INVALID", "Too Many Requests: retry after N"); the
others are readable and start with the same "Bad Request: " prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
import io
import itertools
import json
import math
import mimetypes
import re
import time
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import telegram
from aiohttp import web
from PIL import Image

from tests.fakes.spec import SPEC_AVAILABLE, Spec, SpecError, Upload, load_spec

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_ID",
    "BOT_USERNAME",
    "SPEC_AVAILABLE",
    "ApiError",
    "Call",
    "FakeChat",
    "FakeFile",
    "FakeMessage",
    "FakeTelegram",
    "FakeUser",
    "RateLimits",
    "parse_entities",
]

BOT_ID = 999
BOT_USERNAME = "mjbot_test_bot"
BOT_FIRST_NAME = "mjbot"

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_ANSWER_TEXT = 200
MAX_BUTTONS = 100
MAX_BUTTONS_PER_ROW = 8
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024
# sendVideo/InputMediaVideo.thumbnail: "JPEG format and less than 200 kB in size. A
# thumbnail's width and height should not exceed 320" (Bot API). Telegram ignores a thumbnail
# it cannot use; the fake refuses it, so a test sees the bot's thumbnails are usable.
MAX_THUMBNAIL_BYTES = 200 * 1024
MAX_THUMBNAIL_SIDE = 320
MAX_PHOTO_SIDES = 10000
MAX_PHOTO_RATIO = 20
MAX_FILE_UPLOAD = 50 * 1024 * 1024
MAX_PHOTO_BY_URL = 5 * 1024 * 1024
MAX_FILE_BY_URL = 20 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a specified content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
GET_UPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)

SEND_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAnimation",
        "sendAudio",
        "sendVoice",
        "sendVideoNote",
        "sendSticker",
        "sendMediaGroup",
        "sendLocation",
        "sendContact",
        "sendPoll",
        "sendDice",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    }
)
EDIT_METHODS = frozenset(
    {"editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup"}
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Sent unless a bot asks for them explicitly through allowed_updates (Bot API getUpdates).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# python-telegram-bot 22.8 sends nothing outside the 10.1 spec for the methods a bot uses: its
# convenience arguments (reply_to_message_id, allow_sending_without_reply, disable_web_page_preview,
# filename, sendMediaGroup's caption...) are folded into spec parameters before the request is
# built. Add a name here, with the reason, if a legitimate PTB parameter ever gets rejected.
PTB_EXTRA_PARAMS: dict[str, frozenset[str]] = {}


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(
        self, description: str, code: int = 400, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.parameters = parameters

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


# ------------------------------------------------------------------------------------------------
# Records


@dataclass
class FakeUser:
    id: int
    first_name: str = "Alice"
    language_code: str | None = "en"
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    is_premium: bool | None = None

    def to_api(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        if self.is_premium:
            d["is_premium"] = True
        return d


@dataclass
class FakeChat:
    id: int
    type: str  # "private" | "group" | "supergroup" | "channel"
    title: str | None = None
    username: str | None = None
    user: FakeUser | None = None  # the other side of a private chat
    members: dict[int, str] = field(default_factory=dict)  # user id -> ChatMember status
    bot_status: str = "member"  # in groups: member | administrator | left | kicked
    blocked: bool = False  # private chats: the user blocked the bot
    migrated_to: int | None = None
    menu_button: dict[str, Any] | None = None

    def to_api(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            d["first_name"] = self.user.first_name
            if self.user.last_name:
                d["last_name"] = self.user.last_name
            if self.user.username:
                d["username"] = self.user.username
        else:
            d["title"] = self.title or ""
            if self.username:
                d["username"] = self.username
        return d


@dataclass
class FakeFile:
    """A stored file: what the bot uploaded, or what a test user sent."""

    file_id: str
    file_unique_id: str
    kind: str  # photo | document | video | animation | audio | voice
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    uploaded_by_bot: bool = False
    thumbnail: bytes | None = field(default=None, repr=False)  # uploaded with a video
    _data: bytes | None = field(default=None, repr=False)
    _loader: Callable[[], bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> bytes:
        if self._data is None:
            assert self._loader is not None
            self._data = self._loader()
        return self._data

    @property
    def file_size(self) -> int | None:
        return len(self._data) if self._data is not None else None

    def photo_size(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
        }
        if self.file_size is not None:
            d["file_size"] = self.file_size
        return d

    def to_api(self, as_kind: str | None = None) -> dict[str, Any]:
        kind = as_kind or self.kind
        if kind == "photo":
            return self.photo_size()
        d: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if kind in ("video", "animation"):
            d["width"] = self.width or 0
            d["height"] = self.height or 0
            d["duration"] = self.duration or 0
        elif kind in ("audio", "voice"):
            d["duration"] = self.duration or 0
        if self.file_name and kind != "voice":
            d["file_name"] = self.file_name
        if self.mime_type:
            d["mime_type"] = self.mime_type
        if self.file_size is not None:
            d["file_size"] = self.file_size
        return d


@dataclass
class FakeMessage:
    """One message in a chat, as the fake stores it (not the Bot API JSON; see to_api)."""

    chat_id: int
    message_id: int
    from_bot: bool
    text: str | None = None
    caption: str | None = None
    video: FakeFile | None = None
    document: FakeFile | None = None
    reply_markup: dict[str, Any] | None = None  # as sent, any kind (inline, ForceReply...)
    reply_to_message_id: int | None = None
    media_group_id: str | None = None
    edits: list[FakeMessage] = field(default_factory=list)  # previous versions, oldest first
    deleted: bool = False
    date: int = 0
    from_user: FakeUser | None = None  # None for the bot's own messages
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    photo_sizes: list[FakeFile] = field(default_factory=list)  # smallest first
    animation: FakeFile | None = None
    audio: FakeFile | None = None
    raw_text: str | None = None  # text/caption exactly as sent, before parse_mode
    parse_mode: str | None = None
    edit_date: int | None = None
    method: str | None = None  # the API method that created it (bot messages)
    web_app_data: dict[str, Any] | None = None
    reactions: list[dict[str, Any]] = field(default_factory=list)
    has_spoiler: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # other parameters the bot sent

    @property
    def photo(self) -> FakeFile | None:
        """The largest size of the photo, or None."""
        return self.photo_sizes[-1] if self.photo_sizes else None

    @property
    def photo_bytes(self) -> bytes | None:
        """The bytes of the photo as uploaded (largest size)."""
        return self.photo.data if self.photo else None

    @property
    def media(self) -> FakeFile | None:
        return self.photo or self.video or self.animation or self.audio or self.document

    @property
    def kind(self) -> str:
        for name in ("photo", "video", "animation", "audio", "document"):
            if getattr(self, name) is not None:
                return name
        if self.web_app_data is not None:
            return "web_app_data"
        return "text"

    @property
    def content(self) -> str | None:
        """Text of a text message, caption of a media message."""
        return self.text if self.text is not None else self.caption

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            return self.reply_markup["inline_keyboard"]
        return []

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard as rows of (text, callback_data); callback_data None for url etc."""
        return [[(b["text"], b.get("callback_data")) for b in row] for row in self.inline_keyboard]

    @property
    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text, _ in row]

    @property
    def user_id(self) -> int:
        return BOT_ID if self.from_bot else self.from_user.id  # type: ignore[union-attr]


@dataclass
class Call:
    """One API request the fake received."""

    method: str
    params: dict[str, Any]  # decoded; nested JSON parsed; uploads as "attach://<part name>"
    files: dict[str, bytes]
    time: float
    response: dict[str, Any] | None = None
    status: int = 0
    http_method: str = "POST"

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def result(self) -> Any:
        return self.response.get("result") if self.response else None

    @property
    def error(self) -> str | None:
        if self.response and not self.response.get("ok"):
            return self.response.get("description")
        return None

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in ("media", "reply_markup")}
        text = json.dumps(shown, ensure_ascii=False, default=str)
        if len(text) > 160:
            text = text[:157] + "..."
        outcome = "pending" if self.response is None else ("ok" if self.ok else self.error)
        return f"{self.method} {text} -> {outcome}"


@dataclass
class RateLimits:
    """Flood limits, off by default (platforms.md §1: ~1 msg/s per chat with short bursts,
    20 msg/min per group, ~30 msg/s overall). Token buckets; edits count per chat."""

    enabled: bool = False
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    group_per_minute: int = 20
    global_per_second: int = 30
    count_edits: bool = True


@dataclass
class _Pending:
    update: dict[str, Any]
    delivered: bool = False
    failures: int = 0  # webhook posts that failed in a row (the backoff)

    @property
    def update_id(self) -> int:
        return self.update["update_id"]

    @property
    def kind(self) -> str:
        return next(k for k in self.update if k != "update_id")


@dataclass
class _Fault:
    method: str
    code: int
    description: str
    times: int
    chat_id: int | None
    parameters: dict[str, Any] | None


@dataclass
class _Callback:
    id: str
    chat_id: int
    message_id: int
    user: FakeUser
    data: str
    created: float
    answered: bool = False


# ------------------------------------------------------------------------------------------------
# Formatting: parse_mode -> plain text + entities (offsets in UTF-16 code units)


class EntityParseError(Exception):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


def parse_entities(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities for ``text`` sent with ``parse_mode``; raises ApiError."""
    mode = (parse_mode or "").lower()
    try:
        if mode == "html":
            return _parse_html(text)
        if mode == "markdownv2":
            return _parse_markdown_v2(text)
        if mode == "markdown":
            return _parse_markdown(text)
    except EntityParseError as exc:
        raise ApiError(f"Bad Request: can't parse entities: {exc}") from None
    if mode:
        raise ApiError(f"Bad Request: unsupported parse_mode {parse_mode}")
    return text, []


class _Out:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0  # UTF-16 length so far
        self.entities: list[dict[str, Any]] = []

    def emit(self, s: str) -> None:
        self.parts.append(s)
        self.pos += utf16_len(s)

    def add(self, kind: str | None, start: int, **extra: Any) -> None:
        if kind is None or self.pos <= start:
            return
        entity = {"type": kind, "offset": start, "length": self.pos - start}
        entity.update({k: v for k, v in extra.items() if v is not None})
        self.entities.append(entity)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        ents = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ents


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR_RE = re.compile(
    r"""\s*([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?"""
)
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,6});")


def _html_unescape(s: str) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith(("#x", "#X")):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _HTML_NAMED.get(name, m.group(0))

    return _ENTITY_RE.sub(repl, s)


def _parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Out()
    stack: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "<":
            end = src.find(">", i)
            if end == -1:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(src, i)}")
            inner = src[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise EntityParseError(
                        f"Unexpected end tag at byte offset {_byte_offset(src, i)}"
                    )
                top = stack.pop()
                if name != top["tag"]:
                    raise EntityParseError(
                        f"Unmatched end tag at byte offset {_byte_offset(src, i)}, expected "
                        f'"</{top["tag"]}>", found "</{name}>"'
                    )
                out.add(top["type"], top["start"], **top["extra"])
            else:
                m = re.match(r"[a-zA-Z][a-zA-Z0-9-]*", inner)
                name = m.group(0).lower() if m else ""
                if name not in _HTML_TAGS:
                    raise EntityParseError(
                        f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, i)}'
                    )
                attrs = {
                    a.group(1).lower(): _html_unescape(a.group(2) or a.group(3) or a.group(4) or "")
                    for a in _ATTR_RE.finditer(inner[len(name) :])
                }
                kind: str | None = _HTML_TAGS[name]
                extra: dict[str, Any] = {}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise EntityParseError('Tag "span" must have class "tg-spoiler"')
                if name == "a":
                    href = attrs.get("href")
                    if href:
                        extra["url"] = href
                    else:
                        kind = None
                if name == "tg-emoji":
                    if not attrs.get("emoji-id"):
                        raise EntityParseError('Tag "tg-emoji" must have attribute "emoji-id"')
                    extra["custom_emoji_id"] = attrs["emoji-id"]
                if name == "blockquote" and "expandable" in attrs:
                    kind = "expandable_blockquote"
                if name == "code" and stack and stack[-1]["tag"] == "pre":
                    lang = attrs.get("class", "")
                    if lang.startswith("language-"):
                        stack[-1]["extra"]["language"] = lang.removeprefix("language-")
                    kind = None
                stack.append({"tag": name, "type": kind, "start": out.pos, "extra": extra})
            i = end + 1
            continue
        if c == "&":
            m = _ENTITY_RE.match(src, i)
            if m:
                out.emit(_html_unescape(m.group(0)))
                i = m.end()
                continue
        out.emit(c)
        i += 1
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1]["tag"]}"'
        )
    return out.result()


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "link": "TextUrl",
    "emoji": "CustomEmoji",
}


def _parse_markdown_v2(src: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Out()
    stack: list[tuple[str, int, int]] = []  # (kind, start, source index)
    quote_start: int | None = None
    i, n = 0, len(src)

    def toggle(kind: str, width: int) -> None:
        if stack and stack[-1][0] == kind:
            _, start, _ = stack.pop()
            out.add(kind, start)
        elif any(k == kind for k, _, _ in stack):
            _, _, at = next(s for s in stack if s[0] == kind)
            raise EntityParseError(
                f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
                f"{_byte_offset(src, at)}"
            )
        else:
            stack.append((kind, out.pos, i))

    while i < n:
        c = src[i]
        if i == 0 or src[i - 1] == "\n":
            if c == ">":
                if quote_start is None:
                    quote_start = out.pos
                i += 1
                continue
            if quote_start is not None:
                out.pos -= 1  # the quote ends before the newline just emitted
                out.add("blockquote", quote_start)
                out.pos += 1
                quote_start = None
        if c == "\\":
            if i + 1 < n and 0 < ord(src[i + 1]) < 127:
                out.emit(src[i + 1])
                i += 2
                continue
            raise EntityParseError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if c == "`":
            pre = src.startswith("```", i)
            j = i + (3 if pre else 1)
            body: list[str] = []
            closed = False
            while j < n:
                if src[j] == "\\" and j + 1 < n and src[j + 1] in "`\\":
                    body.append(src[j + 1])
                    j += 2
                    continue
                if src.startswith("```" if pre else "`", j):
                    closed = True
                    break
                body.append(src[j])
                j += 1
            if not closed:
                kind_name = "Pre" if pre else "Code"
                raise EntityParseError(
                    f"Can't find end of {kind_name} entity at byte offset {_byte_offset(src, i)}"
                )
            content = "".join(body)
            language = None
            if pre and "\n" in content:
                first, rest = content.split("\n", 1)
                if first and not re.search(r"\s", first):
                    language, content = first, rest
            start = out.pos
            out.emit(content)
            out.add("pre" if pre else "code", start, language=language)
            i = j + (3 if pre else 1)
            continue
        if c == "*":
            toggle("bold", 1)
            i += 1
            continue
        if c == "_":
            if src.startswith("__", i):
                toggle("underline", 2)
                i += 2
            else:
                toggle("italic", 1)
                i += 1
            continue
        if c == "~":
            toggle("strikethrough", 1)
            i += 1
            continue
        if c == "|" and src.startswith("||", i):
            toggle("spoiler", 2)
            i += 2
            continue
        if c == "[" or (c == "!" and src.startswith("![", i)):
            kind = "emoji" if c == "!" else "link"
            stack.append((kind, out.pos, i))
            i += 2 if c == "!" else 1
            continue
        if c == "]" and stack and stack[-1][0] in ("link", "emoji"):
            kind, start, at = stack.pop()
            if not src.startswith("(", i + 1):
                raise EntityParseError(
                    f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
                    f"{_byte_offset(src, at)}"
                )
            j = i + 2
            url: list[str] = []
            while j < n and src[j] != ")":
                if src[j] == "\\" and j + 1 < n:
                    url.append(src[j + 1])
                    j += 2
                    continue
                url.append(src[j])
                j += 1
            if j >= n:
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(src, i + 1)}"
                )
            target = "".join(url)
            if kind == "emoji":
                emoji_id = urllib.parse.parse_qs(urllib.parse.urlparse(target).query).get("id")
                out.add("custom_emoji", start, custom_emoji_id=(emoji_id or [""])[0])
            else:
                out.add("text_link", start, url=target)
            i = j + 1
            continue
        if c in _MDV2_RESERVED:
            raise EntityParseError(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
        out.emit(c)
        i += 1
    if quote_start is not None:
        out.add("blockquote", quote_start)
    if stack:
        kind, _, at = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {_byte_offset(src, at)}"
        )
    return out.result()


def _parse_markdown(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = _Out()
    i, n = 0, len(src)

    def unclosed(at: int) -> EntityParseError:
        return EntityParseError(
            f"Can't find end of the entity starting at byte offset {_byte_offset(src, at)}"
        )

    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.emit(src[i + 1])
            i += 2
            continue
        if c in "*_":
            j = src.find(c, i + 1)
            if j == -1:
                raise unclosed(i)
            start = out.pos
            out.emit(src[i + 1 : j])
            out.add("bold" if c == "*" else "italic", start)
            i = j + 1
            continue
        if c == "`":
            pre = src.startswith("```", i)
            mark = "```" if pre else "`"
            j = src.find(mark, i + len(mark))
            if j == -1:
                raise unclosed(i)
            content = src[i + len(mark) : j]
            language = None
            if pre and "\n" in content:
                first, rest = content.split("\n", 1)
                if first and not re.search(r"\s", first):
                    language, content = first, rest
            start = out.pos
            out.emit(content)
            out.add("pre" if pre else "code", start, language=language)
            i = j + len(mark)
            continue
        if c == "[":
            j = src.find("]", i + 1)
            if j == -1 or not src.startswith("(", j + 1):
                raise unclosed(i)
            k = src.find(")", j + 2)
            if k == -1:
                raise unclosed(i)
            start = out.pos
            out.emit(src[i + 1 : j])
            out.add("text_link", start, url=src[j + 2 : k])
            i = k + 1
            continue
        out.emit(c)
        i += 1
    return out.result()


_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"(?<!\w)@[A-Za-z0-9_]{5,32}")
_URL_RE = re.compile(r"https?://[^\s]+")


def auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities a Telegram client adds to a plain typed message: commands, mentions, URLs."""
    found: list[dict[str, Any]] = []
    for kind, regex in (("bot_command", _COMMAND_RE), ("mention", _MENTION_RE), ("url", _URL_RE)):
        for m in regex.finditer(text):
            found.append(
                {
                    "type": kind,
                    "offset": utf16_len(text[: m.start()]),
                    "length": utf16_len(m.group(0)),
                }
            )
    return sorted(found, key=lambda e: e["offset"])


# ------------------------------------------------------------------------------------------------
# The server


Handler = Callable[[dict[str, Any], dict[str, Upload]], Awaitable[Any]]


class FakeTelegram:
    """Fake Bot API server; see the module docstring. Start with ``await fake.start()`` or
    ``async with FakeTelegram() as fake``; point PTB at ``fake.base_url``/``fake.base_file_url``.
    """

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        validate_spec: bool = True,
        strict_objects: bool = True,
        check_responses: bool = True,
        rate_limits: RateLimits | None = None,
        privacy_mode: bool = False,
        callback_query_ttl: float | None = None,
        fetch_urls: bool = True,
        bot_username: str = BOT_USERNAME,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.url = ""
        self.spec = Spec(load_spec() if validate_spec else None)
        self.strict_objects = strict_objects
        self.check_responses = check_responses
        self.rate_limits = rate_limits or RateLimits()
        self.privacy_mode = privacy_mode
        self.callback_query_ttl = callback_query_ttl
        self.fetch_urls = fetch_urls
        self.bot_username = bot_username

        self.users: dict[int, FakeUser] = {}
        self.chats: dict[int, FakeChat] = {}
        self.files: dict[str, FakeFile] = {}
        self.calls: list[Call] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self.callback_queries: dict[str, _Callback] = {}
        self.web_app_answers: dict[str, dict[str, Any]] = {}
        self.chat_actions: list[tuple[int, str, float]] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.bot_settings: dict[str, dict[str, Any]] = {}
        self.default_menu_button: dict[str, Any] | None = None
        self.webhook: dict[str, Any] | None = None
        self.updates: list[dict[str, Any]] = []  # every update ever queued, in order
        self.internal_errors: list[str] = []
        # File downloads wait until this is set (a slow download, e.g. for a kill -9 to land
        # in; None: answered at once), and how many were asked for.
        self.files_held: asyncio.Event | None = None
        self.file_downloads = 0

        self._messages: dict[int, dict[int, FakeMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._files_by_path: dict[str, FakeFile] = {}
        self._photo_sets: dict[str, list[FakeFile]] = {}
        self._pending: list[_Pending] = []
        self._allowed_updates: list[str] | None = None
        self._poller: object | None = None
        self._wakeup = asyncio.Event()
        self._closing = False
        self._faults: list[_Fault] = []
        self._late: dict[str, list[float]] = {}  # method -> [seconds, times left]
        self._throttles: dict[int, list[int]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._ids = itertools.count(1)
        self._next_update_id = 10_000
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        # Every webhook post: (update_id, HTTP status; 0 = no answer). Telegram gives up on a
        # post after a while and sends it again: webhook_timeout_s is that while, here.
        self.webhook_posts: list[tuple[int, int]] = []
        self.webhook_timeout_s = 10.0
        self._handlers: dict[str, Handler] = self._build_handlers()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def bot_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``telegram.Bot(**fake.bot_kwargs())``."""
        return {"token": self.token, "base_url": self.base_url, "base_file_url": self.base_file_url}

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=MAX_FILE_UPLOAD + 10 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        self._closing = False
        return self

    async def stop(self, *, check: bool = True) -> None:
        """Stop serving. Raises AssertionError if the fake itself misbehaved (``check``)."""
        self._closing = True
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if check and self.internal_errors:
            raise AssertionError(
                "FakeTelegram internal errors:\n" + "\n".join(self.internal_errors)
            )

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.stop(check=exc_type is None)

    # -- test-side configuration -----------------------------------------------------------------

    def user(
        self,
        id: int,
        first_name: str = "Alice",
        language_code: str | None = "en",
        username: str | None = None,
        *,
        last_name: str | None = None,
        is_premium: bool | None = None,
    ) -> FakeUser:
        """Register (or update) a user; creates the private chat with the bot."""
        if id <= 0:
            raise ValueError("user ids are positive")
        u = self.users.get(id)
        if u is None:
            u = FakeUser(id, first_name, language_code, username, last_name, False, is_premium)
            self.users[id] = u
        else:
            u.first_name, u.language_code, u.username = first_name, language_code, username
            u.last_name, u.is_premium = last_name, is_premium
        chat = self.chats.get(id)
        if chat is None:
            self.chats[id] = FakeChat(id=id, type="private", user=u, members={id: "member"})
        return u

    def group(
        self,
        id: int = -100123,
        title: str = "Group",
        *,
        type: str | None = None,
        username: str | None = None,
        bot_status: str = "member",
        members: dict[int, str] | None = None,
    ) -> FakeChat:
        """Register (or update) a group; ids below -10**12 default to "supergroup"."""
        if id >= 0:
            raise ValueError("group ids are negative")
        kind = type or ("supergroup" if id <= -1_000_000_000_000 else "group")
        chat = self.chats.get(id)
        if chat is None:
            chat = FakeChat(id=id, type=kind, title=title, username=username)
            self.chats[id] = chat
        else:
            chat.type, chat.title, chat.username = kind, title, username
        chat.bot_status = bot_status
        if members:
            chat.members.update(members)
        return chat

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """creator | administrator | member | restricted | left | kicked (also for BOT_ID)."""
        chat = self._chat(chat_id)
        if user_id == BOT_ID:
            chat.bot_status = status
        else:
            chat.members[user_id] = status

    def block(self, user_id: int, blocked: bool = True) -> None:
        """The user blocks the bot: sends to the private chat get 403."""
        self._chat(user_id).blocked = blocked

    def migrate_group(self, chat_id: int, new_chat_id: int) -> FakeChat:
        """Upgrade a group to a supergroup: the old id answers with migrate_to_chat_id."""
        old = self._chat(chat_id)
        new = self.group(new_chat_id, old.title or "Group", type="supergroup")
        new.members.update(old.members)
        new.bot_status = old.bot_status
        old.migrated_to = new_chat_id
        return new

    def throttle_chat(self, chat_id: int, retry_after: int = 2, times: int = 1) -> None:
        """The next ``times`` sends/edits to ``chat_id`` fail with 429 retry_after."""
        self._throttles[chat_id] = [retry_after, times]

    def enable_rate_limits(self, **kwargs: Any) -> RateLimits:
        self.rate_limits = dataclasses.replace(self.rate_limits, enabled=True, **kwargs)
        self._buckets.clear()
        return self.rate_limits

    def fail_next(
        self,
        method: str,
        *,
        description: str = "Internal Server Error",
        error_code: int = 500,
        times: int = 1,
        chat_id: int | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (optionally only for one chat) fail."""
        self._faults.append(_Fault(method, error_code, description, times, chat_id, parameters))

    def answer_late(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect at once but are answered
        ``seconds`` later: a client that gives up first has posted without knowing it."""
        self._late[method] = [seconds, times]

    # -- test-side user actions ------------------------------------------------------------------

    async def send_text(
        self,
        chat_id: int,
        user: FakeUser | int,
        text: str,
        reply_to: int | None = None,
        *,
        entities: list[dict[str, Any]] | None = None,
    ) -> FakeMessage:
        """A user types ``text``; commands, mentions and URLs get their entities."""
        chat, u = self._chat(chat_id), self._user(user)
        msg = self._new_message(
            chat,
            from_bot=False,
            from_user=u,
            text=text,
            entities=auto_entities(text) if entities is None else entities,
            reply_to_message_id=self._user_reply(chat, reply_to),
        )
        await self._deliver_user_message(chat, msg)
        return msg

    async def send_photo(
        self,
        chat_id: int,
        user: FakeUser | int,
        image_bytes: bytes,
        caption: str | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
    ) -> FakeMessage:
        """A user sends a photo (compressed, as a Telegram client does: a PhotoSize array)."""
        chat, u = self._chat(chat_id), self._user(user)
        try:
            sizes = self._store_photo(image_bytes, by_bot=False)
        except ApiError as exc:
            raise ValueError(f"not an image Telegram accepts as a photo: {exc}") from None
        return await self._user_media(chat, u, caption, reply_to, media_group_id, photo_sizes=sizes)

    async def send_document(
        self,
        chat_id: int,
        user: FakeUser | int,
        data: bytes,
        filename: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
    ) -> FakeMessage:
        """A user sends a file uncompressed (any bytes, e.g. a PNG "as file")."""
        chat, u = self._chat(chat_id), self._user(user)
        doc = self._store_file(
            data, "document", file_name=filename, mime_type=mime_type or _guess_mime(filename)
        )
        return await self._user_media(chat, u, caption, reply_to, media_group_id, document=doc)

    async def _user_media(
        self,
        chat: FakeChat,
        user: FakeUser,
        caption: str | None,
        reply_to: int | None,
        media_group_id: str | None,
        **media: Any,
    ) -> FakeMessage:
        """A captioned user message carrying a photo or a document, delivered as an update."""
        msg = self._new_message(
            chat,
            from_bot=False,
            from_user=user,
            caption=caption,
            caption_entities=auto_entities(caption) if caption else [],
            reply_to_message_id=self._user_reply(chat, reply_to),
            media_group_id=media_group_id,
            **media,
        )
        await self._deliver_user_message(chat, msg)
        return msg

    async def send_album(
        self,
        chat_id: int,
        user: FakeUser | int,
        images: list[bytes],
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> list[FakeMessage]:
        """A user sends 2-10 photos as one album: one update each, sharing media_group_id."""
        if not 2 <= len(images) <= 10:
            raise ValueError("an album has 2-10 items")
        group_id = str(13_000_000_000_000_000 + next(self._ids))
        return [
            await self.send_photo(
                chat_id,
                user,
                data,
                caption=caption if i == 0 else None,
                reply_to=reply_to,
                media_group_id=group_id,
            )
            for i, data in enumerate(images)
        ]

    async def send_web_app_data(
        self, chat_id: int, user: FakeUser | int, data: str, button_text: str = "Open"
    ) -> FakeMessage:
        """A Mini App launched from a reply keyboard calls Telegram.WebApp.sendData(data)."""
        if len(data.encode("utf-8")) > 4096:
            raise ValueError("web_app_data is at most 4096 bytes")
        chat, u = self._chat(chat_id), self._user(user)
        msg = self._new_message(
            chat,
            from_bot=False,
            from_user=u,
            web_app_data={"data": data, "button_text": button_text},
        )
        await self._deliver_user_message(chat, msg)
        return msg

    async def edit_user_message(self, chat_id: int, message_id: int, text: str) -> FakeMessage:
        """The user edits their own text message: an edited_message update."""
        msg = self.message(chat_id, message_id)
        if msg.from_bot or msg.text is None:
            raise ValueError("only a user's text message can be edited by the user")
        msg.edits.append(dataclasses.replace(msg, edits=[]))
        msg.text, msg.entities = text, auto_entities(text)
        msg.edit_date = int(time.time())
        self._queue({"edited_message": self._message_dict(msg)})
        await asyncio.sleep(0)
        return msg

    async def press(
        self,
        chat_id: int,
        message_id: int | FakeMessage,
        button: str,
        user: FakeUser | int,
    ) -> str:
        """A user presses the inline button whose text or callback_data is ``button``.

        Queues a callback_query update and returns its id; ``fake.answers[id]`` holds the
        answerCallbackQuery parameters once the bot answered.
        """
        mid = message_id.message_id if isinstance(message_id, FakeMessage) else message_id
        msg = self.message(chat_id, mid)
        if msg.deleted:
            raise LookupError(f"message {chat_id}/{mid} was deleted")
        u = self._user(user)
        found = None
        for row in msg.inline_keyboard:
            for b in row:
                if b.get("text") == button:
                    found = found or b
        if found is None:
            for row in msg.inline_keyboard:
                for b in row:
                    if b.get("callback_data") == button:
                        found = found or b
        if found is None:
            raise LookupError(
                f"no button {button!r} on message {chat_id}/{mid}; buttons: {msg.buttons}"
            )
        if "callback_data" not in found:
            raise ValueError(f"button {found['text']!r} is not a callback button: {found}")
        cq_id = str(4_000_000_000_000_000 + next(self._ids))
        self.callback_queries[cq_id] = _Callback(
            cq_id, chat_id, mid, u, found["callback_data"], time.monotonic()
        )
        self._queue(
            {
                "callback_query": {
                    "id": cq_id,
                    "from": u.to_api(),
                    "message": self._message_dict(msg),
                    "chat_instance": str(abs(chat_id) * 7 + 1),
                    "data": found["callback_data"],
                }
            }
        )
        await asyncio.sleep(0)
        return cq_id

    async def forge_press(
        self, chat_id: int, message_id: int | FakeMessage, data: str, user: FakeUser | int
    ) -> str:
        """A modified client sends callback data that no button on the message carries
        (forged, or copied from another chat); returns the callback query id."""
        mid = message_id.message_id if isinstance(message_id, FakeMessage) else message_id
        msg = self.message(chat_id, mid)
        u = self._user(user)
        cq_id = str(4_000_000_000_000_000 + next(self._ids))
        self.callback_queries[cq_id] = _Callback(cq_id, chat_id, mid, u, data, time.monotonic())
        self._queue(
            {
                "callback_query": {
                    "id": cq_id,
                    "from": u.to_api(),
                    "message": self._message_dict(msg),
                    "chat_instance": str(abs(chat_id) * 7 + 1),
                    "data": data,
                }
            }
        )
        await asyncio.sleep(0)
        return cq_id

    def inject_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (e.g. a redelivery with an old update_id); returns it."""
        update = copy.deepcopy(update)
        if "update_id" not in update:
            update["update_id"] = self._take_update_id()
        self._pending.append(_Pending(update))
        self.updates.append(update)
        self._notify()
        return update

    # -- test-side inspection --------------------------------------------------------------------

    def message(self, chat_id: int, message_id: int) -> FakeMessage:
        try:
            return self._messages[chat_id][message_id]
        except KeyError:
            raise LookupError(f"no message {message_id} in chat {chat_id}") from None

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        return [
            m for m in self._messages.get(chat_id, {}).values() if include_deleted or not m.deleted
        ]

    def bot_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        return [m for m in self.messages(chat_id, include_deleted=include_deleted) if m.from_bot]

    def last_bot_message(self, chat_id: int) -> FakeMessage | None:
        msgs = self.bot_messages(chat_id)
        return msgs[-1] if msgs else None

    def buttons(self, message: FakeMessage | tuple[int, int]) -> list[list[tuple[str, str | None]]]:
        if not isinstance(message, FakeMessage):
            message = self.message(*message)
        return message.buttons

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def api_calls(self, *, exclude: Iterable[str] = ("getUpdates",)) -> list[Call]:
        skip = set(exclude)
        return [c for c in self.calls if c.method not in skip]

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].data

    def describe(self, last: int = 15) -> str:
        """Recent calls, one per line (for assertion messages)."""
        return "\n".join(f"  {c}" for c in self.api_calls()[-last:]) or "  (no calls)"

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        interval: float = 0.02,
        message: str = "",
    ) -> Any:
        """Poll ``predicate`` (sync or async) until truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"wait_for timed out after {timeout}s{': ' + message if message else ''}\n"
                    f"recent calls:\n{self.describe()}"
                )
            await asyncio.sleep(interval)

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        after: int = 0,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Call:
        """First finished call of ``method`` at index >= ``after`` in fake.calls matching."""

        def find() -> Call | None:
            for c in self.calls[after:]:
                if c.method == method and c.response is not None:
                    if predicate is None or predicate(c):
                        return c
            return None

        return await self.wait_for(find, timeout, message=f"a {method} call")

    async def wait_for_bot_message(
        self,
        chat_id: int,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        after: int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> FakeMessage:
        """First live bot message in the chat (with message_id > ``after``) matching."""

        def find() -> FakeMessage | None:
            for m in self.bot_messages(chat_id):
                if (after is None or m.message_id > after) and (predicate is None or predicate(m)):
                    return m
            return None

        return await self.wait_for(find, timeout, message=f"a bot message in chat {chat_id}")

    async def wait_for_answer(
        self,
        callback_query_id: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict:
        return await self.wait_for(
            lambda: self.answers.get(callback_query_id),
            timeout,
            message=f"answerCallbackQuery {callback_query_id}",
        )

    def last_message_id(self, chat_id: int) -> int:
        return self._next_message_id.get(chat_id, 1) - 1

    # -- HTTP --------------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method_name = request.match_info["method"]
        call = Call(method_name, {}, {}, time.time(), http_method=request.method)
        self.calls.append(call)
        if request.match_info["token"] != self.token:
            call.response = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            call.status = 401
            return web.json_response(call.response, status=401)
        try:
            raw, uploads = await self._read_params(request)
            call.files = {name: up.data for name, up in uploads.items()}
            call.params = {k: _loose(v) for k, v in raw.items()}
            result = await self._dispatch(call, method_name, raw, uploads)
            body: dict[str, Any] = {"ok": True, "result": result}
            status = 200
        except ApiError as exc:
            body, status = exc.to_dict(), exc.code
        except asyncio.CancelledError:
            call.response, call.status = {"ok": False, "description": "client went away"}, 499
            raise
        except Exception:
            detail = traceback.format_exc()
            self.internal_errors.append(f"{method_name}: {detail}")
            body = {
                "ok": False,
                "error_code": 500,
                "description": f"Internal Server Error: FakeTelegram bug in {method_name}",
            }
            status = 500
        call.response, call.status = body, status
        return web.json_response(body, status=status, dumps=_dumps)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        f = self._files_by_path.get(request.match_info["path"])
        if f is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        self.file_downloads += 1
        if self.files_held is not None:
            await self.files_held.wait()
        return web.Response(body=f.data, content_type=f.mime_type or "application/octet-stream")

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        ctype = request.content_type
        if request.method == "POST" and request.can_read_body:
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError("Bad Request: can't parse JSON request body") from None
                if not isinstance(body, dict):
                    raise ApiError("Bad Request: JSON request body must be an object")
                raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[key] = Upload(
                            key, value.filename, value.content_type, value.file.read()
                        )
                    else:
                        raw[key] = value
        return raw, uploads

    async def _dispatch(
        self, call: Call, name: str, raw: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        method = self._canonical(name)
        call.method = method or name
        if method is None or method not in self._handlers:
            if method is not None:
                raise ApiError(f"Bad Request: method {method} is not implemented by FakeTelegram")
            raise ApiError(f"Bad Request: method {name} not found")
        try:
            params = self.spec.decode_params(
                method,
                raw,
                uploads,
                allow_extra=PTB_EXTRA_PARAMS.get(method, frozenset()),
                strict_objects=self.strict_objects,
            )
        except SpecError as exc:
            raise ApiError(str(exc)) from None
        call.params = {
            k: (f"attach://{v.name}" if isinstance(v, Upload) else v) for k, v in params.items()
        }
        self._apply_faults(method, params)
        if method in SEND_METHODS or method in EDIT_METHODS:
            self._check_rate(method, params)
        result = await self._handlers[method](params, uploads)
        late = self._late.get(method)
        if late and late[1] > 0:
            late[1] -= 1
            await asyncio.sleep(late[0])
        if self.check_responses:
            self._check_result(method, result)
        return result

    def _canonical(self, name: str) -> str | None:
        found = self.spec.canonical_method(name)
        if found:
            return found
        low = name.lower()
        return next((h for h in self._handlers if h.lower() == low), None)

    # -- response checks ---------------------------------------------------------------------

    def _check_result(self, method: str, result: Any) -> None:
        returns = self.spec.returns(method)
        if not returns or method == "getUpdates":  # updates are checked when queued
            return
        try:
            self.spec.check(result, returns, path="result", strict=True)
        except SpecError as exc:
            raise AssertionError(f"{method} result does not match the spec: {exc}") from None
        _ptb_roundtrip(result, returns, path=f"{method} result")

    # -- faults and flood limits -------------------------------------------------------------

    def _apply_faults(self, method: str, params: dict[str, Any]) -> None:
        chat_id = _int_or_none(params.get("chat_id"))
        for fault in self._faults:
            if fault.method == method and fault.times > 0:
                if fault.chat_id is not None and fault.chat_id != chat_id:
                    continue
                fault.times -= 1
                raise ApiError(fault.description, fault.code, fault.parameters)

    def _check_rate(self, method: str, params: dict[str, Any]) -> None:
        chat_id = _int_or_none(params.get("chat_id"))
        if chat_id is None:
            return
        forced = self._throttles.get(chat_id)
        if forced and forced[1] > 0:
            forced[1] -= 1
            raise _too_many(forced[0])
        limits = self.rate_limits
        if not limits.enabled:
            return
        if method in EDIT_METHODS and not limits.count_edits:
            return
        now = time.monotonic()
        n_msgs = len(params.get("media") or []) if method == "sendMediaGroup" else 1
        checks = [
            (f"chat:{chat_id}", limits.per_chat_burst, limits.per_chat_per_second, 1),
            ("global", limits.global_per_second, float(limits.global_per_second), 1),
        ]
        chat = self.chats.get(chat_id)
        if chat is not None and chat.type != "private" and method in SEND_METHODS:
            checks.append(
                (
                    f"group:{chat_id}",
                    limits.group_per_minute,
                    limits.group_per_minute / 60.0,
                    n_msgs,
                )
            )
        states = []
        for key, capacity, rate, cost in checks:
            tokens, last = self._buckets.get(key, (float(capacity), now))
            tokens = min(float(capacity), tokens + (now - last) * rate)
            if tokens < cost:
                raise _too_many(max(1, math.ceil((cost - tokens) / rate)))
            states.append((key, tokens - cost))
        for key, tokens in states:
            self._buckets[key] = (tokens, now)

    # -- state helpers -----------------------------------------------------------------------

    def _chat(self, chat_id: int) -> FakeChat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise LookupError(
                f"unknown chat {chat_id}: register it with fake.user() or fake.group()"
            )
        return chat

    def _user(self, user: FakeUser | int) -> FakeUser:
        uid = user.id if isinstance(user, FakeUser) else user
        u = self.users.get(uid)
        if u is None:
            raise LookupError(f"unknown user {uid}: register it with fake.user()")
        return u

    def _user_reply(self, chat: FakeChat, reply_to: int | None) -> int | None:
        if reply_to is not None:
            target = self.message(chat.id, reply_to)
            if target.deleted:
                raise LookupError(f"message {chat.id}/{reply_to} was deleted")
        return reply_to

    def _new_message(self, chat: FakeChat, **fields: Any) -> FakeMessage:
        mid = self._next_message_id.get(chat.id, 1)
        self._next_message_id[chat.id] = mid + 1
        msg = FakeMessage(chat_id=chat.id, message_id=mid, date=int(time.time()), **fields)
        self._messages.setdefault(chat.id, {})[mid] = msg
        return msg

    async def _deliver_user_message(self, chat: FakeChat, msg: FakeMessage) -> None:
        if chat.type != "private" and msg.from_user is not None:
            chat.members.setdefault(msg.from_user.id, "member")
        if self._visible_to_bot(chat, msg):
            self._queue({"message": self._message_dict(msg)})
        await asyncio.sleep(0)

    def _visible_to_bot(self, chat: FakeChat, msg: FakeMessage) -> bool:
        if chat.type == "private":
            return not chat.blocked
        if chat.bot_status in ("left", "kicked"):
            return False
        if not self.privacy_mode or chat.bot_status in ("administrator", "creator"):
            return True
        if msg.reply_to_message_id is not None:
            target = self._messages[chat.id].get(msg.reply_to_message_id)
            if target is not None and target.from_bot:
                return True
        content = msg.content or ""
        for e in msg.entities or msg.caption_entities:
            piece = _utf16_slice(content, e["offset"], e["length"])
            if e["type"] == "bot_command":
                target_bot = piece.partition("@")[2]
                if not target_bot or target_bot.lower() == self.bot_username.lower():
                    return True
            if e["type"] == "mention" and piece[1:].lower() == self.bot_username.lower():
                return True
        return False

    def _check_update(self, update: dict[str, Any]) -> None:
        full = {"update_id": 1, **update}
        try:
            self.spec.check(full, ["Update"], path="update", strict=True)
        except SpecError as exc:
            raise AssertionError(f"FakeTelegram built an invalid update: {exc}") from None
        _ptb_roundtrip(full, ["Update"], path="update")

    def _take_update_id(self) -> int:
        self._next_update_id += 1
        return self._next_update_id

    def _queue(self, update: dict[str, Any]) -> dict[str, Any]:
        if self.check_responses:
            self._check_update(update)
        update = {"update_id": self._take_update_id(), **update}
        self._pending.append(_Pending(update))
        self.updates.append(update)
        self._notify()
        return update

    def _notify(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": self.bot_username,
        }

    def _message_dict(self, msg: FakeMessage, *, nested: bool = False) -> dict[str, Any]:
        chat = self.chats[msg.chat_id]
        d: dict[str, Any] = {"message_id": msg.message_id, "date": msg.date}
        d["from"] = self._bot_user() if msg.from_bot else msg.from_user.to_api()  # type: ignore[union-attr]
        d["chat"] = chat.to_api()
        if msg.reply_to_message_id is not None and not nested:
            target = self._messages.get(msg.chat_id, {}).get(msg.reply_to_message_id)
            if target is not None and not target.deleted:
                d["reply_to_message"] = self._message_dict(target, nested=True)
        if msg.edit_date:
            d["edit_date"] = msg.edit_date
        if msg.media_group_id:
            d["media_group_id"] = msg.media_group_id
        if msg.text is not None:
            d["text"] = msg.text
            if msg.entities:
                d["entities"] = msg.entities
        if msg.animation is not None:
            d["animation"] = msg.animation.to_api()
            d["document"] = msg.animation.to_api("document")  # the Bot API sets both for animations
        elif msg.document is not None:
            d["document"] = msg.document.to_api()
        if msg.audio is not None:
            d["audio"] = msg.audio.to_api()
        if msg.photo_sizes:
            d["photo"] = [f.photo_size() for f in msg.photo_sizes]
        if msg.video is not None:
            d["video"] = msg.video.to_api()
        if msg.caption:
            d["caption"] = msg.caption
            if msg.caption_entities:
                d["caption_entities"] = msg.caption_entities
        if msg.has_spoiler:
            d["has_media_spoiler"] = True
        if msg.web_app_data is not None:
            d["web_app_data"] = msg.web_app_data
        if msg.inline_keyboard:
            d["reply_markup"] = {"inline_keyboard": msg.inline_keyboard}
        return d

    # -- files -------------------------------------------------------------------------------

    def _new_file(self, kind: str, ext: str, **fields: Any) -> FakeFile:
        n = next(self._ids)
        folder = {"photo": "photos", "animation": "animations"}.get(kind, kind + "s")
        f = FakeFile(
            file_id=f"BQACAgI{kind[:3].upper()}{n:08d}",
            file_unique_id=f"AQAD{n:08d}",
            kind=kind,
            file_path=f"{folder}/file_{n}{ext}",
            **fields,
        )
        self.files[f.file_id] = f
        self._files_by_path[f.file_path] = f
        return f

    def _store_photo(self, data: bytes, *, by_bot: bool) -> list[FakeFile]:
        if by_bot and len(data) > MAX_PHOTO_UPLOAD:
            raise ApiError("Bad Request: PHOTO_SAVE_FILE_INVALID")
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                fmt = (img.format or "jpeg").lower()
                img.verify()
        except Exception:
            raise ApiError("Bad Request: IMAGE_PROCESS_FAILED") from None
        if width + height > MAX_PHOTO_SIDES or max(width, height) > MAX_PHOTO_RATIO * max(
            1, min(width, height)
        ):
            raise ApiError("Bad Request: PHOTO_INVALID_DIMENSIONS")
        sizes: list[FakeFile] = []
        for cap in (90, 320, 800):
            if max(width, height) > cap * 1.25:
                scale = cap / max(width, height)
                tw, th = max(1, round(width * scale)), max(1, round(height * scale))
                sizes.append(
                    self._new_file(
                        "photo",
                        ".jpg",
                        width=tw,
                        height=th,
                        mime_type="image/jpeg",
                        uploaded_by_bot=by_bot,
                        _loader=_thumbnailer(data, (tw, th)),
                    )
                )
        ext = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif"}.get(fmt, ".jpg")
        sizes.append(
            self._new_file(
                "photo",
                ext,
                width=width,
                height=height,
                mime_type=Image.MIME.get(fmt.upper(), "image/jpeg"),
                uploaded_by_bot=by_bot,
                _data=data,
            )
        )
        for f in sizes:
            self._photo_sets[f.file_id] = sizes
        return sizes

    def _store_file(
        self,
        data: bytes,
        kind: str,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        by_bot: bool = False,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
    ) -> FakeFile:
        if by_bot and len(data) > MAX_FILE_UPLOAD:
            raise ApiError("Request Entity Too Large", 413)
        if kind in ("video", "animation") and (width is None or height is None):
            with contextlib.suppress(Exception), Image.open(io.BytesIO(data)) as img:
                width, height = width or img.size[0], height or img.size[1]
        ext = mimetypes.guess_extension(mime_type or "") or (
            "." + file_name.rsplit(".", 1)[1] if file_name and "." in file_name else ""
        )
        return self._new_file(
            kind,
            ext,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            duration=duration,
            uploaded_by_bot=by_bot,
            _data=data,
        )

    async def _resolve_input(
        self, value: Any, uploads: dict[str, Upload], *, kind: str
    ) -> tuple[Upload | None, FakeFile | None]:
        """An InputFile or String parameter -> (new bytes, or an existing stored file)."""
        if isinstance(value, Upload):
            return value, None
        if not isinstance(value, str) or not value:
            raise ApiError(f"Bad Request: there is no {kind} in the request")
        if value.startswith("attach://"):
            part = uploads.get(value.removeprefix("attach://"))
            if part is None:
                raise ApiError(f"Bad Request: file {value} is not found in the request")
            return part, None
        if value.startswith(("http://", "https://")):
            data = await self._fetch(value, limit=MAX_PHOTO_BY_URL if kind == "photo" else None)
            name = urllib.parse.urlparse(value).path.rsplit("/", 1)[-1] or None
            return Upload(kind, name, _guess_mime(name or ""), data), None
        existing = self.files.get(value)
        if existing is None:
            raise ApiError("Bad Request: wrong file identifier/HTTP URL specified")
        if existing.kind != kind and not (kind == "document" and existing.kind != "photo"):
            raise ApiError(
                f"Bad Request: can't use file of type {existing.kind.capitalize()} "
                f"as {kind.capitalize()}"
            )
        return None, existing

    async def _fetch(self, url: str, *, limit: int | None) -> bytes:
        host = urllib.parse.urlparse(url).hostname or ""
        if not self.fetch_urls or host not in ("127.0.0.1", "localhost", "::1"):
            raise ApiError(
                "Bad Request: failed to get HTTP URL content (FakeTelegram fetches only local URLs)"
            )
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    raise ApiError("Bad Request: failed to get HTTP URL content")
                data = await resp.read()
        except aiohttp.ClientError:
            raise ApiError("Bad Request: failed to get HTTP URL content") from None
        if len(data) > (limit or MAX_FILE_BY_URL):
            raise ApiError("Bad Request: failed to get HTTP URL content")
        return data

    async def _media_fields(
        self, kind: str, value: Any, uploads: dict[str, Upload], p: dict[str, Any]
    ) -> dict[str, Any]:
        """FakeMessage fields for a photo/video/animation/document/audio being sent."""
        part, existing = await self._resolve_input(value, uploads, kind=kind)
        if kind == "photo":
            if existing is not None:
                return {"photo_sizes": self._photo_sets.get(existing.file_id, [existing])}
            assert part is not None
            return {"photo_sizes": self._store_photo(part.data, by_bot=True)}
        if existing is not None:
            return {kind: existing}
        assert part is not None
        mime = part.content_type
        if not mime or mime == "application/octet-stream":
            mime = _guess_mime(part.filename or "") or mime
        f = self._store_file(
            part.data,
            kind,
            file_name=part.filename,
            mime_type=mime,
            by_bot=True,
            width=p.get("width"),
            height=p.get("height"),
            duration=p.get("duration"),
        )
        if p.get("thumbnail") is not None:
            f.thumbnail = await self._thumbnail(p["thumbnail"], uploads)
        return {kind: f}

    async def _thumbnail(self, value: Any, uploads: dict[str, Upload]) -> bytes:
        """A thumbnail uploaded beside a file: a JPEG under 200 kB, at most 320 px a side."""
        if isinstance(value, str) and not value.startswith("attach://"):
            raise ApiError("Bad Request: a thumbnail can only be uploaded (attach://<name>)")
        part, _ = await self._resolve_input(value, uploads, kind="thumbnail")
        assert part is not None
        data = part.data
        if data[:3] != b"\xff\xd8\xff":
            raise ApiError("Bad Request: the thumbnail must be a JPEG")
        if len(data) >= MAX_THUMBNAIL_BYTES:
            raise ApiError("Bad Request: the thumbnail must be less than 200 kB")
        with Image.open(io.BytesIO(data)) as image:
            if max(image.size) > MAX_THUMBNAIL_SIDE:
                raise ApiError("Bad Request: a thumbnail's width and height must not exceed 320")
        return data

    # -- validation helpers ------------------------------------------------------------------

    def _target_chat(self, value: Any, *, sending: bool = True) -> FakeChat:
        chat: FakeChat | None = None
        if isinstance(value, int):
            chat = self.chats.get(value)
        elif isinstance(value, str):
            if value.startswith("@"):
                chat = next(
                    (
                        c
                        for c in self.chats.values()
                        if (c.username or (c.user.username if c.user else None) or "").lower()
                        == value[1:].lower()
                    ),
                    None,
                )
            elif re.fullmatch(r"-?\d+", value):
                chat = self.chats.get(int(value))
        if chat is None:
            raise ApiError("Bad Request: chat not found")
        if chat.migrated_to is not None:
            raise ApiError(
                "Bad Request: group chat was upgraded to a supergroup chat",
                parameters={"migrate_to_chat_id": chat.migrated_to},
            )
        if sending:
            if chat.type == "private" and chat.blocked:
                raise ApiError("Forbidden: bot was blocked by the user", 403)
            if chat.type != "private" and chat.bot_status == "kicked":
                kind = "supergroup" if chat.type == "supergroup" else "group"
                raise ApiError(f"Forbidden: bot was kicked from the {kind} chat", 403)
            if chat.type != "private" and chat.bot_status == "left":
                raise ApiError("Forbidden: bot is not a member of the group chat", 403)
        return chat

    def _format(
        self,
        text: str | None,
        parse_mode: str | None,
        entities: list[dict[str, Any]] | None,
    ) -> tuple[str | None, list[dict[str, Any]]]:
        if text is None:
            return None, []
        if entities:
            total = utf16_len(text)
            for e in entities:
                if e["offset"] < 0 or e["length"] <= 0 or e["offset"] + e["length"] > total:
                    raise ApiError(
                        "Bad Request: can't parse entities: entity is out of the text bounds"
                    )
            return text, sorted(entities, key=lambda e: (e["offset"], -e["length"]))
        return parse_entities(text, parse_mode)

    def _check_text(self, text: str | None) -> None:
        if text is None or not text.strip():
            raise ApiError("Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise ApiError("Bad Request: message is too long")

    @staticmethod
    def _check_caption(caption: str | None) -> None:
        if caption is not None and len(caption) > MAX_CAPTION:
            raise ApiError("Bad Request: message caption is too long")

    def _check_markup(self, markup: dict[str, Any] | None, chat: FakeChat) -> None:
        if not markup:
            return
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError("Bad Request: can't parse inline keyboard: rows must be arrays")
            if sum(len(r) for r in rows) > MAX_BUTTONS:
                raise ApiError("Bad Request: REPLY_MARKUP_TOO_LONG: more than 100 buttons")
            for row in rows:
                if len(row) > MAX_BUTTONS_PER_ROW:
                    raise ApiError(
                        "Bad Request: REPLY_MARKUP_TOO_LONG: more than 8 buttons in a row"
                    )
                for b in row:
                    self._check_inline_button(b, chat)
        elif "keyboard" in markup:
            for row in markup["keyboard"]:
                for b in row:
                    text = b if isinstance(b, str) else b.get("text")
                    if not text:
                        raise ApiError("Bad Request: keyboard button text must be non-empty")
                    if isinstance(b, dict) and "web_app" in b and chat.type != "private":
                        raise ApiError("Bad Request: BUTTON_TYPE_INVALID")
            placeholder = markup.get("input_field_placeholder")
            if placeholder is not None and not 1 <= len(placeholder) <= 64:
                raise ApiError("Bad Request: input_field_placeholder must be 1-64 characters")
        elif "force_reply" in markup:
            if markup["force_reply"] is not True:
                raise ApiError("Bad Request: force_reply must be True")
            placeholder = markup.get("input_field_placeholder")
            if placeholder is not None and not 1 <= len(placeholder) <= 64:
                raise ApiError("Bad Request: input_field_placeholder must be 1-64 characters")

    def _check_inline_button(self, b: dict[str, Any], chat: FakeChat) -> None:
        if not isinstance(b, dict):
            raise ApiError("Bad Request: can't parse inline keyboard button: object expected")
        if not b.get("text"):
            raise ApiError(
                "Bad Request: can't parse inline keyboard button: Text must be non-empty"
            )
        actions = set(b) - {"text", "icon_custom_emoji_id", "style"}
        if not actions:
            raise ApiError(
                "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in "
                "the inline keyboard"
            )
        if len(actions) > 1:
            raise ApiError(
                "Bad Request: can't parse inline keyboard button: exactly one of the optional "
                f"fields must be used, got {sorted(actions)}"
            )
        if "callback_data" in b:
            size = len(str(b["callback_data"]).encode("utf-8"))
            if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                raise ApiError("Bad Request: BUTTON_DATA_INVALID")
        if "url" in b and not str(b["url"]).startswith(("http://", "https://", "tg://")):
            raise ApiError("Bad Request: BUTTON_URL_INVALID")
        if "web_app" in b:
            if chat.type != "private":
                raise ApiError("Bad Request: BUTTON_TYPE_INVALID")
            url = str((b["web_app"] or {}).get("url", ""))
            if not url.startswith("https://"):
                raise ApiError(
                    f"Bad Request: inline keyboard button Web App URL '{url}' is invalid: Only "
                    "HTTPS links are allowed"
                )
        if "copy_text" in b:
            text = str((b["copy_text"] or {}).get("text", ""))
            if not 1 <= len(text) <= 256:
                raise ApiError("Bad Request: copy_text.text must be 1-256 characters")
        if "style" in b and b["style"] not in ("danger", "success", "primary"):
            raise ApiError("Bad Request: BUTTON_STYLE_INVALID")

    def _reply_target(self, chat: FakeChat, p: dict[str, Any]) -> int | None:
        rp = p.get("reply_parameters")
        if rp is None and "reply_to_message_id" in p:  # pre-7.0 clients, spec absent
            rp = {
                "message_id": p["reply_to_message_id"],
                "allow_sending_without_reply": p.get("allow_sending_without_reply", False),
            }
        if not rp:
            return None
        target_chat = chat
        if rp.get("chat_id") is not None:
            target_chat = self._target_chat(rp["chat_id"], sending=False)
        mid = _int_or_none(rp.get("message_id"))
        target = self._messages.get(target_chat.id, {}).get(mid) if mid is not None else None
        if target is None or target.deleted:
            if rp.get("allow_sending_without_reply"):
                return None
            raise ApiError("Bad Request: message to be replied not found")
        if target_chat.id != chat.id:
            return None  # a cross-chat reply shows as external_reply; not modelled
        return mid

    def _editable(self, p: dict[str, Any]) -> FakeMessage:
        if p.get("inline_message_id"):
            raise ApiError("Bad Request: inline messages are not supported by FakeTelegram")
        if p.get("chat_id") is None or p.get("message_id") is None:
            raise ApiError("Bad Request: chat_id and message_id are required")
        chat = self._target_chat(p["chat_id"], sending=False)
        msg = self._messages.get(chat.id, {}).get(p["message_id"])
        if msg is None or msg.deleted:
            raise ApiError("Bad Request: message to edit not found")
        if not msg.from_bot:
            raise ApiError("Bad Request: message can't be edited")
        return msg

    def _snapshot(self, msg: FakeMessage) -> None:
        msg.edits.append(dataclasses.replace(msg, edits=[]))
        msg.edit_date = int(time.time())

    @staticmethod
    def _inline_markup(p: dict[str, Any]) -> dict[str, Any] | None:
        markup = p.get("reply_markup")
        if markup and markup.get("inline_keyboard"):
            return markup
        return None

    @staticmethod
    def _extra(p: dict[str, Any], *skip: str) -> dict[str, Any]:
        common = {"chat_id", "reply_markup", "reply_parameters", "parse_mode"}
        return {k: v for k, v in p.items() if k not in common and k not in skip}

    # -- API methods -------------------------------------------------------------------------

    def _build_handlers(self) -> dict[str, Handler]:
        h: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVideo": self._send_video,
            "sendAnimation": self._send_animation,
            "sendAudio": self._send_audio,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "copyMessage": self._copy_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageMedia": self._edit_message_media,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "answerWebAppQuery": self._answer_web_app_query,
            "getFile": self._get_file,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChatMemberCount": self._get_chat_member_count,
            "setMessageReaction": self._set_message_reaction,
            "leaveChat": self._leave_chat,
        }
        for name in ("setMyDescription", "setMyShortDescription", "setMyName"):
            h[name] = self._make_setter(name)
        h["getMyDescription"] = self._make_getter("setMyDescription", "description")
        h["getMyShortDescription"] = self._make_getter("setMyShortDescription", "short_description")
        h["getMyName"] = self._make_getter("setMyName", "name", default=BOT_FIRST_NAME)
        return h

    async def _true(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        return True

    def _make_setter(self, name: str) -> Handler:
        async def setter(p: dict[str, Any], files: dict[str, Upload]) -> bool:
            self.bot_settings[f"{name}:{p.get('language_code') or ''}"] = p
            return True

        return setter

    def _make_getter(self, setter: str, key: str, default: str = "") -> Handler:
        async def getter(p: dict[str, Any], files: dict[str, Upload]) -> dict[str, Any]:
            stored = self.bot_settings.get(f"{setter}:{p.get('language_code') or ''}", {})
            return {key: stored.get(key) or default}

        return getter

    async def _get_me(self, p: dict[str, Any], files: dict[str, Upload]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # updates

    async def _get_updates(self, p: dict[str, Any], files: dict[str, Upload]) -> list[dict]:
        if self.webhook is not None:
            raise ApiError(WEBHOOK_CONFLICT, 409)
        offset = int(p.get("offset") or 0)
        limit = min(100, max(1, int(p.get("limit") or 100)))
        timeout = max(0.0, float(p.get("timeout") or 0))
        if "allowed_updates" in p:
            self._allowed_updates = list(p["allowed_updates"] or [])
        token = object()
        self._poller = token
        self._notify()  # an older long poll returns 409
        self._confirm(offset)
        deadline = time.monotonic() + timeout
        while True:
            if self._poller is not token:
                raise ApiError(GET_UPDATES_CONFLICT, 409)
            batch = self._take(offset, limit, self._allowed_updates)
            remaining = deadline - time.monotonic()
            if batch or self._closing or remaining <= 0:
                if self._poller is token:
                    self._poller = None
                return batch
            event = self._wakeup
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._pending = self._pending[offset:]
        elif offset > 0:
            self._pending = [p for p in self._pending if not (p.delivered and p.update_id < offset)]

    def _take(self, offset: int, limit: int, allowed: list[str] | None) -> list[dict[str, Any]]:
        kept: list[_Pending] = []
        batch: list[dict[str, Any]] = []
        for pending in self._pending:
            if not _allowed(pending.kind, allowed):
                continue  # the server does not even store updates the bot did not ask for
            kept.append(pending)
            if len(batch) < limit and (pending.update_id >= offset or not pending.delivered):
                pending.delivered = True
                batch.append(pending.update)
        self._pending = kept
        return batch

    async def _set_webhook(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        url = p.get("url") or ""
        if not url:
            return await self._delete_webhook(p, files)
        parsed = urllib.parse.urlparse(url)
        local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
            raise ApiError("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError("Bad Request: secret token contains unallowed characters")
        max_conn = p.get("max_connections", 40)
        if not 1 <= max_conn <= 100:
            raise ApiError("Bad Request: bad webhook: max_connections must be 1-100")
        if p.get("drop_pending_updates"):
            self._pending.clear()
        # "If not specified, the previous setting will be used" (setWebhook, allowed_updates).
        previous = self.webhook or {"allowed_updates": self._allowed_updates}
        allowed = p["allowed_updates"] if "allowed_updates" in p else previous["allowed_updates"]
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": allowed,
            "max_connections": max_conn,
            "last_error_date": None,
            "last_error_message": None,
        }
        self._allowed_updates = allowed
        self._notify()  # a pending long poll ends
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_loop())
        return True

    async def _delete_webhook(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        self.webhook = None
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        if p.get("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _get_webhook_info(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"] is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
            if self.webhook["last_error_date"]:
                info["last_error_date"] = self.webhook["last_error_date"]
                info["last_error_message"] = self.webhook["last_error_message"]
        return info

    async def _webhook_loop(self) -> None:
        """Deliver queued updates to the webhook as the real server does: one update at a time
        per chat, in order (the next one only after a 2xx for the previous), chats in parallel
        up to ``max_connections``, a failed post (non-2xx, refused, no answer within
        ``webhook_timeout_s``) retried with backoff and recorded in getWebhookInfo."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        sending: dict[object, asyncio.Task[None]] = {}
        try:
            while self.webhook is not None and not self._closing:
                hook = self.webhook
                event = self._wakeup
                for key in [k for k, task in sending.items() if task.done()]:
                    del sending[key]
                self._pending = [
                    p for p in self._pending if _allowed(p.kind, hook["allowed_updates"])
                ]
                heads: set[object] = set()
                for pending in self._pending:
                    key = _update_chat(pending.update)
                    if key in heads:
                        continue  # an earlier update of this chat goes first
                    heads.add(key)
                    if key in sending or len(sending) >= hook["max_connections"]:
                        continue
                    sending[key] = asyncio.create_task(self._post_update(hook, pending))
                await event.wait()  # a new update, or a post finished
        finally:
            for task in sending.values():
                task.cancel()
            await asyncio.gather(*sending.values(), return_exceptions=True)

    async def _post_update(self, hook: dict[str, Any], pending: _Pending) -> None:
        assert self._session is not None
        headers = {}
        if hook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        error = None
        status = 0
        try:
            async with self._session.post(
                hook["url"],
                json=pending.update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout_s),
            ) as resp:
                status = resp.status
                if not 200 <= resp.status < 300:
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"Connection failed: {exc!r}"
        self.webhook_posts.append((pending.update_id, status))
        if error is None:
            pending.delivered = True
            if pending in self._pending:
                self._pending.remove(pending)
            pending.failures = 0
        else:
            hook["last_error_date"] = int(time.time())
            hook["last_error_message"] = error
            pending.failures += 1
            await asyncio.sleep(min(2.0, 0.1 * 2 ** (pending.failures - 1)))
        self._notify()

    # sending

    async def _send_message(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        chat = self._target_chat(p["chat_id"])
        text, entities = self._format(p.get("text"), p.get("parse_mode"), p.get("entities"))
        self._check_text(text)
        self._check_markup(p.get("reply_markup"), chat)
        reply_to = self._reply_target(chat, p)
        msg = self._new_message(
            chat,
            from_bot=True,
            text=text,
            entities=entities,
            raw_text=p.get("text"),
            parse_mode=p.get("parse_mode"),
            reply_markup=p.get("reply_markup"),
            reply_to_message_id=reply_to,
            method="sendMessage",
            extra=self._extra(p, "text", "entities"),
        )
        return self._message_dict(msg)

    async def _send_media(
        self, kind: str, method: str, p: dict[str, Any], files: dict[str, Upload]
    ) -> dict:
        chat = self._target_chat(p["chat_id"])
        caption, caption_entities = self._format(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities")
        )
        self._check_caption(caption)
        self._check_markup(p.get("reply_markup"), chat)
        reply_to = self._reply_target(chat, p)
        media = await self._media_fields(kind, p.get(kind), files, p)
        msg = self._new_message(
            chat,
            from_bot=True,
            caption=caption or None,
            caption_entities=caption_entities,
            raw_text=p.get("caption"),
            parse_mode=p.get("parse_mode"),
            reply_markup=p.get("reply_markup"),
            reply_to_message_id=reply_to,
            has_spoiler=bool(p.get("has_spoiler")),
            method=method,
            extra=self._extra(p, kind, "caption", "caption_entities"),
            **media,
        )
        return self._message_dict(msg)

    async def _send_photo(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        return await self._send_media("photo", "sendPhoto", p, files)

    async def _send_document(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        return await self._send_media("document", "sendDocument", p, files)

    async def _send_video(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        return await self._send_media("video", "sendVideo", p, files)

    async def _send_animation(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        return await self._send_media("animation", "sendAnimation", p, files)

    async def _send_audio(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        return await self._send_media("audio", "sendAudio", p, files)

    async def _send_media_group(self, p: dict[str, Any], files: dict[str, Upload]) -> list:
        chat = self._target_chat(p["chat_id"])
        if "reply_markup" in p:
            raise ApiError("Bad Request: unknown parameter reply_markup")
        items = p.get("media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise ApiError("Bad Request: media group must contain 2-10 items")
        kinds = {item.get("type") for item in items}
        for solo in ("document", "audio"):
            if solo in kinds and len(kinds) > 1:
                raise ApiError(f"Bad Request: {solo}s can't be mixed with other media types")
        if not kinds <= {"photo", "video", "document", "audio"}:
            raise ApiError(f"Bad Request: unsupported media types in a group: {sorted(kinds)}")
        reply_to = self._reply_target(chat, p)
        prepared = []
        for item in items:
            caption, caption_entities = self._format(
                item.get("caption"), item.get("parse_mode"), item.get("caption_entities")
            )
            self._check_caption(caption)
            media = await self._media_fields(item["type"], item.get("media"), files, item)
            prepared.append((item, caption, caption_entities, media))
        group_id = str(13_000_000_000_000_000 + next(self._ids))
        out = []
        for item, caption, caption_entities, media in prepared:
            msg = self._new_message(
                chat,
                from_bot=True,
                caption=caption or None,
                caption_entities=caption_entities,
                raw_text=item.get("caption"),
                parse_mode=item.get("parse_mode"),
                reply_to_message_id=reply_to,
                media_group_id=group_id,
                has_spoiler=bool(item.get("has_spoiler")),
                method="sendMediaGroup",
                extra=self._extra(p, "media"),
                **media,
            )
            out.append(self._message_dict(msg))
        return out

    async def _send_chat_action(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        chat = self._target_chat(p["chat_id"])
        if p["action"] not in CHAT_ACTIONS:
            raise ApiError("Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat.id, p["action"], time.time()))
        return True

    async def _copy_message(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        chat = self._target_chat(p["chat_id"])
        source_chat = self._target_chat(p["from_chat_id"], sending=False)
        src = self._messages.get(source_chat.id, {}).get(p["message_id"])
        if src is None or src.deleted:
            raise ApiError("Bad Request: message to copy not found")
        self._check_markup(p.get("reply_markup"), chat)
        reply_to = self._reply_target(chat, p)
        caption, caption_entities = src.caption, src.caption_entities
        if "caption" in p:
            caption, caption_entities = self._format(
                p.get("caption"), p.get("parse_mode"), p.get("caption_entities")
            )
            self._check_caption(caption)
        msg = self._new_message(
            chat,
            from_bot=True,
            text=src.text,
            entities=list(src.entities),
            caption=caption if src.text is None else None,
            caption_entities=caption_entities if src.text is None else [],
            photo_sizes=list(src.photo_sizes),
            video=src.video,
            document=src.document,
            animation=src.animation,
            audio=src.audio,
            reply_markup=p.get("reply_markup"),
            reply_to_message_id=reply_to,
            method="copyMessage",
        )
        return {"message_id": msg.message_id}

    # editing

    async def _edit_message_text(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        msg = self._editable(p)
        if msg.text is None:
            raise ApiError("Bad Request: there is no text in the message to edit")
        chat = self.chats[msg.chat_id]
        text, entities = self._format(p.get("text"), p.get("parse_mode"), p.get("entities"))
        self._check_text(text)
        self._check_markup(p.get("reply_markup"), chat)
        markup = self._inline_markup(p)
        if text == msg.text and entities == msg.entities and markup == _inline(msg):
            raise ApiError(NOT_MODIFIED)
        self._snapshot(msg)
        msg.text, msg.entities, msg.raw_text = text, entities, p.get("text")
        msg.parse_mode, msg.reply_markup = p.get("parse_mode"), markup
        return self._message_dict(msg)

    async def _edit_message_caption(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        msg = self._editable(p)
        if msg.media is None:
            raise ApiError("Bad Request: there is no caption in the message to edit")
        chat = self.chats[msg.chat_id]
        caption, entities = self._format(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities")
        )
        self._check_caption(caption)
        self._check_markup(p.get("reply_markup"), chat)
        markup = self._inline_markup(p)
        same_caption = (caption or None) == msg.caption and entities == msg.caption_entities
        if same_caption and markup == _inline(msg):
            raise ApiError(NOT_MODIFIED)
        self._snapshot(msg)
        msg.caption, msg.caption_entities = caption or None, entities
        msg.raw_text, msg.parse_mode, msg.reply_markup = (
            p.get("caption"),
            p.get("parse_mode"),
            markup,
        )
        return self._message_dict(msg)

    async def _edit_message_media(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        msg = self._editable(p)
        chat = self.chats[msg.chat_id]
        item = p["media"]
        kind = item.get("type")
        if kind not in ("photo", "video", "animation", "document", "audio"):
            raise ApiError(f"Bad Request: unsupported media type {kind}")
        if msg.media_group_id is not None:
            old_group = "document" if msg.kind == "document" else msg.kind
            if (old_group in ("document", "audio") or kind in ("document", "audio")) and (
                kind != old_group
            ):
                raise ApiError("Bad Request: can't change the media type of an album message")
        caption, entities = self._format(
            item.get("caption"), item.get("parse_mode"), item.get("caption_entities")
        )
        self._check_caption(caption)
        self._check_markup(p.get("reply_markup"), chat)
        markup = self._inline_markup(p)
        value = item.get("media")
        if (
            isinstance(value, str)
            and msg.media is not None
            and value in {f.file_id for f in msg.photo_sizes} | {msg.media.file_id}
            and (caption or None) == msg.caption
            and entities == msg.caption_entities
            and markup == _inline(msg)
        ):
            raise ApiError(NOT_MODIFIED)
        media = await self._media_fields(kind, value, files, item)
        self._snapshot(msg)
        msg.text, msg.entities = None, []
        msg.photo_sizes = []
        msg.video = msg.document = msg.animation = msg.audio = None
        for key, val in media.items():
            setattr(msg, key, val)
        msg.caption, msg.caption_entities = caption or None, entities
        msg.raw_text, msg.parse_mode = item.get("caption"), item.get("parse_mode")
        msg.has_spoiler = bool(item.get("has_spoiler"))
        msg.reply_markup = markup
        return self._message_dict(msg)

    async def _edit_message_reply_markup(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        msg = self._editable(p)
        self._check_markup(p.get("reply_markup"), self.chats[msg.chat_id])
        markup = self._inline_markup(p)
        if markup == _inline(msg):
            raise ApiError(NOT_MODIFIED)
        self._snapshot(msg)
        msg.reply_markup = markup
        return self._message_dict(msg)

    async def _delete_message(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        chat = self._target_chat(p["chat_id"], sending=False)
        msg = self._messages.get(chat.id, {}).get(p["message_id"])
        if msg is None or msg.deleted:
            raise ApiError("Bad Request: message to delete not found")
        if not self._can_delete(chat, msg):
            raise ApiError("Bad Request: message can't be deleted")
        msg.deleted = True
        return True

    async def _delete_messages(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        chat = self._target_chat(p["chat_id"], sending=False)
        ids = p["message_ids"]
        if not 1 <= len(ids) <= 100:
            raise ApiError("Bad Request: message_ids must contain 1-100 identifiers")
        for mid in ids:
            msg = self._messages.get(chat.id, {}).get(mid)
            if msg is not None and not msg.deleted and self._can_delete(chat, msg):
                msg.deleted = True
        return True

    @staticmethod
    def _can_delete(chat: FakeChat, msg: FakeMessage) -> bool:
        admin = chat.bot_status in ("administrator", "creator")
        return msg.from_bot or chat.type == "private" or admin

    # callbacks and web apps

    async def _answer_callback_query(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        cq = self.callback_queries.get(p["callback_query_id"])
        if cq is None or cq.answered:
            raise ApiError(QUERY_TOO_OLD)
        if self.callback_query_ttl is not None and (
            time.monotonic() - cq.created > self.callback_query_ttl
        ):
            raise ApiError(QUERY_TOO_OLD)
        text = p.get("text")
        if text is not None and len(text) > MAX_ANSWER_TEXT:
            raise ApiError("Bad Request: MESSAGE_TOO_LONG")
        cq.answered = True
        self.answers[cq.id] = p
        return True

    async def _answer_web_app_query(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        qid = p["web_app_query_id"]
        if qid in self.web_app_answers:
            raise ApiError("Bad Request: QUERY_ID_INVALID")
        self.web_app_answers[qid] = p["result"]
        return {"inline_message_id": f"WAQ{next(self._ids):08d}"}

    # files

    async def _get_file(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        f = self.files.get(p["file_id"])
        if f is None:
            raise ApiError("Bad Request: invalid file_id")
        if len(f.data) > MAX_DOWNLOAD:
            raise ApiError("Bad Request: file is too big")
        return {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(f.data),
            "file_path": f.file_path,
        }

    # commands, menu

    async def _set_my_commands(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        commands = p["commands"]
        if len(commands) > 100:
            raise ApiError("Bad Request: too many commands (max 100)")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise ApiError("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise ApiError("Bad Request: command description must be 1-256 characters")
        lang = p.get("language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise ApiError("Bad Request: language_code must be a two-letter ISO 639-1 code")
        self.commands[(_scope_key(p.get("scope")), lang)] = commands
        return True

    async def _get_my_commands(self, p: dict[str, Any], files: dict[str, Upload]) -> list:
        return self.commands.get((_scope_key(p.get("scope")), p.get("language_code") or ""), [])

    async def _delete_my_commands(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        self.commands.pop((_scope_key(p.get("scope")), p.get("language_code") or ""), None)
        return True

    async def _set_chat_menu_button(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        button = p.get("menu_button") or {"type": "default"}
        if p.get("chat_id") is None:
            self.default_menu_button = button
        else:
            chat = self._target_chat(p["chat_id"], sending=False)
            if chat.type != "private":
                raise ApiError("Bad Request: menu button can be set only in private chats")
            chat.menu_button = button
        return True

    async def _get_chat_menu_button(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        if p.get("chat_id") is not None:
            chat = self._target_chat(p["chat_id"], sending=False)
            if chat.menu_button:
                return chat.menu_button
        return self.default_menu_button or {"type": "default"}

    # chats

    async def _get_chat(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        chat = self._target_chat(p["chat_id"], sending=False)
        info = chat.to_api()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return info

    def _member_status(self, chat: FakeChat, user_id: int) -> str:
        if user_id == BOT_ID:
            return "member" if chat.type == "private" else chat.bot_status
        if chat.type == "private":
            return "member" if user_id == chat.id else "left"
        return chat.members.get(user_id, "left")

    def _member_dict(self, chat: FakeChat, user_id: int) -> dict[str, Any]:
        if user_id == BOT_ID:
            user = self._bot_user()
        elif user_id in self.users:
            user = self.users[user_id].to_api()
            user.pop("language_code", None)
        else:
            raise ApiError("Bad Request: user not found")
        return _chat_member(self._member_status(chat, user_id), user, self.spec)

    async def _get_chat_member(self, p: dict[str, Any], files: dict[str, Upload]) -> dict:
        chat = self._target_chat(p["chat_id"], sending=False)
        return self._member_dict(chat, p["user_id"])

    async def _get_chat_administrators(self, p: dict[str, Any], files: dict[str, Upload]) -> list:
        chat = self._target_chat(p["chat_id"], sending=False)
        if chat.type == "private":
            raise ApiError("Bad Request: there are no administrators in the private chat")
        ids = [uid for uid, s in chat.members.items() if s in ("creator", "administrator")]
        if chat.bot_status == "administrator":
            ids.append(BOT_ID)
        return [self._member_dict(chat, uid) for uid in ids]

    async def _get_chat_member_count(self, p: dict[str, Any], files: dict[str, Upload]) -> int:
        chat = self._target_chat(p["chat_id"], sending=False)
        if chat.type == "private":
            return 2
        present = [s for s in chat.members.values() if s not in ("left", "kicked")]
        return len(present) + (chat.bot_status not in ("left", "kicked"))

    async def _leave_chat(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        chat = self._target_chat(p["chat_id"], sending=False)
        if chat.type != "private":
            chat.bot_status = "left"
        return True

    async def _set_message_reaction(self, p: dict[str, Any], files: dict[str, Upload]) -> bool:
        chat = self._target_chat(p["chat_id"], sending=False)
        msg = self._messages.get(chat.id, {}).get(p["message_id"])
        if msg is None or msg.deleted:
            raise ApiError("Bad Request: MESSAGE_ID_INVALID")
        reactions = p.get("reaction") or []
        allowed = {str(e.value) for e in telegram.constants.ReactionEmoji}
        for r in reactions:
            if r.get("type") == "emoji" and r.get("emoji") not in allowed:
                raise ApiError("Bad Request: REACTION_INVALID")
            if r.get("type") == "paid":
                raise ApiError("Bad Request: REACTION_INVALID")
        if len(reactions) > 1:
            raise ApiError("Bad Request: REACTIONS_TOO_MANY")
        msg.reactions = list(reactions)
        return True


# ------------------------------------------------------------------------------------------------
# Helpers


def _too_many(retry_after: int) -> ApiError:
    return ApiError(
        f"Too Many Requests: retry after {retry_after}",
        429,
        parameters={"retry_after": retry_after},
    )


def _allowed(kind: str, allowed: list[str] | None) -> bool:
    if not allowed:
        return kind not in DEFAULT_EXCLUDED_UPDATES
    return kind in allowed


def _update_chat(update: dict[str, Any]) -> object:
    """The chat an update belongs to (webhook delivery keeps each chat's order): the chat of
    its message, a press's message, else its sender; an update with neither stands alone."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        message = body.get("message") if kind == "callback_query" else body
        chat = (message or {}).get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and "id" in chat:
            return chat["id"]
        sender = body.get("from") or body.get("user")
        if isinstance(sender, dict) and "id" in sender:
            return sender["id"]
    return ("update", update.get("update_id"))


def _inline(msg: FakeMessage) -> dict[str, Any] | None:
    return {"inline_keyboard": msg.inline_keyboard} if msg.inline_keyboard else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


def _loose(value: Any) -> Any:
    """Best-effort decoding for the call record when a request fails validation."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _guess_mime(name: str) -> str | None:
    return mimetypes.guess_type(name)[0] if name else None


def _scope_key(scope: dict[str, Any] | None) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    raw = text.encode("utf-16-le")
    return raw[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _thumbnailer(data: bytes, size: tuple[int, int]) -> Callable[[], bytes]:
    def make() -> bytes:
        with Image.open(io.BytesIO(data)) as img:
            small = img.convert("RGB").resize(size)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=80)
        return buf.getvalue()

    return make


_MEMBER_CLASSES = {
    "creator": telegram.ChatMemberOwner,
    "administrator": telegram.ChatMemberAdministrator,
    "member": telegram.ChatMemberMember,
    "restricted": telegram.ChatMemberRestricted,
    "left": telegram.ChatMemberLeft,
    "kicked": telegram.ChatMemberBanned,
}


def _chat_member(status: str, user: dict[str, Any], spec: Spec) -> dict[str, Any]:
    """A ChatMember of ``status`` with every field PTB or the spec requires filled in."""
    cls = _MEMBER_CLASSES.get(status)
    if cls is None:
        raise ValueError(f"unknown member status {status!r}")
    required = [
        name
        for name, param in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "user", "api_kwargs") and param.default is inspect.Parameter.empty
    ]
    spec_type = spec.types.get(cls.__name__)
    for f in (spec_type or {}).get("fields", []):
        if f.get("required") and f["name"] not in ("status", "user", *required):
            required.append(f["name"])
    d: dict[str, Any] = {"status": status, "user": user}
    for name in required:
        if name == "until_date":
            d[name] = 0
        elif name in ("is_anonymous", "can_be_edited"):
            d[name] = False
        elif status == "administrator":
            d[name] = True
        else:
            d[name] = name == "is_member"
    return d


def _ptb_roundtrip(value: Any, types: list[str], *, path: str) -> None:
    """Deserialise with python-telegram-bot; fail on fields it does not know (api_kwargs)."""
    for t in types:
        if t.startswith("Array of "):
            if isinstance(value, list):
                inner = t.removeprefix("Array of ")
                for i, item in enumerate(value):
                    _ptb_roundtrip(item, [inner], path=f"{path}[{i}]")
                return
            continue
        if t in ("Boolean", "True", "Integer", "String", "Float"):
            if not isinstance(value, dict | list):
                return
            continue
        cls = getattr(telegram, t, None)
        if isinstance(value, dict) and isinstance(cls, type) and hasattr(cls, "de_json"):
            obj = cls.de_json(copy.deepcopy(value), None)
            _no_api_kwargs(obj, path)
            return
    if isinstance(value, dict):
        raise AssertionError(f"{path}: no python-telegram-bot class for {types}")


def _no_api_kwargs(obj: Any, path: str) -> None:
    if isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            _no_api_kwargs(item, f"{path}[{i}]")
        return
    if not isinstance(obj, telegram.TelegramObject):
        return
    if obj.api_kwargs:
        raise AssertionError(
            f"{path}: fields unknown to python-telegram-bot {telegram.__version__}: "
            f"{sorted(obj.api_kwargs)}"
        )
    for name, item in obj._get_attrs(recursive=False).items():
        if name != "api_kwargs":
            _no_api_kwargs(item, f"{path}.{name}")
