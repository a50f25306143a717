"""Discord says what a second press did: a finished U is posted again with a link to its
result and nothing is submitted; a finished V starts a new job and says so. The real
discord.py against the fake Discord, a real App and the simulator (tests/test_discord_adapter)."""

from __future__ import annotations

from bot.app import App
from mjsim import Simulator
from tests.fakes.discord import FakeDiscord
from tests.test_discord_adapter import (  # noqa: F401 (app and fake are fixtures)
    app,
    channel_message,
    fake,
    imagine,
    is_result,
    upscale,
)


async def test_a_finished_u_is_shown_again_with_a_link(
    app: App,  # noqa: F811
    sim: Simulator,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    _, grid = await imagine(fake, "a paper lantern")
    result = await upscale(fake, grid, "U1")
    before = list(fake.channel_messages())
    again = await fake.click(grid, label="U1")
    notice = await again.wait_message()
    link = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{result.id}"
    assert notice.ephemeral and "posted again" in notice.content
    assert "submitted" not in notice.content.split("(")[0]  # not "✅ U1 submitted"
    assert notice.content.endswith(link)
    shown = await channel_message(fake, is_result(*before))
    assert any("Vary (Region)" in (label or "") for row in shown.buttons() for label, _ in row)
    assert len(sim.submits("action")) == 1


async def test_a_finished_v_starts_a_new_job_and_says_so(
    app: App,  # noqa: F811
    sim: Simulator,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    _, grid = await imagine(fake, "a paper crane")
    await upscale(fake, grid, "V1")
    click = await fake.click(grid, label="V1")
    notice = await click.wait_message()
    assert notice.ephemeral and "a new job started" in notice.content
    await fake.wait_for(lambda: len(sim.submits("action")) == 2, timeout=20)
