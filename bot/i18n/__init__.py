"""User-facing text in English and Simplified Chinese: ``t(key, lang, **fields)``.

Catalogs are flat JSON files beside this module (``en.json``, ``zh.json``); a test checks that
both have the same keys and placeholders. Unknown languages fall back to English. Keys under
``discord.`` are Discord's own: its command options, and its wording where it differs.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("en", "zh")
DEFAULT = "en"


@cache
def catalog(lang: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(f"{lang}.json").read_text("utf-8")
    strings: dict[str, str] = json.loads(text)
    return strings


def normalize(code: str | None) -> str:
    """Map a client language tag (``zh-hans``, ``zh-CN``, ``en-US``...) to a catalog."""
    tag = (code or "").lower().replace("_", "-")
    return "zh" if tag.startswith("zh") else DEFAULT


def t(key: str, lang: str = DEFAULT, *, platform: str = "", **fields: object) -> str:
    """The text of ``key`` in ``lang``; with ``platform``, that platform's own wording
    (``<platform>.<key>``, e.g. Discord answers through a button, not a reply) when it has one."""
    if platform and f"{platform}.{key}" in catalog(DEFAULT):
        key = f"{platform}.{key}"
    text = catalog(normalize(lang)).get(key) or catalog(DEFAULT).get(key, key)
    return text.format(**fields) if fields else text
