"""End-to-end harness: ``mjbot run`` as a real subprocess against the simulator and the fake
Telegram server, both running in the test process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import storage

API_KEY = "sk-e2e-secret-0123456789"
TG_TOKEN = "123456:E2E-SECRET-TOKEN"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.extend(
            f"{key} = {toml_value(value)}" for key, value in values.items() if key not in tables
        )
        for name, table in tables.items():
            lines.append(f"[{section}.{name}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class BotProcess:
    """One ``mjbot run`` subprocess; its stderr goes to a log file the tests can scan."""

    def __init__(self, tmp: Path, sim_url: str, tg_url: str, **overrides: dict[str, Any]):
        sections: dict[str, dict[str, Any]] = {
            "midjourney": {"base_url": sim_url, "api_key": API_KEY, "auth_header": "bearer"},
            "telegram": {
                "token": TG_TOKEN,
                "api_base_url": f"{tg_url}/bot",
                "file_base_url": f"{tg_url}/file/bot",
                # The fake does not limit groups per minute unless a test turns it on; pacing
                # to 20/min would only slow the suite (test_outbox covers the window).
                "group_messages_per_minute": 0,
            },
            "tracking": {
                "poll_interval_s": 0.3,
                "edit_interval_s": 0.4,
                "send_interval_s": 0.05,
                "listen": f"127.0.0.1:{free_port()}",
            },
            "storage": storage.config_section(tmp / "data" / "mjbot.db"),
            "logging": {"level": "DEBUG"},
        }
        for section, values in overrides.items():
            sections.setdefault(section, {}).update(values)
        self.config = write_config(tmp / "config.toml", sections)
        store = sections["storage"]
        self.database: str = store.get("url") or store["path"]
        self.log_path = tmp / "mjbot.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--config", str(self.config)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def stop(self, kill: bool = False) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        for _ in range(200):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.proc.kill()
        return self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Committed rows of the bot's database (either store; SQLite's ``?`` marks)."""
        return storage.rows(self.database, sql, *args)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
