"""Machine-readable Telegram Bot API spec: loading, parameter decoding and object validation.

The spec (``../shared/specs/telegram-bot-api.json`` beside the checkout, Bot API 10.1) lists every
method with its fields (name, types, required) and every type with its fields. The fake server
uses it to reject what the real server would reject or silently ignore: unknown parameter names,
missing required parameters, values of the wrong type, and nested JSON objects (reply_markup,
media, entities...) with unknown or missing fields. A plain clone has no ``shared/`` folder; then
``SPEC_AVAILABLE`` is False and only the documented limits are enforced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_PATH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "telegram-bot-api.json"
)

# Scalar type names used by the spec.
_SCALARS = {"Integer", "Float", "String", "Boolean", "True", "InputFile"}
_DISCRIMINATOR_RE = re.compile(r'(?:always|must be)\s+[“"*]?([a-z_0-9]+)')


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any] | None:
    """The parsed spec, or None when the shared folder is absent."""
    try:
        return json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


SPEC_AVAILABLE: bool = load_spec() is not None


class SpecError(Exception):
    """A request or object does not match the spec; ``str(exc)`` is the Bot API description."""


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    raise ValueError(raw)


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*[-+]?\d+\s*", raw):
        return int(raw)
    raise ValueError(raw)


class Spec:
    """Validation against the loaded spec. ``Spec(None)`` validates nothing but still decodes."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.data = data
        self.methods: dict[str, dict[str, Any]] = data["methods"] if data else {}
        self.types: dict[str, dict[str, Any]] = data["types"] if data else {}
        self._lower = {name.lower(): name for name in self.methods}
        self._discriminators: dict[str, tuple[str, str] | None] = {}

    @property
    def available(self) -> bool:
        return self.data is not None

    def canonical_method(self, name: str) -> str | None:
        """Bot API method names are case-insensitive; the spec's spelling, or None."""
        return self._lower.get(name.lower())

    def method_fields(self, method: str) -> dict[str, dict[str, Any]] | None:
        spec = self.methods.get(method)
        if spec is None:
            return None
        return {f["name"]: f for f in spec.get("fields", [])}

    def returns(self, method: str) -> list[str]:
        spec = self.methods.get(method)
        return list(spec.get("returns", [])) if spec else []

    # -- request parameters -------------------------------------------------------------------

    def decode_params(
        self,
        method: str,
        raw: dict[str, Any],
        uploads: dict[str, Upload],
        *,
        allow_extra: frozenset[str] = frozenset(),
        strict_objects: bool = True,
    ) -> dict[str, Any]:
        """Decode the raw request values (form strings or JSON values) by the spec's types.

        File parts named like a parameter become that parameter's value (an :class:`Upload`);
        file parts referenced as ``attach://<name>`` are not parameters. Raises SpecError with a
        Bot API style description.
        """
        fields = self.method_fields(method)
        attached = _attach_names(raw)
        values: dict[str, Any] = dict(raw)
        for name, upload in uploads.items():
            if name not in attached:
                values[name] = upload
        if fields is None:
            return {k: _heuristic_decode(k, v) for k, v in values.items()}
        out: dict[str, Any] = {}
        for name, value in values.items():
            field = fields.get(name)
            if field is None:
                if name in allow_extra:
                    out[name] = _heuristic_decode(name, value)
                    continue
                raise SpecError(f"Bad Request: unknown parameter {name}")
            out[name] = self._decode_value(name, value, field["types"], strict_objects)
        for name, field in fields.items():
            if field.get("required") and name not in out:
                if name == "text":
                    raise SpecError("Bad Request: message text is empty")
                raise SpecError(f"Bad Request: required parameter {name} is missing")
        return out

    def _decode_value(self, name: str, value: Any, types: list[str], strict: bool) -> Any:
        if isinstance(value, Upload):
            if "InputFile" in types:
                return value
            raise SpecError(f"Bad Request: parameter {name} can't be a file")
        scalars = [t for t in _order_types(types) if t in _SCALARS]
        objects = [t for t in types if t not in _SCALARS]
        for t in scalars:
            try:
                return self._decode_scalar(value, t)
            except ValueError:
                pass
        if objects:
            parsed = value
            if isinstance(value, str):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    raise SpecError(f"Bad Request: can't parse {name} JSON object") from None
            self.check(parsed, objects, path=name, strict=strict)
            return parsed
        raise SpecError(
            f"Bad Request: invalid value for parameter {name}: expected {' or '.join(types)}"
        )

    @staticmethod
    def _decode_scalar(value: Any, t: str) -> Any:
        if t == "Integer":
            return _parse_int(value)
        if t == "Float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if t in ("Boolean", "True"):
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                return _parse_bool(value)
            raise ValueError(value)
        # String / InputFile given as a string (file_id, URL or attach://name)
        if isinstance(value, str):
            return value
        if t == "String" and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(value)

    # -- objects --------------------------------------------------------------------------------

    def check(self, value: Any, types: list[str], *, path: str, strict: bool = True) -> None:
        """Validate a decoded JSON value against one of ``types``; raise SpecError."""
        if not self.available:
            return
        if len(types) > 1 and all(t.startswith("Array of ") for t in types):
            # e.g. sendMediaGroup.media: photos and videos may be mixed within one array.
            if not isinstance(value, list):
                raise SpecError(f"Bad Request: can't parse {path}: expected an Array")
            inner = [t.removeprefix("Array of ") for t in types]
            for i, item in enumerate(value):
                self.check(item, inner, path=f"{path}[{i}]", strict=strict)
            return
        errors: list[str] = []
        for t in _order_types(types):
            try:
                self._check_one(value, t, path, strict)
                return
            except SpecError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise SpecError(errors[0])
        # Prefer the most specific complaint (the longest path), it usually names the real fault.
        best = max(errors, key=lambda e: e.count(".") + e.count("["))
        raise SpecError(best)

    def _check_one(self, value: Any, t: str, path: str, strict: bool) -> None:
        if t.startswith("Array of "):
            if not isinstance(value, list):
                raise SpecError(f"Bad Request: can't parse {path}: expected an Array")
            inner = t.removeprefix("Array of ")
            for i, item in enumerate(value):
                self._check_one(item, inner, f"{path}[{i}]", strict)
            return
        if t == "Integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"Bad Request: can't parse {path}: expected an Integer")
            return
        if t == "Float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SpecError(f"Bad Request: can't parse {path}: expected a Float")
            return
        if t in ("Boolean", "True"):
            if not isinstance(value, bool):
                raise SpecError(f"Bad Request: can't parse {path}: expected a Boolean")
            return
        if t in ("String", "InputFile"):
            if not isinstance(value, str):
                raise SpecError(f"Bad Request: can't parse {path}: expected a String")
            return
        spec = self.types.get(t)
        if spec is None:
            return  # a type the spec does not describe: nothing to check against
        if spec.get("subtypes"):
            self._check_abstract(value, t, spec["subtypes"], path, strict)
            return
        if not isinstance(value, dict):
            raise SpecError(f"Bad Request: can't parse {path}: expected an object {t}")
        fields = {f["name"]: f for f in spec.get("fields", [])}
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                if strict:
                    raise SpecError(
                        f'Bad Request: can\'t parse {path}: unknown field "{key}" in {t}'
                    )
                continue
            self.check(item, field["types"], path=f"{path}.{key}", strict=strict)
        for key, field in fields.items():
            if field.get("required") and key not in value:
                raise SpecError(
                    f'Bad Request: can\'t parse {path}: field "{key}" of {t} is required'
                )
        disc = self.discriminator(t)
        if disc is not None:
            key, expected = disc
            if value.get(key) != expected:
                raise SpecError(f'Bad Request: can\'t parse {path}: {t}.{key} must be "{expected}"')

    def _check_abstract(
        self, value: Any, t: str, subtypes: list[str], path: str, strict: bool
    ) -> None:
        candidates = [s for s in subtypes if s in self.types] or subtypes
        if isinstance(value, dict):
            matching = []
            for sub in candidates:
                disc = self.discriminator(sub)
                if disc is None or value.get(disc[0]) == disc[1]:
                    matching.append(sub)
            if not matching:
                keys = {d[0] for s in candidates if (d := self.discriminator(s))}
                shown = ", ".join(f"{k}={value.get(k)!r}" for k in sorted(keys))
                raise SpecError(f"Bad Request: can't parse {path}: unsupported {t} ({shown})")
            candidates = matching
        self.check(value, candidates, path=path, strict=strict)

    def discriminator(self, type_name: str) -> tuple[str, str] | None:
        """("type", "photo") for InputMediaPhoto: the field whose value names the subtype."""
        if type_name in self._discriminators:
            return self._discriminators[type_name]
        result = None
        spec = self.types.get(type_name) or {}
        if spec.get("subtype_of"):
            for field in spec.get("fields", []):
                if field["name"] in ("type", "status", "source") and field.get("required"):
                    m = _DISCRIMINATOR_RE.search(field.get("description", ""))
                    if m:
                        result = (field["name"], m.group(1))
                    break
        self._discriminators[type_name] = result
        return result


def _order_types(types: list[str]) -> list[str]:
    # Try the narrow scalars first so "Integer or String" decodes "123" as an int.
    rank = {"Integer": 0, "Float": 1, "Boolean": 2, "String": 9, "InputFile": 10}
    return sorted(types, key=lambda t: rank.get(t, 5))


def _attach_names(raw: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for value in raw.values():
        text = value if isinstance(value, str) else json.dumps(value)
        names.update(re.findall(r"attach://([A-Za-z0-9_\-.]+)", text))
    return names


# Without the spec: parameters that are always strings (never coerce "123" or "true").
_STRING_PARAMS = {
    "text",
    "caption",
    "callback_query_id",
    "web_app_query_id",
    "inline_message_id",
    "file_id",
    "action",
    "parse_mode",
    "url",
    "secret_token",
    "language_code",
    "business_connection_id",
    "message_effect_id",
    "photo",
    "document",
    "video",
    "animation",
    "audio",
    "voice",
    "sticker",
    "thumbnail",
    "description",
    "short_description",
    "name",
    "title",
    "emoji",
    "query",
    "ip_address",
}


def _heuristic_decode(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    if re.fullmatch(r"[-+]?\d+", value):
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
