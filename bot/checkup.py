"""``mjbot check``: reach the configured API with the key and report what works.

Only free, read-only routes are touched: a check must never spend money. With
``provider = "auto"`` the same probe the bot runs at start (bot/mj/probe.py) names the
detected profile; otherwise the configured one is shown.
"""

from __future__ import annotations

from bot.config import Config
from bot.mj.client import MjClient, MjError
from bot.mj.probe import PROBE_ID, resolve_profile
from bot.mj.profiles import SIM_FLAVOURS


async def checkup(cfg: Config) -> tuple[bool, list[str]]:
    mj = cfg.midjourney
    lines = [
        f"API: {mj.base_url}  provider: {mj.provider}  mode: {mj.mode or '(default)'}",
        f"storage: {cfg.storage.shown}",  # a PostgreSQL URL without its password
    ]
    simulator = None
    base_url = mj.base_url
    if base_url == "simulator":
        from mjsim import SimConfig, Simulator

        flavour = SIM_FLAVOURS[mj.provider]
        simulator = Simulator(SimConfig(api_key=mj.api_key.reveal(), flavour=flavour))
        base_url = await simulator.start()
        lines.append(f"  (built-in simulator, {flavour} flavour)")
    client = None
    ok = True
    try:
        profile, found = await resolve_profile(
            mj.provider,
            base_url,
            mj.api_key.reveal(),
            mj.profile_overrides(),
            timeout_s=min(mj.timeout_s, 15.0),
        )
        how = "detected" if found is not None else "configured"
        if found is not None and not found.reachable:
            how = "default: the API did not answer"
        lines.append(f"profile: {profile.name} ({how})")
        if found is not None:
            lines.extend(f"  probe: {line}" for line in found.evidence)
        lines.extend(f"  {line}" for line in profile.describe())
        if profile.hooks:
            lines.append("notifyHook: honoured (used when tracking.webhook_public_url is set)")
        else:
            lines.append("notifyHook: not honoured by this provider — mjbot will poll")
        client = MjClient(
            base_url, mj.api_key.reveal(), profile=profile, mode=mj.mode, timeout_s=15
        )
        for name, probe in (
            ("list-by-condition", lambda: client.list_by_condition([PROBE_ID])),
            ("fetch", lambda: client.fetch(PROBE_ID)),
        ):
            try:
                await probe()
                lines.append(f"  ok    {name}")
            except MjError as exc:
                ok = False
                lines.append(f"  FAIL  {name}: {exc.kind} {exc.status or ''}".rstrip())
    finally:
        if client is not None:
            await client.aclose()
        if simulator is not None:
            await simulator.stop()
    lines.append("result: the API answers with this key" if ok else "result: not usable yet")
    return ok, lines
