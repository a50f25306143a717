"""The Dockerfile, kept honest without a Docker daemon: exactly the paths its COPY lines copy
(filtered by .dockerignore, as the build context is) go into an empty folder, are installed
there in a clean venv (pip, constraints.txt) and run: ``mjbot --help``, ``mjbot sim`` answering
a request, and ``mjbot run`` with the image's environment, checked by the image's own
HEALTHCHECK command. A package left out of the COPY lines or excluded from the context
(mjsim was, once) fails here.

Slow (a clean install: 15-60 s) but offline-friendly: pip takes what its configured index or
cache holds. It runs in CI like every other test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.harness import ROOT, free_port

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    out = []
    for line in joined:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def copies(parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(source, destination) of each COPY from the build context."""
    found = []
    for word, rest in parsed:
        if word not in ("COPY", "ADD"):
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        assert word == "COPY", "ADD fetches and unpacks: use COPY"
        assert "--from" not in rest, "a multi-stage COPY: teach this test about it"
        *sources, dest = args
        found.extend((source, dest) for source in sources)
    return found


def environment(parsed: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in parsed:
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck(parsed: list[tuple[str, str]]) -> list[str]:
    rest = next(rest for word, rest in parsed if word == "HEALTHCHECK")
    command = rest[rest.index("CMD ") + 4 :].strip()
    argv = json.loads(command)  # exec form: no shell in a slim image's way
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: (is an exception "!", the pattern as a regex). ``*``
    and ``?`` stay inside one path segment, ``**`` crosses them; the last rule that matches a
    path or one of its parent folders decides."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negate, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not negate
    return verdict


PARSED = instructions(DOCKERFILE.read_text())
ENV = environment(PARSED)
IGNORE = ignore_rules((ROOT / ".dockerignore").read_text())


def test_the_build_context_holds_no_secrets_and_everything_copied() -> None:
    for kept_out in (
        "config.toml",
        "data/mjbot.db",
        "mjbot.db-wal",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "bot/__pycache__/app.cpython-311.pyc",
        "bot/store/__pycache__",
    ):
        assert ignored(kept_out, IGNORE), kept_out
    for source, _ in copies(PARSED):
        assert not ignored(source, IGNORE), f"COPY {source}: excluded by .dockerignore"
    for needed in ("bot/store/migrations/0001_init.sql", "bot/i18n/en.json", "bot/app.py"):
        assert (ROOT / needed).exists() and not ignored(needed, IGNORE), needed


def test_the_receivers_listen_on_all_interfaces_on_exposed_ports() -> None:
    exposed = {
        int(p.split("/")[0]) for word, rest in PARSED if word == "EXPOSE" for p in rest.split()
    }
    listens = {
        key: value
        for key, value in ENV.items()
        if key in ("MJBOT_TRACKING__LISTEN", "MJBOT_TELEGRAM__WEBHOOK_LISTEN")
        or key == "MJBOT_TELEGRAM__WEBAPP_LISTEN"
    }
    assert len(listens) == 3, ENV
    for value in listens.values():
        host, _, port = value.rpartition(":")
        assert host == "0.0.0.0"
        assert int(port) in exposed
    # The load balancer (deploy/nginx.conf) sends webhook posts, callbacks and the Mini App
    # to those ports.
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    targets = {int(p) for p in re.findall(r"server mjbot:(\d+)", nginx)}
    assert targets == {int(value.rpartition(":")[2]) for value in listens.values()}
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf" in compose
    assert re.search(r"replicas: 3\b", compose)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The COPY lines' paths, alone, installed into a clean venv; the venv's bin folder."""
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    app.mkdir()
    for source, dest in copies(PARSED):
        origin = ROOT / source
        assert origin.exists(), f"COPY {source}: not in the repository"
        target = app / dest if dest not in ("./", ".") else app / origin.name
        # What the build context holds of it: .dockerignore's rules, as Docker applies them.
        files = [origin] if origin.is_file() else sorted(origin.rglob("*"))
        for path in files:
            rel = path.relative_to(ROOT).as_posix()
            if path.is_dir() or ignored(rel, IGNORE):
                continue
            out = target / path.relative_to(origin) if origin.is_dir() else target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_CONSTRAINT": str(app / "constraints.txt")}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "."],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Nothing of the repository may leak in: run from an empty folder, no PYTHONPATH.
    shutil.rmtree(app)
    return venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MJBOT_", "PYTHON"))}
    env["PYTHONWARNINGS"] = "default::ResourceWarning"
    return {**env, **extra}


@pytest.mark.timeout(900)
def test_the_installed_image_runs_help(image: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(image / "mjbot"), "--help"], cwd=tmp_path, env=clean_env(), capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert b"run" in done.stdout and b"sim" in done.stdout


@pytest.mark.timeout(900)
def test_the_installed_image_serves_the_simulator(image: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(image / "mjbot"), "sim", "--port", str(port), "--time-scale", "0.05"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = post_json(f"http://127.0.0.1:{port}/mj/submit/imagine", {"prompt": "a packaged fox"})
        assert body["code"] == 1 and body["result"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")


def post_json(url: str, payload: dict[str, object], wait_s: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + wait_s
    while True:
        request = urllib.request.Request(
            url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                result: dict[str, object] = json.loads(resp.read())
                return result
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def outside_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address: str = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.timeout(900)
async def test_the_image_healthcheck_passes_on_a_running_bot(image: Path, tmp_path: Path) -> None:
    """``mjbot run`` from the installed image with the image's ENV (the ports moved to free
    ones), Telegram at the fake, the built-in simulator; the HEALTHCHECK command, run as the
    image would run it, passes; /status from a non-loopback address is still refused."""
    ports = {key: free_port() for key in ENV if key.endswith("_LISTEN")}
    env = clean_env(
        **{key: f"0.0.0.0:{port}" for key, port in ports.items()},
        MJBOT_STORAGE__PATH=str(tmp_path / "data" / "mjbot.db"),
    )
    async with FakeTelegram(token="123:HEALTH") as tg:
        config = tmp_path / "config.toml"
        config.write_text(
            "[telegram]\n"
            'token = "123:HEALTH"\n'
            f'api_base_url = "{tg.base_url}"\n'
            f'file_base_url = "{tg.base_file_url}"\n'
            "[midjourney]\n"
            'base_url = "simulator"\n'
        )
        bot = await asyncio.create_subprocess_exec(
            str(image / "mjbot"),
            "run",
            "--config",
            str(config),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            check = healthcheck(PARSED)
            assert check[0] == "python"
            argv = [str(image / "python"), *check[1:]]
            deadline = time.monotonic() + 60
            while True:
                probe = await asyncio.create_subprocess_exec(
                    *argv, env=env, stderr=asyncio.subprocess.PIPE
                )
                _, err = await probe.communicate()
                if probe.returncode == 0 or time.monotonic() > deadline:
                    break
                assert bot.returncode is None, "mjbot run exited"
                await asyncio.sleep(0.5)
            assert probe.returncode == 0, err.decode(errors="replace")
            # Listening on all interfaces, and /status still for loopback only.
            outside = outside_address()
            if outside is not None:
                url = f"http://{outside}:{ports['MJBOT_TRACKING__LISTEN']}/status"
                async with aiohttp.ClientSession() as http, http.get(url) as resp:
                    assert resp.status == 403
        finally:
            if bot.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # it may have died on its own
                    bot.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(bot.communicate(), 30)
        assert bot.returncode == 0, out.decode(errors="replace")[-3000:]
