"""The commands users type, in one table every adapter shares.

Adapters that receive plain text (the web playground, captions on Telegram photos) call
``run``; adapters with native commands (Telegram CommandHandler, Discord slash commands) use
the same names and call the same Service methods. ``COMMANDS`` also feeds /help and the
platforms' command menus, so a command exists in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.chat import Requester
from bot.i18n import t
from bot.service import Service
from bot.views import View

# Name -> shown in menus. Order is the order of /help and the command menus.
COMMANDS: tuple[str, ...] = (
    "imagine",
    "describe",
    "blend",
    "swap",
    "shorten",
    "video",
    "edit",
    "seed",
    "settings",
    "fast",
    "relax",
    "tasks",
    "task",
    "quota",
    "help",
)
# Not in the public menus: only admins may use them.
ADMIN_COMMANDS: tuple[str, ...] = ("allow", "deny", "ban", "unban", "stats", "usage", "buttons")

_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+|$)(.*)$", re.S)


def parse(text: str) -> tuple[str, str] | None:
    """``/imagine@Bot a fox`` -> ("imagine", "a fox"); None when it is not a command."""
    match = _COMMAND.match(text.strip())
    return (match.group(1).lower(), match.group(2).strip()) if match else None


async def run(
    service: Service, req: Requester, name: str, args: str, images: Sequence[bytes] = ()
) -> None:
    """Run one command with its text and attached images (in the order they came)."""
    if name in ADMIN_COMMANDS:
        await service.admin(req, name, args)
        return
    entered = await service.enter(req)
    if entered is None:
        return
    req = entered
    match name:
        case "imagine" | "describe" | "blend" | "swap" | "video" | "edit":
            await getattr(service, name)(req, args, images)
        case "shorten":
            await service.shorten(req, args)
        case "seed":
            await service.seed(req, args)
        case "settings" if args:
            await service.set_suffix(req, args)
        case "settings":
            await service.open_settings(req)
        case "fast" | "relax":
            await service.set_mode(req, name)
        case "tasks":
            await service.reply(req, await service.tasks_view(req))
        case "task" | "show":
            await service.show(req, args)
        case "quota" | "info":
            await service.reply(req, await service.quota_view(req))
        case "start" | "help":
            await service.reply(req, service.help(req))
        case _:
            await service.reply(req, View(t("command.unknown", req.language, name=name)))
