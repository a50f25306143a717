"""Discord OpenAPI spec: request-body validation for the fake Discord server.

The spec (``../shared/specs/discord-openapi.json`` beside the checkout, OpenAPI 3.1, API v10) is
loaded once per process; a validator is compiled once per (path template, method) and cached.
``$ref`` pointers resolve against the whole spec through a ``referencing`` registry (Draft 2020-12).

A plain clone has no ``shared/`` folder; then ``SPEC_AVAILABLE`` is False, :func:`validate_body`
returns no violations and the fake enforces only the documented limits it checks itself.

One deliberate relaxation: ``SnowflakeType`` also accepts non-negative integers. The spec says
"string", but Discord accepts integer snowflakes and its own "Uploading Files" example, like
discord.py, sends ``"attachments": [{"id": 0, ...}]`` for new files.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "discord-openapi.json"
_BASE_URI = "urn:discord-openapi"


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any] | None:
    """The parsed spec (with the snowflake relaxation), or None when the shared folder is absent."""
    try:
        data = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    schemas = data.get("components", {}).get("schemas", {})
    if "SnowflakeType" in schemas:
        original = copy.deepcopy(schemas["SnowflakeType"])
        original.pop("format", None)
        schemas["SnowflakeType"] = {"anyOf": [original, {"type": "integer", "minimum": 0}]}
    return data


SPEC_AVAILABLE: bool = load_spec() is not None


@dataclass(frozen=True)
class Violation:
    """One rejected field: ``path`` into the body, Discord-style error ``code`` and ``message``."""

    path: tuple[str | int, ...]
    code: str
    message: str


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


@lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern[str], str, int]]:
    spec = load_spec()
    if spec is None:
        return []
    out = []
    for template in spec["paths"]:
        params = template.count("{")
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(f"^{pattern}$"), template, params))
    # Literal segments win over parameters (``messages/@original`` over ``messages/{id}``).
    out.sort(key=lambda item: item[2])
    return out


def match_template(path: str) -> str | None:
    """The spec path template for a concrete API path (without the ``/api/v10`` prefix)."""
    for pattern, template, _ in _templates():
        if pattern.match(path):
            return template
    return None


_validators: dict[tuple[str, str], Any] = {}


def _validator(template: str, method: str) -> Any | None:
    key = (template, method.lower())
    if key in _validators:
        return _validators[key]
    spec = load_spec()
    validator = None
    if spec is not None:
        operation = spec["paths"].get(template, {}).get(method.lower(), {})
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            import jsonschema
            from referencing import Registry
            from referencing.jsonschema import DRAFT202012

            registry = _registry(Registry, DRAFT202012)
            pointer = "/".join(
                [
                    "",
                    "paths",
                    _escape(template),
                    method.lower(),
                    "requestBody",
                    "content",
                    _escape("application/json"),
                    "schema",
                ]
            )
            validator = jsonschema.Draft202012Validator(
                {"$ref": f"{_BASE_URI}#{pointer}"}, registry=registry
            )
    _validators[key] = validator
    return validator


@lru_cache(maxsize=1)
def _registry(registry_cls: Any, draft: Any) -> Any:
    resource = draft.create_resource(load_spec())
    return registry_cls().with_resource(_BASE_URI, resource)


def has_body_schema(template: str, method: str) -> bool:
    return _validator(template, method) is not None


def _discriminator_mismatch(error: Any) -> bool:
    """True when a union branch failed because the instance is the other kind of thing."""
    rel = list(error.relative_path)
    if error.validator == "type" and not rel:
        return True
    return error.validator in ("enum", "const") and rel == ["type"]


def _leaves(error: Any) -> Iterable[Any]:
    """Descend into anyOf/oneOf failures, following the branch whose discriminator matched."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[int, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        candidates = [
            errs
            for _, errs in sorted(branches.items())
            if not any(_discriminator_mismatch(e) for e in errs)
        ]
        if candidates:
            best = min(candidates, key=len)
            for sub in best:
                yield from _leaves(sub)
            return
    yield error


_CODES = {
    "maxLength": "BASE_TYPE_MAX_LENGTH",
    "minLength": "BASE_TYPE_MIN_LENGTH",
    "maxItems": "BASE_TYPE_MAX_LENGTH",
    "minItems": "BASE_TYPE_MIN_LENGTH",
    "required": "BASE_TYPE_REQUIRED",
    "type": "BASE_TYPE_BAD_TYPE",
    "enum": "BASE_TYPE_CHOICES",
    "const": "BASE_TYPE_CHOICES",
    "maximum": "NUMBER_TYPE_MAX",
    "minimum": "NUMBER_TYPE_MIN",
    "pattern": "STRING_TYPE_REGEX",
}


def _message(error: Any) -> str:
    limit = error.validator_value
    text = {
        "maxLength": f"Must be {limit} or fewer in length.",
        "minLength": f"Must be {limit} or more in length.",
        "maxItems": f"Must be {limit} or fewer in length.",
        "minItems": f"Must be {limit} or more in length.",
        "required": "This field is required",
    }.get(str(error.validator))
    if text is None:
        text = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{text} (spec: {error.validator})"


def validate_body(template: str, method: str, body: Any) -> list[Violation]:
    """Spec violations of a JSON request body (empty when valid or when the spec is absent)."""
    validator = _validator(template, method)
    if validator is None:
        return []
    out: list[Violation] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for error in validator.iter_errors(body):
        for leaf in _leaves(error):
            path = tuple(leaf.absolute_path)
            if leaf.validator == "required":
                missing = re.match(r"'([^']+)'", leaf.message)
                if missing:
                    path = (*path, missing.group(1))
            key = (path, leaf.message)
            if key in seen:
                continue
            seen.add(key)
            code = _CODES.get(str(leaf.validator), "INVALID_FORM_BODY")
            out.append(Violation(path, code, _message(leaf)))
    return out


def errors_tree(violations: Iterable[Violation]) -> dict[str, Any]:
    """Discord's nested ``errors`` object: ``{"data": {"content": {"_errors": [...]}}}``."""
    tree: dict[str, Any] = {}
    for violation in violations:
        node = tree
        for segment in violation.path:
            node = node.setdefault(str(segment), {})
        node.setdefault("_errors", []).append(
            {"code": violation.code, "message": violation.message}
        )
    return tree
