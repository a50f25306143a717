"""Short button tokens and the layout of a task's buttons.

MJ customIds are 55-77 bytes, over Telegram's 64-byte ``callback_data``; the keyboard carries
``m1:<task key>:<slot>`` instead (about 16 bytes, also fine for Discord's 100-char custom_id),
and the store resolves it. ``slot`` is the index into the task's ``buttons`` as the API
returned them, or a verb of our own (seed, retry, ...). Rows follow the official bot: one row
per family (U + 🔄, V, upscale, vary, zoom, pan, animate), never a hard-coded set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.i18n import t
from bot.mj import custom_ids
from bot.mj.models import Button
from bot.views import Choice, Style

VERSION = "m1"
# slot: an API button's index, a verb of ours, or a verb and a picture/clip (edit2, bot.studio)
_TOKEN = re.compile(r"^m1:([a-z2-9]{10}):([0-9]{1,2}|[a-z]{1,8}|[a-z]{3,4}[0-3])$")
MAX_PER_ROW = 5  # Discord's limit; Telegram allows 8 but five reads better on a phone


@dataclass(frozen=True, slots=True)
class Token:
    key: str
    slot: str

    @property
    def index(self) -> int | None:
        return int(self.slot) if self.slot.isdigit() else None

    def encode(self) -> str:
        return f"{VERSION}:{self.key}:{self.slot}"


def encode(key: str, slot: int | str) -> str:
    return Token(key, str(slot)).encode()


def decode(data: str | None) -> Token | None:
    """Parse a token; anything forged, foreign or from another version is None."""
    match = _TOKEN.match(data or "")
    return Token(match.group(1), match.group(2)) if match else None


def _is_unicode_emoji(text: str) -> bool:
    # Custom Discord emoji arrive by name ("upscale_1"): not displayable outside Discord.
    return bool(text) and not text.isascii()


def label(button: Button, lang: str) -> str:
    """Label if present (translated when we know it), else emoji, else a derived name."""
    emoji = button.emoji if _is_unicode_emoji(button.emoji) else ""
    text = button.label.strip()
    if text in custom_ids.LABEL_KEYS:
        text = t(custom_ids.LABEL_KEYS[text], lang)
    if not text and not emoji:
        key = custom_ids.family(button.custom_id).name
        text = t(key, lang) if key else custom_ids.fallback_label(button.custom_id) or "?"
    return f"{emoji} {text}".strip() if text else emoji


def _style(button: Button) -> Style:
    return Style.PRIMARY if button.style == 1 else Style.DEFAULT


def layout(
    key: str, buttons: Sequence[Button], lang: str, hidden: Iterable[str] = ()
) -> tuple[tuple[Choice, ...], ...]:
    """Rows of Choices for a task's buttons, grouped by family in the API's order.

    ``hidden`` lists customId prefixes the provider cannot do (they are left out).
    """
    hidden = tuple(hidden)
    groups: dict[custom_ids.Row, list[Choice]] = {}
    for index, button in enumerate(buttons):
        if hidden and button.custom_id.startswith(hidden):
            continue
        choice = Choice(label(button, lang), encode(key, index), style=_style(button))
        groups.setdefault(custom_ids.family(button.custom_id).row, []).append(choice)
    rows: list[tuple[Choice, ...]] = []
    for choices in groups.values():
        for start in range(0, len(choices), MAX_PER_ROW):
            rows.append(tuple(choices[start : start + MAX_PER_ROW]))
    return tuple(rows)


_SETTING = re.compile(r"^s1:([a-z]{1,12}):([a-z0-9_.-]{1,16})$")  # "." for v8.1


def setting(name: str, value: str) -> str:
    """A settings-menu button: ``s1:<name>:<value>`` (no task behind it).

    The data names no owner (anyone can forge it): the service acts only on a menu message
    recorded as the presser's and only with a value the menu offers
    (``bot.usecases.preferences``)."""
    return f"s1:{name}:{value}"


def decode_setting(data: str | None) -> tuple[str, str] | None:
    match = _SETTING.match(data or "")
    return (match.group(1), match.group(2)) if match else None


_HELD = re.compile(r"^c1:([a-z2-9]{10}):([a-z]{1,8})$")


def held(key: str, verb: str) -> str:
    """A button under a prompt the check held back: ``c1:<key>:<verb>`` (fix, send, drop).

    ``key`` names the held request (the store keeps it as a question of the requester's);
    only they may press, and only once (``bot.usecases``)."""
    return f"c1:{key}:{verb}"


def decode_held(data: str | None) -> tuple[str, str] | None:
    match = _HELD.match(data or "")
    return (match.group(1), match.group(2)) if match else None
