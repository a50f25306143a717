"""Prompting on Discord (the real discord.py against the fake Discord and the simulator): the
check's buttons, and /oref from an attachment or a result's message link."""

from __future__ import annotations

from bot.app import App
from mjsim import Simulator
from tests.fakes.discord import FakeDiscord
from tests.test_discord_adapter import (  # noqa: F401 (app, fake: fixtures)
    app,
    channel_message,
    fake,
    flat,
    imagine,
    png,
)

IMG = "https://cdn.discordapp.com/attachments/1/2/p.png"


async def test_a_held_prompt_and_references_on_discord(
    app: App,  # noqa: F811
    sim: Simulator,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    await fake.slash("imagine", {"prompt": f"a fox --cref {IMG} --v 7"})
    held = await channel_message(fake, lambda m: "⛔ --cref" in (m.content or ""))
    assert flat(held) == ["✅ Fix and send", "✖️ Cancel"]
    assert sim.submits("imagine") == []
    before = list(fake.channel_messages())
    await fake.click(held, label="✅ Fix and send")
    await channel_message(fake, lambda m: m.attachments and m.buttons() and m not in before)
    assert sim.submits("imagine")[0].body["prompt"] == f"a fox --oref {IMG} --v 7"

    # /oref with an attachment: the provider's upload route gives it a URL
    inter = await fake.slash("oref", {"weight": 300}, attachments={"image": png((0, 0, 255))})
    kept = await inter.wait_message()
    assert "🎯 oref photo#1 · ow 300" in kept.content
    [upload] = sim.submits("upload-discord-images")
    await imagine(fake, "a hare --v 7")
    prompt = sim.submits("imagine")[1].body["prompt"]
    assert prompt.startswith("a hare --v 7 --oref http") and prompt.endswith(" --ow 300")
    assert len(upload.body["base64Array"]) == 1
    inter = await fake.slash("refs", {"clear": True})
    await inter.wait_message()
    await imagine(fake, "a owl --v 7")
    assert sim.submits("imagine")[2].body["prompt"] == "a owl --v 7"


async def test_the_settings_menu_on_discord_has_select_menus(
    app: App,  # noqa: F811
    sim: Simulator,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    """Model and stylize are select menus (as the official bot's /settings); a value with a
    dot (s1:model:v8.1) survives Discord's custom_id round trip."""
    opened = await fake.slash("settings")
    menu = await opened.wait_message()
    selects = [c for row in menu.components for c in row["components"] if c["type"] == 3]
    assert [s["custom_id"] for s in selects] == ["o1:model", "o1:stylize"]
    [model] = [s for s in selects if s["custom_id"] == "o1:model"]
    assert [(o["label"], o.get("default", False)) for o in model["options"]] == [
        ("V7", False),
        ("V8.1", True),
        ("niji 7", False),
    ]
    click = await fake.click(menu, "o1:model", values=["s1:model:v7"])
    await click.wait_message()
    await fake.wait_for(lambda: "Model: V7" in fake.message(menu.id).content)
    click = await fake.click(menu, "o1:model", values=["s1:model:v8.1"])
    await click.wait_message()
    await fake.wait_for(lambda: "Model: V8.1" in fake.message(menu.id).content)
    click = await fake.click(menu, "o1:stylize", values=["s1:stylize:high"])
    await click.wait_message()
    await fake.wait_for(lambda: "Stylize high" in fake.message(menu.id).content)
    await imagine(fake, "a fox")
    assert sim.submits("imagine")[0].body["prompt"] == "a fox --v 8.1 --s 250"
