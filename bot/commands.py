"""The commands users type, in one table every adapter shares.

Adapters that receive plain text (the web playground, captions on Telegram photos) call
``run``; adapters with native commands (Telegram CommandHandler, Discord slash commands) use
the same names and call the same Service methods. ``COMMANDS`` also feeds /help and the
platforms' command menus, so a command exists in one place.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

from bot.chat import Requester
from bot.i18n import t
from bot.mj.profiles import Profile
from bot.mj.prompt import RefKind
from bot.usecases import Service
from bot.usecases.jobs import Kind
from bot.views import View


class Command(StrEnum):
    """Every command name mjbot knows (aliases included): a typed value, parsed once."""

    IMAGINE = "imagine"
    DESCRIBE = "describe"
    BLEND = "blend"
    SWAP = "swap"
    SHORTEN = "shorten"
    VIDEO = "video"
    EDIT = "edit"
    RETEXTURE = "retexture"  # where the provider has it (Profile.retexture)
    SEED = "seed"
    SETTINGS = "settings"
    FAST = "fast"
    RELAX = "relax"
    TASKS = "tasks"
    TASK = "task"
    SHOW = "show"  # Midjourney's name for /task
    QUOTA = "quota"
    INFO = "info"  # Midjourney's name for /quota
    HELP = "help"
    START = "start"  # Telegram's first message
    ALLOW = "allow"
    DENY = "deny"
    BAN = "ban"
    UNBAN = "unban"
    STATS = "stats"
    USAGE = "usage"
    BUTTONS = "buttons"
    OREF = "oref"  # references (issue 16): reply to a photo or result
    SREF = "sref"
    REF = "ref"
    REFS = "refs"
    PRESET = "preset"
    PERSONALIZE = "personalize"  # --p codes
    CHATSETTINGS = "chatsettings"  # a chat's prompting defaults (admins)

    @classmethod
    def of(cls, name: str) -> Command | None:
        try:
            return cls(name)
        except ValueError:
            return None


# Name -> shown in menus. Order is the order of /help and the command menus.
COMMANDS: tuple[str, ...] = (
    "imagine",
    "describe",
    "blend",
    "swap",
    "shorten",
    "video",
    "edit",
    "retexture",
    "seed",
    "settings",
    "oref",
    "sref",
    "ref",
    "refs",
    "preset",
    "personalize",
    "fast",
    "relax",
    "tasks",
    "task",
    "quota",
    "help",
)


def menu(profile: Profile) -> tuple[str, ...]:
    """The commands a menu shows for this provider: /retexture only where it exists (typed
    elsewhere, it is answered that the provider cannot)."""
    return tuple(name for name in COMMANDS if name != "retexture" or profile.retexture)


# Not in the public menus: only admins may use them.
ADMIN_COMMANDS: tuple[str, ...] = (
    "allow",
    "deny",
    "ban",
    "unban",
    "stats",
    "usage",
    "buttons",
    "chatsettings",
)
_ADMIN = frozenset(Command(name) for name in ADMIN_COMMANDS)

# What a (non-admin) command does: the service, who asks (admitted, language applied), the
# text after the command and the attached images.
Handler = Callable[[Service, Requester, str, Sequence[bytes]], Awaitable[object]]


async def _settings(service: Service, req: Requester, args: str, _: Sequence[bytes]) -> None:
    if args:
        await service.set_suffix(req, args)
    else:
        await service.open_settings(req)


def _submit(kind: Kind) -> Handler:
    return lambda service, req, args, images: service.start_kind(kind, req, args, images)


HANDLERS: dict[Command, Handler] = {
    **{Command(kind.value): _submit(kind) for kind in Kind},
    Command.SEED: lambda s, req, args, _: s.seed(req, args),
    Command.SETTINGS: _settings,
    Command.OREF: lambda s, req, args, images: s.keep_reference(req, RefKind.OMNI, args, images),
    Command.SREF: lambda s, req, args, images: s.keep_reference(req, RefKind.STYLE, args, images),
    Command.REF: lambda s, req, args, images: s.keep_reference(req, RefKind.IMAGE, args, images),
    Command.REFS: lambda s, req, args, _: s.references(req, args),
    Command.PRESET: lambda s, req, args, _: s.preset(req, args),
    Command.PERSONALIZE: lambda s, req, args, _: s.personalize(req, args),
    Command.FAST: lambda s, req, _a, _i: s.set_mode(req, "fast"),
    Command.RELAX: lambda s, req, _a, _i: s.set_mode(req, "relax"),
    Command.TASKS: lambda s, req, _a, _i: _reply_tasks(s, req),
    Command.TASK: lambda s, req, args, _: s.show(req, args),
    Command.SHOW: lambda s, req, args, _: s.show(req, args),
    Command.QUOTA: lambda s, req, _a, _i: _reply_quota(s, req),
    Command.INFO: lambda s, req, _a, _i: _reply_quota(s, req),
    Command.HELP: lambda s, req, _a, _i: s.reply(req, s.help(req)),
    Command.START: lambda s, req, _a, _i: s.reply(req, s.help(req)),
}

_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+|$)(.*)$", re.S)


async def _reply_tasks(service: Service, req: Requester) -> None:
    await service.reply(req, await service.tasks_view(req))


async def _reply_quota(service: Service, req: Requester) -> None:
    await service.reply(req, await service.quota_view(req))


def parse(text: str) -> tuple[str, str] | None:
    """``/imagine@Bot a fox`` -> ("imagine", "a fox"); None when it is not a command."""
    match = _COMMAND.match(text.strip())
    return (match.group(1).lower(), match.group(2).strip()) if match else None


async def run(
    service: Service, req: Requester, name: str, args: str, images: Sequence[bytes] = ()
) -> None:
    """Run one command with its text and attached images (in the order they came), behind
    the request's entrance (access, redeliveries, log context: once, bot.usecases.gate)."""
    command = Command.of(name)
    async with service.entrance(req) as entered:
        if entered is None:
            return
        if command in _ADMIN:
            await service.admin(entered, name, args)
            return
        handler = HANDLERS.get(command) if command is not None else None
        if handler is None:
            await service.reply(entered, View(t("command.unknown", entered.language, name=name)))
            return
        await handler(service, entered, args, images)
