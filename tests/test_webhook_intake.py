"""adapters/telegram/webhook.py in-process: what the receiver answers to each kind of post, what
it queues for python-telegram-bot, and setWebhook riding out a flood wait at start."""

from __future__ import annotations

import io
import json
import logging

import aiohttp
import pytest
from telegram import Update
from telegram.ext import ApplicationBuilder

from adapters.telegram.webhook import ALLOWED_UPDATES, MAX_UPDATE, SECRET_HEADER, WebhookIntake
from tests.fakes.telegram import FakeTelegram

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
async def intake():
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
        await receiver.start("127.0.0.1:0")
        receiver.fake = fake  # type: ignore[attr-defined]
        try:
            yield receiver
        finally:
            await receiver.stop()
            await app.shutdown()


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
    assert intake.counters() == {"received": 1, "queued": 1, "refused": 0, "invalid": 0}


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
    assert intake.counters() == {"received": 7, "queued": 0, "refused": 3, "invalid": 4}
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
        try:
            await receiver.start("127.0.0.1:0")
            assert [c.status for c in fake.calls_to("setWebhook")] == [429, 200]
            assert fake.webhook is not None and fake.webhook["secret_token"] == SECRET
        finally:
            await receiver.stop()
            await app.shutdown()
