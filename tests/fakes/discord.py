"""A fake Discord (REST + gateway) on 127.0.0.1 that the real discord.py talks to.

Point discord.py at it with ``adapters.discord.seams.point_discord_at(fake.api_base,
fake.gateway_url)`` and run ``client.start(token)``; the client logs in, connects to the gateway,
gets READY and a GUILD_CREATE for the test guild (one text channel), and from then on the test
plays the user: :meth:`FakeDiscord.slash`, :meth:`FakeDiscord.click`,
:meth:`FakeDiscord.submit_modal`. Everything the bot sends is validated against the Discord
OpenAPI spec (when ``../shared/specs`` is present) plus the documented limits the spec misses; a
rejected request answers like Discord (400 ``{"code": 50035, "message": "Invalid Form Body",
"errors": {...}}``) and lands in :attr:`FakeDiscord.errors`, so tests end with
``assert fake.errors == []``.

It is a real HTTP + websocket server: the bot may run in this process or in a subprocess (the
test process drives the fake through the same methods).

Wire details honoured (see platforms.md 4.3): JSON answers carry ``Content-Type:
application/json`` exactly; gateway frames are plain text; interaction callbacks answer an
InteractionCallbackResponse body (``?with_response=1``); never a 5xx (discord.py would retry with
sleeps). Interaction rules: initial response within ``interaction_deadline`` (3 s) else 404
Unknown interaction (10062); one initial response (40060); followups/edits need an accepted
initial response and a live token (15 min, or :meth:`FakeDiscord.expire_token`: 401 Invalid
Webhook Token, 50027); after a deferred (type 5) response the first followup replaces the
"thinking" message, keeping the defer's ephemerality.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import itertools
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes import discord_spec
from tests.fakes.discord_spec import SPEC_AVAILABLE, Violation, errors_tree

__all__ = [
    "API_PREFIX",
    "SPEC_AVAILABLE",
    "FakeCallback",
    "FakeDiscord",
    "FakeError",
    "FakeFile",
    "FakeInteraction",
    "FakeMessage",
    "FakeRequest",
]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024

BOT_USER_ID = "999000000000000001"
GUILD_ID = "999000000000000100"
CHANNEL_ID = "999000000000000200"
USER_ID = "999000000000000300"

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15

# VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY, ADD_REACTIONS,
# USE_EXTERNAL_EMOJIS, USE_APPLICATION_COMMANDS, SEND_MESSAGES_IN_THREADS.
DEFAULT_PERMISSIONS = str(
    (1 << 10)
    | (1 << 11)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 6)
    | (1 << 18)
    | (1 << 31)
    | (1 << 38)
)

_SELECT_TYPES = (3, 5, 6, 7, 8)
_OPTION_SUBCOMMAND, _OPTION_GROUP = 1, 2
_OPTION_STRING, _OPTION_INTEGER, _OPTION_BOOLEAN = 3, 4, 5
_OPTION_USER, _OPTION_CHANNEL, _OPTION_NUMBER, _OPTION_ATTACHMENT = 6, 7, 10, 11


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class FakeFile(NamedTuple):
    """An uploaded (or user-provided) file."""

    filename: str
    data: bytes
    content_type: str | None


@dataclass
class FakeRequest:
    """One HTTP request the fake received (``json`` is the body, or multipart ``payload_json``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[FakeFile] = field(default_factory=list)
    route: str | None = None
    status: int = 0
    response: Any = None


@dataclass
class FakeError:
    """A request the fake rejected because the bot broke the contract."""

    method: str
    path: str
    status: int
    code: int
    message: str
    errors: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        detail = f" {json.dumps(self.errors)[:500]}" if self.errors else ""
        return f"{self.method} {self.path} -> {self.status} {self.code} {self.message}{detail}"


@dataclass
class _StoredAttachment:
    id: str
    file: FakeFile
    meta: dict[str, Any]


@dataclass(eq=False)
class FakeMessage:
    """A message in the fake's store. ``origin``: "channel" (bot-token REST), "callback"
    (initial interaction response) or "webhook" (followup)."""

    id: str
    channel_id: str
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    deleted: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)
    interaction_id: str | None = None
    origin: str = "channel"
    author_id: str = BOT_USER_ID
    guild_id: str | None = None
    created_at: str = field(default_factory=_now_iso)
    edited_at: str | None = None
    reactions: list[str] = field(default_factory=list)
    stored_attachments: list[_StoredAttachment] = field(default_factory=list, repr=False)

    @property
    def attachments(self) -> list[FakeFile]:
        return [a.file for a in self.stored_attachments]

    @property
    def webhook(self) -> bool:
        return self.origin != "channel"

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    def buttons(self) -> list[list[tuple[str | None, str | None]]]:
        """Rows of ``(label, custom_id)`` for every button (label falls back to emoji name)."""
        return _button_rows(self.components)


@dataclass(eq=False)
class FakeCallback:
    """An accepted initial interaction response."""

    interaction_id: str
    type: int
    data: dict[str, Any] | None
    files: list[FakeFile]
    elapsed: float


@dataclass(eq=False)
class FakeInteraction:
    """An interaction the fake dispatched (``payload`` is the INTERACTION_CREATE data)."""

    id: str
    token: str
    type: int
    payload: dict[str, Any]
    user_id: str
    channel_id: str
    dispatched_at: float
    callbacks: list[FakeCallback] = field(default_factory=list)
    original_message_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    modal_submitted: bool = False
    token_expired: bool = False
    _fake: FakeDiscord | None = field(default=None, repr=False)
    _loading_pending: bool = field(default=False, repr=False)

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def original(self) -> FakeMessage | None:
        if self._fake is None or self.original_message_id is None:
            return None
        return self._fake.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[FakeMessage]:
        assert self._fake is not None
        return [self._fake.messages[m] for m in self.followup_ids]

    async def wait_callback(self, timeout: float = 5.0) -> FakeCallback:  # noqa: ASYNC109
        assert self._fake is not None
        await self._fake.wait_for(lambda: self.callbacks, timeout=timeout)
        return self.callbacks[0]

    async def wait_message(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeMessage:
        """The first visible (not loading, not deleted) original/followup matching ``predicate``."""
        assert self._fake is not None

        def find() -> FakeMessage | None:
            candidates = [self.original] if self.original is not None else []
            candidates += self.followups
            for msg in candidates:
                if msg.deleted or msg.loading:
                    continue
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self._fake.wait_for(find, timeout=timeout)


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
        *,
        record: bool = True,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors = errors or {}
        self.record = record

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def _invalid(violations: list[Violation]) -> _ApiError:
    return _ApiError(400, 50035, "Invalid Form Body", errors_tree(violations))


def _json_response(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": discord.py compares the header string.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _button_rows(components: list[dict[str, Any]]) -> list[list[tuple[str | None, str | None]]]:
    rows: list[list[tuple[str | None, str | None]]] = []

    def walk(comps: Iterable[dict[str, Any]]) -> None:
        for comp in comps:
            if comp.get("type") == 1:
                row = []
                for child in comp.get("components") or []:
                    if child.get("type") == 2:
                        label = child.get("label")
                        if label is None and child.get("emoji"):
                            label = child["emoji"].get("name")
                        row.append((label, child.get("custom_id")))
                if row:
                    rows.append(row)
            else:
                walk(comp.get("components") or [])
                if isinstance(comp.get("accessory"), dict):
                    walk([{"type": 1, "components": [comp["accessory"]]}])

    walk(components)
    return rows


def _iter_components(components: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for comp in components:
        yield comp
        yield from _iter_components(comp.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(comp.get(key), dict):
                yield from _iter_components([comp[key]])


def _sniff_content_type(filename: str, data: bytes, declared: str | None) -> str | None:
    guessed = mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    for magic, ctype in (
        (b"\x89PNG", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
    ):
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if declared and declared != "application/octet-stream":
        return declared
    return declared


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


class FakeDiscord:
    """Fake Discord REST + gateway. Use ``async with FakeDiscord() as fake:`` (or start/stop)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        application_id: str = BOT_USER_ID,
        bot_user_id: str = BOT_USER_ID,
        bot_username: str = "mjbot",
        guild_id: str = GUILD_ID,
        channel_id: str = CHANNEL_ID,
        user_id: str = USER_ID,
        max_file_size: int = 10 * MIB,
        max_attachments: int = 10,
        interaction_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41_250,
        validate_spec: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self._port = port
        self.application_id = str(application_id)
        self.bot_user_id = str(bot_user_id)
        self.guild_id = str(guild_id)
        self.channel_id = str(channel_id)
        self.user_id = str(user_id)
        self.max_file_size = max_file_size
        self.max_attachments = max_attachments
        self.interaction_deadline = interaction_deadline
        self.token_lifetime = token_lifetime
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.validate_spec = validate_spec and SPEC_AVAILABLE
        self.app_permissions = DEFAULT_PERMISSIONS
        self.member_permissions = DEFAULT_PERMISSIONS

        self.bot_user: dict[str, Any] = {
            "id": self.bot_user_id,
            "username": bot_username,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
        }
        self.default_user: dict[str, Any] = self._make_user(self.user_id, "tester")
        self.channels: dict[str, dict[str, Any]] = {}
        self.add_channel("general", channel_id=self.channel_id)

        # Observation.
        self.requests: list[FakeRequest] = []
        self.errors: list[FakeError] = []
        self.messages: dict[str, FakeMessage] = {}
        self.callbacks: list[FakeCallback] = []
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}
        self.identify: dict[str, Any] | None = None
        self.identifies = 0  # IDENTIFYs received (a new session each)
        self.most_ready = 0  # the most sessions ever ready at once (Discord: one per shard)
        self.uploads: dict[str, FakeFile] = {}

        self._by_token: dict[str, FakeInteraction] = {}
        self._command_ids: dict[tuple[str | None, str, int], str] = {}
        self._dm_channels: dict[str, str] = {}
        self._sessions: list[_Session] = []
        self._last_snowflake = 0
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * (self.max_file_size + MIB))
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.ws.close(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self._port}/gateway"

    # ------------------------------------------------------------------ helpers / state

    def _snowflake(self) -> str:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        value = max(value, self._last_snowflake + 1)
        self._last_snowflake = value
        return str(value)

    def _notify(self) -> None:
        event, self._change = self._change, asyncio.Event()
        event.set()

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every state change); return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
                raise TimeoutError(
                    f"wait_for timed out after {timeout}s; recent requests: {recent}; "
                    f"errors: {[str(e) for e in self.errors]}"
                )
            event = self._change
            with contextlib.suppress(TimeoutError):
                # Also poll: the predicate may watch state the fake does not own.
                await asyncio.wait_for(event.wait(), min(remaining, 0.05))

    async def wait_ready(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until a bot has identified and received READY + GUILD_CREATE."""
        await self.wait_for(lambda: any(s.ready for s in self._sessions), timeout=timeout)

    def add_channel(self, name: str, *, channel_id: str | None = None) -> str:
        """Add a text channel to the test guild (send before the bot connects, or it gets a
        CHANNEL_CREATE on the next dispatch opportunity)."""
        cid = str(channel_id) if channel_id else self._snowflake()
        self.channels[cid] = {
            "id": cid,
            "type": 0,
            "guild_id": self.guild_id,
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        return cid

    def channel_messages(self, channel_id: str | int | None = None) -> list[FakeMessage]:
        """Messages in a channel (default: the test channel), oldest first, deleted ones left out
        (ephemeral ones included: check ``.ephemeral``)."""
        cid = str(channel_id) if channel_id is not None else self.channel_id
        return [m for m in self.messages.values() if m.channel_id == cid and not m.deleted]

    def message(self, message: FakeMessage | str | int) -> FakeMessage:
        if isinstance(message, FakeMessage):
            return message
        return self.messages[str(message)]

    def buttons(
        self, message: FakeMessage | str | int
    ) -> list[list[tuple[str | None, str | None]]]:
        """Rows of ``(label, custom_id)`` of the buttons on a message."""
        return self.message(message).buttons()

    def custom_id(self, message: FakeMessage | str | int, label: str) -> str:
        """The custom_id of the button labelled ``label`` on a message."""
        for row in self.buttons(message):
            for lbl, cid in row:
                if lbl == label and cid is not None:
                    return cid
        raise LookupError(f"no button {label!r} on message; buttons: {self.buttons(message)}")

    def command(self, name: str, guild_id: str | None = None) -> dict[str, Any] | None:
        """A registered command by name: guild commands first, then global."""
        gid = str(guild_id) if guild_id else self.guild_id
        for cmd in self.guild_commands.get(gid, []):
            if cmd["name"] == name:
                return cmd
        for cmd in self.commands:
            if cmd["name"] == name:
                return cmd
        return None

    def expire_token(self, interaction: FakeInteraction) -> None:
        """Make the interaction token expire now: later webhook calls get 401 Invalid Webhook
        Token (50027). These rejections are not recorded in ``errors``."""
        interaction.token_expired = True

    def _make_user(self, user_id: str, username: str | None = None) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": username or f"user{str(user_id)[-4:]}",
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": False,
            "public_flags": 0,
        }

    def _user(self, user: dict[str, Any] | str | int | None) -> dict[str, Any]:
        if user is None:
            return copy.deepcopy(self.default_user)
        if isinstance(user, dict):
            base = self._make_user(str(user.get("id", self.user_id)))
            return {**base, **user, "id": str(user.get("id", self.user_id))}
        if str(user) == self.user_id:
            return copy.deepcopy(self.default_user)
        return self._make_user(str(user))

    def _member(self, user: dict[str, Any], *, permissions: str | None = None) -> dict[str, Any]:
        member = {
            "user": user,
            "roles": [],
            "nick": None,
            "avatar": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            member["permissions"] = permissions
        return member

    def _dm_channel(self, user: dict[str, Any]) -> dict[str, Any]:
        uid = user["id"]
        if uid not in self._dm_channels:
            cid = self._snowflake()
            self._dm_channels[uid] = cid
            self.channels[cid] = {
                "id": cid,
                "type": 1,
                "recipients": [user],
                "last_message_id": None,
                "flags": 0,
            }
        return self.channels[self._dm_channels[uid]]

    def _guild_payload(self) -> dict[str, Any]:
        everyone = {
            "id": self.guild_id,
            "name": "@everyone",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 0,
            "permissions": self.member_permissions,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        channels = []
        for ch in self.channels.values():
            if ch.get("guild_id") == self.guild_id:
                channels.append({k: v for k, v in ch.items() if k != "guild_id"})
        return {
            "id": self.guild_id,
            "name": "mjbot test guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": self.user_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": self.channel_id,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "members": [self._member(self.bot_user), self._member(self.default_user)],
            "channels": channels,
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        session = _Session(ws)
        self._sessions.append(session)
        try:
            await session.send(10, {"heartbeat_interval": self.heartbeat_interval_ms})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                await self._gateway_op(session, frame.get("op"), frame.get("d"))
        finally:
            self._sessions.remove(session)
            self._notify()
        return ws

    async def _gateway_op(self, session: _Session, op: int, data: Any) -> None:
        if op == 1:  # heartbeat
            await session.send(11, None)
        elif op == 2:  # identify
            self.identify = data
            ready: dict[str, Any] = {
                "v": 10,
                "user": self.bot_user,
                "guilds": [{"id": self.guild_id, "unavailable": True}],
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "application": {"id": self.application_id, "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "_trace": ["fake-discord"],
            }
            if isinstance(data, dict) and data.get("shard"):
                ready["shard"] = data["shard"]
            await session.dispatch("READY", ready)
            await session.dispatch("GUILD_CREATE", self._guild_payload())
            session.ready = True
            self.identifies += 1
            live = sum(1 for s in self._sessions if s.ready and not s.ws.closed)
            self.most_ready = max(self.most_ready, live)
            self._notify()
        elif op == 6:  # resume
            await session.dispatch("RESUMED", {"_trace": ["fake-discord"]})
            session.ready = True
            self._notify()
        elif op == 8:  # request guild members
            members = [self._member(self.bot_user), self._member(self.default_user)]
            chunk = {
                "guild_id": self.guild_id,
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if isinstance(data, dict) and data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
        # op 3 (presence), 4 (voice state) and anything else: ignored.

    def ready_sessions(self) -> int:
        """Sessions connected and ready now."""
        return sum(1 for s in self._sessions if s.ready and not s.ws.closed)

    def _session(self) -> _Session:
        for session in reversed(self._sessions):
            if session.ready and not session.ws.closed:
                return session
        raise RuntimeError("no bot is connected to the fake gateway (did it log in? wait_ready())")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH event to the connected bot."""
        await self._session().dispatch(event, data)

    async def disconnect(self, code: int = 4000) -> None:
        """Close the bot's gateway connection (discord.py reconnects and RESUMEs)."""
        session = self._session()
        session.ready = False
        await session.ws.close(code=code)

    # ------------------------------------------------------------------ user actions

    def _base_interaction(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user: dict[str, Any] | str | int | None,
        channel_id: str | int | None,
        locale: str,
        dm: bool,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        user_payload = self._user(user)
        iid = self._snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(60)
        payload: dict[str, Any] = {
            "id": iid,
            "application_id": self.application_id,
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "app_permissions": self.app_permissions,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.max_file_size,
        }
        if dm:
            channel = self._dm_channel(user_payload)
            payload.update(
                {
                    "user": user_payload,
                    "channel_id": channel["id"],
                    "channel": copy.deepcopy(channel),
                    "context": 1,
                    "authorizing_integration_owners": {"0": "0"},
                }
            )
        else:
            cid = str(channel_id) if channel_id is not None else self.channel_id
            if cid not in self.channels:
                raise LookupError(f"unknown channel {cid}; add it with fake.add_channel()")
            payload.update(
                {
                    "guild_id": self.guild_id,
                    "guild": {"id": self.guild_id, "locale": "en-US", "features": []},
                    "guild_locale": "en-US",
                    "channel_id": cid,
                    "channel": copy.deepcopy(self.channels[cid]),
                    "member": self._member(user_payload, permissions=self.member_permissions),
                    "context": 0,
                    "authorizing_integration_owners": {"0": self.guild_id},
                }
            )
        return payload, user_payload

    async def _send_interaction(
        self, payload: dict[str, Any], user: dict[str, Any]
    ) -> FakeInteraction:
        session = self._session()
        inter = FakeInteraction(
            id=payload["id"],
            token=payload["token"],
            type=payload["type"],
            payload=payload,
            user_id=user["id"],
            channel_id=payload["channel_id"],
            dispatched_at=asyncio.get_running_loop().time(),
            _fake=self,
        )
        self.interactions[inter.id] = inter
        self._by_token[inter.token] = inter
        await session.dispatch("INTERACTION_CREATE", payload)
        self._notify()
        return inter

    def _upload(self, name: str, value: Any) -> dict[str, Any]:
        """Store a user-provided file; return its attachment object (served by the fake)."""
        if isinstance(value, FakeFile):
            filename, data, ctype = value
        elif isinstance(value, (bytes, bytearray)):
            data, filename, ctype = bytes(value), "", None
        elif isinstance(value, tuple) and len(value) in (2, 3):
            filename, data = value[0], bytes(value[1])
            ctype = value[2] if len(value) == 3 else None
        else:
            raise TypeError(f"attachment {name!r}: bytes, (filename, bytes[, content_type])")
        ctype = ctype or _sniff_content_type(filename or "", data, None)
        if not filename:
            ext = mimetypes.guess_extension(ctype or "") or ".bin"
            filename = f"{name}{ext}"
        att_id = self._snowflake()
        self.uploads[att_id] = FakeFile(filename, data, ctype)
        meta = self._attachment_meta(att_id, FakeFile(filename, data, ctype))
        meta["ephemeral"] = True  # user uploads on commands are ephemeral attachments
        return meta

    def _attachment_meta(self, att_id: str, file: FakeFile) -> dict[str, Any]:
        url = f"{self.url}/attachments/{att_id}/{quote(file.filename)}"
        meta: dict[str, Any] = {
            "id": att_id,
            "filename": file.filename,
            "size": len(file.data),
            "url": url,
            "proxy_url": url,
            "content_type": file.content_type,
        }
        if file.content_type and file.content_type.startswith("image/"):
            size = _image_size(file.data)
            if size:
                meta["width"], meta["height"] = size
        return meta

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: dict[str, Any] | str | int | None = None,
        channel_id: str | int | None = None,
        locale: str = "en-US",
        attachments: dict[str, Any] | None = None,
        dm: bool = False,
    ) -> FakeInteraction:
        """Run a slash command as a user. ``name`` may be "cmd", "cmd sub" or "cmd group sub".
        Option types come from the synced command when registered (else inferred from the
        Python value). ``attachments`` maps ATTACHMENT option names to ``bytes`` or
        ``(filename, bytes[, content_type])``; the bot downloads them from the fake."""
        options = dict(options or {})
        attachments = dict(attachments or {})
        parts = name.split()
        cmd = self.command(parts[0])
        resolved: dict[str, dict[str, Any]] = {}

        schema: list[dict[str, Any]] | None = cmd.get("options", []) if cmd else None
        top: list[dict[str, Any]] = []
        target = top
        for depth, sub in enumerate(parts[1:], start=1):
            found = None
            if schema is not None:
                found = next((o for o in schema if o["name"] == sub), None)
                if found is None or found.get("type") not in (_OPTION_SUBCOMMAND, _OPTION_GROUP):
                    raise LookupError(f"/{name}: {sub!r} is not a subcommand of the synced command")
            default = _OPTION_SUBCOMMAND if depth == len(parts) - 1 else _OPTION_GROUP
            node = {"type": found["type"] if found else default, "name": sub, "options": []}
            target.append(node)
            target = node["options"]
            schema = found.get("options", []) if found else None

        merged = {**options, **attachments}
        for key, value in merged.items():
            spec = None
            if schema is not None:
                spec = next((o for o in schema if o["name"] == key), None)
                if spec is None:
                    known = [o["name"] for o in schema]
                    raise LookupError(f"/{name} has no option {key!r} (options: {known})")
            if spec is not None:
                otype = spec["type"]
            elif key in attachments or isinstance(value, (bytes, bytearray, tuple, FakeFile)):
                otype = _OPTION_ATTACHMENT
            elif isinstance(value, bool):
                otype = _OPTION_BOOLEAN
            elif isinstance(value, int):
                otype = _OPTION_INTEGER
            elif isinstance(value, float):
                otype = _OPTION_NUMBER
            else:
                otype = _OPTION_STRING
            if otype == _OPTION_ATTACHMENT:
                meta = self._upload(key, value)
                resolved.setdefault("attachments", {})[meta["id"]] = meta
                value = meta["id"]
            elif otype == _OPTION_USER:
                u = self._user(value)
                resolved.setdefault("users", {})[u["id"]] = u
                if not dm:
                    member = self._member(u, permissions=self.member_permissions)
                    member.pop("user")
                    resolved.setdefault("members", {})[u["id"]] = member
                value = u["id"]
            elif otype == _OPTION_CHANNEL:
                ch = self.channels[str(value)]
                resolved.setdefault("channels", {})[ch["id"]] = {
                    "id": ch["id"],
                    "type": ch["type"],
                    "name": ch.get("name"),
                    "permissions": self.member_permissions,
                }
                value = ch["id"]
            if spec is not None and spec.get("choices"):
                allowed = [c["value"] for c in spec["choices"]]
                if value not in allowed:
                    raise ValueError(f"/{name} {key}: {value!r} is not one of {allowed}")
            target.append({"name": key, "type": otype, "value": value})

        if schema is not None:
            missing = [
                o["name"]
                for o in schema
                if o.get("required") and o["name"] not in merged and o["type"] not in (1, 2)
            ]
            if missing:
                raise ValueError(f"/{name}: required options missing: {missing}")

        data: dict[str, Any] = {
            "id": cmd["id"] if cmd else self._snowflake(),
            "name": parts[0],
            "type": 1,
            "options": top,
        }
        if resolved:
            data["resolved"] = resolved
        if cmd and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        payload, user_payload = self._base_interaction(
            2, data, user=user, channel_id=channel_id, locale=locale, dm=dm
        )
        return await self._send_interaction(payload, user_payload)

    async def click(
        self,
        message_id: FakeMessage | str | int,
        custom_id: str | None = None,
        *,
        label: str | None = None,
        values: list[str] | None = None,
        user: dict[str, Any] | str | int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """Click a button (by ``custom_id`` or ``label``) or choose ``values`` in a select on a
        stored message."""
        msg = self.message(message_id)
        if msg.deleted:
            raise LookupError(f"message {msg.id} was deleted")
        if custom_id is None:
            if label is None:
                raise TypeError("click() needs custom_id or label")
            custom_id = self.custom_id(msg, label)
        comp = next(
            (c for c in _iter_components(msg.components) if c.get("custom_id") == custom_id), None
        )
        if comp is None:
            raise LookupError(f"no component {custom_id!r} on message {msg.id}: {msg.buttons()}")
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp["type"]}
        if comp.get("id") is not None:
            data["id"] = comp["id"]
        if comp["type"] in _SELECT_TYPES:
            data["values"] = list(values or [])
        elif values is not None:
            raise TypeError("values= only for select menus")
        dm = msg.guild_id is None
        payload, user_payload = self._base_interaction(
            3, data, user=user, channel_id=None if dm else msg.channel_id, locale=locale, dm=dm
        )
        payload["message"] = self._message_payload(msg)
        return await self._send_interaction(payload, user_payload)

    async def submit_modal(
        self,
        custom_id: str | None,
        values: dict[str, Any] | None = None,
        *,
        user: dict[str, Any] | str | int | None = None,
        interaction: FakeInteraction | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """Submit the modal the bot opened (latest one with ``custom_id``, or the one opened in
        answer to ``interaction``). ``values`` maps input custom_ids to text (str); selects and
        checkbox groups take lists, checkboxes bool, file uploads bytes/(filename, bytes)/lists.
        Inputs left out keep their default value; required ones without a value raise."""
        source = interaction
        if source is None:
            for inter in reversed(list(self.interactions.values())):
                if inter.modal is not None and inter.modal.get("custom_id") == custom_id:
                    source = inter
                    break
        if source is None or source.modal is None:
            raise LookupError(f"the bot opened no modal with custom_id {custom_id!r}")
        if source.modal_submitted:
            raise ValueError(f"modal {source.modal['custom_id']!r} was already submitted")
        resolved: dict[str, Any] = {}
        components = self._modal_submission(source.modal["components"], values or {}, resolved)
        source.modal_submitted = True
        data: dict[str, Any] = {"custom_id": source.modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        dm = "guild_id" not in source.payload
        payload, user_payload = self._base_interaction(
            5,
            data,
            user=user if user is not None else source.user_id,
            channel_id=None if dm else source.channel_id,
            locale=locale,
            dm=dm,
        )
        origin_msg = source.payload.get("message")
        if source.type == 3 and origin_msg is not None and origin_msg["id"] in self.messages:
            payload["message"] = self._message_payload(self.messages[origin_msg["id"]])
        return await self._send_interaction(payload, user_payload)

    def _modal_submission(
        self, components: list[dict[str, Any]], values: dict[str, Any], resolved: dict[str, Any]
    ) -> list[dict[str, Any]]:
        counter = itertools.count(1)
        used: set[str] = set()

        def next_id(comp: dict[str, Any]) -> int:
            return comp["id"] if comp.get("id") is not None else next(counter)

        def answer(comp: dict[str, Any]) -> dict[str, Any]:
            ctype = comp["type"]
            out: dict[str, Any] = {"type": ctype, "id": next_id(comp)}
            cid = comp.get("custom_id")
            if cid is None:
                return out
            out["custom_id"] = cid
            given = cid in values
            if given:
                used.add(cid)
            value = values.get(cid)
            if ctype == 4:
                text = value if given else (comp.get("value") or "")
                if not isinstance(text, str):
                    raise TypeError(f"text input {cid!r} takes a str")
                if comp.get("required", True) and not text:
                    raise ValueError(f"text input {cid!r} is required")
                lo, hi = comp.get("min_length") or 0, comp.get("max_length") or 4000
                if text and not lo <= len(text) <= hi:
                    raise ValueError(f"text input {cid!r}: length must be {lo}..{hi}")
                out["value"] = text
            elif ctype in _SELECT_TYPES or ctype == 22:
                chosen = [value] if isinstance(value, str) else list(value or [])
                out["values"] = chosen
            elif ctype == 19:
                files = value if isinstance(value, list) else ([value] if given else [])
                ids = []
                for i, item in enumerate(files):
                    meta = self._upload(f"{cid}{i}", item)
                    resolved.setdefault("attachments", {})[meta["id"]] = meta
                    ids.append(meta["id"])
                out["values"] = ids
            elif ctype == 21:
                out["value"] = value
            elif ctype == 23:
                out["value"] = bool(value)
            return out

        result: list[dict[str, Any]] = []
        for comp in components:
            ctype = comp.get("type")
            if ctype == 1:
                row: dict[str, Any] = {"type": 1, "id": next_id(comp)}
                row["components"] = [answer(c) for c in comp.get("components") or []]
                result.append(row)
            elif ctype == 18:
                label: dict[str, Any] = {"type": 18, "id": next_id(comp)}
                label["component"] = answer(comp["component"])
                result.append(label)
            elif ctype == 10:
                result.append({"type": 10, "id": next_id(comp), "content": comp.get("content", "")})
        unknown = set(values) - used
        if unknown:
            raise LookupError(f"modal has no inputs {sorted(unknown)}")
        return result

    # ------------------------------------------------------------------ messages

    def _message_payload(self, msg: FakeMessage) -> dict[str, Any]:
        author = self.bot_user if msg.author_id == self.bot_user_id else self._user(msg.author_id)
        payload: dict[str, Any] = {
            "id": msg.id,
            "channel_id": msg.channel_id,
            "author": copy.deepcopy(author),
            "content": msg.content,
            "timestamp": msg.created_at,
            "edited_timestamp": msg.edited_at,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [copy.deepcopy(a.meta) for a in msg.stored_attachments],
            "embeds": copy.deepcopy(msg.embeds),
            "components": copy.deepcopy(msg.components),
            "pinned": False,
            "type": 0,
            "flags": msg.flags,
        }
        if msg.guild_id:
            payload["guild_id"] = msg.guild_id
        if msg.interaction_id and msg.interaction_id in self.interactions:
            inter = self.interactions[msg.interaction_id]
            payload["webhook_id"] = self.application_id
            payload["application_id"] = self.application_id
            meta: dict[str, Any] = {
                "id": inter.id,
                "type": inter.type,
                "user": self._user(inter.user_id),
                "authorizing_integration_owners": inter.payload["authorizing_integration_owners"],
            }
            if msg.origin == "webhook" and inter.original_message_id:
                meta["original_response_message_id"] = inter.original_message_id
            if inter.type == 3:
                meta["interacted_message_id"] = inter.payload["message"]["id"]
            payload["interaction_metadata"] = meta
        return payload

    def _normalise_components(
        self, components: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]]:
        comps = copy.deepcopy(components or [])
        counter = itertools.count(1)
        for comp in _iter_components(comps):
            if comp.get("id") is None:
                comp["id"] = next(counter)
        return comps

    def _apply_attachments(
        self, msg: FakeMessage, body: dict[str, Any], files: list[tuple[int, FakeFile]]
    ) -> None:
        for _, f in files:
            if len(f.data) > self.max_file_size:
                raise _ApiError(413, 40005, "Request entity too large")
        by_index = dict(files)
        referenced: set[int] = set()
        existing = {a.id: a for a in msg.stored_attachments}
        keep: list[_StoredAttachment] = []
        new: list[tuple[int, FakeFile, dict[str, Any]]] = []
        descriptors = body.get("attachments")
        if descriptors is None:
            keep = list(msg.stored_attachments)
        else:
            bad = []
            for pos, desc in enumerate(descriptors):
                did = str(desc.get("id"))
                if did in existing:
                    keep.append(existing[did])
                elif did.isdigit() and int(did) in by_index:
                    referenced.add(int(did))
                    new.append((int(did), by_index[int(did)], desc))
                else:
                    bad.append(
                        Violation(
                            ("attachments", pos, "id"), "ATTACHMENT_NOT_FOUND", "Unknown attachment"
                        )
                    )
            if bad:
                raise _invalid(bad)
        for index, f in files:
            if index not in referenced:
                new.append((index, f, {}))
        if len(keep) + len(new) > self.max_attachments:
            raise _invalid(
                [
                    Violation(
                        ("attachments",),
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {self.max_attachments} or fewer in length.",
                    )
                ]
            )
        stored = list(keep)
        for _, f, desc in new:
            filename = desc.get("filename") or f.filename
            file = FakeFile(filename, f.data, _sniff_content_type(filename, f.data, f.content_type))
            att_id = self._snowflake()
            meta = self._attachment_meta(att_id, file)
            if desc.get("description"):
                meta["description"] = desc["description"]
            if msg.ephemeral:
                meta["ephemeral"] = True
            self.uploads[att_id] = file
            stored.append(_StoredAttachment(att_id, file, meta))
        msg.stored_attachments = stored

    def _create_message(
        self,
        channel_id: str,
        body: dict[str, Any] | None,
        files: list[tuple[int, FakeFile]],
        *,
        origin: str,
        interaction: FakeInteraction | None = None,
        flags: int | None = None,
        allow_empty: bool = False,
    ) -> FakeMessage:
        body = body or {}
        if not allow_empty and _is_empty(body, files):
            raise _ApiError(400, 50006, "Cannot send an empty message")
        requested = body.get("flags") or 0
        msg_flags = flags if flags is not None else requested
        msg_flags |= requested & (FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2)
        channel = self.channels[channel_id]
        msg = FakeMessage(
            id=self._snowflake(),
            channel_id=channel_id,
            content=body.get("content") or "",
            embeds=[{"type": "rich", **e} for e in body.get("embeds") or []],
            components=self._normalise_components(body.get("components")),
            flags=msg_flags,
            interaction_id=interaction.id if interaction else None,
            origin=origin,
            guild_id=channel.get("guild_id"),
        )
        self._apply_attachments(msg, body, files)
        self.messages[msg.id] = msg
        return msg

    def _edit_message(
        self, msg: FakeMessage, body: dict[str, Any] | None, files: list[tuple[int, FakeFile]]
    ) -> FakeMessage:
        body = body or {}
        self._apply_attachments(msg, body, files)
        if "content" in body:
            msg.content = body["content"] or ""
        if "embeds" in body:
            msg.embeds = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            msg.components = self._normalise_components(body["components"])
        if body.get("flags") is not None:
            keep = msg.flags & (FLAG_EPHEMERAL | FLAG_COMPONENTS_V2)
            msg.flags = keep | (body["flags"] & (FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2))
        was_loading = msg.loading
        msg.flags &= ~FLAG_LOADING
        if not was_loading:
            msg.edited_at = _now_iso()
        msg.edits.append(copy.deepcopy(body))
        return msg

    # ------------------------------------------------------------------ limits

    def _message_limits(self, body: Any, prefix: tuple[str | int, ...] = ()) -> list[Violation]:
        if not isinstance(body, dict):
            return []
        out: list[Violation] = []
        content = body.get("content")
        if isinstance(content, str) and len(content) > 2000:
            out.append(
                Violation(
                    (*prefix, "content"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 2000 or fewer in length.",
                )
            )
        flags = body.get("flags") or 0
        v2 = bool(flags & FLAG_COMPONENTS_V2)
        if v2 and (content or body.get("embeds")):
            out.append(
                Violation(
                    (*prefix, "content"),
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    "The 'content' and 'embeds' fields cannot be used with IS_COMPONENTS_V2.",
                )
            )
        components = body.get("components")
        if isinstance(components, list):
            out += _component_limits(components, (*prefix, "components"), v2=v2)
        return out

    def _modal_limits(self, data: Any, prefix: tuple[str | int, ...]) -> list[Violation]:
        if not isinstance(data, dict):
            return [Violation(prefix, "BASE_TYPE_REQUIRED", "This field is required")]
        out: list[Violation] = []
        title = data.get("title") or ""
        if not 1 <= len(title) <= 45:
            out.append(
                Violation((*prefix, "title"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45.")
            )
        comps = data.get("components") or []
        if not 1 <= len(comps) <= 5:
            out.append(
                Violation(
                    (*prefix, "components"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                )
            )
        out += _custom_id_limits(data.get("custom_id"), (*prefix, "custom_id"))
        seen: set[str] = set()
        for i, comp in enumerate(comps):
            path = (*prefix, "components", i)
            inner: list[tuple[dict[str, Any], tuple[str | int, ...]]] = []
            if comp.get("type") == 1:
                inner = [
                    (c, (*path, "components", j))
                    for j, c in enumerate(comp.get("components") or [])
                ]
            elif comp.get("type") == 18:
                label = comp.get("label") or ""
                if not 1 <= len(label) <= 45:
                    out.append(
                        Violation(
                            (*path, "label"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45."
                        )
                    )
                if isinstance(comp.get("component"), dict):
                    inner = [(comp["component"], (*path, "component"))]
            for child, cpath in inner:
                cid = child.get("custom_id")
                out += _custom_id_limits(cid, (*cpath, "custom_id"))
                if isinstance(cid, str):
                    if cid in seen:
                        out.append(
                            Violation(
                                (*cpath, "custom_id"),
                                "COMPONENT_CUSTOM_ID_DUPLICATED",
                                "Component custom id cannot be duplicated",
                            )
                        )
                    seen.add(cid)
                if child.get("type") == 4:
                    if child.get("label") is not None and len(child["label"]) > 45:
                        out.append(
                            Violation(
                                (*cpath, "label"),
                                "BASE_TYPE_MAX_LENGTH",
                                "Must be 45 or fewer in length.",
                            )
                        )
                    if child.get("placeholder") is not None and len(child["placeholder"]) > 100:
                        out.append(
                            Violation(
                                (*cpath, "placeholder"),
                                "BASE_TYPE_MAX_LENGTH",
                                "Must be 100 or fewer in length.",
                            )
                        )
                    if child.get("value") is not None and len(child["value"]) > 4000:
                        out.append(
                            Violation(
                                (*cpath, "value"),
                                "BASE_TYPE_MAX_LENGTH",
                                "Must be 4000 or fewer in length.",
                            )
                        )
        return out

    def _validate(
        self, kind: str | None, template: str | None, method: str, body: Any
    ) -> list[Violation]:
        out: list[Violation] = []
        if self.validate_spec and template is not None and body is not None:
            out += discord_spec.validate_body(template, method, body)
        if kind == "message":
            out += self._message_limits(body)
        elif kind == "callback" and isinstance(body, dict):
            ctype = body.get("type")
            if ctype in (4, 7):
                out += self._message_limits(body.get("data"), ("data",))
            elif ctype == 9:
                out += self._modal_limits(body.get("data"), ("data",))
        # The spec and the limit checks may report the same field twice: keep one per path.
        unique: dict[tuple[str | int, ...], Violation] = {}
        for v in out:
            unique.setdefault(v.path, v)
        return list(unique.values())

    # ------------------------------------------------------------------ HTTP plumbing

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any], str | None]]:
        snow = r"(?P<{}>\d+)"
        tok = r"(?P<token>[^/]+)"
        table: list[tuple[str, str, Callable[..., Any], str | None]] = [
            ("GET", "/users/@me", self._r_me, None),
            ("GET", "/oauth2/applications/@me", self._r_app, None),
            ("GET", "/applications/@me", self._r_app, None),
            ("GET", "/gateway", self._r_gateway, None),
            ("GET", "/gateway/bot", self._r_gateway, None),
            ("POST", "/users/@me/channels", self._r_dm_create, None),
            ("PUT", "/applications/{app}/commands", self._r_put_commands, "commands"),
            ("GET", "/applications/{app}/commands", self._r_get_commands, None),
            (
                "PUT",
                "/applications/{app}/guilds/{guild}/commands",
                self._r_put_commands,
                "commands",
            ),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self._r_get_commands, None),
            ("POST", "/interactions/{iid}/{token}/callback", self._r_callback, "callback"),
            ("POST", "/webhooks/{app}/{token}", self._r_followup, "message"),
            ("GET", "/webhooks/{app}/{token}/messages/{mid}", self._r_wh_get, None),
            ("PATCH", "/webhooks/{app}/{token}/messages/{mid}", self._r_wh_edit, "message"),
            ("DELETE", "/webhooks/{app}/{token}/messages/{mid}", self._r_wh_delete, None),
            ("GET", "/channels/{channel}", self._r_channel, None),
            ("POST", "/channels/{channel}/typing", self._r_typing, None),
            ("GET", "/channels/{channel}/messages", self._r_history, None),
            ("POST", "/channels/{channel}/messages", self._r_ch_create, "message"),
            ("GET", "/channels/{channel}/messages/{mid}", self._r_ch_get, None),
            ("PATCH", "/channels/{channel}/messages/{mid}", self._r_ch_edit, "message"),
            ("DELETE", "/channels/{channel}/messages/{mid}", self._r_ch_delete, None),
            (
                "PUT",
                "/channels/{channel}/messages/{mid}/reactions/{emoji}/@me",
                self._r_react,
                None,
            ),
            (
                "DELETE",
                "/channels/{channel}/messages/{mid}/reactions/{emoji}/@me",
                self._r_unreact,
                None,
            ),
        ]
        routes = []
        for method, template, handler, kind in table:
            pattern = re.escape(template)
            for name in ("app", "guild", "iid", "channel"):
                pattern = pattern.replace(re.escape("{" + name + "}"), snow.format(name))
            pattern = pattern.replace(re.escape("{token}"), tok)
            pattern = pattern.replace(re.escape("{mid}"), r"(?P<mid>@original|\d+)")
            pattern = pattern.replace(re.escape("{emoji}"), r"(?P<emoji>[^/]+)")
            routes.append((method, re.compile(f"^{pattern}$"), handler, kind))
        return routes

    async def _read_body(self, request: web.Request) -> tuple[Any, list[tuple[int, FakeFile]]]:
        files: list[tuple[int, FakeFile]] = []
        if request.content_type.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            position = 0
            async for part in reader:
                if part.name == "payload_json":
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                    continue
                data = await part.read()  # type: ignore[union-attr]
                match = re.fullmatch(r"files\[(\d+)\]", part.name or "")
                index = int(match.group(1)) if match else position
                position += 1
                filename = part.filename or f"file{index}"
                ctype = part.headers.get("Content-Type")
                files.append((index, FakeFile(filename, bytes(data), ctype)))
            return body, files
        raw = await request.read()
        if not raw:
            return None, files
        if request.content_type == "application/json":
            return json.loads(raw), files
        return raw.decode("utf-8", "replace"), files

    def _reject(self, req: FakeRequest, err: _ApiError) -> web.Response:
        req.status, req.response = err.status, err.body()
        if err.record:
            self.errors.append(
                FakeError(req.method, req.path, err.status, err.code, err.message, err.errors)
            )
        self._notify()
        return _json_response(err.body(), err.status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/attachments/") and request.method in ("GET", "HEAD"):
            req = FakeRequest(request.method, path, dict(request.query), None)
            self.requests.append(req)
            response = self._serve_attachment(path)
            req.status = response.status
            return response
        try:
            body, files = await self._read_body(request)
        except (ValueError, UnicodeDecodeError) as exc:
            req = FakeRequest(request.method, path, dict(request.query), None)
            self.requests.append(req)
            return self._reject(req, _ApiError(400, 50109, f"The request body is invalid: {exc}"))
        req = FakeRequest(request.method, path, dict(request.query), body, [f for _, f in files])
        self.requests.append(req)
        if not path.startswith(API_PREFIX):
            return self._reject(req, _ApiError(404, 0, "404: Not Found"))
        api_path = path[len(API_PREFIX) :]
        req.route = discord_spec.match_template(api_path)
        for method, pattern, handler, kind in self._routes:
            match = pattern.match(api_path)
            if match is None or method != request.method:
                continue
            try:
                if not api_path.startswith(("/webhooks/", "/interactions/")):
                    self._check_auth(request)
                violations = self._validate(kind, req.route, request.method, body)
                if violations:
                    raise _invalid(violations)
                result = await handler(req, body, files, **match.groupdict())
            except _ApiError as err:
                return self._reject(req, err)
            except Exception as exc:  # a fake bug: answer 400 (a 5xx makes discord.py retry)
                return self._reject(req, _ApiError(400, 0, f"fake discord internal error: {exc!r}"))
            self._notify()
            if result is None:
                req.status = 204
                return web.Response(status=204)
            req.status, req.response = 200, result
            return _json_response(result)
        return self._reject(req, _ApiError(404, 0, "404: Not Found"))

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bot ") or (self.token is not None and auth[4:] != self.token):
            raise _ApiError(401, 0, "401: Unauthorized")

    def _serve_attachment(self, path: str) -> web.Response:
        parts = path.split("/")
        file = self.uploads.get(parts[2]) if len(parts) >= 4 else None
        if file is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(
            body=file.data,
            headers={"Content-Type": file.content_type or "application/octet-stream"},
        )

    # ------------------------------------------------------------------ route handlers

    async def _r_me(self, req: FakeRequest, body: Any, files: Any) -> dict[str, Any]:
        return copy.deepcopy(self.bot_user)

    async def _r_app(self, req: FakeRequest, body: Any, files: Any) -> dict[str, Any]:
        return {
            "id": self.application_id,
            "name": self.bot_user["username"],
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": copy.deepcopy(self.default_user),
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "summary": "",
            "bot": copy.deepcopy(self.bot_user),
        }

    async def _r_gateway(self, req: FakeRequest, body: Any, files: Any) -> dict[str, Any]:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }

    async def _r_dm_create(self, req: FakeRequest, body: Any, files: Any) -> dict[str, Any]:
        recipient = (body or {}).get("recipient_id")
        return copy.deepcopy(self._dm_channel(self._user(recipient)))

    def _check_app(self, app: str) -> None:
        if app != self.application_id:
            raise _ApiError(404, 10002, "Unknown Application")

    async def _r_put_commands(
        self, req: FakeRequest, body: Any, files: Any, app: str, guild: str | None = None
    ) -> list[dict[str, Any]]:
        self._check_app(app)
        if guild is not None and guild != self.guild_id:
            raise _ApiError(404, 10004, "Unknown Guild")
        stored = []
        for cmd in body or []:
            key = (guild, cmd["name"], cmd.get("type") or 1)
            cid = self._command_ids.setdefault(key, self._snowflake())
            full = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **copy.deepcopy(cmd),
                "id": cid,
                "application_id": self.application_id,
                "version": self._snowflake(),
            }
            if guild is not None:
                full["guild_id"] = guild
            stored.append(full)
        if guild is None:
            self.commands = stored
        else:
            self.guild_commands[guild] = stored
        return copy.deepcopy(stored)

    async def _r_get_commands(
        self, req: FakeRequest, body: Any, files: Any, app: str, guild: str | None = None
    ) -> list[dict[str, Any]]:
        self._check_app(app)
        return copy.deepcopy(self.commands if guild is None else self.guild_commands.get(guild, []))

    async def _r_callback(
        self, req: FakeRequest, body: Any, files: list[tuple[int, FakeFile]], iid: str, token: str
    ) -> dict[str, Any] | None:
        inter = self.interactions.get(iid)
        if inter is None or inter.token != token:
            raise _ApiError(404, 10062, "Unknown interaction")
        if inter.token_expired:
            raise _ApiError(404, 10062, "Unknown interaction", record=False)
        if not isinstance(body, dict):
            raise _invalid([Violation(("type",), "BASE_TYPE_REQUIRED", "This field is required")])
        elapsed = asyncio.get_running_loop().time() - inter.dispatched_at
        if elapsed > self.interaction_deadline:
            raise _ApiError(404, 10062, "Unknown interaction")
        if inter.callbacks:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        ctype = body.get("type")
        data = body.get("data")
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5}}.get(inter.type, set())
        if inter.type == 5 and "message" in inter.payload:
            allowed = allowed | {6, 7}
        if ctype not in allowed:
            raise _invalid(
                [
                    Violation(
                        ("type",),
                        "INTERACTION_RESPONSE_TYPE_INVALID",
                        f"Callback type {ctype} is not allowed for interaction type {inter.type}",
                    )
                ]
            )
        message: FakeMessage | None = None
        flags = (data or {}).get("flags") or 0
        if ctype == 4:
            message = self._create_message(
                inter.channel_id,
                data,
                files,
                origin="callback",
                interaction=inter,
                flags=flags & FLAG_EPHEMERAL,
            )
            inter.original_message_id = message.id
        elif ctype == 5:
            message = self._create_message(
                inter.channel_id,
                None,
                [],
                origin="callback",
                interaction=inter,
                flags=(flags & FLAG_EPHEMERAL) | FLAG_LOADING,
                allow_empty=True,
            )
            inter.original_message_id = message.id
            inter._loading_pending = True
        elif ctype in (6, 7):
            mid = inter.payload["message"]["id"]
            message = self.messages.get(mid)
            if message is None or message.deleted:
                raise _ApiError(404, 10008, "Unknown Message")
            if ctype == 7:
                self._edit_message(message, data, files)
            inter.original_message_id = mid
        elif ctype == 9:
            inter.modal = copy.deepcopy(data)
        callback = FakeCallback(
            inter.id, ctype, copy.deepcopy(data), [f for _, f in files], elapsed
        )
        inter.callbacks.append(callback)
        self.callbacks.append(callback)
        if req.query.get("with_response") not in ("1", "true", "True"):
            return None
        resource: dict[str, Any] = {"type": ctype}
        if message is not None and ctype in (4, 7):
            resource["message"] = self._message_payload(message)
        return {
            "interaction": {
                "id": inter.id,
                "type": inter.type,
                "activity_instance_id": None,
                "response_message_id": message.id if message is not None else None,
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": bool(message is not None and message.ephemeral),
            },
            "resource": resource,
        }

    def _webhook_interaction(self, app: str, token: str) -> FakeInteraction:
        inter = self._by_token.get(token)
        if app != self.application_id or inter is None:
            raise _ApiError(404, 10015, "Unknown Webhook")
        if inter.token_expired:
            raise _ApiError(401, 50027, "Invalid Webhook Token", record=False)
        if asyncio.get_running_loop().time() - inter.dispatched_at > self.token_lifetime:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        if not inter.callbacks:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return inter

    def _webhook_message(self, inter: FakeInteraction, mid: str) -> FakeMessage:
        if mid == "@original":
            mid = inter.original_message_id or ""
        elif mid != inter.original_message_id and mid not in inter.followup_ids:
            raise _ApiError(404, 10008, "Unknown Message")
        msg = self.messages.get(mid)
        if msg is None or msg.deleted:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    async def _r_followup(
        self, req: FakeRequest, body: Any, files: list[tuple[int, FakeFile]], app: str, token: str
    ) -> dict[str, Any] | None:
        inter = self._webhook_interaction(app, token)
        original = inter.original
        if (
            inter._loading_pending
            and original is not None
            and original.loading
            and not original.deleted
        ):
            # The first followup after a deferred response replaces the "thinking" message.
            if _is_empty(body or {}, files):
                raise _ApiError(400, 50006, "Cannot send an empty message")
            msg = self._edit_message(original, body, files)
            msg.edited_at = None
        else:
            flags = (body or {}).get("flags") or 0
            msg = self._create_message(
                inter.channel_id,
                body,
                files,
                origin="webhook",
                interaction=inter,
                flags=flags & FLAG_EPHEMERAL,
            )
            inter.followup_ids.append(msg.id)
        inter._loading_pending = False
        if req.query.get("wait") in ("1", "true", "True"):
            return self._message_payload(msg)
        return None

    async def _r_wh_get(
        self, req: FakeRequest, body: Any, files: Any, app: str, token: str, mid: str
    ) -> dict[str, Any]:
        inter = self._webhook_interaction(app, token)
        return self._message_payload(self._webhook_message(inter, mid))

    async def _r_wh_edit(
        self,
        req: FakeRequest,
        body: Any,
        files: list[tuple[int, FakeFile]],
        app: str,
        token: str,
        mid: str,
    ) -> dict[str, Any]:
        inter = self._webhook_interaction(app, token)
        msg = self._webhook_message(inter, mid)
        if msg.id == inter.original_message_id:
            inter._loading_pending = False
        return self._message_payload(self._edit_message(msg, body, files))

    async def _r_wh_delete(
        self, req: FakeRequest, body: Any, files: Any, app: str, token: str, mid: str
    ) -> None:
        inter = self._webhook_interaction(app, token)
        self._webhook_message(inter, mid).deleted = True
        return None

    def _channel_or_404(self, channel: str) -> dict[str, Any]:
        if channel not in self.channels:
            raise _ApiError(404, 10003, "Unknown Channel")
        return self.channels[channel]

    def _channel_message(self, channel: str, mid: str) -> FakeMessage:
        self._channel_or_404(channel)
        msg = self.messages.get(mid)
        if msg is None or msg.deleted or msg.channel_id != channel or msg.ephemeral:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    async def _r_channel(self, req: FakeRequest, body: Any, files: Any, channel: str) -> Any:
        return copy.deepcopy(self._channel_or_404(channel))

    async def _r_typing(self, req: FakeRequest, body: Any, files: Any, channel: str) -> None:
        self._channel_or_404(channel)
        return None

    async def _r_history(self, req: FakeRequest, body: Any, files: Any, channel: str) -> Any:
        self._channel_or_404(channel)
        limit = int(req.query.get("limit", "50"))
        msgs = [m for m in self.channel_messages(channel) if not m.ephemeral]
        return [self._message_payload(m) for m in reversed(msgs)][:limit]

    async def _r_ch_create(
        self, req: FakeRequest, body: Any, files: list[tuple[int, FakeFile]], channel: str
    ) -> dict[str, Any]:
        self._channel_or_404(channel)
        flags = (body or {}).get("flags") or 0
        msg = self._create_message(
            channel, body, files, origin="channel", flags=flags & FLAG_SUPPRESS_EMBEDS
        )
        return self._message_payload(msg)

    async def _r_ch_get(
        self, req: FakeRequest, body: Any, files: Any, channel: str, mid: str
    ) -> dict[str, Any]:
        return self._message_payload(self._channel_message(channel, mid))

    async def _r_ch_edit(
        self,
        req: FakeRequest,
        body: Any,
        files: list[tuple[int, FakeFile]],
        channel: str,
        mid: str,
    ) -> dict[str, Any]:
        msg = self._channel_message(channel, mid)
        if msg.author_id != self.bot_user_id:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        return self._message_payload(self._edit_message(msg, body, files))

    async def _r_ch_delete(
        self, req: FakeRequest, body: Any, files: Any, channel: str, mid: str
    ) -> None:
        self._channel_message(channel, mid).deleted = True
        return None

    async def _r_react(
        self, req: FakeRequest, body: Any, files: Any, channel: str, mid: str, emoji: str
    ) -> None:
        msg = self._channel_message(channel, mid)
        if emoji not in msg.reactions:
            msg.reactions.append(emoji)
        return None

    async def _r_unreact(
        self, req: FakeRequest, body: Any, files: Any, channel: str, mid: str, emoji: str
    ) -> None:
        msg = self._channel_message(channel, mid)
        if emoji in msg.reactions:
            msg.reactions.remove(emoji)
        return None


class _Session:
    """One gateway connection."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.session_id = secrets.token_hex(16)
        self.seq = 0
        self.ready = False

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data, "s": None, "t": None}))

    async def dispatch(self, event: str, data: Any) -> None:
        self.seq += 1
        await self.ws.send_str(json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}))


def _is_empty(body: dict[str, Any], files: list[Any]) -> bool:
    keys = ("content", "embeds", "components", "sticker_ids", "poll")
    return not (files or any(body.get(k) for k in keys))


def _custom_id_limits(cid: Any, path: tuple[str | int, ...]) -> list[Violation]:
    if cid is None:
        return []
    if not isinstance(cid, str) or not 1 <= len(cid) <= 100:
        return [Violation(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")]
    return []


def _component_limits(
    components: list[Any], prefix: tuple[str | int, ...], *, v2: bool
) -> list[Violation]:
    out: list[Violation] = []
    seen: set[str] = set()
    total = 0

    def walk(comp: Any, path: tuple[str | int, ...]) -> None:
        nonlocal total
        if not isinstance(comp, dict):
            return
        total += 1
        ctype = comp.get("type")
        cid = comp.get("custom_id")
        out.extend(_custom_id_limits(cid, (*path, "custom_id")))
        if isinstance(cid, str):
            if cid in seen:
                out.append(
                    Violation(
                        (*path, "custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                )
            seen.add(cid)
        if ctype == 2:
            label = comp.get("label")
            if isinstance(label, str) and len(label) > 80:
                out.append(
                    Violation((*path, "label"), "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer.")
                )
            style = comp.get("style")
            if style == 5 and (not comp.get("url") or cid is not None):
                out.append(
                    Violation(
                        (*path, "url"),
                        "BUTTON_COMPONENT_URL_REQUIRED",
                        "A link button needs url and no custom_id",
                    )
                )
            if style in (1, 2, 3, 4) and cid is None:
                out.append(
                    Violation(
                        (*path, "custom_id"),
                        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
                        "A non-link button needs a custom_id",
                    )
                )
        children = comp.get("components")
        if ctype == 1 and isinstance(children, list):
            if len(children) > 5:
                out.append(
                    Violation(
                        (*path, "components"),
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 5 or fewer in length.",
                    )
                )
            if any(isinstance(c, dict) and c.get("type") in _SELECT_TYPES for c in children):
                if len(children) > 1:
                    out.append(
                        Violation(
                            (*path, "components"),
                            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                            "A select menu must be alone in its action row",
                        )
                    )
        if isinstance(children, list):
            for i, child in enumerate(children):
                walk(child, (*path, "components", i))
        if isinstance(comp.get("accessory"), dict):
            walk(comp["accessory"], (*path, "accessory"))

    for i, comp in enumerate(components):
        if not v2 and isinstance(comp, dict) and comp.get("type") != 1:
            out.append(
                Violation(
                    (*prefix, i, "type"),
                    "COMPONENT_TYPE_INVALID",
                    "Only action rows at the top level without the IS_COMPONENTS_V2 flag",
                )
            )
        walk(comp, (*prefix, i))
    if not v2 and len(components) > 5:
        out.append(Violation(prefix, "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
    if v2 and total > 40:
        out.append(
            Violation(prefix, "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer components in total.")
        )
    return out
