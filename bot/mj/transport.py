"""The one network class under the API's methods: httpx, retries for reads, decoding, errors.

:class:`Transport` is the only place in mjbot that touches httpx (as httpx's own transports and
aiogram's sessions are the one place under their clients). It sends a request with the retry
policy, turns the HTTP status and body shape into a :class:`Reply` or an :class:`MjError`, and
counts what it did. It knows nothing of routes, providers or task JSON: that is
:class:`bot.mj.client.MjClient`, above it. See reference/mj-api.md §5 and §15.

Money is spent on every accepted submit, so submits are never retried once the request may have
reached the server; only reads (fetch, list, seed) are retried.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from bot.metrics import Metrics, route_of
from bot.mj.models import loads

log = logging.getLogger("bot.mj")

_DETAIL_MAX = 500


class ErrorKind(StrEnum):
    """Why a call produced no answer the API family defines (an envelope or a task)."""

    UNREACHABLE = "unreachable"  # no HTTP answer; for a ConnectError the request was never sent
    TIMEOUT = "timeout"  # sent, no answer in time: a submit may or may not have been accepted
    SERVER = "server"  # 5xx without an envelope
    AUTH = "auth"  # 401/403: the key (or the account behind it) is refused
    RATE_LIMITED = "rate_limited"  # 429
    NOT_FOUND = "not_found"  # 404 without an envelope: usually a wrong base URL or mode prefix
    BAD_RESPONSE = "bad_response"  # non-JSON, empty or foreign body; unexpected status


class MjError(Exception):
    """The API gave no usable answer. ``detail`` is for logs and admins, never holds the key."""

    def __init__(
        self,
        kind: ErrorKind,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(self.__str__())

    def __str__(self) -> str:
        head = self.kind.value if self.status is None else f"{self.kind.value} (HTTP {self.status})"
        return f"{head}: {self.detail}" if self.detail else head

    def __repr__(self) -> str:
        return f"MjError({self.kind.value!r}, status={self.status!r}, detail={self.detail!r})"


def is_envelope(body: Any) -> bool:
    """The API's own answer: {code, description, ...} or trueai's {success, code, message}."""
    if not isinstance(body, dict):
        return False
    return "code" in body or ("success" in body and ("message" in body or "description" in body))


def body_text(body: Any, text: str) -> str:
    """The human part of an error body: description, message, OpenAI-style error.message, text."""
    if isinstance(body, dict):
        for key in ("description", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        error = body.get("error")
        if isinstance(error, dict) and isinstance(message := error.get("message"), str):
            return message
        if isinstance(error, str) and error:
            return error
    return text.strip()


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or junk."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer the API family defines: its HTTP status and its parsed JSON (None if empty)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Transport:
    """One base URL over an injected (or owned) ``httpx.AsyncClient``; fixed headers (auth);
    ``secret`` is masked in every error text."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        secret: str = "",
        timeout_s: float = 30.0,
        read_retries: int = 2,
        retry_delay_s: float = 0.5,
        http: httpx.AsyncClient | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._base = base_url
        self._headers = dict(headers)
        self._secret = secret
        self.timeout_s = float(timeout_s)
        self._read_retries = max(0, int(read_retries))
        self._retry_delay_s = max(0.0, float(retry_delay_s))
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(follow_redirects=False)
        # Every HTTP attempt by route, and failures by kind (`mjbot status`, the benchmarks).
        self.counts = (metrics if metrics is not None else Metrics()).api

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close the connection pool only if we created it: an injected one is the caller's."""
        if self._owns_http:
            await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        idempotent: bool,
        envelope_on_5xx: bool = False,
        timeout_s: float | None = None,
        retry_timeouts: bool = True,
    ) -> Reply:
        """One request with the retry policy, decoded (``decode``); raises MjError."""
        response = await self._send(
            method,
            path,
            body=body,
            idempotent=idempotent,
            timeout_s=timeout_s,
            retry_timeouts=retry_timeouts,
        )
        return Reply(response.status_code, self._decode(response, envelope_on_5xx=envelope_on_5xx))

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        idempotent: bool,
        timeout_s: float | None = None,
        retry_timeouts: bool = True,
    ) -> httpx.Response:
        """One request with the retry policy; transport failures become MjError here.

        Reads retry connect errors, timeouts, other transport errors and 5xx. A submit is
        repeated only after ``httpx.ConnectError`` (the request never left), and only once.
        """
        retries = self._read_retries if idempotent else 0
        connect_retries = self._read_retries if idempotent else 1
        url = f"{self._base}{path}"
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        attempt = 0
        route = route_of(path)
        while True:
            attempt += 1
            self.counts.requests += 1
            self.counts.by_route[route] += 1
            started = time.monotonic()
            try:
                response = await self._http.request(
                    method, url, json=body, headers=self._headers, timeout=timeout
                )
            except httpx.ConnectError as exc:
                error = self.error(ErrorKind.UNREACHABLE, f"{method} {path}: {exc}")
                allowed = connect_retries
            except httpx.TimeoutException as exc:
                name = type(exc).__name__
                error = self.error(ErrorKind.TIMEOUT, f"{method} {path}: {name} after {timeout}s")
                allowed = retries if retry_timeouts else 0
            except httpx.TransportError as exc:
                name = type(exc).__name__
                error = self.error(ErrorKind.UNREACHABLE, f"{method} {path}: {name}: {exc}")
                allowed = retries
            else:
                elapsed_ms = (time.monotonic() - started) * 1000
                log.debug("%s %s -> %s in %.0f ms", method, path, response.status_code, elapsed_ms)
                if not (idempotent and response.status_code >= 500 and attempt <= retries):
                    return response
                error = self.error(
                    ErrorKind.SERVER, f"{method} {path}", status=response.status_code
                )
                allowed = retries
            self.counts.errors[error.kind] += 1
            if attempt > allowed:
                log.debug("%s %s failed: %s", method, path, error)
                raise error
            delay = self._retry_delay_s * 2 ** (attempt - 1)
            log.info("%s %s failed (%s); retry %d in %.1fs", method, path, error, attempt, delay)
            if delay:
                await asyncio.sleep(delay)

    def _decode(self, response: httpx.Response, *, envelope_on_5xx: bool) -> Any:
        """The one place where HTTP status and body shape become a value or an MjError.

        Returns the parsed JSON body (None when empty) for 2xx, and the envelope for 4xx (and
        for 5xx when ``envelope_on_5xx``); raises MjError for everything else (§5).
        """
        status = response.status_code
        # lstrip: some hosts prefix a UTF-8 BOM, which json.loads refuses
        text = response.text.lstrip("\ufeff") if response.content else ""
        body: Any = None
        valid = True
        if text.strip():
            try:
                body = loads(text)
            except ValueError:
                valid = False
        snippet = body_text(body, text)  # error() masks the key first, then shortens
        where = f"{response.request.method} {response.request.url.path}"
        if status in (401, 403):
            # new-api answers bad tokens with 401 + envelope: still a key problem, not a verdict
            raise self.error(ErrorKind.AUTH, f"{where}: {snippet or 'refused'}", status=status)
        if status == 429:
            raise self.error(
                ErrorKind.RATE_LIMITED,
                f"{where}: {snippet or 'too many requests'}",
                status=status,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if is_envelope(body) and (status < 500 or envelope_on_5xx):
            return body
        if status >= 500:
            raise self.error(ErrorKind.SERVER, f"{where}: {snippet or 'no body'}", status=status)
        if 200 <= status < 300:
            if not valid:
                raise self.error(
                    ErrorKind.BAD_RESPONSE, f"{where}: not JSON: {snippet}", status=status
                )
            return body
        if status == 404:
            raise self.error(ErrorKind.NOT_FOUND, f"{where}: {snippet or 'no body'}", status=status)
        location = response.headers.get("Location", "")
        extra = f" (redirect to {location})" if location else ""
        raise self.error(
            ErrorKind.BAD_RESPONSE, f"{where}: {snippet or 'no body'}{extra}", status=status
        )

    def error(
        self,
        kind: ErrorKind,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> MjError:
        """Build an MjError whose text can go to logs and admin chats: the key is masked."""
        if self._secret:
            detail = detail.replace(self._secret, "***")
        if len(detail) > _DETAIL_MAX:
            detail = detail[: _DETAIL_MAX - 1] + "…"
        return MjError(kind, detail, status=status, retry_after=retry_after)
