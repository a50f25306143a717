"""The one customId table: what each family of Midjourney's buttons is to mjbot.

A customId names its button's family by its prefix (``MJ::JOB::upsample::2::<hash>`` is U2;
mj-api.md §7.8). Everything the rest of mjbot decides about a button is read from its
:class:`Family` here: the keyboard row it joins, how its label is made when the API sends none,
what it costs (the policy's weight table), which question follows when the API answers code 21,
and whether it is done once (a U: pressed again, its result is shown again). No module outside
``bot.mj`` spells a customId.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Row(StrEnum):
    """The keyboard row a family joins, in the official bot's order (U + 🔄, V, upscale, ...)."""

    U = "u"
    V = "v"
    HD = "hd"
    VARY = "vary"
    ZOOM = "zoom"
    PAN = "pan"
    ANIMATE = "animate"
    PICK = "pick"
    OTHER = "other"


class ModalKind(StrEnum):
    """The question asked when a press answers code 21 (stored as ``modals.kind``)."""

    ZOOM = "zoom"  # Custom Zoom: the prompt with --zoom
    REGION = "region"  # Vary (Region): a mask
    PICK = "pick"  # a describe/shorten suggestion to imagine
    REMIX = "remix"  # any other family under remix mode: the prompt again


# What answering each question costs (names in the policy's weight table).
_ANSWER_COST = {
    ModalKind.ZOOM: "zoom",
    ModalKind.REGION: "region",
    ModalKind.PICK: "imagine",
    ModalKind.REMIX: "variation",
}


@dataclass(frozen=True, slots=True)
class Family:
    """One family of customIds, named by its prefix."""

    prefix: str
    row: Row = Row.OTHER
    cost: str = "other"  # the action the policy weighs (QuotaConfig weights)
    modal: ModalKind | None = None  # the question code 21 asks; None: remix (the prompt again)
    # An upscale of one grid image (U1-U4): done once; pressed again its result is shown again
    # (README, "Pressing a button again").
    once: bool = False
    name: str = ""  # the i18n key of its label when the API sends neither label nor emoji

    @property
    def question(self) -> ModalKind:
        """The question to ask when this family's press answers code 21."""
        return self.modal or ModalKind.REMIX


# More specific prefixes first: the first family whose prefix a customId starts with is its own.
FAMILIES: tuple[Family, ...] = (
    Family("MJ::JOB::upsample::", Row.U, "upscale", once=True),
    Family("MJ::JOB::reroll::", Row.U, "reroll", name="btn.reroll"),
    Family("MJ::JOB::variation::", Row.V, "variation"),
    Family("MJ::JOB::video_virtual_upscale::", Row.U, "upscale"),
    Family("MJ::JOB::upsample_", Row.HD, "upscale_hd"),  # upsample_v7_2x_subtle, ...
    Family("MJ::JOB::low_variation::", Row.VARY, "variation"),
    Family("MJ::JOB::high_variation::", Row.VARY, "variation"),
    Family("MJ::Inpaint::", Row.VARY, "region", ModalKind.REGION, name="btn.vary_region"),
    Family("MJ::Outpaint::", Row.ZOOM, "zoom"),
    Family("MJ::CustomZoom::", Row.ZOOM, "zoom", ModalKind.ZOOM, name="btn.custom_zoom"),
    Family("MJ::JOB::pan_left::", Row.PAN, "pan", name="btn.pan_left"),
    Family("MJ::JOB::pan_right::", Row.PAN, "pan", name="btn.pan_right"),
    Family("MJ::JOB::pan_up::", Row.PAN, "pan", name="btn.pan_up"),
    Family("MJ::JOB::pan_down::", Row.PAN, "pan", name="btn.pan_down"),
    Family("MJ::JOB::pan_", Row.PAN, "pan"),
    Family("MJ::JOB::animate_", Row.ANIMATE, "video"),
    Family("MJ::Job::PicReader::all", Row.PICK, "imagine_all", ModalKind.PICK),
    Family("MJ::Job::PicReader::", Row.PICK, "imagine", ModalKind.PICK),
    Family("MJ::Job::PromptAnalyzer::", Row.PICK, "imagine", ModalKind.PICK),
    Family("MJ::Picread::Retry", Row.PICK, "describe", name="btn.reroll"),
    Family("MJ::Picread::", Row.PICK),
    Family("MJ::BOOKMARK::", name="btn.like"),
)
OTHER = Family("")  # a customId no family claims: its own row, weighed as "other"


def family(custom_id: str) -> Family:
    """The family a customId belongs to (OTHER when none claims it)."""
    return next((f for f in FAMILIES if custom_id.startswith(f.prefix)), OTHER)


def extends(custom_id: str) -> bool:
    """Whether a button extends a video by a few seconds (Extend (High/Low motion))."""
    return custom_id.startswith("MJ::JOB::animate_") and "_extend::" in custom_id


def answer_cost(kind: str) -> str:
    """What answering a question of ``kind`` costs ("other" for an unknown kind)."""
    try:
        return _ANSWER_COST[ModalKind(kind)]
    except ValueError:
        return "other"


_PICK = re.compile(r"^MJ::Job::(?:PicReader|PromptAnalyzer)::(\d)$")


def pick_number(custom_id: str) -> int | None:
    """Which numbered suggestion a describe/shorten pick imagines (1-5), else None."""
    match = _PICK.match(custom_id)
    return int(match.group(1)) if match else None


def fallback_label(custom_id: str) -> str:
    """A label for a button that came with neither label nor emoji, nor a family name: the
    customId's last part (its suffix), short."""
    return custom_id.split("::")[-1][:20]


# Midjourney's English labels that mjbot translates (i18n keys); others are shown as sent.
LABEL_KEYS = {
    "Upscale (Subtle)": "btn.upscale_subtle",
    "Upscale (Creative)": "btn.upscale_creative",
    "Upscale (2x)": "btn.upscale_2x",
    "Upscale (4x)": "btn.upscale_4x",
    "Vary (Subtle)": "btn.vary_subtle",
    "Vary (Strong)": "btn.vary_strong",
    "Vary (Region)": "btn.vary_region",
    "Zoom Out 2x": "btn.zoom_2x",
    "Zoom Out 1.5x": "btn.zoom_15x",
    "Custom Zoom": "btn.custom_zoom",
    "Animate (High motion)": "btn.animate_high",
    "Animate (Low motion)": "btn.animate_low",
    "Extend (High motion)": "btn.extend_high",
    "Extend (Low motion)": "btn.extend_low",
    "Imagine all": "btn.imagine_all",
    "Make Square": "btn.make_square",
}


# --- Java OSS: buttons translated to /submit/change (§3.7, P8) ---------------------------------

_CHANGE = (
    (re.compile(r"^MJ::JOB::upsample::([1-4])::"), "UPSCALE"),
    (re.compile(r"^MJ::JOB::variation::([1-4])::"), "VARIATION"),
    (re.compile(r"^MJ::JOB::reroll::0::"), "REROLL"),
)


def change_for(custom_id: str) -> tuple[str, int | None] | None:
    """('UPSCALE', 2) for MJ::JOB::upsample::2::<hash>; None when /change cannot do it."""
    for pattern, action in _CHANGE:
        match = pattern.match(custom_id)
        if match:
            return action, int(match.group(1)) if match.groups() else None
    return None


def grid_buttons(job: str) -> list[dict[str, Any]]:
    """U1-U4, 🔄, V1-V4 for a grid on a server whose tasks carry no buttons (Java OSS).

    ``job`` is the job hash when known, else the task id: /submit/change needs only the
    parent's task id and the index, which the client reads back from the customId.
    """

    def button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
        return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}

    ups = [button(f"MJ::JOB::upsample::{n}::{job}", f"U{n}") for n in range(1, 5)]
    reroll = button(f"MJ::JOB::reroll::0::{job}::SOLO", "", "🔄")
    vs = [button(f"MJ::JOB::variation::{n}::{job}", f"V{n}") for n in range(1, 5)]
    return [*ups, reroll, *vs]


_HASHLIKE = re.compile(r"^(\d+|[0-9a-f]{8}-[0-9a-f-]{20,}|SOLO)$", re.I)


def refusal_prefix(custom_id: str) -> str:
    """The prefix to remember when a provider refuses a button (finer than a Family: the
    provider may refuse one motion of Animate, or Imagine all but not the numbered picks).

    'MJ::JOB::animate_high::1::<hash>::SOLO' -> 'MJ::JOB::animate_high::';
    'MJ::Job::PicReader::all' -> itself.
    """
    parts = custom_id.split("::")
    kept: list[str] = []
    for part in parts:
        if _HASHLIKE.match(part) or len(part) > 30:
            return "::".join(kept) + "::"
        kept.append(part)
    return custom_id
