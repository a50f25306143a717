"""Telegram Mini App ``initData`` validation (the mask editor posts it with every mask).

Telegram's own signing scheme, so it lives in the Telegram adapter; the composition root hands
:func:`init_data_check` to the mask editor's server (``adapters.web.MiniAppServer``).

Algorithm from the Mini Apps docs ("Validating data received via the Mini App"): drop
``hash``, sort the remaining ``key=value`` pairs, join them with newlines; the secret key is
HMAC-SHA256(key="WebAppData", msg=bot_token); the expected hash is the hex HMAC-SHA256 of the
check string under that secret. Stale ``auth_date`` values are refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from bot.chat import Requester
from bot.i18n import normalize

from .port import PLATFORM

MAX_AGE_S = 24 * 3600


def sign(fields: dict[str, str], bot_token: str) -> str:
    """The hash Telegram would put beside ``fields`` (used by tests and by the validator)."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def validate(
    init_data: str, bot_token: str, *, max_age_s: float = MAX_AGE_S, now: float | None = None
) -> dict[str, Any] | None:
    """The parsed fields (``user`` decoded from JSON) when genuine and fresh, else None."""
    if not init_data or not bot_token:
        return None
    try:
        fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        return None
    received = fields.pop("hash", "")
    if not received or not hmac.compare_digest(sign(fields, bot_token), received):
        return None
    try:
        auth_date = int(fields.get("auth_date", "0"))
    except ValueError:
        return None
    if (now if now is not None else time.time()) - auth_date > max_age_s:
        return None
    parsed: dict[str, Any] = dict(fields)
    if "user" in fields:
        try:
            parsed["user"] = json.loads(fields["user"])
        except ValueError:
            return None
    return parsed


def init_data_check(bot_token: str) -> Callable[[str], Awaitable[Requester | None]]:
    """The Mini App check for Telegram: signed initData -> that user in their private chat.

    The mask editor button is only offered in private chats, whose chat id is the user's id.
    """

    async def check(init_data: str) -> Requester | None:
        fields = validate(init_data, bot_token)
        user = fields.get("user") if fields else None
        if not isinstance(user, dict) or "id" not in user:
            return None
        user_id = str(user["id"])
        name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
        return Requester(
            platform=PLATFORM,
            chat_id=user_id,
            user_id=user_id,
            language=normalize(user.get("language_code")),
            user_name=name,
            is_private=True,
        )

    return check
