"""adapters/telegram/webhook.py in-process: what the receiver answers to each kind of post, what
it queues for python-telegram-bot, setWebhook riding out a flood wait at start, and what
``mjbot check`` reads back from getWebhookInfo."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys

import aiohttp
import pytest
import telegram
from telegram import Update
from telegram.ext import ApplicationBuilder

from adapters.telegram.webhook import (
    ALLOWED_UPDATES,
    MAX_UPDATE,
    SECRET_HEADER,
    WebhookIntake,
    describe,
)
from bot.config import Secret, TelegramConfig
from bot.store.sqlite import SQLiteStore
from tests.fakes.telegram import FakeTelegram
from tests.harness import ROOT, write_config

SECRET = "Intake_secret-1"
UPDATE = {
    "update_id": 4242,
    "message": {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": 7001, "type": "private", "first_name": "Alice"},
        "from": {"id": 7001, "is_bot": False, "first_name": "Alice"},
        "text": "/imagine a quiet harbour",
    },
}


@pytest.fixture
async def intake(tmp_path):
    store = await SQLiteStore.open(tmp_path / "mjbot.db")
    async with FakeTelegram() as fake:
        app = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(fake.base_url)
            .base_file_url(fake.base_file_url)
            .updater(None)
            .build()
        )
        await app.initialize()
        receiver = WebhookIntake(app, "http://127.0.0.1:1/tg/in", SECRET)
        receiver.attach(store)
        await receiver.start("127.0.0.1:0")
        receiver.fake = fake  # type: ignore[attr-defined]
        try:
            yield receiver
        finally:
            await receiver.stop()
            await app.shutdown()
            await store.close()


def counted(**counts: int) -> dict[str, int]:
    """The receiver's counters: those given, the others 0."""
    names = ("received", "queued", "refused", "invalid", "kept_already", "unkept", "taken_over")
    return {name: counts.get(name, 0) for name in names}


async def post(intake: WebhookIntake, body: bytes, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    url = f"http://127.0.0.1:{intake.port}{intake.path}"
    data = io.BytesIO(body)  # aiohttp warns about large raw bytes
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as r:
        return r.status


async def test_registers_then_queues_an_update(intake: WebhookIntake) -> None:
    registered = intake.fake.calls_to("setWebhook")  # type: ignore[attr-defined]
    assert [c.params for c in registered] == [
        {
            "url": "http://127.0.0.1:1/tg/in",
            "secret_token": SECRET,
            "allowed_updates": list(ALLOWED_UPDATES),
            "drop_pending_updates": False,
        }
    ]
    assert await post(intake, json.dumps(UPDATE).encode()) == 200
    update = intake.app.update_queue.get_nowait()
    assert isinstance(update, Update)
    assert update.update_id == 4242 and update.message.text == "/imagine a quiet harbour"
    assert intake.counters() == counted(received=1, queued=1)


async def test_refusals_queue_nothing(intake: WebhookIntake, caplog) -> None:
    caplog.set_level(logging.INFO, "adapters.telegram.webhook")
    body = json.dumps(UPDATE).encode()
    assert await post(intake, body, secret=None) == 403
    assert await post(intake, body, secret="Intake_secret-2") == 403
    assert await post(intake, body, secret="ünïcode") == 403
    assert await post(intake, b"[1, 2]") == 400
    assert await post(intake, b'{"update_id": "7"}') == 400
    assert await post(intake, b"\xff\xfe") == 400
    assert await post(intake, b'{"update_id": 1, "pad": "' + b"x" * MAX_UPDATE + b'"}') == 413
    assert intake.app.update_queue.empty()
    assert intake.counters() == counted(received=7, refused=3, invalid=4)
    assert "Intake_secret-2" not in caplog.text and SECRET not in caplog.text


async def test_set_webhook_waits_out_a_flood_limit() -> None:
    async with FakeTelegram() as fake:
        fake.fail_next(
            "setWebhook",
            description="Too Many Requests: retry after 1",
            error_code=429,
            parameters={"retry_after": 1},
        )
        app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).updater(None).build()
        await app.initialize()
        receiver = WebhookIntake(app, "http://127.0.0.1:1/tg/in", SECRET)
        store = await SQLiteStore.open(":memory:")
        receiver.attach(store)
        try:
            await receiver.start("127.0.0.1:0")
            assert [c.status for c in fake.calls_to("setWebhook")] == [429, 200]
            assert fake.webhook is not None and fake.webhook["secret_token"] == SECRET
        finally:
            await receiver.stop()
            await app.shutdown()
            await store.close()


def telegram_config(fake: FakeTelegram, **values: str) -> TelegramConfig:
    return TelegramConfig(
        token=Secret(values.pop("token", fake.token)),
        api_base_url=fake.base_url,
        file_base_url=fake.base_file_url,
        **values,  # type: ignore[arg-type]
    )


async def test_mjbot_check_tells_how_updates_arrive() -> None:
    async with FakeTelegram() as fake:
        fake.user(7001, "Alice")
        hook = "http://127.0.0.1:1/tg/in"  # nothing listens: deliveries fail
        config = telegram_config(fake, webhook_url=hook, webhook_secret=SECRET)
        assert await describe(config) == [
            f"telegram: webhook as @{fake.bot_username} at {hook}",
            "  registered: nothing (the bot registers it when it starts)",
            "  updates waiting at Telegram: 0",
        ]
        bot = telegram.Bot(**fake.bot_kwargs())
        async with bot:
            await bot.set_webhook(hook, secret_token=SECRET, allowed_updates=list(ALLOWED_UPDATES))
        await fake.send_text(7001, 7001, "/imagine unreachable")
        await fake.wait_for(lambda: fake.webhook and fake.webhook["last_error_message"])
        lines = await describe(config)
        assert lines[1] == "  registered: yes, for message, callback_query"
        assert lines[2] == "  updates waiting at Telegram: 1"
        assert re.fullmatch(r"  last delivery error, \d+ s ago: Connection failed: .+", lines[3])

        # Polling mode, a webhook left registered: the check says what start will do.
        polling = telegram_config(fake)
        assert await describe(polling) == [
            f"telegram: long polling as @{fake.bot_username}",
            f"  a webhook is registered ({hook}): deleted when the bot starts",
        ]
        # A wrong token: one line, without the token.
        wrong = telegram_config(fake, token="999:WRONG-TOKEN-VALUE")
        (line,) = await describe(wrong)
        assert line.startswith("telegram: FAIL ") and "WRONG-TOKEN-VALUE" not in line
        assert fake.webhook is not None  # read only: nothing registered or deleted


async def test_the_check_command_includes_the_telegram_lines(tmp_path) -> None:
    async with FakeTelegram() as fake:
        sections = {
            "midjourney": {"base_url": "simulator"},
            "telegram": {
                "token": fake.token,
                "api_base_url": fake.base_url,
                "file_base_url": fake.base_file_url,
                "webhook_url": "https://bot.example.com/tg",
            },
        }
        config = write_config(tmp_path / "check.toml", sections)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "check",
            "--config",
            str(config),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()
    assert proc.returncode == 0, lines
    assert lines[-4:] == [
        f"telegram: webhook as @{fake.bot_username} at https://bot.example.com/tg",
        "  registered: nothing (the bot registers it when it starts)",
        "  updates waiting at Telegram: 0",
        "result: the API answers with this key",
    ]
    assert fake.token not in out.decode()
