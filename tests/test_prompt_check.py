"""The held prompt's message and what is kept of it (bot/prompt_check.py)."""

from __future__ import annotations

from bot import buttons
from bot.mj.prompt import Bot, Model, Target
from bot.prompt_check import DROP, FIX, SEND, Held, held_ref_id, line, review, view

V81 = Target(bot=Bot.MIDJOURNEY, default=Model.V8_1.version)
IMG = "https://cdn.discordapp.com/attachments/1/2/p.png"


def test_a_clean_prompt_is_not_held() -> None:
    assert review("imagine", "a fox --ar 3:2", V81) == ([], None)


def test_an_error_with_a_fix_offers_fix_and_cancel_only() -> None:
    problems, held = review("imagine", f"a fox --cref {IMG} --v 7", V81)
    assert held is not None
    assert held.fixed == f"a fox --oref {IMG} --v 7" and not held.can_send
    shown = view(f"a fox --cref {IMG} --v 7", problems, held, "abcdefgh23", "en")
    [row] = shown.rows
    assert [c.token for c in row] == [
        buttons.held("abcdefgh23", FIX),
        buttons.held("abcdefgh23", DROP),
    ]
    assert "⛔ --cref does not work on V7: use --oref (omni reference) instead." in shown.text
    assert "nothing was charged" in shown.text
    assert held.prompt_for(FIX) == (f"a fox --oref {IMG} --v 7", Bot.MIDJOURNEY)
    assert held.prompt_for(SEND) is None


def test_a_warning_offers_send_anyway() -> None:
    problems, held = review("imagine", f"a fox --oref {IMG}", V81)
    assert held is not None and held.can_send and not held.fixed
    assert line(problems[0], "zh").startswith("⚠️ --oref 在 V8.1 上可能无效")
    [row] = view("p", problems, held, "abcdefgh23", "en").rows
    assert [buttons.decode_held(c.token) for c in row] == [
        ("abcdefgh23", SEND),
        ("abcdefgh23", DROP),
    ]
    assert held.prompt_for(SEND) == (f"a fox --oref {IMG}", Bot.MIDJOURNEY)


def test_an_error_without_a_clean_fix_offers_only_cancel() -> None:
    _, held = review("imagine", "cat::-1 dog::-2 --s 9000", V81)
    assert held is not None and not held.fixed and not held.can_send
    assert held.prompt_for(FIX) is None and held.prompt_for(SEND) is None


def test_niji_on_the_midjourney_bot_is_fixed_by_sending_it_to_niji() -> None:
    _, held = review("imagine", "a fox --niji 7", V81)
    assert held is not None and held.prompt_for(FIX) == ("a fox --niji 7", Bot.NIJI)


def test_held_round_trips_and_odd_text_reads_as_none() -> None:
    held = Held("imagine", "a fox", "MID_JOURNEY", "a fox --v 7", "", 2, "", True)
    assert Held.decode(held.encode()) == held
    assert Held.decode("not json") is None and Held.decode("[1]") is None
    assert Held.decode('{"kind": 1, "sent": "x"}') is None
    assert Held.decode('{"sent": "x"}') is None  # no kind: a required field
    assert held_ref_id("abcdefgh23") == "held-abcdefgh23"
