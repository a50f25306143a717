"""The load balancer: a real nginx running deploy/nginx.conf (its upstreams pointed at the test's
instances) in front of several ``mjbot run`` processes in webhook mode. The fake Bot API posts
updates to nginx, the simulator calls back through it, and the tests check what users see.

Until the stores share leases, each instance here has its own SQLite database: what is proven is
the path (Telegram -> nginx -> any instance -> the user; API -> nginx -> an instance) and
failover of new requests, not cross-instance exactly-once (that needs the shared store)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ALICE, BOB, GROUP, assert_no_leaks
from tests.harness import ROOT, BotProcess, free_port
from tests.storage import rows

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
OTHER_GROUP = -100456


@pytest.fixture(autouse=True)
def need_nginx() -> None:
    if NGINX is None:
        reason = "nginx is not installed (apt-get install nginx; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


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
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("nginx did not start: " + self.log())

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


class Fleet:
    """``count`` instances of one deployment behind nginx, each with its own data directory."""

    def __init__(self, tmp: Path, sim_url: str, tg_url: str, count: int) -> None:
        self.hooks = [free_port() for _ in range(count)]
        self.webhooks = [free_port() for _ in range(count)]
        self.lb = Nginx(tmp / "nginx", {8092: self.webhooks, 8090: self.hooks})
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
                    },
                    tracking={
                        "listen": f"127.0.0.1:{self.hooks[i]}",
                        "webhook_public_url": self.lb.url,
                    },
                )
            )


@pytest.fixture
async def fleet(tmp_path, sim, tg):
    made: list[Fleet] = []

    async def make(count: int) -> Fleet:
        f = Fleet(tmp_path, sim.base_url, tg.url, count)
        made.append(f)
        await f.lb.start()
        for bot in f.bots:
            bot.start()
        await tg.wait_for(lambda: len(tg.calls_to("setWebhook")) >= count, timeout=60)
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
async def test_updates_and_callbacks_reach_every_instance_through_nginx(fleet, sim, tg):
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
    # Every post went through nginx, to an instance, and was answered 200.
    assert {s for _, s in tg.webhook_posts} == {200}
    upstreams = {line.split()[-2] for line in f.lb.access() if "POST 200" in line}
    assert {f"127.0.0.1:{p}" for p in f.webhooks} <= upstreams
    # The simulator's notifyHook callbacks came in through nginx too.
    hooked = [line for line in f.lb.access() if any(f":{p} " in line for p in f.hooks)]
    assert hooked, f.lb.access()

    async with aiohttp.ClientSession() as http:
        # The secret is checked behind the balancer as well.
        async with http.post(f"{f.lb.url}/telegram/update", json={"update_id": 1}) as resp:
            assert resp.status == 403
        # /status is not passed on.
        async with http.get(f"{f.lb.url}/status") as resp:
            assert resp.status == 404


@pytest.mark.timeout(400)
async def test_a_killed_instance_is_passed_over(fleet, sim, tg):
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
    # Telegram saw no failure: nginx moved each post to the live instance itself, after
    # trying the dead one first for at least one (a refused connection; non_idempotent in
    # the config also covers an instance that dies after taking a post).
    assert {s for _, s in tg.webhook_posts} == {200}
    dead, live = (f"127.0.0.1:{p}" for p in f.webhooks)
    assert any(f"{dead}, {live}" in line for line in f.lb.access()), f.lb.access()
    assert {f"after {n}" for n in range(3)} <= set(tasks_of(f.bots[1]))
