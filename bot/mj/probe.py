"""``provider = "auto"``: find out once, at start, which member of the API family answers.

Only reads and deliberately invalid submits are sent, so probing never creates a task or
spends money: the fetch of an id that cannot exist (with each auth scheme, and under the
speed-mode prefixes), list-by-condition of that id, and ``/submit/action`` with an empty body,
which every server refuses with a validation error while Java OSS, having no such route,
answers 404. What answered decides the nearest profile (mj-api.md §1.1, §2.2, §2.3, §5.1).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.mj.profiles import AUTH_SCHEMES, DEFAULT_PROVIDER, PROFILES, Profile, profile_for

log = logging.getLogger("bot.mj.probe")

PROBE_ID = "0000000000000000"  # 16 digits like a real id, but no server ever issues it
_ANY_SEGMENT = "/mjbot-probe"  # only a gateway with /:mode/mj routes serves this prefix


@dataclass(frozen=True)
class Answer:
    """What one probe request got back."""

    status: int | None  # None: no HTTP answer at all
    body: Any = None  # parsed JSON, or None
    text: str = ""

    @property
    def envelope(self) -> bool:
        return isinstance(self.body, dict) and (
            "code" in self.body or ("success" in self.body and "message" in self.body)
        )

    @property
    def refused(self) -> bool:
        return self.status in (401, 403)

    @property
    def served(self) -> bool:
        """The route exists: anything but a bare 404 (an error envelope still counts)."""
        return self.status is not None and (self.status != 404 or self.envelope)

    def shape(self) -> str:
        if self.status is None:
            return "no answer"
        if self.status == 204:
            return "204"
        if self.envelope:
            return "envelope"
        if self.status == 200 and not self.text.strip():
            return "empty"
        return f"HTTP {self.status}"


@dataclass(frozen=True)
class ProbeResult:
    provider: str  # the nearest profile's name
    profile: Profile  # that profile, with the auth scheme that worked
    reachable: bool = True
    auth: str = ""  # the scheme that worked; "" when none did (or no key to test)
    evidence: list[str] = field(default_factory=list)  # lines for `mjbot check`


def _headers(scheme: str, key: str) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if not key:
        return headers
    if scheme == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    elif scheme == "raw-authorization":
        headers["Authorization"] = key
    else:
        headers["mj-api-secret"] = key
    return headers


async def _ask(
    http: httpx.AsyncClient, method: str, url: str, headers: Mapping[str, str], body: Any = None
) -> Answer:
    try:
        response = await http.request(method, url, headers=dict(headers), json=body)
    except httpx.HTTPError as exc:
        log.debug("probe %s %s: %s", method, url, type(exc).__name__)
        return Answer(None)
    text = response.text.lstrip("\ufeff") if response.content else ""
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    return Answer(response.status_code, parsed, text)


async def probe(
    base_url: str,
    api_key: str = "",
    *,
    http: httpx.AsyncClient | None = None,
    timeout_s: float = 10.0,
) -> ProbeResult:
    """Probe ``base_url`` once and name the nearest provider profile."""
    base = base_url.strip().rstrip("/")
    key = api_key.strip()
    owns = http is None
    client = http or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
    try:
        return await _probe(client, base, key)
    finally:
        if owns:
            await client.aclose()


async def _probe(http: httpx.AsyncClient, base: str, key: str) -> ProbeResult:
    fetch_path = f"/mj/task/{PROBE_ID}/fetch"
    evidence: list[str] = []

    # 1. Which auth schemes are accepted (a fetch of an id nobody has: free and harmless).
    by_scheme: dict[str, Answer] = {}
    for scheme in AUTH_SCHEMES if key else AUTH_SCHEMES[:1]:
        by_scheme[scheme] = await _ask(http, "GET", base + fetch_path, _headers(scheme, key))
        if by_scheme[scheme].status is None:
            default = PROFILES[DEFAULT_PROVIDER]
            evidence.append("the API did not answer: keeping the default profile")
            return ProbeResult(DEFAULT_PROVIDER, default, reachable=False, evidence=evidence)
    accepted = [scheme for scheme, answer in by_scheme.items() if not answer.refused]
    if key:
        evidence.append(
            "auth: "
            + ", ".join(
                f"{scheme} {'refused' if answer.refused else 'ok'}"
                for scheme, answer in by_scheme.items()
            )
        )
    else:
        evidence.append("auth: no api_key to test")
    if not accepted:
        default = PROFILES[DEFAULT_PROVIDER]
        evidence.append("no auth scheme was accepted: check midjourney.api_key")
        return ProbeResult(DEFAULT_PROVIDER, default, evidence=evidence)
    auth = accepted[0]
    headers = _headers(auth, key)
    fetch = by_scheme[auth]

    # 2. Which routes exist, and what an unknown id looks like.
    action = await _ask(http, "POST", base + "/mj/submit/action", headers, {})
    listed = await _ask(
        http, "POST", base + "/mj/task/list-by-condition", headers, {"ids": [PROBE_ID]}
    )
    prefixes = {
        prefix: (await _ask(http, "GET", base + prefix + fetch_path, headers)).served
        for prefix in ("/fast", "/mj-fast", _ANY_SEGMENT)
    }
    evidence.append(f"fetch of an unknown id: {fetch.shape()}")
    evidence.append(
        "routes: /submit/action "
        + ("ok" if action.served else "missing")
        + ", list-by-condition "
        + ("ok" if listed.served else "missing")
    )
    evidence.append(
        "task buttons: "
        + (
            "expected (buttons go to /submit/action)"
            if action.served
            else "none: mjbot adds U/V/🔄"
        )
    )
    shown = {"/fast": "/fast", "/mj-fast": "/mj-fast", _ANY_SEGMENT: "any /<mode>"}
    evidence.append(
        "prefixes: " + ", ".join(f"{shown[p]} {'ok' if ok else 'no'}" for p, ok in prefixes.items())
    )

    # 3. The nearest profile.
    refused = {scheme for scheme, answer in by_scheme.items() if answer.refused}
    if not action.served:
        name = "midjourney-proxy"  # no /submit/action: Java OSS
    elif (
        fetch.status == 204
        or ("raw-authorization" in accepted and "bearer" in refused)
        or (prefixes["/mj-fast"] and not prefixes["/fast"])
    ):
        name = "trueai"
    elif fetch.shape() == "envelope" or prefixes[_ANY_SEGMENT]:
        name = "new-api"
    elif prefixes["/fast"]:
        name = "openai-hk"
    else:
        name = "plus"
    chosen = PROFILES[name]
    overrides: dict[str, Any] = {}
    if key:
        overrides["auth_header"] = auth if chosen.auth_header not in accepted else ""
    if not listed.served:
        overrides["list_route"] = False
    profile = chosen.with_overrides(**overrides)
    return ProbeResult(name, profile, auth=auth if key else "", evidence=evidence)


async def resolve_profile(
    provider: str,
    base_url: str,
    api_key: str = "",
    overrides: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 10.0,
    http: httpx.AsyncClient | None = None,
) -> tuple[Profile, ProbeResult | None]:
    """The profile to run with: the configured provider's, or (``auto``) the probed one.

    Explicit overrides from the config win over both, key by key.
    """
    overrides = dict(overrides or {})
    if provider != "auto":
        return profile_for(provider, **overrides), None
    found = await probe(base_url, api_key, http=http, timeout_s=timeout_s)
    log.info("provider auto: detected %s (%s)", found.provider, "; ".join(found.evidence))
    return found.profile.with_overrides(**overrides), found
