"""The load balancer: a real nginx running deploy/nginx.conf (and HAProxy running
deploy/haproxy.cfg), their upstreams pointed at the test's instances, in front of several
``mjbot run`` processes in webhook mode. The fake Bot API posts
updates to nginx, the simulator calls back through it, and the tests check what users see.

On SQLite each instance has its own database: what is proven there is the path (Telegram ->
nginx -> any instance -> the user; API -> nginx -> an instance) and failover of new requests.
On PostgreSQL the instances share one database (issue 14's fleet): each command once, each unit
charged once, and after kill -9 of the instance following the tasks, the others take them over
(leases with a short TTL here) and every result arrives once."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from mjsim import SimConfig, Simulator
from tests.conftest import ALICE, BOB, GROUP, assert_no_leaks
from tests.harness import API_KEY, ROOT, BotProcess, free_port
from tests.storage import rows


def binary(name: str) -> str | None:
    found = shutil.which(name) or f"/usr/sbin/{name}"
    return found if Path(found).exists() else None


NGINX = binary("nginx")
HAPROXY = binary("haproxy")
OTHER_GROUP = -100456
# nginx is the README's balancer (CI installs it); HAProxy runs where it is installed.
pytestmark = pytest.mark.parametrize("balancer", ["nginx", "haproxy"])


def need(balancer: str) -> None:
    if balancer == "nginx" and NGINX is None:
        reason = "nginx is not installed (apt-get install nginx; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if balancer == "haproxy" and HAPROXY is None:
        pytest.skip("haproxy is not installed (optional: apt-get install haproxy)")


def render(conf: str, tmp: Path, listen: int, upstreams: dict[int, list[int]]) -> str:
    """deploy/nginx.conf for a test: the instances' ports instead of compose's "mjbot" name,
    loopback, files in ``tmp``. Everything else (locations, health, retries) as shipped."""

    def servers(match: re.Match[str]) -> str:
        port, params = int(match.group(1)), match.group(2)
        return "\n        ".join(f"server 127.0.0.1:{p}{params};" for p in upstreams[port])

    conf, n = re.subn(r"server mjbot:(\d+)([^;]*);", servers, conf)
    assert n == len(upstreams), "deploy/nginx.conf's upstreams changed: update render()"
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    conf = conf.replace("access_log /dev/stdout mjbot;", f"access_log {tmp}/access.log mjbot;")
    temp = "".join(
        f"    {kind}_temp_path {tmp}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", "http {\n" + temp, 1)
    head = f"daemon off;\npid {tmp}/nginx.pid;\n"
    if os.geteuid() == 0:
        head += "user root;\n"  # workers must reach the temp paths under a 0700 tmp dir
    return head + conf


class Nginx:
    def __init__(self, tmp: Path, upstreams: dict[int, list[int]]) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = (ROOT / "deploy" / "nginx.conf").read_text()
        self.conf = tmp / "nginx.conf"
        self.conf.write_text(render(conf, tmp, self.port, upstreams))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        assert NGINX is not None
        args = [NGINX, "-p", str(self.tmp), "-c", str(self.conf), "-e", str(self.tmp / "error.log")]
        test = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        self.proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)

    async def start(self) -> None:
        self.launch()
        await _listening(self.port, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access(self) -> list[str]:
        path = self.tmp / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    async def ready(self, ports: list[int]) -> None:
        """nginx checks passively: nothing to wait for."""

    def served(self) -> list[tuple[str, int, list[int]]]:
        """(method, status, the instance ports tried in order) per logged request."""
        found = []
        for line in self.access():
            match = re.search(r"\] (\S+) (\d+) \d+ (.*) [\d.]+$", line)
            assert match, line
            tried = [int(a.rpartition(":")[2]) for a in re.findall(r"[\d.]+:\d+", match[3])]
            found.append((match[1], int(match[2]), tried))
        return found


def render_haproxy(conf: str, listen: int, upstreams: dict[int, list[int]]) -> str:
    """deploy/haproxy.cfg for a test: one server line per instance instead of compose's
    server-template over Docker's DNS, loopback. Checks, retries and routes as shipped."""

    def servers(match: re.Match[str]) -> str:
        port, params = int(match.group(1)), match.group(2)
        params = params.replace(" resolvers docker init-addr none", "")
        return "\n    ".join(f"server p{p} 127.0.0.1:{p}{params}" for p in upstreams[port])

    conf, n = re.subn(r"server-template mjbot \d+ mjbot:(\d+)(.*)", servers, conf)
    assert n == len(upstreams), "deploy/haproxy.cfg's backends changed: update render_haproxy()"
    conf = re.sub(r"resolvers docker\n(    .*\n)+", "", conf)
    return conf.replace("bind :8080", f"bind 127.0.0.1:{listen}")


class HAProxy:
    def __init__(self, tmp: Path, upstreams: dict[int, list[int]]) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = (ROOT / "deploy" / "haproxy.cfg").read_text()
        self.conf = tmp / "haproxy.cfg"
        self.conf.write_text(render_haproxy(conf, self.port, upstreams))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        assert HAPROXY is not None
        test = subprocess.run([HAPROXY, "-c", "-f", str(self.conf)], capture_output=True, text=True)
        assert test.returncode == 0, test.stdout + test.stderr
        with (self.tmp / "access.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        self.launch()
        await _listening(self.port, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop: connections finish, then exit
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        path = self.tmp / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def ready(self, ports: list[int]) -> None:
        """Until every instance passed its health check: HAProxy checked them before they
        listened and marked them down (rise 1, inter 2 s: back within a check or two)."""
        for _ in range(200):
            log = self.log()
            if all(log.rfind(f"/p{p} is DOWN") <= log.rfind(f"/p{p} is UP") for p in ports):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("instances not up in HAProxy: " + log)

    def served(self) -> list[tuple[str, int, list[int]]]:
        found = []
        for line in self.log().splitlines():
            match = re.fullmatch(r"\S+ (\S+) (\d+) \S+/p(\d+) \+?(\d+) \d+", line.strip())
            if match:  # other lines: HAProxy's own notices (a server going down, ...)
                found.append((match[1], int(match[2]), [int(match[3])]))
        return found


async def _listening(port: int, log: Callable[[], str]) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("the balancer did not start: " + log())


# Leases short enough for a test: a dead instance's tasks are taken over ~2 s after its last
# beat (the defaults, 10 s and 3 s, are for a deployment).
LEASE_TTL_S = 2.0
HEARTBEAT_S = 0.5


class Fleet:
    """``count`` instances of one deployment behind nginx, each with its own data directory
    (and the test's store: on PostgreSQL one database for all of them)."""

    def __init__(
        self,
        tmp: Path,
        sim_url: str,
        tg_url: str,
        count: int,
        balancer: str,
        callbacks: bool = True,
    ) -> None:
        self.hooks = [free_port() for _ in range(count)]
        self.webhooks = [free_port() for _ in range(count)]
        self.webapps = [free_port() for _ in range(count)]
        kind = Nginx if balancer == "nginx" else HAProxy
        upstreams = {8092: self.webhooks, 8090: self.hooks, 8091: self.webapps}
        self.lb = kind(tmp / balancer, upstreams)
        self.bots = []
        for i in range(count):
            home = tmp / f"instance{i}"
            (home / "data").mkdir(parents=True)
            self.bots.append(
                BotProcess(
                    home,
                    sim_url,
                    tg_url,
                    telegram={
                        "webhook_url": f"{self.lb.url}/telegram/update",
                        "webhook_listen": f"127.0.0.1:{self.webhooks[i]}",
                        "webapp_url": f"{self.lb.url}/mask",
                        "webapp_listen": f"127.0.0.1:{self.webapps[i]}",
                    },
                    tracking={
                        "listen": f"127.0.0.1:{self.hooks[i]}",
                        "webhook_public_url": self.lb.url if callbacks else "",
                        "lease_ttl_s": LEASE_TTL_S,
                        "heartbeat_s": HEARTBEAT_S,
                    },
                )
            )


@pytest.fixture
async def fleet(tmp_path, sim, tg, balancer):
    need(balancer)
    made: list[Fleet] = []

    async def make(count: int, callbacks: bool = True, sim_url: str | None = None) -> Fleet:
        f = Fleet(tmp_path, sim_url or sim.base_url, tg.url, count, balancer, callbacks)
        made.append(f)
        await f.lb.start()
        for bot in f.bots:
            bot.start()
        # answered calls: one still in flight is recorded before its parameters are read
        await tg.wait_for(
            lambda: (
                sum(c.ok for c in tg.calls_to("setWebhook")) >= count
                or not all(b.alive for b in f.bots)
            ),
            timeout=60,
        )
        assert all(b.alive for b in f.bots), [b.log()[-2000:] for b in f.bots if not b.alive]
        await f.lb.ready([*f.webhooks, *f.hooks, *f.webapps])
        return f

    yield make
    for f in made:
        for bot in f.bots:
            if bot.proc is not None:
                await bot.stop()
        f.lb.stop()
        for bot in f.bots:
            assert_no_leaks(bot)


def tasks_of(bot: BotProcess) -> list[str]:
    database = bot.config.parent / "data" / "mjbot.db"
    return [r["prompt"] for r in rows(str(database), "SELECT prompt FROM tasks")]


async def grids(tg, asked: dict[int, tuple[int, object]]) -> None:
    """Wait until every asked command got its grid (a photo with buttons replying to it)."""
    for chat, message in asked.values():
        await tg.wait_for_bot_message(
            chat,
            lambda m, mid=message.message_id: (
                m.reply_to_message_id == mid and m.photo and m.buttons
            ),
            timeout=150,
        )


def photo_replies(tg, chat: int, message_id: int) -> int:
    """Results posted for one command (a photo with buttons; the progress message, which may
    show a preview, has none and is deleted)."""
    return len(
        [
            m
            for m in tg.bot_messages(chat)
            if m.reply_to_message_id == message_id and m.photo and m.buttons
        ]
    )


@pytest.mark.timeout(400)
async def test_updates_and_callbacks_reach_every_instance_through_the_balancer(fleet, sim, tg):
    tg.group(OTHER_GROUP, "Sculptors")
    f = await fleet(2)
    registered = {c.params["url"] for c in tg.calls_to("setWebhook")}
    assert registered == {f"{f.lb.url}/telegram/update"}
    assert len({c.params["secret_token"] for c in tg.calls_to("setWebhook")}) == 1

    asked = {}
    for n in range(6):
        chat, user = (GROUP, ALICE) if n % 2 else (OTHER_GROUP, BOB)
        text = f"/imagine lantern number {n}"
        asked[n] = (chat, await tg.send_text(chat, tg.users[user], text))
    await grids(tg, asked)

    # Each command once, whichever instance took it; both instances took some.
    assert sorted(r.body["prompt"] for r in sim.submits("imagine")) == sorted(
        f"lantern number {n}" for n in range(6)
    )
    for chat, message in asked.values():
        assert photo_replies(tg, chat, message.message_id) == 1
    per_instance = [tasks_of(bot) for bot in f.bots]
    assert all(per_instance), per_instance
    everyone = sorted(p for prompts in per_instance for p in prompts)
    assert everyone == sorted(f"lantern number {n}" for n in range(6))
    # Every post went through the balancer, to an instance, and was answered 200.
    served = f.lb.served()
    assert {s for _, s in tg.webhook_posts} == {200}
    posted_to = {tried[-1] for method, status, tried in served if (method, status) == ("POST", 200)}
    assert set(f.webhooks) <= posted_to, served
    # The simulator's notifyHook callbacks came in through it too.
    assert any(tried[-1] in f.hooks for _, _, tried in served), served

    async with aiohttp.ClientSession() as http:
        # The secret is checked behind the balancer as well.
        async with http.post(f"{f.lb.url}/telegram/update", json={"update_id": 1}) as resp:
            assert resp.status == 403
        # /status is not passed on.
        async with http.get(f"{f.lb.url}/status") as resp:
            assert resp.status == 404
        # The Mini App's page and files come from the instances too.
        async with http.get(f"{f.lb.url}/mask") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            page = await resp.text()
        static = re.findall(r'"(/static/[^"?]+)', page)
        assert static, page[:500]
        async with http.get(f"{f.lb.url}{static[0]}") as resp:
            assert resp.status == 200

    def webapp_gets() -> list[int]:
        return [t[-1] for m, s, t in f.lb.served() if (m, s) == ("GET", 200)]

    # A balancer may write a request's log line a moment after the response.
    await tg.wait_for(lambda: len(webapp_gets()) >= 2, timeout=10, message="two GETs logged")
    assert set(webapp_gets()) <= set(f.webapps), f.lb.served()


@pytest.mark.timeout(400)
async def test_a_killed_instance_is_passed_over(fleet, sim, tg, balancer):
    f = await fleet(2)
    first = await tg.send_text(GROUP, tg.users[ALICE], "/imagine before the crash")
    await grids(tg, {0: (GROUP, first)})

    await f.bots[0].stop(kill=True)  # kill -9, idle: nothing of its own in flight
    asked = {}
    for n in range(3):  # a user's three jobs at once (quota.concurrency)
        asked[n] = (GROUP, await tg.send_text(GROUP, tg.users[ALICE], f"/imagine after {n}"))
    await grids(tg, asked)
    for chat, message in asked.values():
        assert photo_replies(tg, chat, message.message_id) == 1
    # Telegram saw no failure: the balancer moved each post to the live instance itself.
    assert {s for _, s in tg.webhook_posts} == {200}
    dead, live = f.webhooks
    if balancer == "nginx":
        # It tried the dead one first for at least one (a refused connection; non_idempotent
        # in the config also covers an instance that dies after taking a post).
        tried = [t for method, _, t in f.lb.served() if method == "POST"]
        assert [dead, live] in tried, tried
    assert {f"after {n}" for n in range(3)} <= set(tasks_of(f.bots[1]))


@pytest.mark.timeout(400)
@pytest.mark.parametrize("storage", ["postgresql"], indirect=True)
async def test_three_instances_share_one_postgresql_behind_the_balancer(fleet, sim, tg, storage):
    """Issue 14's fleet: three instances, one database. Every command once, every unit charged
    once, and an update Telegram sends again (to whichever instance the balancer picks) does
    nothing the second time: the seen events are shared."""
    tg.group(OTHER_GROUP, "Sculptors")
    f = await fleet(3)
    asked = {}
    for n in range(6):
        chat, user = (GROUP, ALICE) if n % 2 else (OTHER_GROUP, BOB)
        asked[n] = (chat, await tg.send_text(chat, tg.users[user], f"/imagine shared {n}"))
    await grids(tg, asked)
    again = [
        tg.inject_update(u)["update_id"]  # each command again, as Telegram does after a timeout
        for u in list(tg.updates)
        if u.get("message", {}).get("text", "").startswith("/imagine shared")
    ]
    assert len(again) == 6

    def posted_twice() -> bool:
        ok = [u for u, status in tg.webhook_posts if status == 200]
        return all(ok.count(u) >= 2 for u in again)

    await tg.wait_for(posted_twice, timeout=30, message="every command posted twice")
    await asyncio.sleep(2.0)
    assert sorted(r.body["prompt"] for r in sim.submits("imagine")) == sorted(
        f"shared {n}" for n in range(6)
    )
    for chat, message in asked.values():
        assert photo_replies(tg, chat, message.message_id) == 1
    charges = rows(storage.url, "SELECT task_key, units FROM ledger")
    assert len(charges) == 6 and len({c["task_key"] for c in charges}) == 6
    posted_to = {t[-1] for m, s, t in f.lb.served() if (m, s) == ("POST", 200)}
    assert len(posted_to & set(f.webhooks)) >= 2, f.lb.served()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("storage", ["postgresql"], indirect=True)
async def test_kill_9_of_the_instance_following_the_tasks_loses_and_repeats_nothing(
    fleet, tg, storage, balancer
):
    """Three instances on one PostgreSQL, six jobs running, and kill -9 of the instance whose
    leases hold them: once its heartbeat lapses the others take the tasks, and every result
    arrives exactly once, each unit is charged once, nothing is left undelivered. Callbacks
    are off here, so the dead instance's tasks reach their chats only through the takeover
    (with callbacks any instance would also deliver them, whoever holds the lease)."""
    if balancer != "nginx":
        pytest.skip("one balancer is enough for the takeover (it concerns the store)")
    tg.group(OTHER_GROUP, "Sculptors")
    # A frozen clock: the jobs run until the test moves time on (``advance``), after the kill.
    async with Simulator(SimConfig(api_key=API_KEY, time_scale=0)) as frozen:
        f = await fleet(3, callbacks=False, sim_url=frozen.base_url)
        asked = {}
        for n in range(6):
            chat, user = (GROUP, ALICE) if n % 2 else (OTHER_GROUP, BOB)
            asked[n] = (chat, await tg.send_text(chat, tg.users[user], f"/imagine fleet {n}"))

        def held() -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for r in rows(storage.url, "SELECT key, lease_owner FROM tasks"):
                if r["lease_owner"]:
                    found.setdefault(r["lease_owner"], []).append(r["key"])
            return found

        await tg.wait_for(
            lambda: sum(map(len, held().values())) == 6, timeout=30, message="six tasks leased"
        )
        # API requests per task do not grow with the instances: each id is asked about by
        # the one instance holding its lease, about once per poll interval (0.3 s here), not
        # three times as often.
        ids = {r["task_id"] for r in rows(storage.url, "SELECT task_id FROM tasks")}
        before = len(frozen.requests)
        await asyncio.sleep(1.5)
        asks = [
            i
            for r in frozen.requests[before:]
            if r.path == "/mj/task/list-by-condition"
            for i in r.body["ids"]
        ]
        per_id = {i: asks.count(i) for i in ids}
        assert max(per_id.values()) <= 1.5 / 0.3 + 2, per_id
        print(f"\nlist-by-condition asks per task in 1.5 s, three instances: {per_id}")
        owner, keys = max(held().items(), key=lambda item: len(item[1]))
        (pid,) = [
            r["pid"] for r in rows(storage.url, "SELECT pid FROM instances WHERE id = ?", owner)
        ]
        (victim,) = [b for b in f.bots if b.proc is not None and b.proc.pid == pid]
        killed_at = time.time()
        await victim.stop(kill=True)
        frozen.advance(3600)  # every job finishes now; the dead one's wait for the takeover
        await grids(tg, asked)

        delivered = rows(storage.url, "SELECT key, delivered_at FROM tasks")
        first = min(r["delivered_at"] for r in delivered if r["key"] in keys)
        failover = first - killed_at
        print(
            f"\nfailover: {len(keys)} tasks of the killed instance, first result posted"
            f" {failover:.2f} s after kill -9 (lease TTL {LEASE_TTL_S} s)"
        )
        # (the clock was frozen until after the kill: nothing of it could be posted before)
        assert 0.0 < failover < 30.0
        for chat, message in asked.values():
            assert photo_replies(tg, chat, message.message_id) == 1
        assert sorted(r.body["prompt"] for r in frozen.submits("imagine")) == sorted(
            f"fleet {n}" for n in range(6)
        )
        await asyncio.sleep(1.0)  # a second post, were there one, would have been sent by now
        for chat, message in asked.values():
            assert photo_replies(tg, chat, message.message_id) == 1
        assert all(r["delivered_at"] for r in delivered)  # nothing left undelivered
        charges = rows(storage.url, "SELECT task_key, units, outcome FROM ledger")
        assert len(charges) == 6 and len({c["task_key"] for c in charges}) == 6
        await tg.wait_for(
            lambda: (
                {c["outcome"] for c in rows(storage.url, "SELECT outcome FROM ledger")}
                == {"success"}
            ),
            timeout=10,
            message="every charge settled once, as spent",
        )
        taken_by = {r["lease_owner"] for r in rows(storage.url, "SELECT lease_owner FROM tasks")}
        assert owner not in taken_by
