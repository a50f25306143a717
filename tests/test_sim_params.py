"""The simulator fails a job whose parameter its model lacks, as Midjourney does (mjsim/params)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mjsim import SimConfig, Simulator
from mjsim.params import refusal

IMG = "https://cdn.discordapp.com/attachments/1/2/p.png"


@pytest.mark.parametrize(
    ("prompt", "bot", "reason"),
    [
        ("a fox", "MID_JOURNEY", None),
        ("a fox --hd --q 4", "MID_JOURNEY", None),  # V8.1 is the default
        ("a fox --draft --v 7", "MID_JOURNEY", None),
        (f"a fox --oref {IMG} --ow 200 --v 7", "MID_JOURNEY", None),
        (f"a fox --cref {IMG} --v 6.1", "MID_JOURNEY", None),
        ("a fox --video 1 --motion high --loop", "MID_JOURNEY", None),
        ("a fox --zz 3", "MID_JOURNEY", None),  # unknown: let through
        (f"a fox --cref {IMG}", "MID_JOURNEY", "--cref is not compatible with --v 8.1"),
        (f"a fox --cref {IMG} --v 7", "MID_JOURNEY", "--cref is not compatible with --v 7"),
        ("a fox --hd --v 7", "MID_JOURNEY", "--hd is not compatible with --v 7"),
        ("a fox --q 4 --v 7", "MID_JOURNEY", "--q 4 is not compatible with --v 7"),
        ("a fox --draft", "NIJI_JOURNEY", "--draft is not compatible with niji 7"),
        ("a fox --draft --v 6.1", "MID_JOURNEY", "--draft is not compatible with --v 6.1"),
        (f"a fox --oref {IMG} --v 6", "MID_JOURNEY", "--oref is not compatible with --v 6"),
        ("a fox --motion high", "MID_JOURNEY", "--motion is only for videos"),
        ("a fox --s 5000", "MID_JOURNEY", "Invalid value for --s (0-1000)"),
        ("a fox --iw 4", "MID_JOURNEY", "Invalid value for --iw (0-3)"),
    ],
)
def test_refusals(prompt: str, bot: str, reason: str | None) -> None:
    got = refusal(prompt, bot)
    assert got == (f"[Invalid parameter] {reason}" if reason else None)


async def test_the_job_is_accepted_then_fails_with_the_reason() -> None:
    sim = Simulator(SimConfig(api_key="k", time_scale=0.02))
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, headers={"mj-api-secret": "k"}) as c:
            body = {"prompt": "a fox --hd --v 7"}
            answer = (await c.post("/mj/submit/imagine", json=body)).json()
            assert answer["code"] == 1  # the proxy passes it on: Midjourney refuses it later
            for _ in range(200):
                task = (await c.get(f"/mj/task/{answer['result']}/fetch")).json()
                if task["status"] in ("SUCCESS", "FAILURE"):
                    break
                await asyncio.sleep(0.05)
        assert task["status"] == "FAILURE"
        assert task["failReason"] == "[Invalid parameter] --hd is not compatible with --v 7"
    finally:
        await sim.stop()
