"""Simulator flavours: each provider's wire differences (mj-api.md §1.1, §2, §4, §5, §7.10).

``SimConfig.flavour`` picks one. ``superset`` is the simulator as it always was (Plus/trueai
superset, every auth scheme and prefix accepted); the others reproduce one provider each so
the client's profiles can be tested on the wire. What each one reproduces, and what is not
known about its provider (and therefore kept from the superset rather than invented):

- ``openai-hk``: the provider's own document (reference/openai-hk-api.txt), example for
  example (tests/test_sim_openai_hk.py): only the routes it lists; submits answer
  ``{code, description, properties: {}, result}`` (``/video`` and ``/edits``:
  ``{code, description: "Submit Success", result}``; swap and image-seed: no ``properties``);
  tasks have the document's keys and Go zero values (``""`` and ``0``, never null, except
  ``imageUrls``/``videoUrls`` which are null when not filled); EDITS results carry four
  ``imageUrls`` and no buttons; VIDEO results carry four ``videoUrls``, ``videoUrl: ""`` and no
  buttons. Not in the document, so kept from Plus: the answer to an unknown route (chosen: a
  bare 404), to an unknown task id (200, empty body), code 22/23/24/21 envelopes and every
  validation text, the buttons of imagine/upscale/describe/shorten results (the document's task
  schema has ``buttons`` but shows no real list), ``/submit/video`` extension (``action:
  "extend"``), what a task looks like before SUCCESS, and where a DESCRIBE result's text is (the
  document shows no describe task: in ``prompt``, ``promptEn`` and ``finalPrompt``, as Plus and
  the Java proxy it derives from do). ``/submit/upload-discord-images`` is not in the document
  either: whether openai-hk serves it is not known, so this flavour answers it 404 like every
  unlisted route (mjbot then sends photos as ``base64Array`` image prompts).
- ``java``: Java OSS v2.3.x (2023-07; mj-api §1.1 routes, `mj-api-secret`, Spring's 404 body):
  no /action, /modal, buttons, customId or mode on tasks; U/V/🔄 through /change; a repeated U
  answers 21 "任务已存在"; a DESCRIBE result has its text in ``prompt`` and ``promptEn`` and no
  ``properties.finalPrompt`` (v2.4 and later also set it).
- ``plus``: midjourney-proxy-plus per its docs; its /video, /edits and /retexture are not
  documented (mj-api §1.1 "?") and answer as the superset does.
- ``trueai``: trueai-org/midjourney-proxy per its source (mj-api §2-§7); a DESCRIBE result's
  text is in ``promptEn`` (not ``prompt``). The buttons of an EDIT result are not known (the
  superset's U1-U4 are kept).
- ``new-api``: the QuantumNous relay (its DTO: 0/"" instead of null, notifyHook dropped,
  whitelisted customIds, EDITS). What the upstream behind it answers is the upstream's: the
  superset's here.
- ``superset``: everything at once. Its EDIT result buttons (U1-U4) and its video result
  buttons (U1-U4 + Extend, trueai's synthetic set) are not taken from a captured answer. It also
  takes the reseller spelling of video extend (``task_id``, the index as a string).

Video in every flavour that has /submit/video (mj-api §3.8): a clip is 5 s, an extend (``action:
"extend"``, ``taskId`` and ``index`` 0-3 of the parent's clips, or an Extend button where the
flavour has them) makes four clips 4 s longer, up to 21 s; ``batchSize`` 1/2 makes fewer clips,
``videoType`` ``vid_1.1_i2v_720`` larger frames, ``loop`` and ``endImage`` end the prompt with
``--end loop`` / ``--end <url>`` as trueai builds it. Not known from any provider, so chosen here:
the answer to an extend beyond 21 s or of a clip the parent does not have (code 4 ``参数错误``),
and whether openai-hk takes extend at all (its document shows only new videos; extend is
answered as trueai's source does). /submit/retexture (trueai; also the superset and, unknown,
plus) makes a grid like /imagine's; openai-hk's document, Java OSS and new-api have no such
route (404). /submit/describe takes ``link`` (a hosted image) in every flavour and
``language`` is accepted but not acted on: the simulator does not translate its suggestions.
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
    # Only these routes exist (route keys as in `missing`); None = every route the simulator has.
    routes: frozenset[str] | None = None
    # How tasks and submit envelopes look on the wire (mjsim/shapes.py): "plus" (mj-api §4,
    # §6), "java" (no buttons, customId, mode, parentId) or "openai-hk" (its document).
    shape: str = "plus"
    edit_action: str = "EDIT"  # what an /edits task reports: trueai EDIT; openai-hk, new-api EDITS
    bare_kinds: frozenset[str] = frozenset()  # result kinds that finish with buttons [] (§3.8)
    # A DESCRIBE result's text is also in "both" prompt and promptEn (Java family) or "en"
    # promptEn only (trueai); describe_final: also in properties.finalPrompt (Java < 2.4: no).
    describe_prompt: str = "both"
    describe_final: bool = True
    # Submits take botType (trueai's DTO, Plus's docs): NIJI_JOURNEY runs the job on the niji
    # bot and the task says so; elsewhere the field is ignored, as an unknown field is.
    bot_types: bool = False
    # How /submit/video's extend names the parent: ("taskId",) as trueai's SubmitVideoDTO (index
    # an integer); a reseller spells it task_id with the index as a string.
    extend_ids: tuple[str, ...] = ("taskId",)


_UNKNOWN_ACTION = "未知的 Action 类型"
_PLUS_REFUSALS = (
    Refusal(re.compile(r"^MJ::Job::PicReader::all$"), _UNKNOWN_ACTION),
    Refusal(re.compile(r"^MJ::BOOKMARK::"), _UNKNOWN_ACTION),
)

# The routes openai-hk's document lists (route keys: the path after /mj/, task ids taken out).
OPENAI_HK_ROUTES = frozenset(
    {
        "submit/action",
        "submit/blend",
        "submit/describe",
        "submit/imagine",
        "submit/modal",
        "insight-face/swap",
        "submit/shorten",
        "submit/video",
        "submit/edits",
        "task/fetch",
        "task/image-seed",
        "task/list-by-condition",
    }
)

FLAVOURS: dict[str, Flavour] = {
    "superset": Flavour("superset", bot_types=True, extend_ids=("taskId", "task_id")),
    "plus": Flavour(
        "plus",
        auth=frozenset({SECRET}),
        prefixes=frozenset({""}),
        bookmark=True,
        refusals=_PLUS_REFUSALS,
        bot_types=True,
    ),
    "openai-hk": Flavour(
        "openai-hk",
        auth=frozenset({BEARER, SECRET}),
        auth_failure="json",
        prefixes=frozenset({"", "/fast", "/relax"}),
        bookmark=True,
        refusals=_PLUS_REFUSALS,
        zero_times=True,  # Go zero values: "" and 0 (the document's examples)
        routes=OPENAI_HK_ROUTES,
        shape="openai-hk",
        edit_action="EDITS",
        bare_kinds=frozenset({"edit", "video"}),  # "buttons": [] in both examples
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
                "submit/retexture",
                "submit/upload-discord-images",
                "insight-face/swap",
                "task/image-seed",
                "task/cancel",
                "task/list-by-ids",
            }
        ),
        exists_21=True,
        account_filter=False,
        spring_404=True,
        shape="java",
        describe_final=False,
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
        describe_prompt="en",
        bot_types=True,
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
        edit_action="EDITS",
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
