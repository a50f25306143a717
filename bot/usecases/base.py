"""Values every use case shares: the limits and choices they check, the short answer to a
press (``Notice``), and small helpers. The use cases live beside this file, one module per
concept; ``bot.usecases.Service`` builds them and is their facade.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot import results
from bot.buttons import Token
from bot.chat import MessageRef
from bot.i18n import LANGUAGES
from bot.mj import custom_ids
from bot.mj.models import Action, Button, Task

log = logging.getLogger("bot.service")  # the name log readers already filter on
MAX_PROMPT = 4000  # MJ refuses longer prompts; say so before spending anything
BLEND_DIMENSIONS = {"portrait": "PORTRAIT", "square": "SQUARE", "landscape": "LANDSCAPE"}
MODES = ("fast", "relax")
# What the settings menu offers, per setting (bot/usecases/preferences.py draws the menu from
# it): a press must name one of these values, and a stored value outside them (a forged
# ``mode=turbo`` saved before presses were checked) is ignored when settings are read.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": MODES,
    "delivery": ("photo", "file"),
    "lang": LANGUAGES,
    "suffix": ("-",),  # clears it; a suffix itself is typed: /settings <suffix>
}


@dataclass(frozen=True)
class Notice:
    """A short answer to a button press (a toast)."""

    text: str
    alert: bool = False
    # The message it is about (the task already running), for platforms that can link to it.
    where: MessageRef | None = None


def clean(text: str) -> str:
    return " ".join((text or "").split())


def button_of(task: Task | None, token: Token) -> Button | None:
    index = token.index
    if task is None or index is None or index >= len(task.buttons):
        return None
    return task.buttons[index]


def pick_text(task: Task, custom_id: str) -> str:
    """For describe/shorten picks: the chosen suggestion, as a prefill when the API has none."""
    number = custom_ids.pick_number(custom_id)
    if number is None or task.action not in (Action.DESCRIBE, Action.SHORTEN):
        return ""
    return results.numbered_options(task.final_prompt).get(number, "")
