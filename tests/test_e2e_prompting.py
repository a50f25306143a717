"""Prompting on Telegram end to end (`mjbot run` against the fake Telegram server and the
simulator): a prompt the check holds is not submitted until its author taps, and a result
replied to with /oref goes with the next prompt by its own URL."""

from __future__ import annotations

from tests.conftest import ALICE, BOB, GROUP
from tests.test_e2e_flows import labels, replies, result_of

IMG = "https://cdn.discordapp.com/attachments/1/2/p.png"


async def test_a_held_prompt_is_sent_only_when_its_author_taps(bot, sim, tg):
    alice, bob = tg.users[ALICE], tg.users[BOB]
    asked = await tg.send_text(GROUP, alice, f"/imagine a fox --cref {IMG} --v 7")
    held = await result_of(tg, asked.message_id)  # the check's message has buttons
    assert "⛔ --cref does not work on V7: use --oref (omni reference) instead." in held.text
    assert labels(held) == ["✅ Fix and send", "✖️ Cancel"]
    assert sim.submits("imagine") == []
    refused = await tg.wait_for_answer(await tg.press(GROUP, held, "✅ Fix and send", bob))
    assert refused.get("show_alert") and sim.submits("imagine") == []
    await tg.press(GROUP, held, "✅ Fix and send", alice)
    grid = await result_of(tg, held.message_id, timeout=60)
    [request] = sim.submits("imagine")
    assert request.body["prompt"] == f"a fox --oref {IMG} --v 7"
    assert "✂️" in labels(grid)
    await tg.wait_for(lambda: tg.message(GROUP, held.message_id).buttons == [], timeout=10)

    # /oref as a reply to that result: the next prompt names the result's own URL
    kept = await tg.send_text(GROUP, alice, "/oref 150", reply_to=grid.message_id)
    note = await tg.wait_for(lambda: replies(tg, GROUP, kept.message_id), timeout=15)
    assert "🎯 oref result" in note[0].text and "ow 150" in note[0].text
    again = await tg.send_text(GROUP, alice, "/imagine a hare --v 7")
    await result_of(tg, again.message_id, timeout=60)
    prompt = sim.submits("imagine")[1].body["prompt"]
    assert prompt.startswith("a hare --v 7 --oref http") and prompt.endswith(" --ow 150")
