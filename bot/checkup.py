"""``mjbot check``: reach the configured API with the key and report what works.

Only free, read-only routes are touched: a check must never spend money.
"""

from __future__ import annotations

from bot.config import Config
from bot.mj.client import MjClient, MjError

PROBE_ID = "0000000000000000"  # no such task: a cheap authenticated round trip


async def checkup(cfg: Config) -> tuple[bool, list[str]]:
    mj = cfg.midjourney
    lines = [f"API: {mj.base_url}  auth: {mj.auth_header}  mode: {mj.mode or '(default)'}"]
    simulator = None
    base_url = mj.base_url
    if base_url == "simulator":
        from bot.sim import SimConfig, Simulator

        simulator = Simulator(SimConfig(api_key=mj.api_key.reveal()))
        base_url = await simulator.start()
    client = MjClient(
        base_url, mj.api_key.reveal(), auth_header=mj.auth_header, mode=mj.mode, timeout_s=15
    )
    ok = True
    try:
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
        await client.aclose()
        if simulator is not None:
            await simulator.stop()
    lines.append("result: the API answers with this key" if ok else "result: not usable yet")
    return ok, lines
