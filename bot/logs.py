"""Logging set up once: secrets redacted from every record, token-bearing URLs kept out.

httpx logs each request URL at INFO, and Telegram URLs carry the bot token
(``.../bot<token>/sendMessage``), so httpx and httpcore are raised to WARNING; the redaction
filter is the second line of defence for anything else that formats a secret into a message.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

# Which task and chat the current coroutine works for; every log line carries them.
_context: contextvars.ContextVar[str] = contextvars.ContextVar("mjbot_log_context", default="")


@contextmanager
def context(**fields: object) -> Iterator[None]:
    """Tag the log lines of this block (and of tasks it spawns) with e.g. task= and chat=."""
    current = _context.get()
    extra = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
    token = _context.set(f"{current} {extra}".strip())
    try:
        yield
    finally:
        _context.reset(token)


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        value = _context.get()
        record.ctx = f" [{value}]" if value else ""
        return True


class Redact(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.exc_text = text
            record.exc_info = None
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s%(ctx)s: %(message)s")
    )
    handler.addFilter(_Context())
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # discord.py's DEBUG output carries interaction tokens and users' prompts.
    for noisy in ("httpx", "httpcore", "aiosqlite", "aiohttp.access", "discord"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
