import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from adapters.telegram import initdata

TOKEN = "123456:ABC-DEF"


def vector(fields: dict[str, str], token: str = TOKEN) -> str:
    """Sign exactly as the Mini Apps docs describe, independently of the module under test."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


FIELDS = {
    "auth_date": "1700000000",
    "query_id": "AAH",
    "user": json.dumps({"id": 42, "first_name": "Ann", "language_code": "zh-hans"}),
}


def test_genuine_init_data_is_accepted():
    data = initdata.validate(vector(FIELDS), TOKEN, now=1700000100)
    assert data is not None and data["user"]["id"] == 42


def test_tampered_wrong_token_and_stale_data_are_refused():
    good = vector(FIELDS)
    assert initdata.validate(good.replace("Ann", "Bob"), TOKEN, now=1700000100) is None
    assert initdata.validate(good, "999:other", now=1700000100) is None
    assert initdata.validate(good, TOKEN, now=1700000000 + 2 * 86400) is None
    assert initdata.validate("", TOKEN) is None
    assert initdata.validate("hash=&auth_date=1", TOKEN) is None
    assert initdata.validate("%%%", TOKEN) is None


async def test_telegram_init_data_names_the_user() -> None:
    user = {"id": 4242, "first_name": "Ann", "language_code": "zh-hans"}
    fields = {"auth_date": str(int(time.time())), "user": json.dumps(user)}
    signed = "&".join(f"{k}={v}" for k, v in fields.items())
    signed += "&hash=" + initdata.sign(fields, "123:abc")
    check = initdata.init_data_check("123:abc")
    req = await check(signed)
    assert req is not None
    assert (req.platform, req.chat_id, req.user_id, req.language) == (
        "telegram",
        "4242",
        "4242",
        "zh",
    )
    assert await check(signed.replace("Ann", "Bob")) is None
    assert await initdata.init_data_check("999:other")(signed) is None
