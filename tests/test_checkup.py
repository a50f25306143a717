"""``mjbot check`` (a subprocess) against every simulator flavour: the detected profile."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from mjsim import SimConfig, Simulator
from tests.harness import ROOT, write_config

KEY = "sk-check-0123456789"


async def check(tmp_path: Path, **midjourney: object) -> tuple[int, str]:
    config = write_config(tmp_path / "check.toml", {"midjourney": dict(midjourney)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "check",
        "--config",
        str(config),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


@pytest.mark.parametrize(
    ("flavour", "detected", "auth"),
    [
        ("plus", "plus", "mj-api-secret"),
        ("java", "midjourney-proxy", "mj-api-secret"),
        ("openai-hk", "openai-hk", "bearer"),
        ("trueai", "trueai", "raw-authorization"),
        ("new-api", "new-api", "bearer"),
        ("superset", "openai-hk", "bearer"),  # the permissive default flavour: nearest profile
    ],
)
async def test_check_prints_the_detected_profile(tmp_path, flavour, detected, auth):
    sim = Simulator(SimConfig(flavour=flavour, api_key=KEY))
    await sim.start()
    try:
        code, out = await check(tmp_path, base_url=sim.base_url, api_key=KEY, provider="auto")
    finally:
        await sim.stop()
    assert code == 0, out
    assert f"profile: {detected} (detected)" in out
    assert f"  auth: {auth}" in out
    assert "result: the API answers with this key" in out
    assert KEY not in out
    hooks = "notifyHook: not honoured by this provider — mjbot will poll"
    assert (hooks in out) is (flavour == "new-api")
    if flavour == "java":
        assert "U/V/🔄 through /submit/change" in out
    assert not sim.tasks  # a check never spends money


async def test_check_shows_a_configured_profile_and_a_wrong_scheme(tmp_path):
    sim = Simulator(SimConfig(flavour="trueai", api_key=KEY))
    await sim.start()
    try:
        code, out = await check(tmp_path, base_url=sim.base_url, api_key=KEY, provider="trueai")
        assert code == 0 and "profile: trueai (configured)" in out, out
        # The same provider forced to Bearer: trueai refuses it, and the check says so.
        code, out = await check(
            tmp_path, base_url=sim.base_url, api_key=KEY, provider="trueai", auth_header="bearer"
        )
        assert code == 1 and "FAIL  fetch: auth 401" in out, out
    finally:
        await sim.stop()


async def test_check_against_the_built_in_simulator(tmp_path):
    code, out = await check(tmp_path, base_url="simulator", provider="new-api")
    assert code == 0, out
    assert "(built-in simulator, new-api flavour)" in out
    assert "profile: new-api (configured)" in out
