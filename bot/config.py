"""Configuration: a TOML file, overridden by ``MJBOT_<SECTION>__<KEY>`` environment variables.

Every section is a frozen dataclass; every field has a default except the secrets a deployment
must supply. Loading fails with ``ConfigError`` naming the key, so the CLI can print one clear
line instead of a traceback. Secrets are ``Secret`` values whose repr is masked.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.egress import parse_host_rule
from bot.mj.profiles import AUTH_SCHEMES, CODE21, DEFAULT_PROVIDER, MODE_FORMS, PROVIDERS


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


@dataclass(frozen=True)
class MidjourneyConfig:
    base_url: str = "simulator"  # "simulator" runs the built-in simulator in-process
    api_key: Secret = NO_SECRET
    # openai-hk | midjourney-proxy | plus | trueai | new-api | auto (probe once at start)
    provider: str = DEFAULT_PROVIDER
    auth_header: str = ""  # "" = the provider's; bearer | raw-authorization | mj-api-secret
    mode: str = ""  # "" | "fast" | "relax" | "turbo" | any path prefix such as "/mj-fast"
    timeout_s: float = 30.0
    # Key-by-key overrides of the provider profile (bot/mj/profiles.py); unset = the profile's.
    mode_form: str = ""  # path | mj-path | body | prompt | none
    code21: str = ""  # modal | exists
    queue_full_code9: bool | None = None
    banned_late: bool | None = None
    action_route: bool | None = None
    list_route: bool | None = None
    hooks: bool | None = None
    buttons_on_tasks: bool | None = None
    hidden_buttons: tuple[str, ...] | None = None

    def profile_overrides(self) -> dict[str, Any]:
        """The profile keys this config sets (None / "" = not set, the profile's value)."""
        return {
            name: getattr(self, name)
            for name in (
                "auth_header",
                "mode_form",
                "code21",
                "queue_full_code9",
                "banned_late",
                "action_route",
                "list_route",
                "hooks",
                "buttons_on_tasks",
                "hidden_buttons",
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
        ):
            value = getattr(self, key)
            if value and value not in allowed:
                raise ConfigError(
                    f"midjourney.{key} must be one of {', '.join(allowed)}, not {value!r}"
                )
        if self.base_url != "simulator" and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("midjourney.base_url must be an http(s) URL or 'simulator'")
        if self.timeout_s <= 0:
            raise ConfigError("midjourney.timeout_s must be positive")


@dataclass(frozen=True)
class TelegramConfig:
    token: Secret = NO_SECRET
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    webapp_url: str = ""  # public HTTPS URL of the mask editor Mini App (optional)
    webapp_listen: str = "127.0.0.1:8091"  # where mjbot serves that editor (behind HTTPS)
    group_messages_per_minute: int = 20  # Telegram's group limit; 0 = do not pace per minute

    @property
    def enabled(self) -> bool:
        return bool(self.token)


@dataclass(frozen=True)
class DiscordConfig:
    token: Secret = NO_SECRET
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"

    @property
    def enabled(self) -> bool:
        return bool(self.token)


@dataclass(frozen=True)
class TrackingConfig:
    poll_interval_s: float = 4.0
    webhook_public_url: str = ""  # when set, every submit carries notifyHook=<url>/<secret path>
    listen: str = "127.0.0.1:8090"  # where the notifyHook receiver listens
    edit_interval_s: float = 2.5  # at most one progress edit per chat per this many seconds
    send_interval_s: float = 1.0  # at least this long between two messages to one chat
    timeout_fast_s: float = 900.0  # give up on a task after this long (fast / turbo / default)
    timeout_relax_s: float = 3600.0  # relax jobs queue for a long time on busy accounts
    resend_after_s: float = 30.0  # a refused result is posted again after this long (for a day)

    def validate(self) -> None:
        if self.poll_interval_s <= 0:
            raise ConfigError("tracking.poll_interval_s must be positive")
        if self.resend_after_s <= 0:
            raise ConfigError("tracking.resend_after_s must be positive")
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("tracking.listen must look like HOST:PORT")


@dataclass(frozen=True)
class MediaConfig:
    # Result downloads go to public addresses only (and to the origins configured above);
    # private hosts the operator runs (a CDN on the LAN) are listed here: names, addresses or
    # networks, e.g. ["10.0.0.5", "cdn.internal", "10.1.0.0/16"].
    allow_private_hosts: tuple[str, ...] = ()

    def validate(self) -> None:
        for entry in self.allow_private_hosts:
            try:
                parse_host_rule(entry)
            except ValueError:
                raise ConfigError(
                    f"media.allow_private_hosts: {entry!r} is not a host name, address or network"
                ) from None


@dataclass(frozen=True)
class StorageConfig:
    path: str = "data/mjbot.db"


@dataclass(frozen=True)
class SimulatorConfig:
    time_scale: float = 1.0  # only used when midjourney.base_url = "simulator"


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"


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

    imagine: int = 1
    upscale: int = 0
    upscale_hd: int = 1
    variation: int = 1
    reroll: int = 1
    zoom: int = 1
    pan: int = 1
    region: int = 1
    describe: int = 1
    blend: int = 1
    swap: int = 1
    shorten: int = 1
    video: int = 4
    edit: int = 1
    other: int = 1


@dataclass(frozen=True)
class QuotaConfig:
    daily_units: int = 0  # per user per UTC day; 0 = unlimited
    monthly_units: int = 0  # per user per UTC month; 0 = unlimited
    concurrency: int = 3  # tasks in flight per user; 0 = unlimited
    chat_daily_units: int = 0  # per chat per UTC day; 0 = unlimited
    global_daily_units: int = 0  # the whole bot per UTC day (a budget); 0 = unlimited
    banned_words: tuple[str, ...] = ()  # refused before anything is spent
    weights: WeightsConfig = field(default_factory=WeightsConfig)

    def validate(self) -> None:
        for name in (
            "daily_units",
            "monthly_units",
            "concurrency",
            "chat_daily_units",
            "global_daily_units",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"quota.{name} must be 0 or more")


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

    def validate(self, *, need_chat: bool = True) -> None:
        self.midjourney.validate()
        self.tracking.validate()
        self.media.validate()
        self.access.validate()
        self.quota.validate()
        if self.midjourney.base_url != "simulator" and not self.midjourney.api_key:
            raise ConfigError("midjourney.api_key is required for a real API")
        if need_chat and not (self.telegram.enabled or self.discord.enabled):
            raise ConfigError("telegram.token (or discord.token) is required")

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        return [
            s.reveal()
            for s in (self.midjourney.api_key, self.telegram.token, self.discord.token)
            if s
        ]


ENV_PREFIX = "MJBOT_"


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
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        *sections, key = name[len(ENV_PREFIX) :].lower().split("__")
        table = data
        for section in sections:
            table = table.setdefault(section, {})
        table[key] = value
    return _build(Config, data, "")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown setting {where}{key}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kind = hints[f.name]
        key = f"{where}{f.name}"
        if dataclasses.is_dataclass(kind):
            values[f.name] = _build(kind, data[f.name], key + ".")
        else:
            values[f.name] = _convert(kind, data[f.name], key)
    return cls(**values)


def _convert(kind: Any, value: Any, key: str) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
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
    except (TypeError, ValueError):
        raise ConfigError(f"{key} has an invalid value") from None
    raise ConfigError(f"{key}: unsupported type {kind}")
