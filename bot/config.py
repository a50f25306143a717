"""Configuration: a TOML file, overridden by ``MJBOT_<SECTION>__<KEY>`` environment variables.

Every section is a frozen dataclass; every field has a default except the secrets a deployment
must supply. Loading fails with ``ConfigError`` naming the key, so the CLI can print one clear
line instead of a traceback. Secrets are ``Secret`` values whose repr is masked.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import math
import os
import re
import tomllib
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.egress import parse_host_rule
from bot.mj.profiles import (
    AUTH_SCHEMES,
    CODE21,
    DEFAULT_PROVIDER,
    EXTEND_SPELLINGS,
    MODE_FORMS,
    PROVIDERS,
)
from bot.store import shown_url

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class ConfigError(Exception):
    """A missing or invalid setting; the message names the key."""


class Secret(str):
    """A string that never shows itself in logs, reprs or f-strings of containers."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)


NO_SECRET = Secret("")

DAY_S = 86400.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def between(low: float, high: float) -> dict[str, tuple[float, float]]:
    """Field metadata: the closed range a number must lie in. Every int and float setting
    has one (checked on load, with finiteness): NaN, infinities and values such as a
    0.001 s poll interval that would busy-loop a core never reach the code."""
    return {"range": (low, high)}


UNITS = between(0, 1_000_000_000)  # quotas, in cost units
WEIGHT = between(0, 1000)  # the cost of one action, in units


def check_listen(key: str, value: str) -> None:
    """``HOST:PORT`` with a port 0-65535 (0: the system picks one)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{key} must look like HOST:PORT (a port 0-65535), not {value!r}")


@dataclass(frozen=True)
class MidjourneyConfig:
    base_url: str = "simulator"  # "simulator" runs the built-in simulator in-process
    api_key: Secret = NO_SECRET
    # openai-hk | midjourney-proxy | plus | trueai | new-api | auto (probe once at start)
    provider: str = DEFAULT_PROVIDER
    auth_header: str = ""  # "" = the provider's; bearer | raw-authorization | mj-api-secret
    mode: str = ""  # "" | "fast" | "relax" | "turbo" | any path prefix such as "/mj-fast"
    timeout_s: float = field(default=30.0, metadata=between(1.0, 600.0))
    # Key-by-key overrides of the provider profile (bot/mj/profiles.py); unset = the profile's.
    mode_form: str = ""  # path | mj-path | body | prompt | none
    code21: str = ""  # modal | exists
    queue_full_code9: bool | None = None
    action_route: bool | None = None
    list_route: bool | None = None
    hooks: bool | None = None
    buttons_on_tasks: bool | None = None
    hidden_buttons: tuple[str, ...] | None = None
    extend_spelling: str = ""  # taskId | task_id (video extend's parent field)
    retexture: bool | None = None  # /submit/retexture exists
    describe_link: bool | None = None  # describe takes link and language (trueai)
    bot_types: bool | None = None  # submits take botType (niji 7 on the niji bot)
    turbo: bool | None = None  # a turbo speed exists (else turbo runs as fast, with a notice)

    def profile_overrides(self) -> dict[str, Any]:
        """The profile keys this config sets (None / "" = not set, the profile's value)."""
        return {
            name: getattr(self, name)
            for name in (
                "auth_header",
                "mode_form",
                "code21",
                "queue_full_code9",
                "action_route",
                "list_route",
                "hooks",
                "buttons_on_tasks",
                "hidden_buttons",
                "extend_spelling",
                "retexture",
                "describe_link",
                "bot_types",
                "turbo",
            )
            if getattr(self, name) not in (None, "")
        }

    def validate(self) -> None:
        if self.provider not in PROVIDERS:
            raise ConfigError(
                f"midjourney.provider must be one of {', '.join(PROVIDERS)}, not {self.provider!r}"
            )
        for key, allowed in (
            ("auth_header", AUTH_SCHEMES),
            ("mode_form", MODE_FORMS),
            ("code21", CODE21),
            ("extend_spelling", EXTEND_SPELLINGS),
        ):
            value = getattr(self, key)
            if value and value not in allowed:
                raise ConfigError(
                    f"midjourney.{key} must be one of {', '.join(allowed)}, not {value!r}"
                )
        if self.base_url != "simulator" and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("midjourney.base_url must be an http(s) URL or 'simulator'")


WEBHOOK_SALT = b"mjbot telegram webhook secret_token"
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts


@dataclass(frozen=True)
class TelegramConfig:
    token: Secret = NO_SECRET
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    webapp_url: str = ""  # public HTTPS URL of the mask editor Mini App (optional)
    webapp_listen: str = "127.0.0.1:8091"  # where mjbot serves that editor (behind HTTPS)
    # Telegram's group limit; 0 = do not pace per minute
    group_messages_per_minute: int = field(default=20, metadata=between(0, 600))
    # Webhook mode when set: the public HTTPS URL Telegram posts updates to (a load balancer in
    # front of several instances); empty = long polling (one instance per token).
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8092"  # where mjbot receives those posts
    # The X-Telegram-Bot-Api-Secret-Token value; empty = derived from the token (webhook_token)
    webhook_secret: Secret = NO_SECRET
    # An update taken from Telegram by an instance that has not said it still has it for this
    # long (it died before handling it) is handled by another instance, or by the next start.
    inbox_takeover_s: float = field(default=10.0, metadata=between(1.0, 3600.0))

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @property
    def webhook(self) -> bool:
        return bool(self.webhook_url)

    def webhook_token(self) -> str:
        """The secret Telegram echoes in every webhook post: ``webhook_secret``, or else an
        HMAC of the bot token. Derived rather than generated so that every instance started
        from one config agrees on it without talking to the others, and it stays the same
        across restarts (a generated one would need a shared place to keep it first)."""
        if self.webhook_secret:
            return self.webhook_secret.reveal()
        digest = hmac.new(self.token.reveal().encode(), WEBHOOK_SALT, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")  # [A-Za-z0-9_-]{43}

    def validate(self) -> None:
        check_listen("telegram.webapp_listen", self.webapp_listen)
        check_listen("telegram.webhook_listen", self.webhook_listen)
        if self.webhook_url:
            url = urllib.parse.urlsplit(self.webhook_url)
            # Telegram posts to HTTPS only; plain http is accepted for a loopback address,
            # where only a local Bot API server (or a test's fake) can reach it.
            local = url.hostname in ("127.0.0.1", "localhost", "::1")
            if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and local)):
                raise ConfigError("telegram.webhook_url must be an https:// URL")
        if self.webhook_secret and not WEBHOOK_SECRET_RE.fullmatch(self.webhook_secret):
            raise ConfigError(
                "telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )


@dataclass(frozen=True)
class DiscordConfig:
    token: Secret = NO_SECRET
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    # Several instances on PostgreSQL: one holds the gateway session (a lease in the store),
    # renewed every third of this; when its holder dies, another connects within about this
    # long plus a third (adapters/discord/__init__.py).
    gateway_lease_s: float = field(default=15.0, metadata=between(1.0, 300.0))

    @property
    def enabled(self) -> bool:
        return bool(self.token)


@dataclass(frozen=True)
class TrackingConfig:
    poll_interval_s: float = field(default=4.0, metadata=between(0.1, 3600.0))
    webhook_public_url: str = ""  # when set, every submit carries notifyHook=<url>/<secret path>
    listen: str = "127.0.0.1:8090"  # where the notifyHook receiver listens
    # at most one progress edit per chat per this many seconds
    edit_interval_s: float = field(default=2.5, metadata=between(0.0, 600.0))
    # at least this long between two messages to one chat
    send_interval_s: float = field(default=1.0, metadata=between(0.0, 60.0))
    # where send limits are counted: "store" (every instance on the database together),
    # "memory" (this process alone), "auto" (store on PostgreSQL, memory on SQLite)
    shared_limits: str = "auto"
    # give up on a task after this long (fast / turbo / default)
    timeout_fast_s: float = field(default=900.0, metadata=between(1.0, 7 * DAY_S))
    # relax jobs queue for a long time on busy accounts
    timeout_relax_s: float = field(default=3600.0, metadata=between(1.0, 7 * DAY_S))
    # a refused result is posted again after this long (for a day)
    resend_after_s: float = field(default=30.0, metadata=between(0.1, DAY_S))
    # a callback saying a task finished is confirmed with the API together with those arriving
    # within this many seconds: fewer requests, a little later results (bot/tracking/hooks.py)
    confirm_wait_s: float = field(default=0.3, metadata=between(0.0, 10.0))
    # Several instances on one database (bot/tracking/lease.py): each says it is alive every
    # heartbeat_s; one silent for lease_ttl_s is dead, and the others take over its tasks.
    lease_ttl_s: float = field(default=10.0, metadata=between(0.5, 600.0))
    heartbeat_s: float = field(default=3.0, metadata=between(0.1, 300.0))

    def validate(self) -> None:
        check_listen("tracking.listen", self.listen)
        if self.heartbeat_s >= self.lease_ttl_s:
            raise ConfigError(
                f"tracking.heartbeat_s ({self.heartbeat_s:g}) must be shorter than"
                f" tracking.lease_ttl_s ({self.lease_ttl_s:g}): an instance that beats"
                " less often than its lease lasts looks dead to the others"
            )
        if self.shared_limits not in ("auto", "store", "memory"):
            raise ConfigError(
                f"tracking.shared_limits must be auto, store or memory, not {self.shared_limits!r}"
            )


PHOTO_LIMIT_KB = 10 * 1024  # Telegram's (and Discord's default) largest photo upload


@dataclass(frozen=True)
class MediaConfig:
    # Result downloads go to public addresses only (and to the origins configured above);
    # private hosts the operator runs (a CDN on the LAN) are listed here: names, addresses or
    # networks, e.g. ["10.0.0.5", "cdn.internal", "10.1.0.0/16"].
    allow_private_hosts: tuple[str, ...] = ()
    # A result's photo is its original as downloaded when it is a PNG or JPEG the platforms
    # show unchanged and at most this many KB; bigger ones (Midjourney's 2048 px grids are
    # 6-8 MB PNGs) are re-encoded as JPEG. 0 = always re-encode. Up to 10240 (Telegram's
    # 10 MB photo limit): more spares CPU (a conversion is ~50-130 ms) for upload bytes.
    photo_as_is_max_kb: int = field(default=1024, metadata=between(0, PHOTO_LIMIT_KB))

    def validate(self) -> None:
        for entry in self.allow_private_hosts:
            try:
                parse_host_rule(entry)
            except ValueError:
                raise ConfigError(
                    f"media.allow_private_hosts: {entry!r} is not a host name, address or network"
                ) from None


STORE_SCHEMES = ("postgresql", "postgres", "sqlite")


@dataclass(frozen=True)
class StorageConfig:
    # SQLite's database file (the default store); result images are cached beside it, in
    # media/, whichever store is used
    path: str = "data/mjbot.db"
    # "" = the SQLite file above; "postgresql://user:password@host:5432/db" = PostgreSQL;
    # "sqlite:///relative/path.db" or "sqlite:////absolute/path.db" = SQLite there. A secret:
    # the password never shows in logs, errors or `mjbot check`.
    url: Secret = NO_SECRET

    @property
    def kind(self) -> str:
        """``postgresql`` or ``sqlite``."""
        scheme = self.url.reveal().partition("://")[0].lower()
        return "postgresql" if scheme in ("postgresql", "postgres") else "sqlite"

    @property
    def sqlite_path(self) -> str:
        """The SQLite file: ``url``'s path when it is a sqlite:/// URL, else ``path``."""
        url = self.url.reveal()
        return url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else self.path

    @property
    def shown(self) -> str:
        """Where the data is, without the password."""
        if self.kind == "postgresql":
            return shown_url(self.url.reveal())
        return f"SQLite {self.sqlite_path}"

    def password(self) -> str:
        parts = urllib.parse.urlsplit(self.url.reveal())
        return urllib.parse.unquote(parts.password or "") if self.url else ""

    def validate(self) -> None:
        url = self.url.reveal()
        if not url:
            return
        scheme = url.partition("://")[0].lower()
        wrong = (
            "storage.url must be postgresql://user:password@host:port/database"
            f" or sqlite:///path, not {shown_url(url)!r}"
        )
        if "://" not in url or scheme not in STORE_SCHEMES:
            raise ConfigError(wrong)
        if scheme == "sqlite":
            if not url.lower().startswith("sqlite:///") or not self.sqlite_path:
                raise ConfigError(wrong)
            return
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 (raises on a port that is not a number 0-65535)
        except ValueError:
            raise ConfigError(wrong) from None


@dataclass(frozen=True)
class SimulatorConfig:
    # only used when midjourney.base_url = "simulator"; < 1 runs jobs faster
    time_scale: float = field(default=1.0, metadata=between(0.001, 1000.0))


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR | CRITICAL

    def validate(self) -> None:
        if self.level.upper() not in LOG_LEVELS:
            raise ConfigError(
                f"logging.level must be one of {', '.join(LOG_LEVELS)}, not {self.level!r}"
            )


@dataclass(frozen=True)
class AccessConfig:
    admins: tuple[str, ...] = ()  # user ids ("123", or "telegram:123" for one platform)
    mode: str = "everyone"  # everyone | allowlist | private_only
    allowed_chats: tuple[str, ...] = ()  # with mode = "allowlist": chats where anyone may use it
    allowed_users: tuple[str, ...] = ()  # with mode = "allowlist": users allowed anywhere
    banned_users: tuple[str, ...] = ()
    buttons: str = "owner"  # who may press a task's buttons: owner | chat

    def validate(self) -> None:
        if self.mode not in ("everyone", "allowlist", "private_only"):
            raise ConfigError("access.mode must be everyone, allowlist or private_only")
        if self.buttons not in ("owner", "chat"):
            raise ConfigError("access.buttons must be owner or chat")


@dataclass(frozen=True)
class WeightsConfig:
    """Cost units per action (what a quota counts)."""

    imagine: int = field(default=1, metadata=WEIGHT)
    upscale: int = field(default=0, metadata=WEIGHT)
    upscale_hd: int = field(default=1, metadata=WEIGHT)
    variation: int = field(default=1, metadata=WEIGHT)
    reroll: int = field(default=1, metadata=WEIGHT)
    zoom: int = field(default=1, metadata=WEIGHT)
    pan: int = field(default=1, metadata=WEIGHT)
    region: int = field(default=1, metadata=WEIGHT)
    describe: int = field(default=1, metadata=WEIGHT)
    blend: int = field(default=1, metadata=WEIGHT)
    swap: int = field(default=1, metadata=WEIGHT)
    shorten: int = field(default=1, metadata=WEIGHT)
    video: int = field(default=8, metadata=WEIGHT)  # ~8 image jobs of GPU time (480p)
    video_hd: int = field(default=16, metadata=WEIGHT)  # 720p
    edit: int = field(default=1, metadata=WEIGHT)
    other: int = field(default=1, metadata=WEIGHT)


@dataclass(frozen=True)
class QuotaConfig:
    daily_units: int = field(default=0, metadata=UNITS)  # per user per UTC day; 0 = unlimited
    # per user per UTC month; 0 = unlimited
    monthly_units: int = field(default=0, metadata=UNITS)
    # tasks in flight per user; 0 = unlimited
    concurrency: int = field(default=3, metadata=between(0, 1000))
    # per chat per UTC day; 0 = unlimited
    chat_daily_units: int = field(default=0, metadata=UNITS)
    # the whole bot per UTC day (a budget); 0 = unlimited
    global_daily_units: int = field(default=0, metadata=UNITS)
    banned_words: tuple[str, ...] = ()  # refused before anything is spent
    weights: WeightsConfig = field(default_factory=WeightsConfig)


@dataclass(frozen=True)
class Config:
    midjourney: MidjourneyConfig = field(default_factory=MidjourneyConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    # Keys of IGNORED this configuration set (not a setting: filled by ``load``).
    ignored: tuple[str, ...] = field(default=(), metadata={"internal": True})

    def validate(self, *, need_chat: bool = True) -> None:
        self.midjourney.validate()
        self.telegram.validate()
        self.tracking.validate()
        self.media.validate()
        self.access.validate()
        self.logging.validate()
        self.storage.validate()
        if self.midjourney.base_url != "simulator" and not self.midjourney.api_key:
            raise ConfigError("midjourney.api_key is required for a real API")
        if need_chat and not (self.telegram.enabled or self.discord.enabled):
            raise ConfigError("telegram.token (or discord.token) is required")

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        found = [
            s.reveal()
            for s in (self.midjourney.api_key, self.telegram.token, self.discord.token)
            if s
        ]
        if self.telegram.enabled and self.telegram.webhook:
            found.append(self.telegram.webhook_token())  # PTB logs setWebhook's parameters
        if self.storage.url:  # the whole database URL, then its password alone
            found += [s for s in (self.storage.url.reveal(), self.storage.password()) if s]
        return found


ENV_PREFIX = "MJBOT_"
# Settings that were documented once and never had an effect: still accepted (a working config
# must keep loading), ignored, and named in one warning by the CLI.
IGNORED = ("midjourney.banned_late", "midjourney.unknown_fetch")
_Section = typing.TypeVar("_Section", bound="DataclassInstance")


def load(path: str | Path | None = None, env: typing.Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (optional), apply environment overrides, convert and validate types."""
    env = os.environ if env is None else env
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:  # a directory, no permission
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        *sections, key = name[len(ENV_PREFIX) :].lower().split("__")
        table: dict[str, Any] = data
        for depth, section in enumerate(sections):
            inner = table.setdefault(section, {})
            if not isinstance(inner, dict):  # e.g. MJBOT_TRACKING__POLL_INTERVAL_S__X
                where = ".".join(sections[: depth + 1])
                raise ConfigError(f"{name}: {where} is a setting, not a table")
            table = inner
        table[key] = value
    ignored = tuple(key for key in IGNORED if _drop(data, key))
    config = _build(Config, data, "")
    return dataclasses.replace(config, ignored=ignored) if ignored else config


def _drop(data: dict[str, Any], dotted: str) -> bool:
    """Remove ``section.key`` from the raw settings; True when it was there."""
    section, _, key = dotted.partition(".")
    table = data.get(section)
    return isinstance(table, dict) and table.pop(key, _MISSING) is not _MISSING


_MISSING = object()


def _build(cls: type[_Section], data: Any, where: str) -> _Section:
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
    known = {f.name for f in fields}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown setting {where}{key}")
    values: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            continue
        kind = hints[f.name]
        key = f"{where}{f.name}"
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            values[f.name] = _build(kind, data[f.name], key + ".")
        else:
            values[f.name] = _convert(kind, data[f.name], key)
            if "range" in f.metadata:
                _check_range(values[f.name], f.metadata["range"], key)
    return cls(**values)


def _check_range(value: float, bounds: tuple[float, float], key: str) -> None:
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):  # NaN fails every comparison
        raise ConfigError(f"{key} must be a number from {low:g} to {high:g}, not {value!r}")


def _convert(kind: Any, value: Any, key: str) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes", "on")
            if not isinstance(value, bool):  # 5 or a table is not a yes or a no
                raise ValueError(value)
            return value
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)  # 1.5 units is not silently 1; inf, nan are not ints
            return int(value)
        if kind is Secret:
            if not isinstance(value, str):
                raise ValueError("not a string")
            return Secret(value.strip())
        if kind is str:
            if not isinstance(value, str):
                raise ValueError("not a string")
            return value
        if typing.get_origin(kind) is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            inner = typing.get_args(kind)[0]
            return tuple(
                _convert(inner, item.strip() if isinstance(item, str) else item, key)
                for item in items
                if item != ""
            )
    except (TypeError, ValueError, OverflowError):
        shown = "" if kind is Secret else f": {value!r}"[:80]  # a secret is never echoed
        raise ConfigError(f"{key} has an invalid value{shown}") from None
    raise ConfigError(f"{key}: unsupported type {kind}")
