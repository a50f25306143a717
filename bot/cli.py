"""``mjbot run | sim | check``: the command line, and nothing else.

Errors a user can fix (a missing key, a bad value) print one line and exit non-zero; only bugs
produce tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from bot import config as config_module
from bot import logs
from bot.config import Config, ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mjbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the bot with a config file")
    run.add_argument("--config", "-c", help="path to config.toml (env MJBOT_* overrides it)")

    sim = commands.add_parser("sim", help="serve the Midjourney-proxy simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8081)
    sim.add_argument("--time-scale", type=float, default=1.0, help="< 1 runs tasks faster")
    sim.add_argument("--api-key", default="", help="require this key (any auth scheme)")

    check = commands.add_parser("check", help="reach the API with the configured key")
    check.add_argument("--config", "-c", help="path to config.toml")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            cfg = _load(args.config, need_chat=True)
            return asyncio.run(_run(cfg))
        if args.command == "sim":
            logs.setup("INFO", [args.api_key])
            return asyncio.run(_sim(args.host, args.port, args.time_scale, args.api_key))
        if args.command == "check":
            cfg = _load(args.config, need_chat=False)
            return asyncio.run(_check(cfg))
    except ConfigError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


def _load(path: str | None, *, need_chat: bool) -> Config:
    cfg = config_module.load(path)
    cfg.validate(need_chat=need_chat)
    logs.setup(cfg.logging.level, cfg.secrets())
    return cfg


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run(cfg: Config) -> int:
    from bot.app import App

    app = App(cfg)
    try:
        await app.start()
        print("mjbot is running; Ctrl+C stops it", file=sys.stderr, flush=True)
        await _until_signal()
    finally:
        await app.stop()
    return 0


async def _sim(host: str, port: int, time_scale: float, api_key: str) -> int:
    from bot.sim import SimConfig, Simulator

    simulator = Simulator(SimConfig(api_key=api_key, time_scale=time_scale))
    url = await simulator.start(host, port)
    print(f"Midjourney-proxy simulator at {url}/mj (Ctrl+C stops it)", flush=True)
    try:
        await _until_signal()
    finally:
        await simulator.stop()
    return 0


async def _check(cfg: Config) -> int:
    from bot.checkup import checkup

    ok, lines = await checkup(cfg)
    for line in lines:
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
