"""What the user sees when the prompt check (``bot.mj.prompt``) holds a prompt back, and what
is kept of it until they decide. Pure: the use case stores the ``Held`` request and sends the
View; a press of one of its buttons (``bot.buttons.held``) brings it back.

One line per problem (⛔ stops it, ⚠️ only warns); "✅ Fix and send" where the fixes leave no
error, "➡️ Send anyway" where every problem only warns, and "✖️ Cancel". Nothing is submitted
or charged until one of the first two is pressed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from bot import buttons
from bot.i18n import t
from bot.mj.prompt import Bot, Problem, Severity, Target, blocking, check, fix_all
from bot.views import Choice, Style, View, clip

FIX, SEND, DROP = "fix", "send", "drop"
HELD_COMMAND = "held"  # asks.command of a held request (no command has this name)


def held_ref_id(key: str) -> str:
    """The id a held request is stored under: not a message id any platform uses, so a reply
    to the check's message never answers it."""
    return f"held-{key}"


def held_event(key: str) -> str:
    """The request a held prompt's send is claimed as (``Store.claim_request``, as the gate
    claims an update): one per held prompt, whichever press sends it. The send outlives the
    press (it is submitted after the press is answered), so it cannot be the press's own."""
    return f"held:{key}"


@dataclass(frozen=True)
class Held:
    """A request the check held back: what to send as it is, and what to send fixed."""

    kind: str  # the command: imagine, video, edit, shorten
    sent: str  # the prompt as composed (settings applied)
    bot: str = ""  # Bot value or "" (no botType)
    fixed: str = ""  # "" when no fix clears every error
    fixed_bot: str = ""
    photos: int = 0  # photos kept in the media cache beside it
    args: str = ""  # the command's own arguments, for a kind that needs them again
    can_send: bool = False  # only warnings: "send anyway" is offered

    def encode(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str) -> Held | None:
        try:
            data: Any = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        defaults = asdict(cls("", ""))
        if not all(isinstance(data.get(k, v), type(v)) for k, v in defaults.items()):
            return None  # a value of another shape: not ours
        try:
            return cls(**{k: data[k] for k in defaults if k in data})
        except TypeError:
            return None

    def prompt_for(self, verb: str) -> tuple[str, Bot | None] | None:
        """What a press sends: (prompt, bot); None when the press offers nothing here."""
        if verb == FIX and self.fixed:
            return self.fixed, _bot(self.fixed_bot)
        if verb == SEND and self.can_send:
            return self.sent, _bot(self.bot)
        return None


def _bot(value: str) -> Bot | None:
    try:
        return Bot(value) if value else None
    except ValueError:
        return None


def review(kind: str, prompt: str, target: Target) -> tuple[list[Problem], Held | None]:
    """The problems of ``prompt`` and, when there are any, what to hold."""
    problems = check(prompt, target)
    if not problems:
        return [], None
    fixed = fix_all(prompt, target)
    fixed_prompt, fixed_bot = "", ""
    if fixed is not None:
        bot = fixed.bot or target.bot
        # offered only when the fixed prompt passes (warnings may remain)
        if not blocking(check(fixed.prompt, Target(bot, target.default, target.video))):
            fixed_prompt, fixed_bot = fixed.prompt, bot.value if bot else ""
    held = Held(
        kind=kind,
        sent=prompt,
        bot=target.bot.value if target.bot else "",
        fixed=fixed_prompt,
        fixed_bot=fixed_bot,
        can_send=not blocking(problems),
    )
    return problems, held


def line(problem: Problem, lang: str) -> str:
    icon = "⛔" if problem.severity is Severity.ERROR else "⚠️"
    return f"{icon} {t(problem.key, lang, **problem.fields)}"


def view(prompt: str, problems: list[Problem], held: Held, key: str, lang: str) -> View:
    """The check's message: the prompt, one line per problem, and the choices."""
    lines = [clip(prompt, 700), t("check.title", lang), *(line(p, lang) for p in problems)]
    if held.fixed:
        lines.append(t("check.fixed_is", lang, prompt=clip(held.fixed, 700)))
    choices: list[Choice] = []
    if held.fixed:
        choices.append(Choice(t("check.fix", lang), buttons.held(key, FIX), style=Style.PRIMARY))
    if held.can_send:
        choices.append(Choice(t("check.send", lang), buttons.held(key, SEND)))
    choices.append(Choice(t("check.drop", lang), buttons.held(key, DROP)))
    return View("\n".join(lines), rows=(tuple(choices),))
