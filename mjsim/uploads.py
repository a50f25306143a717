"""Image inputs of submit bodies: data URIs (Java/Plus style, §10.1)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*);base64,(.*)$", re.S)

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
}


@dataclass(frozen=True, slots=True)
class Upload:
    """One decoded image input, kept so the simulator can serve it back."""

    data: bytes
    mime: str = "image/png"

    @property
    def ext(self) -> str:
        return _EXTENSIONS.get(self.mime, "png")

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class BadBase64(ValueError):
    """The field is not a usable data URI (-> code 4 ``base64格式错误``)."""


def _decode(payload: str) -> bytes:
    try:
        data = base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadBase64(str(exc)) from exc
    if not data:
        raise BadBase64("empty payload")
    return data


def parse_data_uri(value: object) -> Upload:
    """Decode ``data:<mime>;base64,<payload>``; raw base64 is rejected like Java/Plus do."""
    if not isinstance(value, str):
        raise BadBase64("not a string")
    match = _DATA_URI.match(value.strip())
    if not match:
        raise BadBase64("not a data URI")
    return Upload(_decode(match.group(3)), (match.group(1) or "image/png").lower())


def parse_lenient(value: object) -> Upload:
    """trueai style: a data URI, or raw base64 taken as PNG (masks, video/edit images)."""
    if isinstance(value, str) and not value.strip().startswith("data:"):
        return Upload(_decode(value), "image/png")
    return parse_data_uri(value)
