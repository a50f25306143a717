"""Provider profiles: how each member of the midjourney-proxy API family differs on the wire.

The servers share one wire format but disagree on details that silently break a bot
(mj-api.md §1.1, §2.2, §2.3, §4, §7.10 and P1-P23). A :class:`Profile` names those details;
``[midjourney] provider`` picks one from :data:`PROFILES` and every key can be overridden on
its own. ``auto`` is resolved once at start by :mod:`bot.mj.probe`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

AUTH_SCHEMES = ("bearer", "raw-authorization", "mj-api-secret")
# How a speed mode ("fast", "relax", "turbo") reaches the server (§2.1, §2.3):
#   path    -> /fast/mj/...            (openai-hk access points, new-api's /:mode/mj)
#   mj-path -> /mj-fast/mj/...         (trueai)
#   body    -> accountFilter.modes     (Plus, trueai's second source)
#   prompt  -> "--fast" in the prompt  (Java OSS: Midjourney itself reads the flag)
#   none    -> the mode is not sent
MODE_FORMS = ("path", "mj-path", "body", "prompt", "none")
MODE_WORDS = ("fast", "relax", "turbo")
CODE21 = ("modal", "exists")
UNKNOWN_FETCH = ("empty", "204", "envelope")
# How /submit/video's extend names the parent video: trueai's SubmitVideoDTO {taskId, index: 0}
# (what resellers copy), or one reseller's {task_id, index: "0"}.
EXTEND_SPELLINGS = ("taskId", "task_id")

PROVIDERS = ("openai-hk", "midjourney-proxy", "plus", "trueai", "new-api", "auto")
DEFAULT_PROVIDER = "openai-hk"  # Bearer auth and /fast-style prefixes: mjbot's original defaults


@dataclass(frozen=True)
class Profile:
    """What one provider does differently; the client and the service follow it."""

    name: str
    auth_header: str = "bearer"  # one of AUTH_SCHEMES
    mode_form: str = "path"  # one of MODE_FORMS
    code21: str = "modal"  # "modal" (Plus/trueai) | "exists" (Java OSS: the task already exists)
    queue_full_code9: bool = False  # trueai: queue full is code 9 with a text, not 23 (P3)
    banned_late: bool = False  # trueai: banned words are accepted, then the task fails (P4)
    action_route: bool = True  # /submit/action + /submit/modal exist (Java OSS: no)
    list_route: bool = True  # /task/list-by-condition exists (else: fetch each id)
    hooks: bool = True  # notifyHook is honoured (new-api drops it by default, P6)
    buttons_on_tasks: bool = True  # tasks carry buttons[] (Java OSS: no; U/V/🔄 are synthesised)
    hidden_buttons: tuple[str, ...] = ()  # customId prefixes the provider refuses (P11, §7.10)
    unknown_fetch: str = "empty"  # what fetch answers for an unknown id (§5.1)
    # Submits take botType (trueai, Plus): niji runs on its own bot (NIJI_JOURNEY); without it
    # niji is asked for with --niji in the prompt.
    bot_types: bool = False
    turbo: bool = True  # a turbo speed exists (openai-hk documents only /fast and /relax)
    extend_spelling: str = "taskId"  # one of EXTEND_SPELLINGS
    retexture: bool = False  # /submit/retexture exists (trueai; openai-hk's document: no)
    describe_link: bool = False  # describe takes a hosted image's link and language (trueai)

    def __post_init__(self) -> None:
        problems = [
            f"{key} must be one of {', '.join(allowed)}, not {value!r}"
            for key, value, allowed in (
                ("auth_header", self.auth_header, AUTH_SCHEMES),
                ("mode_form", self.mode_form, MODE_FORMS),
                ("code21", self.code21, CODE21),
                ("unknown_fetch", self.unknown_fetch, UNKNOWN_FETCH),
                ("extend_spelling", self.extend_spelling, EXTEND_SPELLINGS),
            )
            if value not in allowed
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def with_overrides(self, **overrides: Any) -> Profile:
        """This profile with the given keys replaced; None and "" mean "keep the profile's"."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown profile keys: {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in overrides.items() if v is not None and v != ""}
        if "hidden_buttons" in changes:
            changes["hidden_buttons"] = tuple(changes["hidden_buttons"])
        return dataclasses.replace(self, **changes) if changes else self

    def mode_prefix(self, mode: str) -> str:
        """The path prefix for a speed mode under this profile: 'fast' -> '/fast' or '/mj-fast'.

        A mode that starts with "/" (or any word that is not fast/relax/turbo) is a path prefix
        used verbatim, as before profiles existed; body/prompt/none forms add no prefix.
        """
        mode = (mode or "").strip()
        word = mode.lower()
        if not mode:
            return ""
        if mode.startswith("/") or word not in MODE_WORDS:
            return mode
        if self.mode_form == "path":
            return f"/{word}"
        if self.mode_form == "mj-path":
            return f"/mj-{word}"
        return ""

    def mode_body(self, mode: str) -> list[str]:
        """accountFilter.modes for the body form: ['FAST'] (empty for every other form)."""
        word = (mode or "").strip().lower()
        if self.mode_form == "body" and word in MODE_WORDS:
            return [word.upper()]
        return []

    def mode_flag(self, mode: str) -> str:
        """The prompt flag for the prompt form: '--relax' (empty for every other form)."""
        word = (mode or "").strip().lower()
        if self.mode_form == "prompt" and word in MODE_WORDS:
            return f"--{word}"
        return ""

    def hides(self, custom_id: str) -> bool:
        return bool(self.hidden_buttons) and custom_id.startswith(self.hidden_buttons)

    def describe(self) -> list[str]:
        """Human lines for `mjbot check`."""
        modes = {
            "path": "/fast, /relax path prefix",
            "mj-path": "/mj-fast, /mj-relax path prefix",
            "body": "accountFilter.modes in the body",
            "prompt": "--fast / --relax in the prompt",
            "none": "not sent",
        }[self.mode_form]
        lines = [
            f"auth: {self.auth_header}",
            f"speed mode: {modes}",
            "code 21: "
            + ("a modal is needed" if self.code21 == "modal" else "the task already exists"),
            "buttons: "
            + ("/submit/action" if self.action_route else "U/V/🔄 through /submit/change"),
            "polling: "
            + ("list-by-condition" if self.list_route else "one fetch per task (no list route)"),
        ]
        if not self.buttons_on_tasks:
            lines.append("task buttons: none from the API; mjbot offers U1-U4, 🔄, V1-V4")
        if self.queue_full_code9:
            lines.append("queue full: code 9 (read as queue full)")
        if self.banned_late:
            lines.append("banned words: reported later as a task failure")
        if self.hidden_buttons:
            lines.append("hidden buttons: " + ", ".join(self.hidden_buttons))
        if self.retexture:
            lines.append("retexture: /submit/retexture (the /retexture command)")
        if self.extend_spelling != "taskId":
            lines.append(f"video extend: {self.extend_spelling} and the index as a string")
        return lines


# The Plus family refuses these (§7.10): 🎉 Imagine all and ❤️.
_PLUS_HIDDEN = ("MJ::Job::PicReader::all", "MJ::BOOKMARK::")

PROFILES: dict[str, Profile] = {
    "openai-hk": Profile(
        "openai-hk",
        auth_header="bearer",
        mode_form="path",
        hidden_buttons=_PLUS_HIDDEN,
        turbo=False,  # its document's access points: /fast and /relax
    ),
    "midjourney-proxy": Profile(
        "midjourney-proxy",
        auth_header="mj-api-secret",
        mode_form="prompt",
        code21="exists",
        action_route=False,
        buttons_on_tasks=False,
        # Only U/V/🔄 can go through /submit/change; nothing else is offered.
    ),
    "plus": Profile(
        "plus",
        auth_header="mj-api-secret",
        mode_form="body",
        hidden_buttons=_PLUS_HIDDEN,
        bot_types=True,
    ),
    "trueai": Profile(
        "trueai",
        auth_header="raw-authorization",
        mode_form="mj-path",
        retexture=True,
        describe_link=True,
        queue_full_code9=True,
        banned_late=True,
        bot_types=True,
        hidden_buttons=(
            "MJ::Job::PromptAnalyzer::",
            "MJ::BOOKMARK::",
            "MJ::JOB::animate_",
            "MJ::JOB::video_virtual_upscale::",
        ),
        unknown_fetch="204",
    ),
    "new-api": Profile(
        "new-api",
        auth_header="bearer",
        mode_form="path",
        hooks=False,
        hidden_buttons=(
            "MJ::Job::PicReader::",
            "MJ::Job::PromptAnalyzer::",
            "MJ::Picread::",
            "MJ::BOOKMARK::",
            "MJ::JOB::animate_",
            "MJ::JOB::video_virtual_upscale::",
        ),
        unknown_fetch="envelope",
    ),
}

# The simulator flavour that reproduces each provider (`mjbot sim --flavour`, base_url = simulator).
SIM_FLAVOURS = {
    "openai-hk": "openai-hk",
    "midjourney-proxy": "java",
    "plus": "plus",
    "trueai": "trueai",
    "new-api": "new-api",
    "auto": "superset",
}


def profile_for(provider: str, **overrides: Any) -> Profile:
    """The named provider's profile with the overrides applied ("auto" -> the default's)."""
    name = DEFAULT_PROVIDER if provider == "auto" else provider
    try:
        base = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}") from None
    return base.with_overrides(**overrides)
