"""Fault injection: what a flaky provider does to a client (§16 "Fault injection")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESET = 0  # pass as ``status`` to fail_next: the connection is closed without an answer


@dataclass
class FailRule:
    route_suffix: str
    status: int
    body: bytes | dict[str, Any] | list[Any] | str | None
    times: int
    delay_s: float = 0.0  # held this long first (or until the client hangs up)


@dataclass
class LateRule:
    route_suffix: str
    seconds: float
    times: int


@dataclass
class Faults:
    """Switches a test flips on a running simulator; every field applies from the next request.

    - ``down``: every API request answers HTTP 503 with an empty body.
    - ``hang_s``: every API answer is delayed by this many real seconds.
    - ``drop_hooks`` / ``duplicate_hooks`` / ``reorder_hooks``: notifyHook deliveries are lost,
      sent twice, or swapped in pairs (a task's later update arrives before the earlier one).
    - ``hook_delay_s``: every delivery waits this many real seconds first.
    - ``image_ttl_s``: result images answer 404 this many simulated seconds after the task
      finished (expiring CDN links, P7); None = never.
    - ``image_delay_s``: result images answer after this many real seconds (a slow CDN).
    - ``broken_images``: result images answer 200 with an HTML page instead (a CDN or a
      gateway's error page served as if it were the file).
    - ``numeric_ids``: submit envelopes carry ``result`` as a JSON number (reseller style, P15).
    - ``zero_times``: tasks carry 0 / "" instead of null (new-api DTO, P14).
    - :meth:`fail_next`: the next ``times`` API requests whose path ends with ``route_suffix``
      answer ``status`` with ``body`` instead (``status=RESET`` closes the connection),
      optionally after holding them ``delay_s``: a request lost on its way, never handled.
    - :meth:`answer_late`: the next ``times`` requests to a route are handled at once, but
      their answer is held ``seconds``: the API did it, the client does not know yet.

    A held request ends early when its client hangs up (a killed bot), like a real server.
    """

    down: bool = False
    hang_s: float = 0.0
    drop_hooks: bool = False
    duplicate_hooks: bool = False
    reorder_hooks: bool = False
    hook_delay_s: float = 0.0
    image_ttl_s: float | None = None
    image_delay_s: float = 0.0
    broken_images: bool = False
    numeric_ids: bool = False
    zero_times: bool = False
    rules: list[FailRule] = field(default_factory=list)
    late: list[LateRule] = field(default_factory=list)

    def fail_next(
        self,
        route_suffix: str = "",
        status: int = 500,
        body: bytes | dict[str, Any] | list[Any] | str | None = None,
        times: int = 1,
        delay_s: float = 0.0,
    ) -> None:
        """Make the next ``times`` requests to a route fail ("" matches every API route).

        ``body``: None = empty, bytes/str = sent as is, dict/list = JSON. For trueai's
        exception shape pass ``{"success": False, "code": -1, "message": "操作失败"}``.
        ``delay_s``: hold the request this long before failing it (it is never handled).
        """
        self.rules.append(FailRule(route_suffix, status, body, max(1, times), delay_s))

    def answer_late(self, route_suffix: str, seconds: float, times: int = 1) -> None:
        """Handle the next ``times`` requests to a route, then hold each answer ``seconds``."""
        self.late.append(LateRule(route_suffix, seconds, max(1, times)))

    def take_late(self, path: str) -> float:
        """How long to hold the answer to a request for ``path`` (consuming one use)."""
        for rule in self.late:
            if path.endswith(rule.route_suffix):
                rule.times -= 1
                if rule.times <= 0:
                    self.late.remove(rule)
                return rule.seconds
        return 0.0

    def take(self, path: str) -> FailRule | None:
        """The rule that applies to a request for ``path``, consuming one use of it."""
        for rule in self.rules:
            if path.endswith(rule.route_suffix):
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def reset(self) -> None:
        """Everything back to normal."""
        fresh = Faults()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
