"""A prompt's parameters, read once and checked against the model they will run on.

Midjourney answers a bad parameter only after the job was queued (and, with most providers,
paid for): ``--cref`` on V7, ``--hd`` on V7, ``--motion`` on an image, ``--s 5000``. This module
reads a prompt the way Midjourney does (leading image URLs, the text, ``::`` weights, then
``--parameters``) and lists what is wrong with it *before* anything is submitted, each problem
as a typed :class:`Problem` with a message key (``bot.i18n``) and, where the fix is obvious,
the fixed prompt (:class:`Fix`).

The ranges are those of trueai's ``MjPromptParser`` parameter table (the family's only
machine-readable one: ``--s`` 0-1000, ``--c`` 0-100, ``--w`` 0-3000, ``--iw`` 0-3, ``--sw``
0-1000, ``--ow`` 0-1000, ``--cw`` 0-100, ``--stop`` 10-100, ``--r`` 1-40, ``--exp`` 0-100,
``--seed`` 0-4294967295), the video fields of ``/submit/video`` (mj-api §3.8: ``--motion
low|high``, ``--bs`` 1, 2 or 4, ``--end <url>|loop``) and the model facts of issue 16: V7 brought
``--draft``, ``--oref``/``--ow`` and ``--p``; V8.1 renders with ``--hd`` and ``--q 4``; niji 7
runs on its own bot (``botType: NIJI_JOURNEY``). Where sources disagree (``--oref`` and
``--draft`` on V8.1, ``--oref`` on niji 7) the check warns and lets the user send anyway.

Pure: no I/O, no settings store; the use cases compose the prompt (:func:`compose`) and check
the result (:func:`check`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import urlsplit

# --- models and bots -------------------------------------------------------------------------


class Bot(StrEnum):
    """The Discord bot a job runs on (the API's ``botType``)."""

    MIDJOURNEY = "MID_JOURNEY"
    NIJI = "NIJI_JOURNEY"


class Model(StrEnum):
    """The model a person picks in /settings (stored by this value)."""

    V7 = "v7"
    V8_1 = "v8.1"
    NIJI7 = "niji7"

    @property
    def version(self) -> Version:
        return _MODEL_VERSION[self]

    @property
    def bot(self) -> Bot:
        return Bot.NIJI if self is Model.NIJI7 else Bot.MIDJOURNEY

    @property
    def label(self) -> str:
        """The model's own name, the same in every language: V7, V8.1, niji 7."""
        return {Model.V7: "V7", Model.V8_1: "V8.1", Model.NIJI7: "niji 7"}[self]


@dataclass(frozen=True, order=True)
class Version:
    """A model version as a prompt pins it: ``--v 7`` is (mj, 7.0), ``--niji 6`` (niji, 6.0)."""

    niji: bool
    number: float

    @property
    def flag(self) -> str:
        text = f"{self.number:g}"
        return f"--niji {text}" if self.niji else f"--v {text}"

    @property
    def name(self) -> str:
        return f"niji {self.number:g}" if self.niji else f"V{self.number:g}"


_MODEL_VERSION = {
    Model.V7: Version(False, 7.0),
    Model.V8_1: Version(False, 8.1),
    Model.NIJI7: Version(True, 7.0),
}
DEFAULT_MODEL = Model.V8_1  # Midjourney's default since June 2026
_V_VALUES = frozenset({1, 2, 3, 4, 5, 5.1, 5.2, 6, 6.1, 7, 8, 8.1})
_NIJI_VALUES = frozenset({4, 5, 6, 7})
_NIJI_DEFAULT = 7.0  # a bare --niji


class Support(StrEnum):
    """Whether a version takes a feature: yes, no, or the sources disagree (warn only)."""

    YES = "yes"
    NO = "no"
    UNSURE = "unsure"


def _is_v8(v: Version) -> bool:
    return not v.niji and v.number >= 8


def supports(version: Version, feature: str) -> Support:
    """What ``version`` does with ``feature`` (a canonical parameter name, or ``q4``)."""
    mj, n = not version.niji, version.number
    yes, no, unsure = Support.YES, Support.NO, Support.UNSURE
    if feature == "cref":  # V6 / niji 6 only; V7 replaced it with --oref
        return yes if n in (6, 6.1) else no
    if feature == "oref":  # V7; V8.1 and niji 7: sources disagree
        if mj and n == 7:
            return yes
        return unsure if (mj and n >= 8) or (not mj and n >= 7) else no
    if feature == "draft":
        if mj and n == 7:
            return yes
        return unsure if mj and n >= 8 else no
    if feature in ("hd", "q4"):
        return yes if _is_v8(version) else no
    if feature in ("profile", "sref"):
        return yes if n >= 6 else no
    if feature == "exp":
        return yes if mj and n >= 7 else (unsure if not mj and n >= 7 else no)
    return yes


# --- parameters ------------------------------------------------------------------------------


class Shape(StrEnum):
    FLAG = "flag"  # bare: --raw
    NUMBER = "number"  # a number in [low, high]
    CHOICE = "choice"  # one of ``choices``
    RATIO = "ratio"  # W:H
    TEXT = "text"  # free text (--no)
    REFS = "refs"  # image URLs and style codes (--sref, --cref)
    URL = "url"  # one image URL (--oref, --end also takes "loop")
    CODES = "codes"  # personalization codes, may be bare (--p)
    VERSION = "version"  # --v, --niji


@dataclass(frozen=True)
class Spec:
    name: str
    shape: Shape
    low: float = 0
    high: float = 0
    integer: bool = False
    choices: tuple[str, ...] = ()
    video_only: bool = False
    repeats: bool = False  # may appear more than once (--no)
    value_ok: bool = False  # a FLAG that may carry a value (--video 1)


def _n(name: str, low: float, high: float, integer: bool = True) -> Spec:
    return Spec(name, Shape.NUMBER, low, high, integer)


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec("version", Shape.VERSION),
        Spec("niji", Shape.VERSION),
        Spec("aspect", Shape.RATIO),
        _n("chaos", 0, 100),
        _n("stylize", 0, 1000),
        _n("weird", 0, 3000),
        Spec("quality", Shape.CHOICE, choices=(".25", ".5", "1", "2", "4")),
        _n("seed", 0, 4294967295),
        _n("stop", 10, 100),
        _n("repeat", 1, 40),
        Spec("cref", Shape.REFS),
        _n("cw", 0, 100),
        Spec("sref", Shape.REFS),
        _n("sw", 0, 1000),
        _n("sv", 1, 7),
        _n("iw", 0, 3, integer=False),
        Spec("oref", Shape.URL),
        _n("ow", 0, 1000),
        Spec("dref", Shape.URL),  # openai-hk's edits answer carries it (its document)
        Spec("no", Shape.TEXT, repeats=True),
        Spec("style", Shape.TEXT),
        Spec("raw", Shape.FLAG),
        Spec("turbo", Shape.FLAG),
        Spec("fast", Shape.FLAG),
        Spec("relax", Shape.FLAG),
        Spec("draft", Shape.FLAG),
        Spec("hd", Shape.FLAG),
        Spec("stealth", Shape.FLAG),
        Spec("public", Shape.FLAG),
        Spec("tile", Shape.FLAG),
        Spec("video", Shape.FLAG, value_ok=True),  # trueai: --video 1 makes a VIDEO task
        Spec("profile", Shape.CODES),
        _n("exp", 0, 100),
        _n("zoom", 1, 2, integer=False),  # Custom Zoom's modal prompt
        Spec("motion", Shape.CHOICE, choices=("low", "high"), video_only=True),
        Spec("loop", Shape.FLAG, video_only=True),
        Spec("end", Shape.URL, video_only=True),
        Spec("bs", Shape.CHOICE, choices=("1", "2", "4"), video_only=True),
    )
}
ALIASES = {
    "v": "version",
    "ar": "aspect",
    "c": "chaos",
    "s": "stylize",
    "w": "weird",
    "q": "quality",
    "r": "repeat",
    "p": "profile",
    "personalize": "profile",
    "sameseed": "seed",
}
_STYLES = frozenset({"raw", "4a", "4b", "4c", "cute", "expressive", "scenic", "original"})
_STYLE_RANDOM = re.compile(r"^random(-\d+)?$")


def canonical(name: str) -> str:
    """``ar`` -> ``aspect``; an unknown name as it is (lower case)."""
    lower = name.lower()
    return ALIASES.get(lower, lower)


# --- the parsed prompt -----------------------------------------------------------------------

_PARAM = re.compile(r"^(?:--|[\u2014\u2013])([A-Za-z][A-Za-z0-9]*)$")  # iOS turns -- into —
_URL = re.compile(r"^<?(https?://\S+?)>?$", re.I)
_SREF_CODE = re.compile(r"^(\d{1,12}|random)(::-?\d*\.?\d+)?$", re.I)
_PROFILE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")
_RATIO = re.compile(r"^(\d{1,5}):(\d{1,5})$")
_RATIO_FIXABLE = re.compile(r"^(\d{1,5})\s*[/xX×：]\s*(\d{1,5})$")
_WEIGHT = re.compile(r"::(-?(?:\d+\.?\d*|\.\d+))?")


@dataclass(frozen=True)
class Param:
    """One ``--name value``: ``written`` as the user typed it, ``name`` canonical."""

    written: str
    value: str = ""

    @property
    def name(self) -> str:
        return canonical(self.written)

    @property
    def spec(self) -> Spec | None:
        return SPECS.get(self.name)

    def render(self) -> str:
        return f"--{self.written} {self.value}" if self.value else f"--{self.written}"


@dataclass(frozen=True)
class Prompt:
    """A prompt as Midjourney reads it: image URLs, then text, then parameters."""

    images: tuple[str, ...] = ()
    text: str = ""
    params: tuple[Param, ...] = ()

    def render(self) -> str:
        parts = [*self.images, self.text, *(p.render() for p in self.params)]
        return " ".join(part for part in parts if part)

    def get(self, name: str) -> Param | None:
        """The first parameter called ``name`` (any alias), or None."""
        wanted = canonical(name)
        return next((p for p in self.params if p.name == wanted), None)

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def without(self, *names: str) -> Prompt:
        gone = {canonical(n) for n in names}
        return replace(self, params=tuple(p for p in self.params if p.name not in gone))

    def with_param(self, name: str, value: str = "") -> Prompt:
        """This prompt with ``--name value`` added at the end (the prompt's own one kept)."""
        if self.has(name):
            return self
        return replace(self, params=(*self.params, Param(name, value)))

    @property
    def pinned(self) -> Version | None:
        """The version the prompt itself asks for, if any (and if readable)."""
        for p in self.params:
            if p.name == "niji":
                number = _number(p.value) if p.value else _NIJI_DEFAULT
                return Version(True, number) if number in _NIJI_VALUES else None
            if p.name == "version":
                number = _number(p.value)
                return Version(False, number) if number in _V_VALUES else None
        return None


def _number(text: str) -> float:
    return float(text) if _NUMBER.match(text.strip()) else math.nan


def parse(prompt: str) -> Prompt:
    """Read a prompt; never raises. Whitespace inside the text is kept as written."""
    tokens = list(re.finditer(r"\S+", prompt))
    images: list[str] = []
    i = 0
    while i < len(tokens) and _URL.match(tokens[i].group(0)):
        images.append(tokens[i].group(0))
        i += 1
    first_param = next(
        (j for j in range(i, len(tokens)) if _PARAM.match(tokens[j].group(0))), len(tokens)
    )
    text = ""
    if i < first_param:
        text = prompt[tokens[i].start() : tokens[first_param - 1].end()]
    params: list[Param] = []
    j = first_param
    while j < len(tokens):
        match = _PARAM.match(tokens[j].group(0))
        assert match is not None
        k = j + 1
        while k < len(tokens) and not _PARAM.match(tokens[k].group(0)):
            k += 1
        value = " ".join(t.group(0) for t in tokens[j + 1 : k])
        params.append(Param(match.group(1).lower(), value))
        j = k
    return Prompt(tuple(images), text, tuple(params))


# --- problems --------------------------------------------------------------------------------


class Severity(StrEnum):
    ERROR = "error"  # Midjourney refuses it: nothing is sent until it is fixed
    WARNING = "warning"  # it may work: the user may send it anyway


class Issue(StrEnum):
    """What is wrong; the value is the message key in ``bot.i18n`` (fields: ``param``,
    ``value``, ``version``, ``low``, ``high``)."""

    CREF_V7 = "check.cref_v7"
    CREF_OLD = "check.cref_version"
    OREF_UNSUPPORTED = "check.oref_version"
    OREF_UNSURE = "check.oref_unsure"
    DRAFT_UNSUPPORTED = "check.draft_version"
    DRAFT_UNSURE = "check.draft_unsure"
    VIDEO_ONLY = "check.video_only"
    HD_NOT_V8 = "check.hd_version"
    QUALITY = "check.quality"
    OUT_OF_RANGE = "check.range"
    BAD_VALUE = "check.value"
    MISSING_VALUE = "check.missing"
    EXTRA_TEXT = "check.extra_text"
    UNKNOWN_PARAM = "check.unknown"
    DUPLICATE = "check.duplicate"
    NOT_SUPPORTED = "check.not_supported"
    NIJI_ON_MJ = "check.niji_on_mj"
    V_ON_NIJI = "check.v_on_niji"
    BOTH_VERSIONS = "check.both_versions"
    WEIGHTS = "check.weights"
    WEIGHTS_SUM = "check.weights_sum"
    NOT_IMAGE = "check.not_image"
    MAYBE_NOT_IMAGE = "check.maybe_not_image"


@dataclass(frozen=True)
class Fix:
    """The fixed request: the prompt, and the bot when the fix is to send it elsewhere."""

    prompt: str
    bot: Bot | None = None


@dataclass(frozen=True)
class Problem:
    issue: Issue
    severity: Severity
    param: str = ""  # the parameter as written, with its dashes: "--cref"
    value: str = ""
    version: str = ""  # the version's name: "V7", "niji 7"
    low: str = ""
    high: str = ""
    fix: Fix | None = None

    @property
    def key(self) -> str:
        return self.issue.value

    @property
    def fields(self) -> dict[str, str]:
        """The message's placeholders."""
        return {
            "param": self.param,
            "value": self.value,
            "version": self.version,
            "low": self.low,
            "high": self.high,
        }


@dataclass(frozen=True)
class Target:
    """Where the prompt goes: the bot (None: the provider takes no ``botType``, everything
    runs on the Midjourney bot), the version used when the prompt pins none, and whether the
    job is a video."""

    bot: Bot | None = Bot.MIDJOURNEY
    default: Version = field(default_factory=lambda: DEFAULT_MODEL.version)
    video: bool = False

    def version_of(self, prompt: Prompt) -> Version:
        pinned = prompt.pinned
        if pinned is not None:
            return pinned
        if self.bot is Bot.NIJI and not self.default.niji:
            return Model.NIJI7.version
        return self.default


def check(prompt: str, target: Target | None = None) -> list[Problem]:
    """Everything wrong with ``prompt`` on ``target``, errors first, each at most once."""
    target = target or Target()
    parsed = parse(prompt)
    found = [
        *_check_versions(parsed, target),
        *_check_params(parsed, target),
        *_check_weights(parsed),
        *_check_urls(parsed),
    ]
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda p: p.severity is not Severity.ERROR)


def blocking(problems: list[Problem]) -> bool:
    """Whether any problem stops the prompt (a warning does not)."""
    return any(p.severity is Severity.ERROR for p in problems)


def fix_all(prompt: str, target: Target | None = None) -> Fix | None:
    """Apply every fix there is, one at a time (each on the result of the last); None when
    no fix applies. Problems without a fix may remain: check the result again."""
    target = target or Target()
    current, bot, changed = prompt, target.bot, False
    for _ in range(40):  # every fix removes or settles one thing; this bounds a bad table
        problems = check(current, replace(target, bot=bot))
        fix = next((p.fix for p in problems if p.fix is not None), None)
        if fix is None:
            break
        current, bot, changed = fix.prompt, fix.bot or bot, True
    if not changed:
        return None
    return Fix(current, bot if bot is not target.bot else None)


def _dash(p: Param) -> str:
    return f"--{p.written}"


def _drop(prompt: Prompt, victim: Param) -> str:
    """The prompt without one parameter (the first one equal to ``victim``)."""
    params = list(prompt.params)
    params.remove(victim)
    return replace(prompt, params=tuple(params)).render()


def _swap(prompt: Prompt, victim: Param, new: Param | None) -> str:
    params = [new if p is victim else p for p in prompt.params]
    return replace(prompt, params=tuple(p for p in params if p is not None)).render()


def _check_versions(prompt: Prompt, target: Target) -> list[Problem]:
    out: list[Problem] = []
    v = prompt.get("version")
    niji = prompt.get("niji")
    if v and niji:
        keep_niji = target.bot is Bot.NIJI
        victim = v if keep_niji else niji
        out.append(
            Problem(
                Issue.BOTH_VERSIONS,
                Severity.ERROR,
                param=_dash(victim),
                fix=Fix(_drop(prompt, victim)),
            )
        )
        return out
    for p, values in ((v, _V_VALUES), (niji, _NIJI_VALUES)):
        if p is None:
            continue
        if p.name == "niji" and not p.value:
            continue
        if _number(p.value) not in values:
            out.append(Problem(Issue.BAD_VALUE, Severity.ERROR, _dash(p), p.value))
    if niji and target.bot is Bot.MIDJOURNEY:
        # The provider takes botType: niji runs on its own bot; the fix sends it there.
        out.append(
            Problem(
                Issue.NIJI_ON_MJ,
                Severity.ERROR,
                _dash(niji),
                niji.value,
                fix=Fix(prompt.render(), Bot.NIJI),
            )
        )
    if v and target.bot is Bot.NIJI:
        out.append(
            Problem(
                Issue.V_ON_NIJI,
                Severity.ERROR,
                _dash(v),
                v.value,
                fix=Fix(prompt.render(), Bot.MIDJOURNEY),
            )
        )
    return out


def _check_params(prompt: Prompt, target: Target) -> list[Problem]:
    out: list[Problem] = []
    version = target.version_of(prompt)
    vname = version.name
    video = target.video or prompt.has("video")
    seen: set[str] = set()
    for p in prompt.params:
        spec = p.spec
        if spec is None:
            out.append(
                Problem(Issue.UNKNOWN_PARAM, Severity.WARNING, _dash(p), fix=Fix(_drop(prompt, p)))
            )
            continue
        if p.name in seen and not spec.repeats:
            out.append(
                Problem(Issue.DUPLICATE, Severity.ERROR, _dash(p), fix=Fix(_drop(prompt, p)))
            )
            continue
        seen.add(p.name)
        if spec.video_only and not video:
            out.append(
                Problem(Issue.VIDEO_ONLY, Severity.ERROR, _dash(p), fix=Fix(_drop(prompt, p)))
            )
            continue
        out.extend(_check_value(prompt, p, spec, version))
        if video and p.name == "hd":
            continue  # a video's --hd is its 720p rendering, not V8's
        out.extend(_check_support(prompt, p, version, vname))
    return out


def _check_value(prompt: Prompt, p: Param, spec: Spec, version: Version) -> list[Problem]:
    value = p.value
    shape = spec.shape
    needs_value = shape not in (Shape.FLAG, Shape.CODES, Shape.VERSION)
    if needs_value and not value:
        return [Problem(Issue.MISSING_VALUE, Severity.ERROR, _dash(p), fix=Fix(_drop(prompt, p)))]
    single = shape in (Shape.NUMBER, Shape.CHOICE, Shape.RATIO, Shape.URL, Shape.VERSION)
    words = value.split()
    if (shape is Shape.FLAG and words and not spec.value_ok) or (single and len(words) > 1):
        # Text after a parameter: Midjourney reads it as the parameter's value and refuses it.
        keep = words[1:] if single else words
        moved = replace(
            prompt,
            text=" ".join(x for x in (prompt.text, " ".join(keep)) if x),
            params=tuple(
                (Param(p.written, words[0] if single else "") if q is p else q)
                for q in prompt.params
            ),
        )
        return [
            Problem(
                Issue.EXTRA_TEXT, Severity.ERROR, _dash(p), " ".join(keep), fix=Fix(moved.render())
            )
        ]
    if shape is Shape.NUMBER:
        number = _number(value)
        if math.isnan(number) or (spec.integer and not number.is_integer()):
            return [Problem(Issue.BAD_VALUE, Severity.ERROR, _dash(p), value)]
        if not spec.low <= number <= spec.high:
            clamped = min(max(number, spec.low), spec.high)
            text = f"{clamped:g}" if not spec.integer else str(int(clamped))
            return [
                Problem(
                    Issue.OUT_OF_RANGE,
                    Severity.ERROR,
                    _dash(p),
                    value,
                    low=f"{spec.low:g}",
                    high=f"{spec.high:g}",
                    fix=Fix(_swap(prompt, p, Param(p.written, text))),
                )
            ]
    elif shape is Shape.CHOICE:
        if p.name == "quality":
            return _check_quality(prompt, p, version)
        if value.lower() not in spec.choices:
            return [
                Problem(
                    Issue.BAD_VALUE, Severity.ERROR, _dash(p), value, low=", ".join(spec.choices)
                )
            ]
    elif shape is Shape.RATIO:
        match = _RATIO.match(value)
        if not match or not int(match.group(1)) or not int(match.group(2)):
            loose = _RATIO_FIXABLE.match(value)
            fix = None
            if loose and int(loose.group(1)) and int(loose.group(2)):
                fixed = Param(p.written, f"{loose.group(1)}:{loose.group(2)}")
                fix = Fix(_swap(prompt, p, fixed))
            return [Problem(Issue.BAD_VALUE, Severity.ERROR, _dash(p), value, fix=fix)]
    elif shape is Shape.REFS:
        bad = [w for w in words if not _URL.match(w) and not _SREF_CODE.match(w)]
        if bad or (p.name == "cref" and any(not _URL.match(w) for w in words)):
            return [Problem(Issue.BAD_VALUE, Severity.ERROR, _dash(p), (bad or words)[0])]
    elif shape is Shape.URL:
        if not _URL.match(value) and not (p.name == "end" and value.lower() == "loop"):
            return [Problem(Issue.BAD_VALUE, Severity.ERROR, _dash(p), value)]
    elif shape is Shape.CODES:
        bad = [w for w in words if not _PROFILE_CODE.match(w)]
        if bad:
            return [Problem(Issue.BAD_VALUE, Severity.ERROR, _dash(p), bad[0])]
    elif p.name == "style" and not (value.lower() in _STYLES or _STYLE_RANDOM.match(value)):
        return [Problem(Issue.BAD_VALUE, Severity.WARNING, _dash(p), value)]
    return []


def _check_quality(prompt: Prompt, p: Param, version: Version) -> list[Problem]:
    number = _number(p.value)
    allowed = {4.0, 1.0, 2.0} if _is_v8(version) else {1.0, 2.0}
    if version.number < 7:
        allowed = {0.25, 0.5, 1.0, 2.0}
    if number in allowed:
        return []
    if number == 4 and not _is_v8(version):
        return [
            Problem(
                Issue.HD_NOT_V8,
                Severity.ERROR,
                f"{_dash(p)} 4",
                version=version.name,
                fix=Fix(_drop(prompt, p)),
            )
        ]
    shown = ", ".join(f"{a:g}" for a in sorted(allowed))
    return [
        Problem(
            Issue.QUALITY,
            Severity.ERROR,
            _dash(p),
            p.value,
            version=version.name,
            low=shown,
            fix=Fix(_drop(prompt, p)),
        )
    ]


def _check_support(prompt: Prompt, p: Param, version: Version, vname: str) -> list[Problem]:
    feature = p.name
    support = supports(version, feature)
    if support is Support.YES:
        return []
    if feature == "cref":
        if not version.niji and version.number >= 7:
            urls = [w for w in p.value.split() if _URL.match(w)]
            fix = None
            if urls:
                # --oref takes one image; --cw has no --oref meaning (its scale is --ow's 0-1000)
                params = [Param(q.written, q.value) for q in prompt.params if q.name != "cw"]
                at = next(i for i, q in enumerate(prompt.params) if q is p)
                at -= sum(1 for q in prompt.params[:at] if q.name == "cw")
                params[at] = Param("oref", urls[0])
                fix = Fix(replace(prompt, params=tuple(params)).render())
            return [Problem(Issue.CREF_V7, Severity.ERROR, "--cref", version=vname, fix=fix)]
        return [
            Problem(
                Issue.CREF_OLD,
                Severity.ERROR,
                "--cref",
                version=vname,
                fix=Fix(prompt.without("cref", "cw").render()),
            )
        ]
    if feature == "oref":
        if support is Support.UNSURE:
            return [Problem(Issue.OREF_UNSURE, Severity.WARNING, "--oref", version=vname)]
        fix = None
        if version.number in (6, 6.1) and _URL.match(p.value):
            fix = Fix(_swap(prompt.without("ow"), p, Param("cref", p.value)))
        return [Problem(Issue.OREF_UNSUPPORTED, Severity.ERROR, "--oref", version=vname, fix=fix)]
    if feature == "draft":
        if support is Support.UNSURE:
            return [Problem(Issue.DRAFT_UNSURE, Severity.WARNING, "--draft", version=vname)]
        return [
            Problem(
                Issue.DRAFT_UNSUPPORTED,
                Severity.ERROR,
                "--draft",
                version=vname,
                fix=Fix(_drop(prompt, p)),
            )
        ]
    if feature == "hd":
        return [
            Problem(
                Issue.HD_NOT_V8, Severity.ERROR, "--hd", version=vname, fix=Fix(_drop(prompt, p))
            )
        ]
    severity = Severity.WARNING if support is Support.UNSURE else Severity.ERROR
    return [
        Problem(Issue.NOT_SUPPORTED, severity, _dash(p), version=vname, fix=Fix(_drop(prompt, p)))
    ]


def _check_weights(prompt: Prompt) -> list[Problem]:
    """Multi-prompt weights: ``a::2 b::-0.5``. Each ``::`` must close a part with words in it,
    ``:::`` is a typo, and the weights together must be positive (Midjourney refuses else)."""
    text = prompt.text
    if "::" not in text:
        return []
    out: list[Problem] = []
    if ":::" in text:
        fixed = re.sub(r":{3,}", "::", text)
        out.append(
            Problem(
                Issue.WEIGHTS,
                Severity.ERROR,
                value=":::",
                fix=Fix(replace(prompt, text=fixed).render()),
            )
        )
        return out
    parts: list[tuple[str, float]] = []
    pos = 0
    for match in _WEIGHT.finditer(text):
        words = text[pos : match.start()]
        weight = float(match.group(1)) if match.group(1) else 1.0
        parts.append((words, weight))
        pos = match.end()
    rest = text[pos:]
    empty = [i for i, (words, _) in enumerate(parts) if not re.search(r"\w", words)]
    if empty:
        kept = [
            f"{words.strip()}::{weight:g}" if weight != 1.0 else f"{words.strip()}::"
            for words, weight in parts
            if re.search(r"\w", words)
        ]
        fixed = " ".join([*kept, rest.strip()]).strip()
        fix = Fix(replace(prompt, text=fixed).render()) if fixed else None
        out.append(Problem(Issue.WEIGHTS, Severity.ERROR, value="::", fix=fix))
        return out
    total = sum(w for _, w in parts) + (1.0 if re.search(r"\w", rest) else 0.0)
    if total <= 0:
        out.append(Problem(Issue.WEIGHTS_SUM, Severity.ERROR, value=f"{total:g}"))
    return out


_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".avif", ".heic", ".tif", ".tiff")
_NOT_IMAGE_EXT = (
    ".html",
    ".htm",
    ".php",
    ".pdf",
    ".txt",
    ".zip",
    ".mp4",
    ".mov",
    ".webm",
    ".mp3",
    ".svg",
    ".json",
    ".js",
    ".doc",
    ".docx",
)
_IMAGE_HOSTS = (
    "cdn.discordapp.com",
    "media.discordapp.net",
    "cdn.midjourney.com",
    "s.mj.run",
    "mj.run",
)


class UrlKind(StrEnum):
    IMAGE = "image"
    NOT_IMAGE = "not_image"
    UNKNOWN = "unknown"


def url_kind(url: str) -> UrlKind:
    """What a URL looks like it serves, from its path and host only (nothing is fetched)."""
    match = _URL.match(url)
    if not match:
        return UrlKind.NOT_IMAGE
    parts = urlsplit(match.group(1))
    path = parts.path.lower()
    if path.endswith(_IMAGE_EXT):
        return UrlKind.IMAGE
    if path.endswith(_NOT_IMAGE_EXT) or not parts.hostname:
        return UrlKind.NOT_IMAGE
    host = parts.hostname.lower()
    if any(host == h or host.endswith(f".{h}") for h in _IMAGE_HOSTS):
        return UrlKind.IMAGE
    if path in ("", "/"):
        return UrlKind.NOT_IMAGE  # a site's front page is not an image
    return UrlKind.UNKNOWN


def _check_urls(prompt: Prompt) -> list[Problem]:
    out: list[Problem] = []
    for url in prompt.images:
        kind = url_kind(url)
        if kind is UrlKind.NOT_IMAGE:
            rest = replace(prompt, images=tuple(u for u in prompt.images if u != url))
            fix = Fix(rest.render()) if rest.images or rest.text else None
            out.append(Problem(Issue.NOT_IMAGE, Severity.ERROR, value=url, fix=fix))
        elif kind is UrlKind.UNKNOWN:
            out.append(Problem(Issue.MAYBE_NOT_IMAGE, Severity.WARNING, value=url))
    for p in prompt.params:
        if p.name not in ("sref", "cref", "oref", "end", "dref"):
            continue
        for word in p.value.split():
            if not _URL.match(word):
                continue
            kind = url_kind(word)
            if kind is UrlKind.NOT_IMAGE:
                out.append(Problem(Issue.NOT_IMAGE, Severity.ERROR, _dash(p), word))
            elif kind is UrlKind.UNKNOWN:
                out.append(Problem(Issue.MAYBE_NOT_IMAGE, Severity.WARNING, _dash(p), word))
    return out


# --- composing a prompt from settings --------------------------------------------------------


class RefKind(StrEnum):
    """An active reference: omni (--oref/--ow), style (--sref/--sw), image prompt (--iw)."""

    OMNI = "oref"
    STYLE = "sref"
    IMAGE = "image"

    @property
    def weight_param(self) -> str:
        return {RefKind.OMNI: "ow", RefKind.STYLE: "sw", RefKind.IMAGE: "iw"}[self]

    @property
    def default_weight(self) -> float:
        return {RefKind.OMNI: 100, RefKind.STYLE: 100, RefKind.IMAGE: 1}[self]


@dataclass(frozen=True)
class Reference:
    """An image (URL) or a style code kept for the following prompts."""

    kind: RefKind
    url: str  # an image URL; for STYLE also a code ("1234", "random")
    weight: float | None = None  # None: Midjourney's default


# Stylize levels as the official bot's /settings names them.
STYLIZE_LEVELS = {"low": 50, "med": 100, "high": 250, "very_high": 750}


@dataclass(frozen=True)
class Options:
    """The settings that become parameters (values already checked by the settings menu)."""

    model: Model | None = None
    raw: bool = False
    stylize: int | None = None
    personalize: bool = False
    profile_codes: tuple[str, ...] = ()
    draft: bool = False
    hd: bool = False
    quality: str | None = None
    references: tuple[Reference, ...] = ()
    suffix: str = ""


@dataclass(frozen=True)
class Composed:
    prompt: str
    bot: Bot | None  # None: send no botType


def compose(prompt: str, options: Options, *, bot_types: bool = True) -> Composed:
    """The prompt to send: the user's text, the suffix, then each setting as a parameter the
    prompt does not already have (what the user typed wins). ``bot_types``: the provider
    takes ``botType`` (then niji 7 runs on the niji bot; otherwise ``--niji 7`` goes in the
    prompt)."""
    parsed = _with_suffix(parse(prompt.strip()), parse(options.suffix.strip()))
    images = list(parsed.images)
    for ref in options.references:
        if ref.kind is RefKind.IMAGE and ref.url not in images:
            images.append(ref.url)
    parsed = replace(parsed, images=tuple(images))
    pinned = parsed.has("version") or parsed.has("niji")
    bot: Bot | None = None
    if bot_types:
        bot = Bot.NIJI if parsed.has("niji") else Bot.MIDJOURNEY
        if not pinned and options.model is not None:
            bot = options.model.bot
    if (
        not pinned
        and options.model is not None
        and not (bot_types and options.model.bot is Bot.NIJI)
    ):
        version = options.model.version
        name = "niji" if version.niji else "v"
        parsed = parsed.with_param(name, f"{version.number:g}")
    if options.raw and not parsed.has("raw") and not parsed.has("style"):
        parsed = parsed.with_param("style", "raw")
    if options.stylize is not None:
        parsed = parsed.with_param("s", str(options.stylize))
    if options.personalize and not parsed.has("profile"):
        parsed = parsed.with_param("p", " ".join(options.profile_codes))
    # A setting the model lacks is left out (V7's draft on niji 7, V8's --hd on V7): the
    # setting stays for the model that has it, and the prompt is not refused for it.
    version = parsed.pinned or (options.model or DEFAULT_MODEL).version
    if options.draft and supports(version, "draft") is not Support.NO:
        parsed = parsed.with_param("draft")
    if options.hd and supports(version, "hd") is Support.YES:
        parsed = parsed.with_param("hd")
    if options.quality and (options.quality != "4" or supports(version, "q4") is Support.YES):
        parsed = parsed.with_param("q", options.quality)
    for ref in options.references:
        if ref.kind is RefKind.IMAGE:
            if ref.weight is not None:
                parsed = parsed.with_param("iw", f"{ref.weight:g}")
            continue
        if parsed.has(ref.kind.value):
            continue  # the prompt names its own reference: its weight is its own too
        parsed = parsed.with_param(ref.kind.value, ref.url)
        if ref.weight is not None:
            parsed = parsed.with_param(ref.kind.weight_param, f"{ref.weight:g}")
    return Composed(parsed.render(), bot)


def _with_suffix(prompt: Prompt, suffix: Prompt) -> Prompt:
    """The prompt with the suffix's words after its text and the suffix's parameters it lacks
    (a suffix ``--ar 3:2`` under a prompt's own ``--ar 16:9`` is left out, not doubled; the
    same text typed again is not repeated)."""
    text = prompt.text
    extra = " ".join(x for x in (suffix.text,) if x and x not in text)
    merged = replace(prompt, text=" ".join(x for x in (text, extra) if x))
    pinned = prompt.has("version") or prompt.has("niji")
    for p in suffix.params:
        if p.name in ("version", "niji") and pinned:
            continue
        merged = merged.with_param(p.written, p.value)
    return replace(merged, images=(*merged.images, *suffix.images))


def without_draft(prompt: str, seed: str = "") -> str:
    """The same prompt at full quality: ``--draft`` removed, the draft's seed pinned."""
    parsed = parse(prompt).without("draft")
    if seed and not parsed.has("seed"):
        parsed = parsed.with_param("seed", seed)
    return parsed.render()


def is_draft(prompt: str) -> bool:
    return parse(prompt).has("draft")
