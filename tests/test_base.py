"""The values the use cases share (bot/usecases/base.py): prompt cleaning, a token's button,
a describe pick's suggestion as the prefill, and the settings a menu offers."""

from __future__ import annotations

from bot.buttons import Token
from bot.mj.models import Task
from bot.usecases.base import MODES, SETTING_CHOICES, Notice, button_of, clean, pick_text

DESCRIBED = {
    "id": "1700000000000001",
    "action": "DESCRIBE",
    "status": "SUCCESS",
    "prompt": "",
    "promptEn": "1️⃣ a red fox in snow --ar 3:2\n\n2️⃣ a fox, watercolour --ar 3:2",
    "buttons": [
        {"customId": "MJ::Job::PicReader::1", "label": "1"},
        {"customId": "MJ::Job::PicReader::2", "label": "2"},
        {"customId": "MJ::Picread::Retry", "emoji": "🔄"},
    ],
}


def test_clean_folds_whitespace_and_takes_none():
    assert clean("  a\n fox \t at  dawn ") == "a fox at dawn"
    assert clean("") == "" and clean(None) == ""  # type: ignore[arg-type]


def test_a_token_names_a_button_of_its_task_or_none():
    task = Task.from_json(DESCRIBED)
    assert task is not None
    assert button_of(task, Token("k", "1")) == task.buttons[1]
    assert button_of(task, Token("k", "3")) is None  # past the last button
    assert button_of(task, Token("k", "seed")) is None  # our own buttons have no index
    assert button_of(None, Token("k", "0")) is None


def test_a_describe_pick_is_prefilled_with_its_suggestion():
    task = Task.from_json(DESCRIBED)
    assert task is not None
    assert pick_text(task, "MJ::Job::PicReader::2") == "a fox, watercolour --ar 3:2"
    assert pick_text(task, "MJ::Picread::Retry") == ""
    imagined = Task.from_json({**DESCRIBED, "action": "IMAGINE"})
    assert imagined is not None and pick_text(imagined, "MJ::Job::PicReader::1") == ""


def test_the_menu_offers_the_modes_and_a_notice_is_quiet_by_default():
    assert SETTING_CHOICES["mode"] == MODES == ("fast", "relax")
    assert set(SETTING_CHOICES["lang"]) == {"en", "zh"}
    assert Notice("saved") == Notice("saved", alert=False, where=None)
