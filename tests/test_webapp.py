import hashlib
import hmac
import json
from urllib.parse import urlencode

from bot import webapp

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
    data = webapp.validate(vector(FIELDS), TOKEN, now=1700000100)
    assert data is not None and data["user"]["id"] == 42


def test_tampered_wrong_token_and_stale_data_are_refused():
    good = vector(FIELDS)
    assert webapp.validate(good.replace("Ann", "Bob"), TOKEN, now=1700000100) is None
    assert webapp.validate(good, "999:other", now=1700000100) is None
    assert webapp.validate(good, TOKEN, now=1700000000 + 2 * 86400) is None
    assert webapp.validate("", TOKEN) is None
    assert webapp.validate("hash=&auth_date=1", TOKEN) is None
    assert webapp.validate("%%%", TOKEN) is None
