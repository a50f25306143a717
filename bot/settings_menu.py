"""The /settings menu, like the official bot's: what it offers, how a press changes the
settings, and how the current state reads at a glance. Pure: the use case (preferences) reads
and writes the store and sends the View this module draws.

Each button names its option plainly ("V8.1", "niji 7", "Draft mode", "Raw"), with the
user's language beside it where the words differ ("Draft mode 草稿"); a chosen option is
marked ✅. A press carries ``s1:<setting>:<value>`` (``bot.buttons.setting``); only values
``CHOICES`` offers are taken, so a forged press changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from bot import buttons
from bot.i18n import t
from bot.mj.prompt import STYLIZE_LEVELS, Model, RefKind, Support, supports
from bot.store import ActiveReference, ChatSettings, UserSettings
from bot.views import Choice, View

ON, OFF = "on", "off"
TOGGLES = ("raw", "personalize", "remix", "draft", "hd")
# Every setting the menu offers, and its values (the order of its buttons).
CHOICES: dict[str, tuple[str, ...]] = {
    "model": tuple(m.value for m in Model),
    "raw": (ON, OFF),
    "stylize": tuple(STYLIZE_LEVELS),
    "personalize": (ON, OFF),
    "remix": (ON, OFF),
    "mode": ("fast", "relax", "turbo"),
    "draft": (ON, OFF),
    "hd": (ON, OFF),
    "delivery": ("photo", "file"),
    "lang": ("en", "zh"),
    "suffix": ("-",),  # clears it; a suffix itself is typed: /settings <suffix>
}
# Presets are applied by their place in the list: ``s1:preset:<n>``.
MAX_PRESETS = 10
_LANGUAGE_NAMES = {"en": "English", "zh": "中文"}


def offered(name: str, value: str) -> bool:
    """Whether a press of ``s1:<name>:<value>`` names something the menu offers."""
    if name == "preset":
        return value.isdigit() and int(value) < MAX_PRESETS
    if name == "scode":  # a saved --sref code by its place (/refs)
        return value.isdigit() and int(value) < MAX_PRESETS
    if name == "pcode":  # a saved --p code by its place, or "default" (a bare --p)
        return value == "default" or (value.isdigit() and int(value) < MAX_PRESETS)
    return value in CHOICES.get(name, ())


def choose(settings: UserSettings, name: str, value: str) -> UserSettings:
    """``settings`` with one menu press applied (``offered`` checked first: ValueError else).
    Choosing the option already chosen sets it back to "not chosen" for the three-way
    settings, so a person can always return to the default."""
    if not offered(name, value):
        raise ValueError(f"the menu offers no {name}={value}")
    flag = value == ON
    match name:
        case "model":
            model = Model(value)
            return replace(settings, model=None if settings.model is model else model)
        case "raw":
            return replace(settings, raw=flag or None)
        case "personalize":
            return replace(settings, personalize=flag or None)
        case "remix":
            return replace(settings, remix=flag or None)
        case "draft":
            return replace(settings, draft=flag or None)
        case "hd":
            return replace(settings, hd=flag or None)
        case "stylize":
            return replace(settings, stylize=None if settings.stylize == value else value)
        case "mode":
            return replace(settings, mode=value)
        case "delivery":
            return replace(settings, delivery=value)
        case "lang":
            return replace(settings, lang=value)
        case "suffix":
            return replace(settings, suffix=None)
        case "scode":
            if int(value) >= len(settings.style_codes):
                raise ValueError(f"no saved style code {value}")
            code = settings.style_codes[int(value)]
            kept = tuple(r for r in settings.references if r.kind is not RefKind.STYLE)
            style = ActiveReference(RefKind.STYLE, code, None, f"code {code}")
            return replace(settings, references=(*kept, style))
        case "pcode":
            if value == "default":
                return replace(settings, personalize=True, profile_code=None)
            if int(value) >= len(settings.profile_codes):
                raise ValueError(f"no saved code {value}")
            code = settings.profile_codes[int(value)]
            return replace(settings, personalize=True, profile_code=code)
        case "preset":
            index = int(value)
            if index >= len(settings.presets):
                raise ValueError(f"no preset {index}")
            return settings.with_preset(settings.presets[index])
    raise ValueError(f"no setting {name!r}")


def option_label(name: str, value: str, lang: str) -> str:
    """A button's words: the English name, and the user's where it differs."""
    if name == "model":
        return Model(value).label  # a model's name is the same in every language
    if name == "lang":
        return _LANGUAGE_NAMES[value]
    plain_name = name in TOGGLES or name == "suffix"
    key = f"menu.{name}" if plain_name else f"menu.{name}.{value}"
    if name == "mode":
        key = f"mode.{value}"  # the speed's own word, as progress messages show it
    plain, local = t(key, "en"), t(key, lang)
    return plain if local == plain else f"{plain} {local}"


def _on(value: bool | None) -> bool:
    return bool(value)


def current(settings: UserSettings, default_mode: str) -> dict[str, str]:
    """The value each setting has now (the default where none is chosen)."""
    return {
        "model": (settings.model or Model.V8_1).value,
        "raw": ON if _on(settings.raw) else OFF,
        "stylize": settings.stylize or "med",
        "personalize": ON if _on(settings.personalize) else OFF,
        "remix": ON if _on(settings.remix) else OFF,
        "mode": settings.mode or default_mode or "fast",
        "draft": ON if _on(settings.draft) else OFF,
        "hd": ON if _on(settings.hd) else OFF,
        "delivery": settings.delivery or "photo",
        "lang": settings.lang or "en",
    }


def references_line(refs: tuple[ActiveReference, ...], lang: str) -> str:
    """ "🎯 oref photo#3 · ow 100" for each active reference, one line ("" without any)."""
    parts = []
    for ref in refs:
        what = ref.label or ref.url.rsplit("/", 1)[-1][:24]
        kind = "image" if ref.kind is RefKind.IMAGE else ref.kind.value
        text = f"{kind} {what}"
        if ref.weight is not None:
            text += f" · {ref.kind.weight_param} {ref.weight:g}"
        parts.append(text)
    return f"🎯 {' | '.join(parts)}" if parts else ""


def menu(
    settings: UserSettings,
    lang: str,
    *,
    default_mode: str = "fast",
    turbo: bool = True,
) -> View:
    """The settings menu: the state at a glance, then one row of buttons per setting.
    ``turbo``: the provider has a turbo speed (else the button is not offered)."""
    now = current(settings, default_mode)
    version = Model(now["model"]).version
    shown_toggles = [
        name
        for name in TOGGLES
        if name not in ("draft", "hd") or supports(version, name) is not Support.NO
    ]

    def choice(name: str, value: str) -> Choice:
        mark = "✅ " if now.get(name) == value else ""
        return Choice(f"{mark}{option_label(name, value, lang)}", buttons.setting(name, value))

    def toggle(name: str) -> Choice:
        on = now[name] == ON
        mark = "✅ " if on else ""
        label = f"{mark}{option_label(name, ON, lang)}"
        return Choice(label, buttons.setting(name, OFF if on else ON))

    speeds = [v for v in CHOICES["mode"] if turbo or v != "turbo"]
    rows: list[tuple[Choice, ...]] = [
        tuple(choice("model", v) for v in CHOICES["model"]),
        tuple(toggle(n) for n in shown_toggles),
        tuple(choice("stylize", v) for v in CHOICES["stylize"]),
        tuple(choice("mode", v) for v in speeds),
        tuple(choice("delivery", v) for v in CHOICES["delivery"]),
        tuple(choice("lang", v) for v in CHOICES["lang"]),
    ]
    if settings.presets:
        rows.append(
            tuple(
                Choice(f"📌 {p.name}", buttons.setting("preset", str(i)))
                for i, p in enumerate(settings.presets[:MAX_PRESETS])
            )
        )
    # Discord shows 5 rows of 5: the menu packs into that (presets beyond it are in /preset)
    rows.append((Choice(option_label("suffix", "-", lang), buttons.setting("suffix", "-")),))
    return View(glance(settings, lang, default_mode=default_mode), rows=tuple(rows))


def glance(settings: UserSettings, lang: str, *, default_mode: str = "fast") -> str:
    """The current state in a few lines."""
    now = current(settings, default_mode)

    def word(name: str) -> str:
        value = now[name]
        if name == "model":
            return Model(value).label
        if name in TOGGLES:
            return t(f"menu.{value}", lang)
        return t(f"menu.{name}.{value}", lang)

    stylize = STYLIZE_LEVELS[now["stylize"]]
    lines = [
        t(
            "menu.text",
            lang,
            model=word("model"),
            raw=word("raw"),
            stylize=f"{word('stylize')} ({stylize})",
            personalize=word("personalize")
            + (f" {settings.profile_code}" if settings.profile_code else ""),
            remix=word("remix"),
            mode=t(f"mode.{now['mode']}", lang),
            draft=word("draft"),
            hd=word("hd"),
            suffix=settings.suffix or "—",
        )
    ]
    refs = references_line(settings.references, lang)
    if refs:
        lines.append(refs)
    return "\n".join(lines)


# A chat's defaults (its admins': /chatsettings): s1:chat<setting>:<value>.
CHAT_CHOICES: dict[str, tuple[str, ...]] = {
    "chatmodel": CHOICES["model"],
    "chatraw": (ON, OFF),
    "chatstylize": CHOICES["stylize"],
    "chatdraft": (ON, OFF),
    "chatsuffix": ("-",),
}


def choose_chat(chat: ChatSettings, name: str, value: str) -> ChatSettings:
    """A chat's defaults with one press applied (ValueError for what the menu does not offer);
    the chosen option pressed again goes back to "no default"."""
    if value not in CHAT_CHOICES.get(name, ()):
        raise ValueError(f"the chat menu offers no {name}={value}")
    match name:
        case "chatmodel":
            model = Model(value)
            return replace(chat, model=None if chat.model is model else model)
        case "chatraw":
            return replace(chat, raw=(value == ON) or None)
        case "chatstylize":
            return replace(chat, stylize=None if chat.stylize == value else value)
        case "chatdraft":
            return replace(chat, draft=(value == ON) or None)
    return replace(chat, suffix=None)


def chat_menu(chat: ChatSettings, lang: str) -> View:
    """The chat's defaults for everyone here who has not chosen their own."""

    def choice(name: str, value: str, label: str, on: bool) -> Choice:
        return Choice(f"{'✅ ' if on else ''}{label}", buttons.setting(name, value))

    raw, draft = bool(chat.raw), bool(chat.draft)
    rows = (
        tuple(choice("chatmodel", m.value, m.label, chat.model is m) for m in Model),
        (
            choice("chatraw", OFF if raw else ON, option_label("raw", ON, lang), raw),
            choice("chatdraft", OFF if draft else ON, option_label("draft", ON, lang), draft),
        ),
        tuple(
            choice("chatstylize", v, option_label("stylize", v, lang), chat.stylize == v)
            for v in CHOICES["stylize"]
        ),
        (Choice(option_label("suffix", "-", lang), buttons.setting("chatsuffix", "-")),),
    )
    text = t(
        "chat.menu",
        lang,
        model=chat.model.label if chat.model else "—",
        raw=t(f"menu.{ON if raw else OFF}", lang),
        stylize=option_label("stylize", chat.stylize, lang) if chat.stylize else "—",
        draft=t(f"menu.{ON if draft else OFF}", lang),
        suffix=chat.suffix or "—",
    )
    return View(text, rows=rows)
