"""Simulator flavours: each provider's wire differences (mj-api.md §1.1, §2, §4, §5, §7.10).

``SimConfig.flavour`` picks one. ``superset`` is the simulator as it always was (Plus/trueai
superset, every auth scheme and prefix accepted); the others reproduce one provider each so
the client's profiles can be tested on the wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Auth schemes a flavour accepts: "bearer" (Authorization: Bearer k), "raw" (Authorization: k),
# "secret" (mj-api-secret: k).
BEARER, RAW, SECRET = "bearer", "raw", "secret"


@dataclass(frozen=True, slots=True)
class Refusal:
    """customIds matching ``pattern`` are refused by /submit/action with code 4."""

    pattern: re.Pattern[str]
    description: str  # "{id}" is replaced by the customId
    http_status: int = 200


@dataclass(frozen=True, slots=True)
class Flavour:
    name: str
    auth: frozenset[str] = frozenset({BEARER, RAW, SECRET})
    # How a refused key is answered: "empty" (401, no body), "text" (401 plain text, trueai),
    # "json" (401 with a JSON error, gateways).
    auth_failure: str = "empty"
    # Path prefixes served in front of /mj; None = any single segment (new-api's /:mode/mj).
    prefixes: frozenset[str] | None = frozenset(
        {"", "/fast", "/relax", "/mj-fast", "/mj-relax", "/mj-turbo"}
    )
    missing: frozenset[str] = frozenset()  # routes (path after /mj/) answering 404
    buttons: bool = True  # tasks carry buttons[] (Java OSS: no)
    bookmark: bool = False  # upscales carry MJ's ❤️ (MJ::BOOKMARK::) as Discord shows it
    queue_full: int = 23  # 23 (Java/Plus) or 9 with a text (trueai, P3)
    banned_late: bool = False  # banned words accepted, then FAILURE (trueai, P4)
    exists_21: bool = False  # a repeated U via /change answers 21 "任务已存在" (Java OSS)
    parent_404: bool = False  # unknown parent on /action, /modal, /video -> HTTP 404 (trueai)
    unknown_fetch: str = "empty"  # "empty" (200), "204" (trueai), "envelope" (gateways)
    refusals: tuple[Refusal, ...] = ()
    drops_hooks: bool = False  # notifyHook stripped before the upstream sees it (new-api)
    zero_times: bool = False  # 0 / "" instead of null (new-api DTO, P14)
    error_http: int = 200  # HTTP status of validation envelopes (new-api: 400)
    bad_json: str = "envelope"  # "envelope" (code 4) or "trueai" ({success, code -1, message})
    account_filter: bool = True  # accountFilter.modes selects the speed mode (Plus, trueai)
    spring_404: bool = False  # unknown routes answer Spring's JSON 404 body (Java OSS)


_UNKNOWN_ACTION = "未知的 Action 类型"
_PLUS_REFUSALS = (
    Refusal(re.compile(r"^MJ::Job::PicReader::all$"), _UNKNOWN_ACTION),
    Refusal(re.compile(r"^MJ::BOOKMARK::"), _UNKNOWN_ACTION),
)

FLAVOURS: dict[str, Flavour] = {
    "superset": Flavour("superset"),
    "plus": Flavour(
        "plus",
        auth=frozenset({SECRET}),
        prefixes=frozenset({""}),
        bookmark=True,
        refusals=_PLUS_REFUSALS,
    ),
    "openai-hk": Flavour(
        "openai-hk",
        auth=frozenset({BEARER, SECRET}),
        auth_failure="json",
        prefixes=frozenset({"", "/fast", "/relax"}),
        bookmark=True,
        refusals=_PLUS_REFUSALS,
    ),
    "java": Flavour(
        "java",
        auth=frozenset({SECRET}),
        prefixes=frozenset({""}),
        missing=frozenset(
            {
                "submit/action",
                "submit/modal",
                "submit/shorten",
                "submit/video",
                "submit/edits",
                "submit/edit",
                "submit/upload-discord-images",
                "insight-face/swap",
                "task/image-seed",
                "task/cancel",
                "task/list-by-ids",
            }
        ),
        buttons=False,
        exists_21=True,
        account_filter=False,
        spring_404=True,
    ),
    "trueai": Flavour(
        "trueai",
        auth=frozenset({RAW, SECRET}),
        auth_failure="text",
        prefixes=frozenset({"", "/mj-fast", "/mj-relax", "/mj-turbo"}),
        missing=frozenset({"submit/change", "submit/simple-change", "task/queue"}),
        bookmark=True,
        queue_full=9,
        banned_late=True,
        parent_404=True,
        unknown_fetch="204",
        refusals=(
            Refusal(re.compile(r"^MJ::Job::PromptAnalyzer::"), _UNKNOWN_ACTION),
            Refusal(re.compile(r"^MJ::BOOKMARK::"), _UNKNOWN_ACTION),
            Refusal(re.compile(r"^MJ::JOB::(animate_|video_virtual_upscale::)"), _UNKNOWN_ACTION),
        ),
        bad_json="trueai",
    ),
    "new-api": Flavour(
        "new-api",
        auth=frozenset({BEARER, RAW, SECRET}),
        auth_failure="json",
        prefixes=None,
        missing=frozenset({"submit/retexture", "task/list", "task/queue", "task/cancel"}),
        bookmark=True,
        unknown_fetch="envelope",
        refusals=(
            # the relay only forwards upsample*/variation*/pan*/reroll/Outpaint/CustomZoom/Inpaint
            Refusal(
                re.compile(
                    r"^(?!MJ::JOB::(upsample|variation|low_variation|high_variation|pan_|reroll)"
                    r"|MJ::Outpaint::|MJ::CustomZoom::|MJ::Inpaint::)"
                ),
                "unknown_action:{id}",
                400,
            ),
        ),
        drops_hooks=True,
        zero_times=True,
        error_http=400,
        account_filter=False,
    ),
}


def get_flavour(name: str) -> Flavour:
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ValueError(
            f"unknown simulator flavour {name!r}; one of {', '.join(FLAVOURS)}"
        ) from None


MODE_WORDS = {"fast": "FAST", "relax": "RELAX", "turbo": "TURBO"}


def mode_of_prefix(prefix: str) -> str:
    """'/fast' -> FAST, '/mj-relax' -> RELAX, '' or anything else -> '' (the default)."""
    word = prefix.strip("/").lower().removeprefix("mj-")
    return MODE_WORDS.get(word, "")
