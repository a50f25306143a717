"""One benchmark scenario: the simulator, the fake Telegram server, ``mjbot run`` between them.

For one mode (webhook, polling, naive) :func:`run_mode`:

1. starts a :class:`BenchSimulator` (the real simulator, plus timestamps, varied task
   durations and shared placeholder art, see there) and a
   :class:`~tests.fakes.telegram.FakeTelegram` with its flood limits on;
2. registers ``chats`` supergroups and one user per task in the fake;
3. starts the bot as a subprocess (``python -m bot.cli run`` or, for the naive mode,
   ``python -m bench.naive_bot``) with a TOML config pointing at both;
4. sends ``tasks`` ``/imagine`` messages round-robin over the chats at a steady rate (two
   messages in one chat are ``chat_gap_s`` apart), so every task is in flight at once when the
   last one is sent;
5. waits until each request message has its result photo as a reply, lets the bot settle, and
   collects every figure from the three parties (simulator requests, fake calls, /proc and the
   bot's own ``/status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from bench.convert import photographic
from bench.fleet import Balancer, Store, merged
from bench.metrics import ProcSampler, cpu_seconds, hwm_mb, percentile, self_cpu_seconds
from mjsim import SimConfig, Simulator, art
from mjsim.state import FINAL, SUCCESS, SimTask
from tests.fakes.telegram import EDIT_METHODS, SEND_METHODS, FakeTelegram
from tests.harness import API_KEY, TG_TOKEN, free_port, write_config
from tests.pgserver import query

ROOT = Path(__file__).resolve().parents[1]
TAG = re.compile(r"\bbench(\d{6})\b")
SETUP_METHODS = {"getMe", "setMyCommands", "deleteWebhook", "getUpdates", "close", "logOut"}
FIRST_CHAT = -1001000000000  # supergroup ids
FIRST_USER = 500000


@dataclass(frozen=True)
class ModeSpec:
    """How the bot is configured for one column of the table."""

    name: str  # webhook | webhook-now | polling | naive
    poll_interval_s: float
    webhook: bool = False
    naive: bool = False
    confirm_wait_s: float | None = None  # tracking.confirm_wait_s; None: the bot's default
    photo_as_is_max_kb: int | None = None  # media.photo_as_is_max_kb; None: the bot's default

    @property
    def how(self) -> str:
        if self.naive:
            return "fetch each task / 3 s"
        tracked = f"list / {self.poll_interval_s:g} s"
        if self.webhook:
            tracked = f"notifyHook + {tracked} (x3 while hooks flow)"
        if self.confirm_wait_s is not None:
            tracked += f", confirm_wait_s {self.confirm_wait_s:g}"
        if self.photo_as_is_max_kb is not None:
            tracked += f", photo_as_is_max_kb {self.photo_as_is_max_kb}"
        return tracked

    @property
    def default_settings(self) -> bool:
        """Whether only settings every version has are set (a --baseline column can run)."""
        return self.confirm_wait_s is None and self.photo_as_is_max_kb is None


MODES = {
    "webhook": ModeSpec("webhook", poll_interval_s=4.0, webhook=True),
    # the other end of the trade: each final callback confirmed at once
    "webhook-now": ModeSpec("webhook-now", poll_interval_s=4.0, webhook=True, confirm_wait_s=0.0),
    # every original within Telegram's 10 MB photo limit posted as it is (no conversion)
    "webhook-as-is": ModeSpec(
        "webhook-as-is", poll_interval_s=4.0, webhook=True, photo_as_is_max_kb=10240
    ),
    "polling": ModeSpec("polling", poll_interval_s=2.0),
    "naive": ModeSpec("naive", poll_interval_s=2.0, naive=True),
}


@dataclass(frozen=True)
class Load:
    tasks: int = 500
    chats: int = 100
    time_scale: float = 2.0  # real seconds per simulated second (a grid takes ~22 s simulated)
    chat_gap_s: float = 6.0  # between two /imagine in the same chat
    global_limit: bool = False  # also enforce Telegram's ~30 msg/s per bot
    image_size: int = 2048  # short side of the simulator's grids (Midjourney's are 2048x2048)
    settle_s: float = 4.0  # after the last delivery: catch duplicates and late calls
    cdn_delay_s: float = 0.0  # each image download waits this long first (a real CDN's latency)
    # Grids with a photograph's grain (bench.convert.photographic): ~6.6 MB PNGs at 2048 px like
    # Midjourney's, where the flat art is ~230 KB (and goes as is: media.photo_as_is_max_kb).
    photo_grids: bool = False
    timeout_s: float = 240.0
    instances: int = 1  # more than one: behind nginx, Telegram in webhook mode (bench/fleet.py)
    store: str = "sqlite"  # or "postgresql": one database for every instance
    failover: bool = False  # kill -9 the first instance once a quarter of the tasks is delivered


@dataclass
class Result:
    mode: str
    tasks: int
    chats: int
    how: str = ""
    wall_s: float = 0.0
    delivered_once: int = 0
    duplicates: int = 0
    missing: int = 0
    not_success: int = 0
    peak_in_flight: int = 0
    api_requests: int = 0
    api_by_route: dict[str, int] = field(default_factory=dict)
    api_requests_bot: int = 0  # the bot's own count (its metrics' api.requests), a cross-check
    media_gets: int = 0
    latencies_s: list[float] = field(default_factory=list)
    sim_lag_s: list[float] = field(default_factory=list)  # scheduled SUCCESS -> made visible
    tracking_s: list[float] = field(default_factory=list)  # SUCCESS -> first served to the bot
    delivery_s: list[float] = field(default_factory=list)  # served -> result message sent
    tg_calls: int = 0
    tg_by_method: dict[str, int] = field(default_factory=dict)
    tg_429: int = 0
    tg_peak_per_s: int = 0
    bot_rate_limited: int = 0  # RateLimited answers the bot's Outbox saw
    gave_up_429: int = 0  # rate-limit errors that escaped the Outbox (tracebacks in the log)
    peak_rss_mb: float = 0.0  # the largest instance's
    rss_per_instance_mb: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # summed over the instances
    instances: int = 1
    store: str = "sqlite"
    failover_held: int = 0  # undelivered tasks the killed instance held (lease or delivery)
    failover_s: float | None = None  # kill -9 -> the first result of one of them was sent
    cpu_peak_core: float = 0.0
    harness_cpu_s: float = 0.0
    # PostgreSQL transactions committed or rolled back during the run (a statement outside a
    # transaction is one): what a fleet's database is asked, per task (None on SQLite)
    db_transactions: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    log_errors: list[str] = field(default_factory=list)

    # ---- derived figures

    @property
    def completed(self) -> int:
        return self.delivered_once + self.duplicates

    def per_task(self, value: float) -> float:
        return value / self.completed if self.completed else float("nan")

    @property
    def tracking_requests(self) -> int:
        """Requests spent following tasks (fetch + list), i.e. everything but the submits."""
        return sum(n for route, n in self.api_by_route.items() if not route.startswith("submit"))

    def latency_ms(self, p: float) -> float:
        return percentile(self.latencies_s, p) * 1000.0

    @property
    def unhandled_429(self) -> int:
        """429s not absorbed: never seen by the Outbox (answered by some other path), or seen
        and given up on after its retries (the error escaped; a task may be lost)."""
        return max(0, self.tg_429 - self.bot_rate_limited) + self.gave_up_429

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["latencies_s"] = [round(v, 4) for v in self.latencies_s]
        for name in ("sim_lag_s", "tracking_s", "delivery_s"):
            data[name] = [round(v, 4) for v in getattr(self, name)]
        return data


class BenchSimulator(Simulator):
    """The real simulator plus bench-only additions (no file under bot/ is touched).

    * ``success_at[task_id]``: the wall-clock instant the simulator made SUCCESS visible (its
      status-change hook ``_changed`` runs when a step is played: the same moment a fetch or a
      list would first see it and the notifyHook is queued). ``scheduled_at`` is the simulated
      instant the step was due, converted to wall time, for the simulator's own lag.
    * Task durations vary: every step after the first is stretched by one factor per task,
      uniform in 1 ± ``jitter`` (seeded). Real jobs vary; with identical durations a per-task
      poller's phase relative to the job would be an artefact of the simulator.
    * ``served_at[task_id]``: when a fetch or list answer first carried the SUCCESS state, i.e.
      when the bot had the confirmed result in hand; it splits the added latency into tracking
      (SUCCESS -> served) and delivery (served -> result message sent).
    * Placeholder art is rendered once per file name and shared by all tasks: the Pillow work is
      the simulator's, not the bot's, and would otherwise eat the harness's core. The bot still
      downloads and converts a full-size image for every task.
    * ``photo_grids``: result pictures get a photograph's grain (``Load.photo_grids``).
    """

    def __init__(
        self, config: SimConfig, *, jitter: float = 0.25, seed: int = 4, photo_grids: bool = False
    ) -> None:
        super().__init__(config)
        self._photo_grids = photo_grids
        self.record_limit = 10**8
        self.success_at: dict[str, float] = {}
        self.served_at: dict[str, float] = {}  # first fetch/list answer showing SUCCESS
        self.scheduled_at: dict[str, float] = {}
        self._art: dict[tuple[str, str], Any] = {}
        self.media_gets = 0  # image downloads (previews and results) the bot made
        self._wall0 = time.time() - (time.monotonic() - self.clock._real0)
        self._rng = random.Random(seed)
        self._jitter = jitter
        take_slot = self.board._take_slot

        def take_slot_jittered(task: SimTask, now: float) -> None:
            take_slot(task, now)  # schedules the first step as planned
            factor = self._rng.uniform(1 - self._jitter, 1 + self._jitter)
            task.plan[1:] = [dataclasses.replace(s, delay=s.delay * factor) for s in task.plan[1:]]

        self.board._take_slot = take_slot_jittered  # type: ignore[method-assign]

    def _changed(self, task: SimTask) -> None:
        if task.status == SUCCESS and task.id not in self.success_at:
            self.success_at[task.id] = time.time()
            if task.finished_at is not None:
                self.scheduled_at[task.id] = self._wall0 + task.finished_at * self.clock.time_scale
        super()._changed(task)

    async def _api(self, method: str, path: str, body: dict[str, Any], mode: str) -> Any:
        reply = await super()._api(method, path, body, mode)
        fetch = method == "GET" and path.endswith("/fetch")
        if not fetch and not path.startswith("/mj/task/list"):
            return reply
        served = reply.body if isinstance(reply.body, list) else [reply.body]
        now = time.time()
        for item in served:
            if isinstance(item, dict) and item.get("status") == SUCCESS:
                self.served_at.setdefault(str(item.get("id")), now)
        return reply

    async def _media_route(self, request: Any) -> Any:
        if request.path.startswith("/sim/images/"):
            self.media_gets += 1
        return await super()._media_route(request)

    def _media_job(self, task: SimTask, name: str) -> Any:
        key = (task.kind, name)
        cached = self._art.get(key)
        if cached is not None:
            return lambda: cached
        made = super()._media_job(task, name)
        if made is None:
            return None

        def render() -> Any:
            value = made()
            if self._photo_grids and name == "image.png":
                grainy = photographic(Image.open(io.BytesIO(value[0])))
                value = (art.png(grainy), value[1])
            self._art[key] = value
            return value

        return render


class BotProcess:
    """``mjbot run`` (or the naive entry) as a subprocess, logging to a file."""

    def __init__(
        self,
        workdir: Path,
        spec: ModeSpec,
        sim_url: str,
        tg_url: str,
        profile: str = "",
        root: Path = ROOT,
        *,
        storage_url: str = "",
        telegram: dict[str, Any] | None = None,
        tracking: dict[str, Any] | None = None,
    ) -> None:
        """``storage_url``, ``telegram``, ``tracking``: what an instance of a fleet is given
        (bench/fleet.py): the shared database, nginx's addresses and its own ports."""
        self.root = root  # the source tree the bot runs from (--baseline: another one)
        tracked: dict[str, Any] = {"listen": f"127.0.0.1:{free_port()}", **(tracking or {})}
        self.listen = str(tracked["listen"])
        tracked = {
            "poll_interval_s": spec.poll_interval_s,
            "listen": self.listen,
            # production defaults, stated so the figures say what they were measured with
            "edit_interval_s": 2.5,
            "send_interval_s": 1.0,
        }
        if spec.webhook:
            tracked["webhook_public_url"] = f"http://{self.listen}"
        tracked.update(tracking or {})
        if spec.confirm_wait_s is not None:
            tracked["confirm_wait_s"] = spec.confirm_wait_s
        storage: dict[str, Any] = {"path": str(workdir / "data" / "mjbot.db")}
        if storage_url:
            storage["url"] = storage_url
        sections: dict[str, dict[str, Any]] = {
            "midjourney": {"base_url": sim_url, "api_key": API_KEY, "auth_header": "bearer"},
            "telegram": {
                "token": TG_TOKEN,
                "api_base_url": f"{tg_url}/bot",
                "file_base_url": f"{tg_url}/file/bot",
                **(telegram or {}),
            },
            "tracking": tracked,
            "storage": storage,
            "logging": {"level": "INFO"},
        }
        if spec.photo_as_is_max_kb is not None:
            sections["media"] = {"photo_as_is_max_kb": spec.photo_as_is_max_kb}
        self.config = write_config(workdir / "config.toml", sections)
        self.log_path = workdir / "mjbot.log"
        entry = ["-m", "bench.naive_bot"] if spec.naive else ["-m", "bot.cli", "run"]
        if profile:  # cProfile writes the file when the bot exits cleanly on SIGTERM
            entry = ["-m", "cProfile", "-o", profile, *entry]
        self.argv = [sys.executable, *entry, "--config", str(self.config)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return self.proc.pid

    async def status(self) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            with urllib.request.urlopen(f"http://{self.listen}/status", timeout=10) as resp:
                return json.loads(resp.read())

        try:
            return await asyncio.to_thread(get)
        except OSError:
            return {}

    async def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.proc.kill()
        return self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_problems(self) -> list[str]:
        return [
            line
            for line in self.log_text().splitlines()
            if " ERROR " in line or "Traceback" in line or "CRITICAL" in line
        ]

    def gave_up_on_429(self) -> int:
        """Tracebacks in the log that end in a rate-limit error: a 429 the bot did not absorb
        (its Outbox retries RetryAfter a few times, then lets the error escape)."""
        count = 0
        for record in re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", self.log_text()):
            if "Traceback" in record:
                last = record.rstrip().splitlines()[-1]
                if "RateLimited" in last or "RetryAfter" in last or "Too Many Requests" in last:
                    count += 1
        return count


def _save(directory: str, name: str, data: Any) -> None:
    """Keep a file for later analysis: a copy of ``data`` (a Path) or ``data`` as JSON."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    if isinstance(data, Path):
        if data.exists():
            shutil.copy(data, target / name)
    else:
        (target / name).write_text(json.dumps(data))


async def _kill(bot: BotProcess, sampler: ProcSampler, url: str) -> tuple[float, set[int], float]:
    """kill -9 ``bot``; (when, the undelivered tasks it held by bench index, its CPU seconds
    until then). What it held is read from the shared database: the tasks leased to it, or
    being delivered by it, per its ``instances`` row (found by pid)."""
    assert bot.proc is not None
    sampler.sample()
    cpu = cpu_seconds(bot.proc.pid)
    bot.proc.kill()
    killed = time.time()
    held = await asyncio.to_thread(
        query,
        url,
        "SELECT t.prompt FROM tasks t JOIN instances i"
        " ON i.id = (CASE WHEN t.delivering_at IS NULL THEN t.lease_owner ELSE t.delivering_by END)"
        " WHERE i.pid = ? AND t.delivered_at IS NULL",
        bot.proc.pid,
    )
    found = (TAG.search(row["prompt"] or "") for row in held)
    return killed, {int(m.group(1)) for m in found if m}, cpu


def _reply_to(params: dict[str, Any]) -> int | None:
    rp = params.get("reply_parameters")
    if isinstance(rp, str):
        with contextlib.suppress(ValueError):
            rp = json.loads(rp)
    if isinstance(rp, dict) and rp.get("message_id") is not None:
        return int(rp["message_id"])
    if params.get("reply_to_message_id") is not None:
        return int(params["reply_to_message_id"])
    return None


async def run_mode(
    spec: ModeSpec,
    load: Load,
    *,
    echo: Any = print,
    profile: str = "",
    keep: str = "",
    root: Path = ROOT,
) -> Result:
    """Run one mode under ``load``.

    ``root``: the source tree the bot process runs from (the simulator, the fake and this
    harness stay this tree's), so two versions of the bot meet the same load in one run.
    ``profile``: write the bot's cProfile stats to this path. ``keep``: a directory to copy the
    bot's log into, with ``timeline.json`` (per task: sent, SUCCESS, served, result message
    times) and ``calls.json`` (every Telegram call: time, method, chat, status).
    """
    result = Result(spec.name, load.tasks, load.chats, spec.how)
    sim = BenchSimulator(
        SimConfig(
            api_key=API_KEY,
            time_scale=load.time_scale,
            concurrency=max(1000, load.tasks * 2),
            queue_size=10000,
            image_size=load.image_size,
        ),
        photo_grids=load.photo_grids,
    )
    await sim.start()
    sim.faults.image_delay_s = load.cdn_delay_s
    fake = FakeTelegram(token=TG_TOKEN, check_responses=False)
    await fake.start()
    limits: dict[str, Any] = {}
    if not load.global_limit:
        limits["global_per_second"] = 100_000  # per-chat and per-group limits only
    fake.enable_rate_limits(**limits)
    chats = [FIRST_CHAT - c for c in range(load.chats)]
    for c, chat_id in enumerate(chats):
        fake.group(chat_id, f"Bench group {c}")
    users = [FIRST_USER + i for i in range(load.tasks)]
    for i, uid in enumerate(users):
        fake.user(uid, f"User{i}", language_code="en")

    result.instances, result.store = load.instances, load.store
    fleet = load.instances > 1 or load.store != "sqlite"
    store = Store(load.store)
    balancer = Balancer(load.instances) if fleet else None
    with tempfile.TemporaryDirectory(prefix=f"mjbot-bench-{spec.name}-") as tmp:
        await store.start()
        if balancer is not None:
            await balancer.start()
        bots: list[BotProcess] = []
        for i in range(load.instances):
            home = Path(tmp) / f"instance{i}"
            home.mkdir()
            telegram, tracking = balancer.instance(i) if balancer else (None, None)
            bots.append(
                BotProcess(
                    home,
                    spec,
                    sim.base_url,
                    fake.url,
                    profile
                    if i == 0 or not profile
                    else f"{profile.removesuffix('.prof')}-{i}.prof",
                    root,
                    storage_url=store.url,
                    telegram=telegram,
                    tracking=tracking,
                )
            )
        boot = time.monotonic()
        pids = [bot.start() for bot in bots]
        samplers = [ProcSampler(pid) for pid in pids]
        try:
            # polling: the first long poll is open (it only answers when an update arrives);
            # a fleet: every instance has set the webhook (to nginx)
            await fake.wait_for(
                lambda: (
                    len([c for c in fake.calls if c.method == "setWebhook"]) >= len(bots)
                    if balancer
                    else any(c.method == "getUpdates" for c in fake.calls)
                ),
                timeout=60,
            )
            echo(f"  [{spec.name}] bot pids {pids} ready in {time.monotonic() - boot:.1f}s")
            await asyncio.sleep(0.5)  # let the first long poll settle
            first_call = len(fake.calls)
            first_request = len(sim.requests)
            cpu0, harness0 = sum(cpu_seconds(pid) for pid in pids), self_cpu_seconds()
            xact0 = await asyncio.to_thread(_transactions, store.url)
            for sampler in samplers:
                sampler.start()
            started = time.time()

            # request message per task: (chat id, message id)
            requests: dict[int, tuple[int, int]] = {}
            by_message: dict[tuple[int, int], int] = {}
            gap = load.chat_gap_s / load.chats
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            peak = 0

            async def send_all() -> None:
                for i in range(load.tasks):
                    delay = t0 + i * gap - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    chat_id = chats[i % load.chats]
                    msg = await fake.send_text(
                        chat_id, users[i], f"/imagine bench{i:06d} a lighthouse at dusk, oil"
                    )
                    requests[i] = (chat_id, msg.message_id)
                    by_message[(chat_id, msg.message_id)] = i

            sender = asyncio.create_task(send_all())
            results: dict[int, list[float]] = defaultdict(list)  # task index -> send times
            kill: tuple[float, set[int], float] | None = None
            scanned = first_call
            unresolved: list[int] = []
            deadline = time.monotonic() + load.timeout_s + load.tasks * gap
            last_report = 0.0
            while True:
                await asyncio.sleep(0.1)
                live = sum(1 for t in sim.tasks.values() if t.status not in FINAL)
                peak = max(peak, live)
                calls = fake.calls
                unresolved.extend(range(scanned, len(calls)))
                scanned = len(calls)
                still = []
                for n in unresolved:
                    call = calls[n]
                    if call.response is None:  # in progress (e.g. a getUpdates long poll)
                        still.append(n)
                    elif call.method == "sendPhoto" and call.status == 200:
                        chat_id = int(call.params.get("chat_id"))
                        index = by_message.get((chat_id, _reply_to(call.params) or -1))
                        if index is not None:
                            results[index].append(call.time)
                unresolved = still
                done = len(results)
                if load.failover and kill is None and done >= load.tasks // 4:
                    kill = await _kill(bots[0], samplers[0], store.url)
                    echo(
                        f"  [{spec.name}] kill -9 pid {pids[0]} holding"
                        f" {len(kill[1])} undelivered tasks"
                    )
                now = time.monotonic()
                if now - last_report > 5:
                    last_report = now
                    echo(
                        f"  [{spec.name}] {time.time() - started:5.1f}s sent {len(requests)}"
                        f" in flight {live} delivered {done}/{load.tasks}"
                    )
                if sender.done() and done >= load.tasks:
                    break
                if now > deadline:
                    echo(f"  [{spec.name}] timed out with {done}/{load.tasks} delivered")
                    break
            await sender
            await asyncio.sleep(load.settle_s)
            # late duplicates (scan again, including anything that arrived while settling)
            for call in [fake.calls[n] for n in unresolved] + fake.calls[scanned:]:
                if call.method == "sendPhoto" and call.status == 200:
                    index = by_message.get((int(call.params["chat_id"]), _reply_to(call.params)))
                    if index is not None:
                        results[index].append(call.time)
            result.wall_s = time.time() - started
            dead = {pids[0]: kill[2]} if kill else {}
            result.cpu_s = sum(dead.get(pid) or cpu_seconds(pid) for pid in pids) - cpu0
            result.harness_cpu_s = self_cpu_seconds() - harness0
            if xact0 is not None:
                await asyncio.sleep(1.0)  # backends report their counts at most once a second
                xact1 = await asyncio.to_thread(_transactions, store.url)
                result.db_transactions = (xact1 or 0) - xact0 - 1  # less the first count's own
            result.rss_per_instance_mb = [0.0 if pid in dead else hwm_mb(pid) for pid in pids]
            if kill is not None:
                killed, held = kill[0], kill[1]
                result.failover_held = len(held)
                after = [t for i in held for t in results.get(i, []) if t >= killed]
                result.failover_s = min(after) - killed if after else None
            result.status = merged([await bot.status() for bot in bots])
        finally:
            for sampler in samplers:
                await sampler.stop()
            halt = time.monotonic()
            codes = [await bot.stop() for bot in bots]
            echo(f"  [{spec.name}] bots stopped (exit {codes}) in {time.monotonic() - halt:.1f}s")
            if balancer is not None:
                balancer.stop()
            store.stop()
            result.log_errors = [line for bot in bots for line in bot.log_problems()]
            result.gave_up_429 = sum(bot.gave_up_on_429() for bot in bots)
            if keep:
                for i, bot in enumerate(bots):
                    _save(keep, "mjbot.log" if i == 0 else f"mjbot-{i}.log", bot.log_path)

    # ---- collect
    result.peak_in_flight = peak
    # (the busiest second of the busiest instance)
    result.cpu_peak_core = max(sampler.busiest_second() for sampler in samplers)
    result.rss_per_instance_mb = [
        max(hwm, sampler.peak_rss_mb)
        for hwm, sampler in zip(result.rss_per_instance_mb, samplers, strict=True)
    ]
    result.peak_rss_mb = max(result.rss_per_instance_mb)
    task_of_index: dict[int, SimTask] = {}
    for task in sim.tasks.values():
        match = TAG.search(task.prompt or "")
        if match:
            task_of_index[int(match.group(1))] = task
    for i in range(load.tasks):
        sends = results.get(i, [])
        task = task_of_index.get(i)
        if not sends:
            result.missing += 1
            continue
        if len(sends) == 1:
            result.delivered_once += 1
        else:
            result.duplicates += 1
        if task is None or task.status != SUCCESS:
            result.not_success += 1
            continue
        success = sim.success_at.get(task.id)
        if success is not None:
            result.latencies_s.append(min(sends) - success)
            served = sim.served_at.get(task.id)
            if served is not None:
                result.tracking_s.append(served - success)
                result.delivery_s.append(min(sends) - served)
            scheduled = sim.scheduled_at.get(task.id)
            if scheduled is not None:
                result.sim_lag_s.append(success - scheduled)
    api = [r for r in sim.requests[first_request:]]
    routes: Counter[str] = Counter()
    for r in api:
        path = r.path
        if path.startswith("/mj/submit/"):
            routes["submit " + path.rsplit("/", 1)[1]] += 1
        elif path.endswith("/fetch"):
            routes["fetch"] += 1
        else:
            routes[path.removeprefix("/mj/task/")] += 1
    result.media_gets = sim.media_gets
    result.api_by_route = dict(routes)
    result.api_requests = len(api)
    # The bot's own counts: its one metrics object, as /status serves it (bot/metrics.py).
    counts = result.status
    result.api_requests_bot = int(counts.get("api", {}).get("requests", 0))
    # (a --baseline bot from before the metrics object has only the flat key)
    outbox = counts.get("outbox", {})
    result.bot_rate_limited = int(outbox.get("rate_limited", counts.get("rate_limited", 0)))
    tg = [c for c in fake.calls[first_call:] if c.method not in SETUP_METHODS]
    result.tg_calls = len(tg)
    result.tg_by_method = dict(Counter(c.method for c in tg))
    result.tg_429 = sum(1 for c in tg if c.status == 429)
    per_second = Counter(
        int(c.time) for c in tg if c.method in SEND_METHODS or c.method in EDIT_METHODS
    )
    result.tg_peak_per_s = max(per_second.values(), default=0)

    if keep:
        timeline = []
        for i in range(load.tasks):
            task = task_of_index.get(i)
            tid = task.id if task else None
            timeline.append(
                {
                    "index": i,
                    "chat": requests.get(i, (None, None))[0],
                    "task": tid,
                    "success": sim.success_at.get(tid or ""),
                    "served": sim.served_at.get(tid or ""),
                    "sent": results.get(i, []),
                }
            )
        _save(keep, "timeline.json", timeline)
        calls = [
            {"t": c.time, "m": c.method, "chat": c.params.get("chat_id"), "status": c.status}
            for c in fake.calls[first_call:]
            if c.method != "getUpdates"
        ]
        _save(keep, "calls.json", calls)
        api_log = [{"t": r.time, "path": r.path} for r in sim.requests[first_request:]]
        _save(keep, "api.json", api_log)
    await fake.stop(check=False)
    await sim.stop()
    return result


def _transactions(url: str) -> int | None:
    """Transactions the database has seen so far (None: no database server, SQLite)."""
    if not url:
        return None
    (row,) = query(
        url,
        "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database"
        " WHERE datname = current_database()",
    )
    return int(row["n"])
