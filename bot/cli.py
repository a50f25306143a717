"""``mjbot run | demo | sim | check | status | migrate``: the command line, and nothing else.

Errors a user can fix (a missing key, a bad value) print one line and exit non-zero; only bugs
produce tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import math
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from bot import config as config_module
from bot import logs
from bot.config import Config, ConfigError, SimulatorConfig
from bot.dblock import DatabaseInUse
from bot.store import StoreUnavailable, shown_url

if TYPE_CHECKING:
    from bot.tracking import Tracker


def _port(text: str) -> int:
    """A TCP port (0: any free one); a bad one is argparse's one usage line, not a traceback."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text!r}")
    return port


def _time_scale(text: str) -> float:
    """The simulator's speed, within the range ``simulator.time_scale`` has in the config
    (NaN passed ``type=float`` and broke every submit)."""
    low, high = next(f for f in fields(SimulatorConfig) if f.name == "time_scale").metadata["range"]
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not low <= scale <= high:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be a number from {low:g} to {high:g}, not {text!r}")
    return scale


def main(argv: Sequence[str] | None = None, *, tracker: type[Tracker] | None = None) -> int:
    """Run one command; ``tracker`` replaces the task tracker of ``mjbot run`` (the
    benchmark's naive poller, bench/naive_bot.py)."""
    parser = argparse.ArgumentParser(prog="mjbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the bot with a config file")
    run.add_argument("--config", "-c", help="path to config.toml (env MJBOT_* overrides it)")

    demo = commands.add_parser(
        "demo", help="the local playground: simulator + web chat, no tokens needed"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=8080)
    demo.add_argument("--config", "-c", help="use this config's Midjourney API, not the simulator")

    sim = commands.add_parser("sim", help="serve the Midjourney-proxy simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=_port, default=8081)
    sim.add_argument("--time-scale", type=_time_scale, default=1.0, help="< 1 runs tasks faster")
    sim.add_argument("--api-key", default="", help="require this key (any auth scheme)")
    sim.add_argument(
        "--flavour",
        default="superset",
        choices=("superset", "plus", "openai-hk", "java", "trueai", "new-api"),
        help="the provider whose differences to reproduce (auth, prefixes, codes, buttons)",
    )

    check = commands.add_parser("check", help="reach the API with the configured key")
    check.add_argument("--config", "-c", help="path to config.toml")

    status = commands.add_parser("status", help="what a running bot is doing (or the database)")
    status.add_argument("--config", "-c", help="path to config.toml")

    migrate = commands.add_parser(
        "migrate",
        help="bring the configured database's schema up to date, or copy a SQLite"
        " deployment into PostgreSQL (--to)",
    )
    migrate.add_argument("--config", "-c", help="path to config.toml")
    migrate.add_argument(
        "--to",
        metavar="URL",
        help="postgresql://user:password@host:port/database: copy every table of the"
        " configured SQLite store there (stop the bot first)",
    )
    migrate.add_argument(
        "--replace",
        action="store_true",
        help="with --to: a target that already has rows is emptied first (else refused)",
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            cfg = _load(args.config, need_chat=True)
            _fewer_malloc_arenas()
            return _serve(_run(cfg, tracker))
        if args.command == "demo":
            demo_cfg = _load(args.config, need_chat=False) if args.config else None
            _fewer_malloc_arenas()  # the playground keeps uploads: the same threads as run
            if demo_cfg is None:
                logs.setup("INFO")
            return _serve(_demo(args.host, args.port, demo_cfg))
        if args.command == "sim":
            logs.setup("INFO", [args.api_key])
            return asyncio.run(
                _sim(args.host, args.port, args.time_scale, args.api_key, args.flavour)
            )
        if args.command == "status":
            cfg = _load(args.config, need_chat=False)
            return asyncio.run(_status(cfg))
        if args.command == "check":
            cfg = _load(args.config, need_chat=False)
            return asyncio.run(_check(cfg))
        if args.command == "migrate":
            cfg = _load(args.config, need_chat=False, more_secrets=_password_of(args.to))
            return asyncio.run(_migrate(cfg, args.to, replace=args.replace))
    except ConfigError as exc:
        print(f"mjbot: {exc}", file=sys.stderr)
        return 2
    except (DatabaseInUse, StoreUnavailable) as exc:  # another mjbot holds it; unreachable
        print(f"mjbot: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken
        print(f"mjbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _load(path: str | None, *, need_chat: bool, more_secrets: Sequence[str] = ()) -> Config:
    cfg = config_module.load(path)
    cfg.validate(need_chat=need_chat)
    logs.setup(cfg.logging.level, [*cfg.secrets(), *more_secrets])
    if cfg.ignored:
        logging.getLogger("bot.config").warning(
            "%s: accepted and ignored (these settings have no effect)", ", ".join(cfg.ignored)
        )
    return cfg


def _on_signal() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets, from now on (instead of ending the process at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _until_signal() -> None:
    await _on_signal().wait()


def _serve(main: Coroutine[Any, Any, int]) -> int:
    """Run a long-lived command (``run``, ``demo``) on uvloop where it is installed (a
    dependency everywhere but Windows), else on asyncio's own loop.

    Why: once results stopped being re-encoded, the event loop itself (its selector, sockets
    and callbacks) was the largest part of one instance's CPU under py-spy; uvloop took 10-14 %
    off ``bench.run``'s CPU seconds per 100 tasks. The short commands stay on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _fewer_malloc_arenas() -> None:
    """Cap glibc's malloc arenas at two unless MALLOC_ARENA_MAX says otherwise.

    Pillow conversions, aiosqlite and downloads run in threads; by default each thread may get
    its own arena, and the fragmented arenas keep the resident size high under load.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


async def _run(cfg: Config, tracker: type[Tracker] | None = None) -> int:
    from bot.app import App

    app = App(cfg) if tracker is None else App(cfg, tracker=tracker)
    # Listening before the start: a SIGTERM while starting (an orchestrator that changed its
    # mind) stops what started, cleanly, instead of killing the process half way.
    stop = _on_signal()
    starting = asyncio.create_task(app.start())
    signalled = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()  # App.start stops what it opened when it is interrupted
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return 0
    signalled.cancel()
    await starting  # a start that failed has already stopped what it opened: its error
    try:
        print("mjbot is running; Ctrl+C stops it", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await app.stop()
    return 0


async def _demo(host: str, port: int, cfg: Config | None) -> int:
    from bot.app import run_demo

    demo = asyncio.create_task(run_demo(host, port, cfg))
    stop = asyncio.create_task(_until_signal())
    done, _ = await asyncio.wait({demo, stop}, return_when=asyncio.FIRST_COMPLETED)
    for task in (demo, stop):
        task.cancel()
    await asyncio.gather(demo, stop, return_exceptions=True)
    error = demo.exception() if demo in done else None
    if error is not None:
        raise error
    return 0


async def _sim(
    host: str, port: int, time_scale: float, api_key: str, flavour: str = "superset"
) -> int:
    from mjsim import SimConfig, Simulator

    simulator = Simulator(SimConfig(api_key=api_key, time_scale=time_scale, flavour=flavour))
    url = await simulator.start(host, port)
    print(f"Midjourney-proxy simulator at {url}/mj (Ctrl+C stops it)", flush=True)
    try:
        await _until_signal()
    finally:
        await simulator.stop()
    return 0


async def _status(cfg: Config) -> int:
    import json

    import httpx

    host, _, port = cfg.tracking.listen.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            document = (await http.get(f"http://{host}:{port}/status")).json()
        source = "running bot"
    except (httpx.HTTPError, ValueError):
        from bot.app import open_store

        # Read-only: it takes no lock and writes nothing, so it works beside a running bot
        # whose status page is not reachable from here.
        from bot.tracking.status import instances

        store = await open_store(cfg.storage, read_only=True)
        try:
            live = await store.live_tasks()
            fleet = await instances(store, live)
        finally:
            await store.close()
        document = {
            "tasks_in_flight": len(live),
            "note": f"no bot answered on {host}:{port}",
            "instances": fleet,
        }
        source = "database"
    print(f"mjbot status ({source}):")
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


def _password_of(url: str | None) -> list[str]:
    """The secrets of a URL given on the command line (kept out of the logs)."""
    if not url:
        return []
    import urllib.parse

    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        return [url]
    return [url, *([urllib.parse.unquote(password)] if password else [])]


async def _migrate(cfg: Config, to: str | None, *, replace: bool) -> int:
    """Without ``to``: open the configured store, which applies its migrations, and print its
    rows. With it: copy the configured SQLite store into that PostgreSQL database."""
    from bot.store.postgres import PostgresStore
    from bot.store.sqlite import SQLiteStore

    if to is None:  # the stores migrate when they open (and refuse a database in use)
        if cfg.storage.kind == "postgresql":
            store = await PostgresStore.open(cfg.storage.url.reveal())
            try:
                counts = await store.counts()
            finally:
                await store.close()
        else:
            await (await SQLiteStore.open(cfg.storage.sqlite_path)).close()
            counts = {}
        print(f"mjbot migrate: {cfg.storage.shown} is up to date")
        for table, count in counts.items():
            print(f"  {table:<10} {count:>9}")
        return 0
    from bot.store.transfer import SchemaMismatch, TargetNotEmpty, copy

    if to.partition("://")[0].lower() not in ("postgresql", "postgres"):
        print(f"mjbot: --to must be a postgresql:// URL, not {shown_url(to)!r}", file=sys.stderr)
        return 2
    if cfg.storage.kind != "sqlite":
        print(
            f"mjbot: the configured store is {cfg.storage.shown}, already PostgreSQL;"
            " --to copies a SQLite store (its storage.path or sqlite:/// storage.url)",
            file=sys.stderr,
        )
        return 2
    source_path = cfg.storage.sqlite_path
    if not os.path.exists(source_path):  # noqa: ASYNC240 (one check before anything runs)
        print(f"mjbot: no SQLite database at {source_path}", file=sys.stderr)
        return 1
    print(f"mjbot migrate: SQLite {source_path} -> {shown_url(to)}")
    # The source is opened as a writer: it takes the file lock, so a bot still running on it
    # is refused here (a copy while it writes would miss its last rows).
    source = await SQLiteStore.open(source_path)
    try:
        target = await PostgresStore.open(to)
        try:
            copied = await copy(source, target, replace=replace)
        except TargetNotEmpty as exc:
            print(f"mjbot: {shown_url(to)}: {exc}; --replace empties it first", file=sys.stderr)
            return 1
        except SchemaMismatch as exc:
            print(f"mjbot: {exc}; nothing was copied", file=sys.stderr)
            return 1
        finally:
            await target.close()
    finally:
        await source.close()
    print(f"  {'table':<10} {'SQLite':>9} {'PostgreSQL':>11}")
    for row in copied:
        print(f"  {row.table:<10} {row.source:>9} {row.target:>11}")
    lost = [row.table for row in copied if row.source != row.target]
    if lost:
        print(f"mjbot: the counts differ for {', '.join(lost)}", file=sys.stderr)
        return 1
    total = sum(row.target for row in copied)
    print(f"done: {total} rows in {len(copied)} tables; point storage.url at the new database")
    return 0


async def _check(cfg: Config) -> int:
    from bot.app import platform_checks
    from bot.checkup import checkup

    ok, lines = await checkup(cfg)
    lines[-1:-1] = await platform_checks(cfg)  # before the result line (the API's)
    for line in lines:
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
