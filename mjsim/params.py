"""What Midjourney itself does with a prompt's parameters: the simulator accepts the submit
(the proxies pass prompts through unread) and fails the job, as Midjourney does, when a
parameter does not fit the model it runs on.

The rules are the model facts of 2026 (V7: ``--draft``, ``--oref``; V8.1: ``--hd``, ``--q 4``;
``--cref`` ended with V6; video-only ``--motion``/``--loop``/``--end``/``--bs``) and the value
ranges of trueai's MjPromptParser table. The failReason texts are chosen in Midjourney's
"[Invalid parameter]" form: Midjourney's exact words for these cases are not known. Unknown
parameters are let through (the simulator's list may be shorter than Midjourney's).
"""

from __future__ import annotations

import re

_PARAM = re.compile(r"(?:^|\s)--([a-z]+)(?:\s+([^\s-][^\s]*))?", re.I)
_RANGES = {
    "s": (0, 1000),
    "stylize": (0, 1000),
    "c": (0, 100),
    "chaos": (0, 100),
    "w": (0, 3000),
    "weird": (0, 3000),
    "iw": (0, 3),
    "sw": (0, 1000),
    "ow": (0, 1000),
    "cw": (0, 100),
}
_VIDEO_ONLY = ("motion", "loop", "end", "bs")


def _params(prompt: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _PARAM.finditer(prompt):
        found.setdefault(match.group(1).lower(), match.group(2) or "")
    return found


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def refusal(prompt: str, bot_type: str = "MID_JOURNEY") -> str | None:
    """The failReason Midjourney gives this prompt on ``bot_type``, or None (it runs)."""
    params = _params(prompt)
    niji = "niji" in params or bot_type == "NIJI_JOURNEY"
    pinned = params.get("niji") if "niji" in params else params.get("v", params.get("version"))
    version = _number(pinned) if pinned else None
    if version is None:
        version = 7.0 if niji else 8.1  # the defaults: niji 7, V8.1
    name = f"niji {version:g}" if niji else f"--v {version:g}"
    video = "video" in params
    for flag in _VIDEO_ONLY:
        if flag in params and not video:
            return f"[Invalid parameter] --{flag} is only for videos"
    if "cref" in params and (version >= 7):
        return f"[Invalid parameter] --cref is not compatible with {name}"
    if "oref" in params and version < 7:
        return f"[Invalid parameter] --oref is not compatible with {name}"
    if "draft" in params and (niji or version < 7):
        return f"[Invalid parameter] --draft is not compatible with {name}"
    v8 = not niji and version >= 8
    if "hd" in params and not v8 and not video:
        return f"[Invalid parameter] --hd is not compatible with {name}"
    quality = params.get("q", params.get("quality"))
    if quality is not None and _number(quality) == 4 and not v8:
        return f"[Invalid parameter] --q 4 is not compatible with {name}"
    for key, (low, high) in _RANGES.items():
        if key in params:
            value = _number(params[key])
            if value is None or not low <= value <= high:
                return f"[Invalid parameter] Invalid value for --{key} ({low:g}-{high:g})"
    return None
