"""botType on the wire: niji 7 runs on its own bot where the provider takes botType (trueai,
Plus), and nothing is sent where it does not (openai-hk's document has no such field)."""

from __future__ import annotations

import pytest

from bot.mj.client import MjClient
from bot.mj.profiles import SIM_FLAVOURS, profile_for
from mjsim import SimConfig, Simulator

KEY = "sk-bottype-0123456789"


@pytest.mark.parametrize(
    ("provider", "sent", "task_bot"),
    [
        ("trueai", "NIJI_JOURNEY", "NIJI_JOURNEY"),
        ("plus", "NIJI_JOURNEY", "NIJI_JOURNEY"),
        ("openai-hk", None, "MID_JOURNEY"),
    ],
)
async def test_niji_goes_to_the_niji_bot_where_the_provider_takes_bot_type(
    provider: str, sent: str | None, task_bot: str
) -> None:
    sim = Simulator(SimConfig(api_key=KEY, time_scale=0.05, flavour=SIM_FLAVOURS[provider]))
    await sim.start()
    try:
        client = MjClient(sim.base_url, KEY, profile=profile_for(provider))
        async with client:
            submitted = await client.imagine("a fox", bot_type="NIJI_JOURNEY")
            task = await client.fetch(submitted.task_id)
        [request] = sim.submits("imagine")
        assert request.body.get("botType") == sent
        assert sim.tasks[submitted.task_id].bot_type == task_bot
        assert task is not None
        if sent:  # the Plus task shape says which bot ran it (properties.botType)
            assert task.raw["properties"]["botType"] == task_bot
    finally:
        await sim.stop()


async def test_an_unknown_bot_type_is_refused_before_a_task_exists() -> None:
    sim = Simulator(SimConfig(api_key=KEY, time_scale=0.05, flavour="trueai"))
    await sim.start()
    try:
        async with MjClient(sim.base_url, KEY, profile=profile_for("trueai")) as client:
            refused = await client.imagine("a fox", bot_type="DALLE")
        assert refused.code == 4 and not sim.tasks
    finally:
        await sim.stop()
