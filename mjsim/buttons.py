"""Real button sets per result kind (§7) and what pressing each customId does (§7.8, §7.9)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .prompts import KEYCAPS

# Result kinds: what a finished task looks like, which decides its art and its buttons.
GRID = "grid"  # IMAGINE, VARIATION, REROLL, BLEND, PAN, ZOOM
UPSCALE = "upscale"  # U1..U4 of a grid
UPSCALE_HD = "upscale_hd"  # Upscale (Subtle)/(Creative) of an upscale
DESCRIBE = "describe"
SHORTEN = "shorten"
VIDEO = "video"
VIDEO_UPSCALE = "video_upscale"  # U1..U4 of a video
SWAP = "swap"
EDIT = "edit"


def button(custom_id: str, label: str = "", emoji: str = "", style: int = 2) -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": style}


def _grid(h: str) -> list[dict[str, Any]]:
    ups = [button(f"MJ::JOB::upsample::{n}::{h}", f"U{n}") for n in range(1, 5)]
    reroll = button(f"MJ::JOB::reroll::0::{h}::SOLO", "", "🔄")
    vs = [button(f"MJ::JOB::variation::{n}::{h}", f"V{n}") for n in range(1, 5)]
    return [*ups, reroll, *vs]


def _vary_zoom_pan_animate(h: str) -> list[dict[str, Any]]:
    return [
        button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
        button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
        button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
        button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
        button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
        button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
        button(f"MJ::JOB::pan_left::1::{h}::SOLO", "", "⬅️"),
        button(f"MJ::JOB::pan_right::1::{h}::SOLO", "", "➡️"),
        button(f"MJ::JOB::pan_up::1::{h}::SOLO", "", "⬆️"),
        button(f"MJ::JOB::pan_down::1::{h}::SOLO", "", "⬇️"),
        button(f"MJ::JOB::animate_high::1::{h}::SOLO", "Animate (High motion)", "🎞️"),
        button(f"MJ::JOB::animate_low::1::{h}::SOLO", "Animate (Low motion)", "🎞️"),
    ]


def _upscale(h: str) -> list[dict[str, Any]]:
    return [
        button(f"MJ::JOB::upsample_v7_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)", "upscale_1"),
        button(
            f"MJ::JOB::upsample_v7_2x_creative::1::{h}::SOLO", "Upscale (Creative)", "upscale_1"
        ),
        *_vary_zoom_pan_animate(h),
    ]


def _extend(h: str) -> list[dict[str, Any]]:
    return [
        button(f"MJ::JOB::animate_high_extend::1::{h}", "Extend (High motion)", "🎞️"),
        button(f"MJ::JOB::animate_low_extend::1::{h}", "Extend (Low motion)", "🎞️"),
    ]


def buttons_for(kind: str, h: str, bookmark: bool = False) -> list[dict[str, Any]]:
    """The buttons a finished task of ``kind`` with job hash ``h`` carries, in MJ's order.

    ``bookmark``: upscales also carry MJ's ❤️ (``MJ::BOOKMARK::<hash>``), as Discord shows it.
    """
    if kind == GRID:
        return _grid(h)
    if kind == UPSCALE:
        like = [button(f"MJ::BOOKMARK::{h}", "", "❤️")] if bookmark else []
        return [*_upscale(h), *like]
    if kind == UPSCALE_HD:
        return _vary_zoom_pan_animate(h)
    if kind == DESCRIBE:
        picks = [button(f"MJ::Job::PicReader::{n}", "", KEYCAPS[n]) for n in range(1, 5)]
        return [
            *picks,
            button("MJ::Picread::Retry", "", "🔄"),
            button("MJ::Job::PicReader::all", "Imagine all", "🎉"),
        ]
    if kind == SHORTEN:
        return [button(f"MJ::Job::PromptAnalyzer::{n}", "", KEYCAPS[n]) for n in range(1, 6)]
    if kind == VIDEO:
        ups = [button(f"MJ::JOB::video_virtual_upscale::{n}::{h}", f"U{n}") for n in range(1, 5)]
        return [*ups, *_extend(h)]
    if kind == VIDEO_UPSCALE:
        return _extend(h)
    if kind == EDIT:
        return [button(f"MJ::JOB::upsample::{n}::{h}", f"U{n}") for n in range(1, 5)]
    return []  # SWAP and anything unknown


# What a press leads to. ``modal``: "always" -> code 21 every time; "remix" -> code 21 when remix
# is on (config or enableRemix); "" -> never.
@dataclass(frozen=True, slots=True)
class Press:
    action: str  # the new task's action
    kind: str  # the new task's result kind
    index: int = 1  # image index within the parent (U/V N)
    modal: str = ""  # "", "remix", "always"
    name: str = ""  # human name, used in descriptions and art labels
    detail: str = ""  # direction / zoom / motion / strength
    special: str = ""  # "zoom", "inpaint", "pick", "all", "retry", "extend"


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Press]]] = [
    (
        re.compile(r"^MJ::JOB::upsample::(\d)::"),
        lambda m: Press("UPSCALE", UPSCALE, int(m[1]), name=f"U{m[1]}"),
    ),
    (
        re.compile(r"^MJ::JOB::upsample_(v[\w.]+?)_(\d+x)(?:_(\w+?))?::1::"),
        lambda m: Press(
            "UPSCALE", UPSCALE_HD, name=f"Upscale ({(m[3] or m[2]).title()})", detail=m[3] or m[2]
        ),
    ),
    (
        re.compile(r"^MJ::JOB::variation::(\d)::"),
        lambda m: Press("VARIATION", GRID, int(m[1]), "remix", f"V{m[1]}"),
    ),
    (
        re.compile(r"^MJ::JOB::(low|high)_variation::1::"),
        lambda m: Press(
            "VARIATION",
            GRID,
            1,
            "remix",
            "Vary (Subtle)" if m[1] == "low" else "Vary (Strong)",
            m[1],
        ),
    ),
    (re.compile(r"^MJ::JOB::reroll::0::"), lambda m: Press("REROLL", GRID, 0, "remix", "🔄")),
    (
        re.compile(r"^MJ::JOB::pan_(left|right|up|down)::1::"),
        lambda m: Press("PAN", GRID, 1, "remix", f"Pan {m[1].title()}", m[1]),
    ),
    (
        re.compile(r"^MJ::Outpaint::(\d+)::1::"),
        lambda m: Press(
            "ZOOM",
            GRID,
            1,
            "",
            "Zoom Out " + ("2x" if m[1] == "50" else "1.5x"),
            "2" if m[1] == "50" else "1.5",
        ),
    ),
    (
        re.compile(r"^MJ::CustomZoom::"),
        lambda m: Press("ZOOM", GRID, 1, "always", "Custom Zoom", special="zoom"),
    ),
    (
        re.compile(r"^MJ::Inpaint::1::"),
        lambda m: Press("VARIATION", GRID, 1, "always", "Vary (Region)", special="inpaint"),
    ),
    (
        re.compile(r"^MJ::Job::PicReader::([1-4])$"),
        lambda m: Press("IMAGINE", GRID, int(m[1]), "always", KEYCAPS[int(m[1])], special="pick"),
    ),
    (
        re.compile(r"^MJ::Job::PicReader::all$"),
        lambda m: Press("IMAGINE", GRID, 0, "", "Imagine all", special="all"),
    ),
    (
        re.compile(r"^MJ::Picread::Retry$"),
        lambda m: Press("DESCRIBE", DESCRIBE, 0, "", "🔄", special="retry"),
    ),
    (
        re.compile(r"^MJ::Job::PromptAnalyzer::([1-5])$"),
        lambda m: Press("IMAGINE", GRID, int(m[1]), "always", KEYCAPS[int(m[1])], special="pick"),
    ),
    (
        re.compile(r"^MJ::JOB::animate_(high|low)_extend::1::"),
        lambda m: Press(
            "VIDEO", VIDEO, 1, "remix", f"Extend ({m[1].title()} motion)", m[1], special="extend"
        ),
    ),
    (
        re.compile(r"^MJ::JOB::animate_(high|low)::1::"),
        lambda m: Press("VIDEO", VIDEO, 1, "remix", f"Animate ({m[1].title()} motion)", m[1]),
    ),
    (
        re.compile(r"^MJ::JOB::video_virtual_upscale::(\d)::"),
        lambda m: Press("UPSCALE", VIDEO_UPSCALE, int(m[1]), name=f"U{m[1]}"),
    ),
]


def parse_press(custom_id: str) -> Press | None:
    """What pressing ``custom_id`` does; None for ids the simulator does not support."""
    for pattern, build in _RULES:
        match = pattern.match(custom_id)
        if match:
            return build(match)
    return None
