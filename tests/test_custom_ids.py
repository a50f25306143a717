"""The one customId table (bot/mj/custom_ids.py): what each family of buttons is to mjbot, and
that no module outside bot/mj spells a customId."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import buttons
from bot.mj import custom_ids
from bot.mj.custom_ids import ModalKind, Row, family
from bot.mj.models import Button
from bot.policy import action_of

ROOT = Path(__file__).resolve().parents[1]
HASH = "03ee7a3e-b4d2-4465-9165-b93c99cb6617"


@pytest.mark.parametrize(
    ("custom_id", "row", "cost", "question", "once"),
    [
        (f"MJ::JOB::upsample::2::{HASH}", Row.U, "upscale", ModalKind.REMIX, True),
        (f"MJ::JOB::reroll::0::{HASH}::SOLO", Row.U, "reroll", ModalKind.REMIX, False),
        (f"MJ::JOB::variation::3::{HASH}", Row.V, "variation", ModalKind.REMIX, False),
        (f"MJ::JOB::video_virtual_upscale::1::{HASH}", Row.U, "upscale", ModalKind.REMIX, False),
        (f"MJ::JOB::upsample_v7_2x_subtle::1::{HASH}::SOLO", Row.HD, "upscale_hd", "remix", False),
        (f"MJ::JOB::low_variation::1::{HASH}::SOLO", Row.VARY, "variation", "remix", False),
        (f"MJ::JOB::high_variation::1::{HASH}::SOLO", Row.VARY, "variation", "remix", False),
        (f"MJ::Inpaint::1::{HASH}::SOLO", Row.VARY, "region", ModalKind.REGION, False),
        (f"MJ::Outpaint::50::1::{HASH}::SOLO", Row.ZOOM, "zoom", ModalKind.REMIX, False),
        (f"MJ::CustomZoom::{HASH}", Row.ZOOM, "zoom", ModalKind.ZOOM, False),
        (f"MJ::JOB::pan_left::1::{HASH}::SOLO", Row.PAN, "pan", ModalKind.REMIX, False),
        (f"MJ::JOB::animate_high::1::{HASH}::SOLO", Row.ANIMATE, "video", "remix", False),
        ("MJ::Job::PicReader::all", Row.PICK, "imagine_all", ModalKind.PICK, False),
        ("MJ::Job::PicReader::2", Row.PICK, "imagine", ModalKind.PICK, False),
        ("MJ::Job::PromptAnalyzer::4", Row.PICK, "imagine", ModalKind.PICK, False),
        (f"MJ::Picread::Retry::{HASH}", Row.PICK, "describe", ModalKind.REMIX, False),
        (f"MJ::BOOKMARK::{HASH}", Row.OTHER, "other", ModalKind.REMIX, False),
        ("MJ::Something::new", Row.OTHER, "other", ModalKind.REMIX, False),
    ],
)
def test_each_family_says_its_row_cost_question_and_whether_it_is_done_once(
    custom_id: str, row: Row, cost: str, question: str, once: bool
) -> None:
    found = family(custom_id)
    assert (found.row, found.cost, found.question, found.once) == (row, cost, question, once)
    assert action_of(custom_id) == cost  # the policy weighs what the table says


def test_more_specific_prefixes_come_first() -> None:
    """Every family is reachable: no earlier prefix swallows a later one."""
    prefixes = [f.prefix for f in custom_ids.FAMILIES]
    for later, prefix in enumerate(prefixes):
        assert not any(prefix.startswith(p) for p in prefixes[:later]), prefix


def test_labels_for_buttons_that_come_without_one() -> None:
    bare = [
        Button(f"MJ::JOB::pan_down::1::{HASH}::SOLO"),
        Button(f"MJ::CustomZoom::{HASH}"),
        Button(f"MJ::Picread::Retry::{HASH}"),
        Button(f"MJ::BOOKMARK::{HASH}"),
        Button("MJ::Unknown::thing"),
    ]
    assert [buttons.label(b, "en") for b in bare][-1] == "thing"
    assert [custom_ids.family(b.custom_id).name for b in bare] == [
        "btn.pan_down",
        "btn.custom_zoom",
        "btn.reroll",
        "btn.like",
        "",
    ]


def test_answers_cost_by_the_kind_of_question() -> None:
    assert [custom_ids.answer_cost(k) for k in ("zoom", "region", "pick", "remix", "?")] == [
        "zoom",
        "region",
        "imagine",
        "variation",
        "other",
    ]


def test_pick_numbers() -> None:
    assert custom_ids.pick_number("MJ::Job::PicReader::3") == 3
    assert custom_ids.pick_number("MJ::Job::PromptAnalyzer::5") == 5
    assert custom_ids.pick_number("MJ::Job::PicReader::all") is None
    assert custom_ids.pick_number(f"MJ::JOB::upsample::1::{HASH}") is None


def test_no_customid_is_spelled_outside_bot_mj() -> None:
    """The core and the adapters ask bot.mj.custom_ids; the simulator (mjsim/) keeps its own."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("bot", "adapters")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (ROOT / "bot" / "mj") not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "MJ::" in line
    ]
    assert found == []
