"""The [telegram] webhook settings: validated on load, and the secret every instance agrees on."""

from __future__ import annotations

import re

import pytest

from bot import config as cfg
from bot.config import ConfigError, Secret, TelegramConfig

TOKEN = "123456:ABC-webhook-token"


def load(**telegram: str) -> cfg.Config:
    env = {"MJBOT_TELEGRAM__TOKEN": TOKEN}
    env.update({f"MJBOT_TELEGRAM__{k.upper()}": v for k, v in telegram.items()})
    config = cfg.load(None, env)
    config.validate()
    return config


def test_polling_unless_a_webhook_url_is_set() -> None:
    assert not load().telegram.webhook
    config = load(webhook_url="https://bot.example.com/tg", webhook_listen="0.0.0.0:8443")
    assert config.telegram.webhook
    assert config.telegram.webhook_listen == "0.0.0.0:8443"


@pytest.mark.parametrize(
    "url",
    ["http://bot.example.com/tg", "bot.example.com/tg", "ftp://bot.example.com/", "https://"],
)
def test_a_webhook_url_must_be_https(url: str) -> None:
    with pytest.raises(ConfigError, match=r"telegram.webhook_url must be an https:// URL"):
        load(webhook_url=url)


def test_plain_http_only_for_a_loopback_bot_api() -> None:
    assert load(webhook_url="http://127.0.0.1:8092/tg").telegram.webhook


def test_a_bad_listen_address_is_named() -> None:
    with pytest.raises(ConfigError, match=r"telegram.webhook_listen must look like HOST:PORT"):
        load(webhook_listen="8092")


@pytest.mark.parametrize("secret", ["has space", "é" * 4, "x" * 257, "semi;colon"])
def test_a_secret_telegram_would_refuse_is_refused_on_load(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"telegram.webhook_secret must be 1-256") as caught:
        load(webhook_url="https://bot.example.com/tg", webhook_secret=secret)
    assert secret not in str(caught.value)  # a secret is never echoed


def test_the_derived_secret_is_shared_stable_and_per_token() -> None:
    one = TelegramConfig(token=Secret(TOKEN)).webhook_token()
    # Another instance, another process, the same config: the same secret.
    assert load(webhook_url="https://bot.example.com/tg").telegram.webhook_token() == one
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", one)  # what setWebhook accepts
    assert TOKEN not in one and TOKEN.split(":")[1] not in one
    assert TelegramConfig(token=Secret(TOKEN + "x")).webhook_token() != one
    configured = TelegramConfig(token=Secret(TOKEN), webhook_secret=Secret("mine_42"))
    assert configured.webhook_token() == "mine_42"


def test_the_webhook_secret_is_redacted_from_logs() -> None:
    config = load(webhook_url="https://bot.example.com/tg")
    assert config.telegram.webhook_token() in config.secrets()
    assert (
        "mine_42"
        in load(webhook_url="https://bot.example.com/tg", webhook_secret="mine_42").secrets()
    )
    assert "Secret('***')" in repr(load(webhook_secret="mine_42").telegram)
