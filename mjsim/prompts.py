"""Prompt parameters and the deterministic texts the simulator writes (describe, shorten, seed)."""

from __future__ import annotations

import hashlib
import math
import re

KEYCAPS = tuple(f"{n}\ufe0f\u20e3" for n in range(10))  # 0️⃣ .. 9️⃣

_PARAM = re.compile(r"--([a-z]+)(?:[ \t]+([^\s-][^\s]*))?", re.I)


def _digest(text: str | bytes) -> bytes:
    return hashlib.sha256(text if isinstance(text, bytes) else text.encode()).digest()


def param(prompt: str, *names: str) -> str | None:
    """Value of ``--name value`` (first of ``names`` found); "" for a bare flag."""
    wanted = {n.lower() for n in names}
    for match in _PARAM.finditer(prompt):
        if match.group(1).lower() in wanted:
            return match.group(2) or ""
    return None


def strip_params(prompt: str) -> str:
    """The prompt text without its ``--parameters``."""
    return re.sub(r"\s+", " ", _PARAM.sub(" ", prompt)).strip()


def aspect(prompt: str) -> tuple[int, int]:
    """``--ar W:H`` (or ``--aspect``), clamped to 1:4..4:1; 1:1 when absent or malformed."""
    value = param(prompt, "ar", "aspect") or ""
    match = re.fullmatch(r"(\d{1,4}):(\d{1,4})", value)
    if not match or not int(match.group(1)) or not int(match.group(2)):
        return (1, 1)
    w, h = int(match.group(1)), int(match.group(2))
    if w > 4 * h:
        return (4, 1)
    if h > 4 * w:
        return (1, 4)
    g = math.gcd(w, h)
    return (w // g, h // g)


def mode_flag(prompt: str) -> str:
    """``--fast`` / ``--relax`` / ``--turbo`` in the prompt (trueai's third mode source)."""
    for flag, mode in (("turbo", "TURBO"), ("relax", "RELAX"), ("fast", "FAST")):
        if param(prompt, flag) is not None:
            return mode
    return ""


def find_word(prompt: str, words: tuple[str, ...]) -> str:
    """The first of ``words`` in the prompt (whole word, any case), as written there."""
    for word in words:
        if not word:
            continue
        match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", prompt, re.I)
        if match:
            return match.group(0)
    return ""


def seed_for(message_hash: str) -> str:
    """A stable seed (0 .. 2^32-2) per job, as ``/image-seed`` returns it: a decimal string."""
    return str(int.from_bytes(_digest(message_hash)[:4], "big") % 4294967295)


_SUBJECTS = (
    "a lighthouse on a rocky shore",
    "a red fox sleeping in the snow",
    "a cluttered watchmaker's workbench",
    "an old tram crossing a rainy street",
    "a field of sunflowers under a storm",
    "a koi pond seen from above",
    "a paper boat on a puddle",
    "a cat sitting on a stack of books",
    "a mountain village at dawn",
    "a bowl of ramen with steam rising",
    "a vintage robot tending a garden",
    "an astronaut reading in a hammock",
)
_STYLES = (
    "in the style of studio ghibli",
    "watercolor illustration",
    "oil painting with thick impasto",
    "isometric 3d render",
    "analog film photograph, kodak portra 400",
    "flat vector poster",
    "charcoal sketch",
    "ukiyo-e woodblock print",
    "cinematic still, anamorphic lens",
    "low poly art",
)
_DETAILS = (
    "soft morning light",
    "muted pastel palette",
    "dramatic rim lighting",
    "highly detailed",
    "shallow depth of field",
    "golden hour",
    "moody atmosphere",
    "vibrant colors",
    "minimalist composition",
    "whimsical mood",
)


def describe_prompts(seed: bytes, ar: tuple[int, int]) -> list[str]:
    """Four suggested prompts for an image (chosen by its bytes), each ending in ``--ar``."""
    d = hashlib.sha256(seed).digest()
    suffix = f" --ar {ar[0]}:{ar[1]}"
    lines = []
    for i in range(4):
        subject = _SUBJECTS[(d[i] + i) % len(_SUBJECTS)]
        style = _STYLES[(d[4 + i] + 3 * i) % len(_STYLES)]
        detail = _DETAILS[(d[8 + i] + 7 * i) % len(_DETAILS)]
        lines.append(f"{subject}, {style}, {detail}{suffix}")
    return lines


def describe_text(prompts: list[str]) -> str:
    """The Java/Plus ``finalPrompt`` layout: ``1️⃣ ...\\n\\n2️⃣ ...`` (§3.5)."""
    return "\n\n".join(f"{KEYCAPS[i + 1]} {line}" for i, line in enumerate(prompts))


_STOP = frozenset(
    "a an the of in on at to for with and or by from into as is are its it this that".split()
)


def _weight(word: str) -> int:
    """0 = unimportant (struck through), 1 = plain, 2 = important (bold); stable per word."""
    if word.lower() in _STOP:
        return 0
    return 2 if _digest(word.lower())[0] % 3 == 0 or len(word) >= 9 else 1


def shorten(prompt: str) -> tuple[str, list[str]]:
    """MJ's /shorten analysis of a prompt: (finalPrompt text, the 5 shortened prompts)."""
    text = strip_params(prompt) or prompt.strip()
    phrases = [p.strip() for p in text.split(",") if p.strip()] or [text]
    marked = []
    for phrase in phrases:
        out = []
        for word in phrase.split():
            w = _weight(re.sub(r"\W", "", word) or word)
            out.append(f"**{word}**" if w == 2 else f"~~{word}~~" if w == 0 else word)
        marked.append(" ".join(out))

    kept = [
        [w for w in p.split() if _weight(re.sub(r"\W", "", w) or w)] or p.split()[:1]
        for p in phrases
    ]
    ranked = sorted(
        range(len(kept)),
        key=lambda i: (i != 0, -sum(_weight(w) for w in kept[i]), i),
    )
    options = []
    for step in range(5):
        count = max(1, round(len(kept) * (1 - step * 0.2)))
        chosen = sorted(ranked[:count])
        parts = []
        for i in chosen:
            words = kept[i]
            if step >= 3 and len(words) > 1:  # the last options also drop plain words
                words = [w for w in words if _weight(re.sub(r"\W", "", w) or w) == 2] or words[:1]
            parts.append(" ".join(words))
        options.append(", ".join(parts))
    body = "\n\n".join(f"{KEYCAPS[i + 1]} {o}" for i, o in enumerate(options))
    final = f"## Important tokens\n{', '.join(marked)}\n## Shortened prompts\n{body}"
    return final, options
