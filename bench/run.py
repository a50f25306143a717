"""``python -m bench.run``: the delivery benchmarks, side by side, with the targets of issue 4.

    python -m bench.run                 # 500 tasks / 100 chats x 3 modes + 1,000-task RSS run
                                        # (~6.5 min on 2 cores)
    python -m bench.run --quick         # 100 tasks / 20 chats, a smoke run (~2.5 min)
    python -m bench.run --stress        # the same 500 in flight with ~18 s tasks
    python -m bench.run --modes webhook,polling --tasks 200 --chats 40 --no-rss
    python -m bench.run --global-limit  # also enforce Telegram's ~30 msg/s per bot
    python -m bench.run --instances 3 --store postgresql   # a fleet behind nginx beside one bot

Prints one table (rows = figures, columns = modes), then PASS/MISS per target. Figures are
printed, never asserted (not part of CI). ``--json PATH`` keeps every raw figure, ``--markdown``
prints the table as Markdown too (for the README's Performance section).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.metrics import percentile
from bench.scenario import MODES, Load, Result, run_mode

NAIVE_FETCH_EVERY_S = 3.0


def _machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")),
                "?",
            )
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _f(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _hooks(status: dict[str, Any]) -> str:
    """What the bot's metrics say of callbacks: received, shown as hints, confirmed by
    how many list requests."""
    hooks, tracking = status.get("webhook", {}), status.get("tracking", {})
    if not hooks.get("received"):
        return "—"
    if "shown" not in hooks:  # a --baseline bot: every callback was confirmed
        return f"{hooks['received']} / — / {hooks.get('confirmed', 0)}"
    confirmed = f"{hooks.get('confirmed', 0)} in {tracking.get('confirms', 0)} requests"
    return f"{hooks['received']} / {hooks['shown']} / {confirmed}"


def _money(status: dict[str, Any]) -> str:
    deliveries, ledger = status.get("deliveries", {}), status.get("ledger", {})
    if not ledger:
        return "—"
    results = deliveries.get("results", "—")
    return f"{results} / {ledger.get('charges', 0)} / {ledger.get('refunds', 0)}"


def _ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000.0


def _failover(r: Result) -> str:
    if not r.failover_held and r.failover_s is None:
        return "—"
    return f"{r.failover_held} / {_f(r.failover_s, 1) if r.failover_s is not None else 'none'}"


Row = tuple[str, Callable[[Result], str]]

ROWS: list[Row] = [
    ("how tasks are followed", lambda r: r.how),
    ("tasks / chats", lambda r: f"{r.tasks} / {r.chats}"),
    ("instances / store", lambda r: f"{r.instances} / {r.store}"),
    ("peak tasks in flight", lambda r: str(r.peak_in_flight)),
    ("delivered exactly once", lambda r: f"{r.delivered_once}/{r.tasks}"),
    ("duplicates / missing", lambda r: f"{r.duplicates} / {r.missing}"),
    ("API requests per task", lambda r: _f(r.per_task(r.api_requests), 2)),
    ("  tracking (fetch+list)/task", lambda r: _f(r.per_task(r.tracking_requests), 3)),
    ("  by route", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.api_by_route.items()))),
    ("image downloads per task", lambda r: _f(r.per_task(r.media_gets), 1)),
    ("callbacks received / shown / confirmed", lambda r: _hooks(r.status)),
    ("bot's count: results / charges / refunds", lambda r: _money(r.status)),
    ("added latency p50 (ms)", lambda r: _f(r.latency_ms(50))),
    ("added latency p95 (ms)", lambda r: _f(r.latency_ms(95))),
    ("added latency p99 (ms)", lambda r: _f(r.latency_ms(99))),
    ("added latency max (ms)", lambda r: _f(r.latency_ms(100))),
    (
        "  tracking p50/p99 (ms)",
        lambda r: f"{_f(_ms(r.tracking_s, 50))} / {_f(_ms(r.tracking_s, 99))}",
    ),
    (
        "  delivery p50/p99 (ms)",
        lambda r: f"{_f(_ms(r.delivery_s, 50))} / {_f(_ms(r.delivery_s, 99))}",
    ),
    ("Telegram calls per task", lambda r: _f(r.per_task(r.tg_calls), 2)),
    ("  by method", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.tg_by_method.items()))),
    ("peak Telegram sends+edits/s", lambda r: str(r.tg_peak_per_s)),
    ("429s received / unhandled", lambda r: f"{r.tg_429} / {r.unhandled_429}"),
    ("peak RSS (MB), per instance", lambda r: " / ".join(_f(v, 1) for v in r.rss_per_instance_mb)),
    ("CPU s per 100 tasks (all instances)", lambda r: _f(r.cpu_s * 100 / r.tasks, 2)),
    (
        "database transactions per task",
        lambda r: "—" if r.db_transactions is None else _f(r.per_task(r.db_transactions), 1),
    ),
    ("busiest second (% of a core)", lambda r: _f(r.cpu_peak_core * 100)),
    ("harness CPU (% of a core)", lambda r: _f(100 * r.harness_cpu_s / max(r.wall_s, 1e-9))),
    ("failover: tasks held / kill -9 -> first result (s)", lambda r: _failover(r)),
    ("error lines in bot log", lambda r: str(len(r.log_errors))),
    ("wall time (s)", lambda r: _f(r.wall_s, 1)),
]


def table(results: list[Result], labels: list[str], markdown: bool = False) -> str:
    cells = [[name, *(fn(r) for r in results)] for name, fn in ROWS]
    head = ["figure", *labels]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    # long "by ..." cells are wrapped under the table instead of widening every column
    short = [row for row in cells if not row[0].startswith("  by ")]
    widths = [max(len(str(row[i])) for row in [head, *short]) for i in range(len(head))]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in short]
    for row in cells:
        if row[0].startswith("  by "):
            for label, value in zip(labels, row[1:], strict=True):
                out.append(f"{row[0].strip()} [{label}]: {value}")
    return "\n".join(out)


@dataclasses.dataclass
class Verdict:
    target: str
    measured: str
    ok: bool | None  # None: not measured in this run


def verdicts(by: dict[str, Result], poll_interval: float) -> list[Verdict]:
    out: list[Verdict] = []
    web = by.get("webhook")
    poll = by.get("polling")
    naive = by.get("naive")
    rss = by.get("polling@rss")

    def add(target: str, result: Result | None, measure: Callable[[Result], tuple[str, bool]]):
        if result is None:
            out.append(Verdict(target, "not run", None))
        else:
            text, ok = measure(result)
            out.append(Verdict(target, text, ok))

    add(
        "webhook p50 added latency < 150 ms",
        web,
        lambda r: (f"{_f(r.latency_ms(50))} ms", r.latency_ms(50) < 150),
    )
    add(
        "webhook p99 added latency < 1 s",
        web,
        lambda r: (f"{_f(r.latency_ms(99))} ms", r.latency_ms(99) < 1000),
    )
    add(
        "webhook tracking requests per task < 0.3 (issue 14)",
        web,
        lambda r: (
            f"{_f(r.per_task(r.tracking_requests), 3)}",
            r.per_task(r.tracking_requests) < 0.3,
        ),
    )
    limit = poll_interval / 2 * 1.1
    add(
        f"polling p50 <= ~half the poll interval ({poll_interval:g} s: <= {limit:.2f} s)",
        poll,
        lambda r: (f"{_f(r.latency_ms(50))} ms", r.latency_ms(50) <= limit * 1000),
    )
    if poll is not None and naive is not None:
        a = naive.per_task(naive.tracking_requests)
        b = poll.per_task(poll.tracking_requests)
        ratio = a / b if b else math.inf
        all_a, all_b = naive.per_task(naive.api_requests), poll.per_task(poll.api_requests)
        out.append(
            Verdict(
                "batched polling >= 20x fewer tracking requests/task than naive",
                f"{ratio:.0f}x ({a:.2f} vs {b:.3f}; all requests incl. submit: "
                f"{all_a / all_b:.1f}x)",
                ratio >= 20,
            )
        )
    else:
        target = "batched polling >= 20x fewer requests/task than naive"
        out.append(Verdict(target, "not run", None))
    ran = list(by.values())
    if ran:
        unhandled = sum(r.unhandled_429 for r in ran)
        got = sum(r.tg_429 for r in ran)
        measured = f"{unhandled} unhandled of {got} received"
        out.append(Verdict("zero unhandled 429s", measured, not unhandled))
        bad = {
            label: (r.duplicates, r.missing, r.not_success)
            for label, r in by.items()
            if r.duplicates or r.missing or r.not_success
        }
        total = sum(r.tasks for r in ran)
        out.append(
            Verdict(
                "every task delivered exactly once",
                "all " + str(total) if not bad else f"(dup, missing, failed): {bad}",
                not bad,
            )
        )
    for label, fleet in by.items():
        one = by.get(label.split(" x", 1)[0])
        if fleet.instances == 1 or one is None:
            continue
        ratio = fleet.latency_ms(50) / one.latency_ms(50) if one.latency_ms(50) else math.inf
        out.append(
            Verdict(
                f"{label}: webhook p50 within 1.5x of one SQLite instance (issue 14)",
                f"{_f(fleet.latency_ms(50))} ms vs {_f(one.latency_ms(50))} ms ({ratio:.2f}x)",
                ratio <= 1.5,
            )
        )
        if fleet.failover_held:
            took = fleet.failover_s
            out.append(
                Verdict(
                    f"{label}: failover under 30 s (issue 14)",
                    f"{_f(took, 1)} s" if took is not None else "no held task delivered after",
                    took is not None and took < 30,
                )
            )
        a, b = fleet.per_task(fleet.api_requests), one.per_task(one.api_requests)
        out.append(
            Verdict(
                f"{label}: API requests per task within 10% of one instance (issue 14)",
                f"{a:.2f} vs {b:.2f} ({(a / b - 1) * 100:+.1f}%)",
                abs(a / b - 1) <= 0.10,
            )
        )
    target = "peak RSS < 250 MB at 1,000 tasks in flight"
    if rss is not None and rss.tasks < 1000:  # --quick / --rss-tasks: not the target's load
        measured = f"{_f(rss.peak_rss_mb, 1)} MB at {rss.peak_in_flight} in flight (not judged)"
        out.append(Verdict(target, measured, None))
    else:
        add(
            target,
            rss,
            lambda r: (
                f"{_f(r.peak_rss_mb, 1)} MB at {r.peak_in_flight} in flight",
                r.peak_rss_mb < 250 and r.peak_in_flight >= 1000,
            ),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=2.0,
        help="simulator real s per simulated s (2.0: a grid takes ~44 s)",
    )
    parser.add_argument(
        "--chat-gap", type=float, default=6.0, help="seconds between two /imagine in one chat"
    )
    parser.add_argument(
        "--stress",
        action="store_true",
        help="time scale 0.8, chat gap 2 s: the same 500 in flight at ~2.5x the arrival rate",
    )
    parser.add_argument("--modes", help="default webhook,polling,naive (with --instances: webhook)")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="N > 1: each webhook mode also runs N instances behind nginx (deploy/nginx.conf),"
        " as '<mode> xN <store>', beside the one-instance SQLite column (skips the RSS run)",
    )
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgresql"],
        help="the extra column's store (default with --instances: postgresql): one PostgreSQL"
        " database for every instance, durable as deployed",
    )
    parser.add_argument("--poll-interval", type=float, default=MODES["polling"].poll_interval_s)
    parser.add_argument("--rss-tasks", type=int, default=1000)
    parser.add_argument("--rss-chats", type=int, default=200)
    parser.add_argument("--no-rss", action="store_true", help="skip the 1,000-task RSS run")
    parser.add_argument("--global-limit", action="store_true", help="Telegram's 30 msg/s too")
    parser.add_argument(
        "--cdn-delay",
        type=float,
        default=0.0,
        help="seconds each image download waits first (a real CDN is not on localhost)",
    )
    parser.add_argument(
        "--image-size", type=int, default=2048, help="simulator grid size (Midjourney: 2048)"
    )
    parser.add_argument(
        "--photo-grids",
        action="store_true",
        help="grids with a photograph's grain: PNGs of a real grid's weight (~6.6 MB at 2048 px)",
    )
    parser.add_argument("--quick", action="store_true", help="100 tasks / 20 chats, smaller RSS")
    parser.add_argument("--json", help="write every raw figure here")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--profile", help="directory: run each bot under cProfile, write <mode>.prof there"
    )
    parser.add_argument(
        "--keep", help="directory: keep each bot's log and per-task timelines in <mode>/"
    )
    parser.add_argument(
        "--baseline",
        help="another source tree of mjbot (e.g. `git worktree add /tmp/base <commit>`): each"
        " mode also runs the bot from there, as <mode>@base, beside this tree's",
    )
    parser.add_argument(
        "--failover",
        action="store_true",
        help="with --instances: kill -9 one instance once a quarter of the tasks is delivered,"
        " time to the first result of a task it held",
    )
    args = parser.parse_args(argv)
    if args.stress:
        args.time_scale, args.chat_gap = 0.8, 2.0
    if args.quick:
        args.tasks, args.chats, args.rss_tasks, args.rss_chats = 100, 20, 200, 40
        args.time_scale, args.chat_gap = 0.6, 2.0

    args.store = args.store or ("postgresql" if args.instances > 1 else "sqlite")
    fleet = args.instances > 1 or args.store == "postgresql"
    if args.instances > 1 and args.store == "sqlite":
        parser.error("several instances need one shared database: --store postgresql")
    args.no_rss = args.no_rss or fleet
    modes = args.modes or ("webhook" if fleet else "webhook,polling,naive")
    names = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    base = Load(
        tasks=args.tasks,
        chats=args.chats,
        time_scale=args.time_scale,
        chat_gap_s=args.chat_gap,
        global_limit=args.global_limit,
        image_size=args.image_size,
        cdn_delay_s=args.cdn_delay,
        photo_grids=args.photo_grids,
    )
    print(f"mjbot delivery benchmark — {_machine()}")
    grid_s = 22.2 * args.time_scale
    grain = " with a photograph's grain" if args.photo_grids else ""
    print(
        f"load: {args.tasks} tasks over {args.chats} chats, one /imagine per chat every "
        f"{args.chat_gap:g} s ({args.tasks * args.chat_gap / args.chats:.0f} s to send all); "
        f"a {args.image_size}px grid{grain} takes ~{grid_s:.1f} s ±25% "
        f"(time scale {args.time_scale:g}); "
        f"fake Telegram limits: 1 msg/s per chat (burst 3), 20/min per group"
        + (", 30/s per bot" if args.global_limit else " (per-bot 30/s off)")
    )
    print(
        f"modes: webhook (notifyHook + list poll every {MODES['webhook'].poll_interval_s:g} s,"
        f" x3 while hooks flow), polling (list-by-condition every {args.poll_interval:g} s),"
        f" naive (one fetch per task every {NAIVE_FETCH_EVERY_S:g} s)"
    )
    runs: list[tuple[str, Result]] = []
    started = time.time()

    def prof(label: str) -> str:
        if not args.profile:
            return ""
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        return str(Path(args.profile).resolve() / f"{label}.prof")

    def kept(label: str) -> str:
        return str(Path(args.keep) / label) if args.keep else ""

    baseline = Path(args.baseline).resolve() if args.baseline else None

    async def go() -> None:
        for name in names:
            spec = MODES[name]
            if name == "polling":
                spec = dataclasses.replace(spec, poll_interval_s=args.poll_interval)
            if baseline is not None and spec.default_settings:
                label = f"{name}@base"
                print(f"-- {label} ({baseline})")
                result = await run_mode(
                    spec, base, profile=prof(label), keep=kept(label), root=baseline
                )
                runs.append((label, result))
            print(f"-- {name}")
            runs.append((name, await run_mode(spec, base, profile=prof(name), keep=kept(name))))
            if fleet and spec.webhook:
                label = f"{name} x{args.instances} {args.store}"
                load = dataclasses.replace(
                    base,
                    instances=args.instances,
                    store=args.store,
                    failover=args.failover and args.instances > 1,
                )
                if baseline is not None:  # the same fleet on the other tree, beside it
                    based = f"{label}@base"
                    print(f"-- {based} (behind nginx, {baseline})")
                    result = await run_mode(
                        spec, load, profile=prof(based), keep=kept(based), root=baseline
                    )
                    runs.append((based, result))
                print(f"-- {label} (behind nginx)")
                result = await run_mode(spec, load, profile=prof(label), keep=kept(label))
                runs.append((label, result))
        if not args.no_rss and args.rss_tasks:
            spec = dataclasses.replace(MODES["polling"], poll_interval_s=args.poll_interval)
            # tasks 1.5x longer: the per-bot Telegram budget paces the 1,000 progress messages
            # (and so the submits), and every task must still be running when the last starts
            load = dataclasses.replace(
                base,
                tasks=args.rss_tasks,
                chats=args.rss_chats,
                time_scale=base.time_scale * 1.5,
            )
            print(
                f"-- polling@rss ({args.rss_tasks} tasks / {args.rss_chats} chats,"
                f" time scale {load.time_scale:g})"
            )
            label = "polling@rss"
            runs.append((label, await run_mode(spec, load, profile=prof(label), keep=kept(label))))

    asyncio.run(go())
    labels = [label for label, _ in runs]
    results = [r for _, r in runs]
    print()
    print(table(results, labels))
    print()
    by = dict(runs)
    for v in verdicts(by, args.poll_interval):
        mark = "PASS" if v.ok else ("MISS" if v.ok is False else "----")
        print(f"{mark}  {v.target}: {v.measured}")
    for label, r in runs:
        if r.sim_lag_s:
            lag = sorted(r.sim_lag_s)
            print(
                f"note [{label}]: simulator lag (SUCCESS due -> visible) p50 "
                f"{lag[len(lag) // 2] * 1000:.0f} ms, max {lag[-1] * 1000:.0f} ms (not counted)"
            )
        for line in r.log_errors[:3]:
            print(f"log [{label}]: {line[:200]}")
    print(f"\ntotal wall time {time.time() - started:.0f} s")
    if args.markdown:
        print()
        print(table(results, labels, markdown=True))
    if args.json:
        payload = {
            "machine": _machine(),
            "args": vars(args),
            "results": {label: r.to_json() for label, r in runs},
            "verdicts": [dataclasses.asdict(v) for v in verdicts(by, args.poll_interval)],
        }
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str))
        print(f"raw figures in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
