"""bot.mj.client over httpx.MockTransport: exact requests, every error shape of §5, retries."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import bot.mj.transport as transport_module
from bot.mj.client import ErrorKind, MjClient, MjError
from bot.mj.models import Outcome, Submission, Task, TaskState
from bot.mj.profiles import profile_for

BASE = "https://api.example.com"
KEY = "hk-SeCrEt-0123456789"

Reply = httpx.Response | Exception
Handler = Callable[[httpx.Request], Reply]

TASK = {"id": "1712205491372224", "action": "IMAGINE", "status": "IN_PROGRESS", "progress": "45%"}
OK = {"code": 1, "description": "提交成功", "result": "1712205491372224", "properties": {}}


class Server:
    """Records every request and answers from a script (the last answer repeats)."""

    def __init__(self, *replies: Reply | Handler) -> None:
        self.replies = list(replies) or [httpx.Response(200, json=OK)]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        index = min(len(self.requests), len(self.replies)) - 1
        reply = self.replies[index]
        if callable(reply) and not isinstance(reply, httpx.Response | Exception):
            reply = reply(request)
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


MakeClient = Callable[..., tuple[MjClient, Server]]


@pytest.fixture
async def make() -> AsyncIterator[MakeClient]:
    """Build MjClients over a mock transport; closes every AsyncClient afterwards."""
    opened: list[httpx.AsyncClient] = []

    def factory(*replies: Reply | Handler, **options: Any) -> tuple[MjClient, Server]:
        server = Server(*replies)
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        opened.append(http)
        options.setdefault("retry_delay_s", 0)
        client = MjClient(
            options.pop("base_url", BASE), options.pop("api_key", KEY), http=http, **options
        )
        return client, server

    yield factory
    for http in opened:
        await http.aclose()


def connect_error(request: httpx.Request) -> Exception:
    return httpx.ConnectError("connection refused", request=request)


def read_timeout(request: httpx.Request) -> Exception:
    return httpx.ReadTimeout("timed out", request=request)


def raising(factory: Callable[[httpx.Request], Exception]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise factory(request)

    return handler


async def expect_error(call: Awaitable[object], kind: ErrorKind) -> MjError:
    with pytest.raises(MjError) as info:
        await call
    assert info.value.kind is kind
    assert KEY not in str(info.value)
    return info.value


# ========================================================================= paths and modes


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("", "/mj/submit/imagine"),
        ("fast", "/fast/mj/submit/imagine"),
        ("relax", "/relax/mj/submit/imagine"),
        ("turbo", "/turbo/mj/submit/imagine"),
        ("/mj-fast", "/mj-fast/mj/submit/imagine"),
        ("/mj-relax/", "/mj-relax/mj/submit/imagine"),
        ("/fast", "/fast/mj/submit/imagine"),
    ],
)
def test_path_mode_prefix(mode: str, path: str) -> None:
    client = MjClient(BASE)
    assert client.path("/mj/submit/imagine", mode) == path
    assert MjClient(BASE, mode=mode).path("/mj/submit/imagine") == path


def test_path_none_uses_default_and_empty_overrides_it() -> None:
    client = MjClient(BASE, mode="relax")
    assert client.path("/mj/task/1/fetch") == "/relax/mj/task/1/fetch"
    assert client.path("/mj/submit/imagine", None) == "/relax/mj/submit/imagine"
    assert client.path("/mj/submit/imagine", "") == "/mj/submit/imagine"
    assert client.path("/mj/submit/imagine", "fast") == "/fast/mj/submit/imagine"


@pytest.mark.parametrize("mode", ["fast mode", "../admin", "fast?x=1", "a#b"])
def test_path_rejects_bad_modes(mode: str) -> None:
    with pytest.raises(ValueError):
        MjClient(BASE, mode=mode)
    with pytest.raises(ValueError):
        MjClient(BASE).path("/mj/submit/imagine", mode)


@pytest.mark.parametrize("base", ["api.example.com", "ftp://x", ""])
def test_bad_base_url(base: str) -> None:
    with pytest.raises(ValueError):
        MjClient(base)


def test_bad_auth_scheme() -> None:
    with pytest.raises(ValueError):
        MjClient(BASE, KEY, auth_header="basic")


@pytest.mark.parametrize(
    ("base", "mode", "url"),
    [
        (BASE, "", f"{BASE}/mj/submit/imagine"),
        (f"{BASE}/", "fast", f"{BASE}/fast/mj/submit/imagine"),
        (BASE, "relax", f"{BASE}/relax/mj/submit/imagine"),
        (f"{BASE}/gw", "/mj-fast", f"{BASE}/gw/mj-fast/mj/submit/imagine"),
    ],
)
async def test_submit_url_with_mode(make: MakeClient, base: str, mode: str, url: str) -> None:
    client, server = make(base_url=base)
    await client.imagine("cat", mode=mode)
    assert str(server.last.url) == url
    assert server.last.method == "POST"


async def test_task_routes_use_the_default_mode(make: MakeClient) -> None:
    client, server = make(
        httpx.Response(200, json=TASK),
        httpx.Response(200, json=[TASK]),
        httpx.Response(200, json={"code": 1, "result": "636646138"}),
        mode="/mj-relax",
    )
    await client.fetch("1712205491372224")
    await client.list_by_condition(["1712205491372224"])
    await client.image_seed("1712205491372224")
    assert [(r.method, r.url.path) for r in server.requests] == [
        ("GET", "/mj-relax/mj/task/1712205491372224/fetch"),
        ("POST", "/mj-relax/mj/task/list-by-condition"),
        ("GET", "/mj-relax/mj/task/1712205491372224/image-seed"),
    ]


async def test_submit_mode_none_uses_default(make: MakeClient) -> None:
    client, server = make(mode="fast")
    await client.action("1", "MJ::JOB::upsample::1::h")
    assert server.last.url.path == "/fast/mj/submit/action"
    await client.action("1", "MJ::JOB::upsample::1::h", mode="")
    assert server.last.url.path == "/mj/submit/action"


async def test_task_id_stays_in_its_segment(make: MakeClient) -> None:
    client, server = make(httpx.Response(204))
    await client.fetch("../../admin")
    assert server.last.url.raw_path == b"/mj/task/..%2F..%2Fadmin/fetch"


# ========================================================================= auth


@pytest.mark.parametrize(
    ("scheme", "header", "value"),
    [
        ("bearer", "authorization", f"Bearer {KEY}"),
        ("raw-authorization", "authorization", KEY),
        ("mj-api-secret", "mj-api-secret", KEY),
    ],
)
async def test_auth_header_schemes(make: MakeClient, scheme: str, header: str, value: str) -> None:
    client, server = make(auth_header=scheme)
    await client.imagine("cat")
    assert server.last.headers[header] == value
    other = {"authorization", "mj-api-secret"} - {header}
    assert not other & set(server.last.headers.keys())


@pytest.mark.parametrize("scheme", ["bearer", "raw-authorization", "mj-api-secret"])
async def test_no_auth_header_without_key(make: MakeClient, scheme: str) -> None:
    client, server = make(api_key="", auth_header=scheme)
    await client.imagine("cat")
    assert "authorization" not in server.last.headers
    assert "mj-api-secret" not in server.last.headers


async def test_auth_on_reads_too(make: MakeClient) -> None:
    client, server = make(httpx.Response(200, json=TASK), auth_header="mj-api-secret")
    await client.fetch("1")
    assert server.last.headers["mj-api-secret"] == KEY


async def test_json_content_type(make: MakeClient) -> None:
    client, server = make()
    await client.imagine("一只猫")
    assert server.last.headers["content-type"] == "application/json"
    assert server.body() == {"prompt": "一只猫"}


# ========================================================================= submit bodies

PNG = "data:image/png;base64,iVBORw0KGgo="
JPG = "data:image/jpeg;base64,/9j/4AAQ"

SubmitCall = Callable[[MjClient], Awaitable[Submission]]

BODIES: list[tuple[str, SubmitCall, str, dict[str, Any]]] = [
    (
        "imagine",
        lambda c: c.imagine("cat --ar 3:2"),
        "/mj/submit/imagine",
        {"prompt": "cat --ar 3:2"},
    ),
    (
        "imagine-images",
        lambda c: c.imagine("cat", [PNG, JPG], notify_hook="https://bot/h", state="k1"),
        "/mj/submit/imagine",
        {"prompt": "cat", "base64Array": [PNG, JPG], "notifyHook": "https://bot/h", "state": "k1"},
    ),
    (
        "action",
        lambda c: c.action("1711", "MJ::JOB::upsample::2::h", state="k2"),
        "/mj/submit/action",
        {"taskId": "1711", "customId": "MJ::JOB::upsample::2::h", "state": "k2"},
    ),
    (
        "action-remix",
        lambda c: c.action("1711", "MJ::JOB::variation::1::h", enable_remix=True, notify_hook="u"),
        "/mj/submit/action",
        {
            "taskId": "1711",
            "customId": "MJ::JOB::variation::1::h",
            "enableRemix": True,
            "notifyHook": "u",
        },
    ),
    ("modal-bare", lambda c: c.modal("1712"), "/mj/submit/modal", {"taskId": "1712"}),
    (
        "modal-full",
        lambda c: c.modal("1712", "cat --zoom 1.5", mask_base64=PNG),
        "/mj/submit/modal",
        {"taskId": "1712", "prompt": "cat --zoom 1.5", "maskBase64": PNG},
    ),
    (
        "blend",
        lambda c: c.blend([PNG, JPG], "PORTRAIT", state="k3"),
        "/mj/submit/blend",
        {"base64Array": [PNG, JPG], "dimensions": "PORTRAIT", "state": "k3"},
    ),
    (
        "blend-default",
        lambda c: c.blend([PNG, JPG]),
        "/mj/submit/blend",
        {"base64Array": [PNG, JPG], "dimensions": "SQUARE"},
    ),
    ("describe", lambda c: c.describe(PNG), "/mj/submit/describe", {"base64": PNG}),
    (
        "describe-link-zh",
        lambda c: c.describe(link="https://cdn.example/0_1.png", language="zh"),
        "/mj/submit/describe",
        {"link": "https://cdn.example/0_1.png", "language": "zh"},
    ),
    (
        "shorten",
        lambda c: c.shorten("a long prompt", notify_hook="h", state="s"),
        "/mj/submit/shorten",
        {"prompt": "a long prompt", "notifyHook": "h", "state": "s"},
    ),
    (
        "swap_face",
        lambda c: c.swap_face(PNG, JPG),
        "/mj/insight-face/swap",
        {"sourceBase64": PNG, "targetBase64": JPG},
    ),
    (
        "video",
        lambda c: c.video("waves", "https://x/a.png"),
        "/mj/submit/video",
        {"prompt": "waves", "image": "https://x/a.png", "motion": "low"},
    ),
    (
        "video-high",
        lambda c: c.video("waves", PNG, motion="high", state="v"),
        "/mj/submit/video",
        {"prompt": "waves", "image": PNG, "motion": "high", "state": "v"},
    ),
    (
        "video-options",
        lambda c: c.video("waves", PNG, end_image=JPG, batch_size=2, video_type="vid_1.1_i2v_720"),
        "/mj/submit/video",
        {
            "prompt": "waves",
            "image": PNG,
            "motion": "low",
            "endImage": JPG,
            "batchSize": 2,
            "videoType": "vid_1.1_i2v_720",
        },
    ),
    (
        "video-loop",
        lambda c: c.video("waves", PNG, loop=True, batch_size=4),
        "/mj/submit/video",
        {"prompt": "waves", "image": PNG, "motion": "low", "loop": True, "batchSize": 4},
    ),
    (
        "video-extend",
        lambda c: c.extend_video("1711", 2, motion="high", prompt="waves", loop=True, state="s"),
        "/mj/submit/video",
        {
            "action": "extend",
            "taskId": "1711",
            "index": 2,
            "motion": "high",
            "prompt": "waves",
            "loop": True,
            "state": "s",
        },
    ),
    (
        "edits",
        lambda c: c.edits("make it blue", PNG),
        "/mj/submit/edits",
        {"prompt": "make it blue", "image": PNG},
    ),
    (
        "retexture",
        lambda c: c.retexture("as marble", PNG),
        "/mj/submit/retexture",
        {"prompt": "as marble", "image": PNG},
    ),
    (
        "change",
        lambda c: c.change("1711", "UPSCALE", 2),
        "/mj/submit/change",
        {"taskId": "1711", "action": "UPSCALE", "index": 2},
    ),
    (
        "change-reroll",
        lambda c: c.change("1711", "REROLL"),
        "/mj/submit/change",
        {"taskId": "1711", "action": "REROLL"},
    ),
]


@pytest.mark.parametrize(
    ("call", "path", "body"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES]
)
async def test_submit_request(
    make: MakeClient, call: SubmitCall, path: str, body: dict[str, Any]
) -> None:
    client, server = make()
    submission = await call(client)
    assert server.calls == 1
    assert server.last.method == "POST"
    assert server.last.url.path == path
    assert server.body() == body
    assert submission.outcome is Outcome.ACCEPTED
    assert submission.task_id == "1712205491372224"


@pytest.mark.parametrize(
    ("call", "path", "body"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES]
)
async def test_submit_mode_override(
    make: MakeClient, call: SubmitCall, path: str, body: dict[str, Any]
) -> None:
    client, server = make(mode="relax")
    await call(client)
    assert server.last.url.path == f"/relax{path}"


async def test_submit_explicit_mode_per_call(make: MakeClient) -> None:
    client, server = make()
    await client.imagine("cat", mode="fast")
    await client.blend([PNG, JPG], mode="/mj-turbo")
    await client.modal("1", mode="relax")
    assert [r.url.path for r in server.requests] == [
        "/fast/mj/submit/imagine",
        "/mj-turbo/mj/submit/blend",
        "/relax/mj/submit/modal",
    ]


# ========================================================================= submit replies (§4, §5)


@pytest.mark.parametrize(
    ("status", "payload", "outcome", "code"),
    [
        (
            200,
            {
                "code": 22,
                "description": "排队中",
                "result": "2",
                "properties": {"numberOfQueues": 3},
            },
            Outcome.QUEUED,
            22,
        ),
        (200, {"code": 21, "description": "窗口等待", "result": "3"}, Outcome.MODAL, 21),
        (
            200,
            {"code": 24, "description": "可能包含敏感词", "properties": {"bannedWord": "x"}},
            Outcome.BANNED,
            24,
        ),
        (200, {"code": 4, "description": "prompt不能为空", "result": None}, Outcome.INVALID, 4),
        (
            404,
            {"code": 3, "description": "关联任务不存在或已失效", "result": None},
            Outcome.NOT_FOUND,
            3,
        ),
        (
            200,
            {"success": False, "code": -1, "message": "并发数已达上限", "timestamp": "1"},
            Outcome.FAILED,
            -1,
        ),
        (
            500,
            {"success": False, "code": -1, "message": "操作失败", "timestamp": "1"},
            Outcome.FAILED,
            -1,
        ),
        (
            400,
            {"description": "quota_not_enough", "type": "new_api_error", "code": 4},
            Outcome.INVALID,
            4,
        ),
        (
            500,
            {"description": "upstream error", "type": "new_api_error", "code": 5},
            Outcome.FAILED,
            5,
        ),
        (200, {"code": 1, "result": 1320098173412546}, Outcome.ACCEPTED, 1),
    ],
)
async def test_submit_envelopes_become_submissions(
    make: MakeClient, status: int, payload: dict[str, Any], outcome: Outcome, code: int
) -> None:
    client, server = make(httpx.Response(status, json=payload))
    submission = await client.action("1711", "MJ::JOB::upsample::1::h")
    assert submission.outcome is outcome
    assert submission.code == code
    assert server.calls == 1  # a submit is never repeated, whatever the status


async def test_submit_trueai_message_becomes_description(make: MakeClient) -> None:
    client, _ = make(
        httpx.Response(200, json={"success": False, "code": -1, "message": "图片参数错误"})
    )
    submission = await client.blend([PNG])
    assert submission.description == "图片参数错误"


async def test_submit_queue_position_and_numeric_id(make: MakeClient) -> None:
    client, _ = make(
        httpx.Response(
            200, json={"code": 22, "result": 1320098173412546, "properties": {"numberOfQueues": 2}}
        )
    )
    submission = await client.imagine("cat")
    assert submission.task_id == "1320098173412546"
    assert submission.queue_position == 2


@pytest.mark.parametrize(
    ("response", "kind", "status"),
    [
        (httpx.Response(401), ErrorKind.AUTH, 401),
        (httpx.Response(401, text="Authorization header missing."), ErrorKind.AUTH, 401),
        (httpx.Response(401, text="账号已禁用"), ErrorKind.AUTH, 401),
        (httpx.Response(403, text="账号不可用"), ErrorKind.AUTH, 403),
        (httpx.Response(403), ErrorKind.AUTH, 403),
        (
            httpx.Response(
                401, json={"description": "无效的令牌", "type": "new_api_error", "code": 5}
            ),
            ErrorKind.AUTH,
            401,
        ),
        (httpx.Response(429), ErrorKind.RATE_LIMITED, 429),
        (httpx.Response(500, text="Internal Server Error"), ErrorKind.SERVER, 500),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), ErrorKind.SERVER, 502),
        (httpx.Response(503), ErrorKind.SERVER, 503),
        (httpx.Response(200, text="<html>not json</html>"), ErrorKind.BAD_RESPONSE, 200),
        (httpx.Response(200), ErrorKind.BAD_RESPONSE, 200),
        (httpx.Response(204), ErrorKind.BAD_RESPONSE, 204),
        (
            httpx.Response(200, json={"error": {"message": "no such model"}}),
            ErrorKind.BAD_RESPONSE,
            200,
        ),
        (httpx.Response(200, json=["1", "2"]), ErrorKind.BAD_RESPONSE, 200),
        (httpx.Response(404, text="Not Found"), ErrorKind.NOT_FOUND, 404),
        (httpx.Response(404), ErrorKind.NOT_FOUND, 404),
        (httpx.Response(400, text="演示模式，禁止操作"), ErrorKind.BAD_RESPONSE, 400),
        (httpx.Response(413, text="Payload Too Large"), ErrorKind.BAD_RESPONSE, 413),
    ],
)
async def test_submit_errors(
    make: MakeClient, response: httpx.Response, kind: ErrorKind, status: int
) -> None:
    client, server = make(response)
    error = await expect_error(client.imagine("cat"), kind)
    assert error.status == status
    assert server.calls == 1


async def test_error_detail_carries_the_server_text(make: MakeClient) -> None:
    client, _ = make(httpx.Response(401, text="Authorization header missing."))
    error = await expect_error(client.imagine("cat"), ErrorKind.AUTH)
    assert "Authorization header missing." in error.detail
    assert "/mj/submit/imagine" in error.detail
    assert "HTTP 401" in str(error)


async def test_redirect_is_reported_not_followed(make: MakeClient) -> None:
    client, server = make(httpx.Response(301, headers={"Location": "https://api.example.com/v2/"}))
    error = await expect_error(client.imagine("cat"), ErrorKind.BAD_RESPONSE)
    assert error.status == 301
    assert "https://api.example.com/v2/" in error.detail
    assert server.calls == 1


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("1.5", 1.5), ("soon", None), (None, None)]
)
async def test_rate_limited_retry_after(
    make: MakeClient, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header else {}
    client, server = make(httpx.Response(429, headers=headers))
    error = await expect_error(client.imagine("cat"), ErrorKind.RATE_LIMITED)
    assert error.retry_after == expected
    assert server.calls == 1


async def test_rate_limited_retry_after_http_date(make: MakeClient) -> None:
    client, _ = make(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    error = await expect_error(client.imagine("cat"), ErrorKind.RATE_LIMITED)
    assert error.retry_after == 0.0  # a date in the past: retry now


# ========================================================================= transport failures


async def test_submit_timeout_is_not_retried(make: MakeClient) -> None:
    client, server = make(raising(read_timeout))
    await expect_error(client.imagine("cat"), ErrorKind.TIMEOUT)
    assert server.calls == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_submit_5xx_is_not_retried(make: MakeClient, status: int) -> None:
    client, server = make(httpx.Response(status), httpx.Response(200, json=OK))
    await expect_error(client.imagine("cat"), ErrorKind.SERVER)
    assert server.calls == 1


async def test_submit_read_error_is_not_retried(make: MakeClient) -> None:
    client, server = make(raising(lambda r: httpx.ReadError("reset", request=r)))
    await expect_error(client.action("1", "x"), ErrorKind.UNREACHABLE)
    assert server.calls == 1


async def test_submit_connect_error_is_retried_once(make: MakeClient) -> None:
    client, server = make(raising(connect_error))
    error = await expect_error(client.imagine("cat"), ErrorKind.UNREACHABLE)
    assert error.status is None
    assert server.calls == 2


async def test_submit_connect_error_then_success(make: MakeClient) -> None:
    client, server = make(raising(connect_error), httpx.Response(200, json=OK))
    submission = await client.imagine("cat")
    assert submission.outcome is Outcome.ACCEPTED
    assert server.calls == 2


async def test_fetch_timeouts_are_retried(make: MakeClient) -> None:
    client, server = make(raising(read_timeout))
    await expect_error(client.fetch("1"), ErrorKind.TIMEOUT)
    assert server.calls == 3


async def test_fetch_connect_errors_are_retried(make: MakeClient) -> None:
    client, server = make(
        raising(connect_error), raising(connect_error), httpx.Response(200, json=TASK)
    )
    task = await client.fetch("1712205491372224")
    assert task is not None
    assert task.progress == 45
    assert server.calls == 3


async def test_fetch_5xx_retried_then_success(make: MakeClient) -> None:
    client, server = make(
        httpx.Response(503), httpx.Response(502, text="bad gateway"), httpx.Response(200, json=TASK)
    )
    task = await client.fetch("1712205491372224")
    assert task is not None
    assert server.calls == 3


async def test_fetch_5xx_gives_up_after_retries(make: MakeClient) -> None:
    client, server = make(httpx.Response(500, text="boom"))
    error = await expect_error(client.fetch("1"), ErrorKind.SERVER)
    assert error.status == 500
    assert server.calls == 3


async def test_fetch_5xx_envelope_is_still_a_server_error(make: MakeClient) -> None:
    # A fetch must not read "server broke" as "task unknown": that would drop a live task.
    client, server = make(
        httpx.Response(500, json={"success": False, "code": -1, "message": "操作失败"})
    )
    await expect_error(client.fetch("1"), ErrorKind.SERVER)
    assert server.calls == 3


async def test_read_retries_setting(make: MakeClient) -> None:
    client, server = make(raising(read_timeout), read_retries=0)
    await expect_error(client.fetch("1"), ErrorKind.TIMEOUT)
    assert server.calls == 1
    client, server = make(httpx.Response(503), read_retries=4)
    await expect_error(client.list_by_condition(["1"]), ErrorKind.SERVER)
    assert server.calls == 5


async def test_list_retries_then_success(make: MakeClient) -> None:
    client, server = make(
        raising(read_timeout), httpx.Response(502), httpx.Response(200, json=[TASK])
    )
    tasks = await client.list_by_condition(["1712205491372224"])
    assert [t.id for t in tasks] == ["1712205491372224"]
    assert server.calls == 3
    assert all(server.body(i) == {"ids": ["1712205491372224"]} for i in range(3))


async def test_reads_do_not_retry_auth_or_rate_limit(make: MakeClient) -> None:
    client, server = make(httpx.Response(429, headers={"Retry-After": "3"}))
    error = await expect_error(client.list_by_condition(["1"]), ErrorKind.RATE_LIMITED)
    assert error.retry_after == 3.0
    assert server.calls == 1
    client, server = make(httpx.Response(401))
    await expect_error(client.fetch("1"), ErrorKind.AUTH)
    assert server.calls == 1


async def test_retry_backoff_delays(make: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(transport_module, "asyncio", SimpleNamespace(sleep=fake_sleep))
    client, server = make(httpx.Response(503), retry_delay_s=0.5)
    await expect_error(client.fetch("1"), ErrorKind.SERVER)
    assert server.calls == 3
    assert delays == [0.5, 1.0]


# ========================================================================= fetch


async def test_fetch_request_and_parse(make: MakeClient) -> None:
    client, server = make(httpx.Response(200, json=TASK))
    task = await client.fetch("1712205491372224")
    assert server.last.method == "GET"
    assert str(server.last.url) == f"{BASE}/mj/task/1712205491372224/fetch"
    assert server.last.content == b""
    assert isinstance(task, Task)
    assert task.id == "1712205491372224"
    assert task.status is TaskState.IN_PROGRESS


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200),  # Java OSS unknown id
        httpx.Response(200, text="   "),
        httpx.Response(200, text="null"),
        httpx.Response(204),  # trueai unknown id
        httpx.Response(200, json={"code": 3, "description": "task_not_exist"}),  # aggregator
        httpx.Response(404, json={"code": 3, "description": "task_not_exist"}),
        httpx.Response(400, json={"code": 4, "description": "task_id_is_required"}),
        httpx.Response(200, json={}),
    ],
)
async def test_fetch_unknown_is_none(make: MakeClient, response: httpx.Response) -> None:
    client, server = make(response)
    assert await client.fetch("1") is None
    assert server.calls == 1


async def test_fetch_wrapped_task(make: MakeClient) -> None:
    client, _ = make(httpx.Response(200, json={"code": 1, "description": "ok", "result": TASK}))
    task = await client.fetch("1712205491372224")
    assert task is not None
    assert task.progress == 45


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(404, text="Cannot GET /mj/task/1/fetch"), ErrorKind.NOT_FOUND),
        (httpx.Response(200, text="<html>login</html>"), ErrorKind.BAD_RESPONSE),
        (httpx.Response(403), ErrorKind.AUTH),
    ],
)
async def test_fetch_errors(make: MakeClient, response: httpx.Response, kind: ErrorKind) -> None:
    client, server = make(response)
    await expect_error(client.fetch("1"), kind)
    assert server.calls == 1


# ========================================================================= list-by-condition


async def test_list_request_and_parse(make: MakeClient) -> None:
    items = [
        TASK,
        {"id": 1712205491372225, "status": "SUCCESS", "progress": "100%"},
        {"no": "id"},
        "junk",
        None,
    ]
    client, server = make(httpx.Response(200, json=items))
    tasks = await client.list_by_condition(["1712205491372224", "1712205491372225", "404"])
    assert server.last.method == "POST"
    assert server.last.url.path == "/mj/task/list-by-condition"
    assert server.body() == {"ids": ["1712205491372224", "1712205491372225", "404"]}
    assert [(t.id, t.status, t.progress) for t in tasks] == [
        ("1712205491372224", TaskState.IN_PROGRESS, 45),
        ("1712205491372225", TaskState.SUCCESS, 100),
    ]


async def test_list_without_ids_sends_nothing(make: MakeClient) -> None:
    client, server = make()
    assert await client.list_by_condition([]) == []
    assert await client.list_by_condition(()) == []
    assert server.calls == 0


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, json=[]), httpx.Response(200), httpx.Response(204)],
)
async def test_list_empty_answers(make: MakeClient, response: httpx.Response) -> None:
    client, _ = make(response)
    assert await client.list_by_condition(["1"]) == []


async def test_list_wrapped_in_envelope(make: MakeClient) -> None:
    client, _ = make(httpx.Response(200, json={"code": 1, "result": [TASK]}))
    tasks = await client.list_by_condition(["1712205491372224"])
    assert [t.id for t in tasks] == ["1712205491372224"]


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (
            httpx.Response(400, json={"code": 4, "description": "invalid_request"}),
            ErrorKind.BAD_RESPONSE,
        ),
        (
            httpx.Response(200, json={"success": False, "code": -1, "message": "参数错误"}),
            ErrorKind.BAD_RESPONSE,
        ),
        (httpx.Response(200, text="not json"), ErrorKind.BAD_RESPONSE),
        (httpx.Response(404), ErrorKind.NOT_FOUND),
    ],
)
async def test_list_errors(make: MakeClient, response: httpx.Response, kind: ErrorKind) -> None:
    client, _ = make(response)
    await expect_error(client.list_by_condition(["1"]), kind)


# ========================================================================= image-seed


async def test_seed_success_and_long_timeout(make: MakeClient) -> None:
    client, server = make(
        httpx.Response(200, json={"code": 1, "description": "成功", "result": "636646138"})
    )
    submission = await client.image_seed("1711")
    assert server.last.method == "GET"
    assert server.last.url.path == "/mj/task/1711/image-seed"
    assert submission.outcome is Outcome.ACCEPTED
    assert submission.result == "636646138"
    assert server.last.extensions["timeout"]["read"] >= 90


async def test_regular_requests_use_timeout_s(make: MakeClient) -> None:
    client, server = make(timeout_s=12.5)
    await client.imagine("cat")
    assert server.last.extensions["timeout"] == {
        "connect": 12.5,
        "read": 12.5,
        "write": 12.5,
        "pool": 12.5,
    }


@pytest.mark.parametrize(
    ("status", "payload", "outcome"),
    [
        (400, {"code": 4, "description": "关联任务状态错误", "result": None}, Outcome.INVALID),
        (
            404,
            {"code": 3, "description": "关联任务不存在或已失效", "result": None},
            Outcome.NOT_FOUND,
        ),
        (200, {"code": 3, "description": "未找到 seed"}, Outcome.NOT_FOUND),
        (200, {"code": 9, "description": "seed error"}, Outcome.FAILED),
    ],
)
async def test_seed_envelope_errors_are_submissions(
    make: MakeClient, status: int, payload: dict[str, Any], outcome: Outcome
) -> None:
    client, server = make(httpx.Response(status, json=payload))
    submission = await client.image_seed("1711")
    assert submission.outcome is outcome
    assert server.calls == 1


async def test_seed_timeout_is_not_repeated(make: MakeClient) -> None:
    client, server = make(raising(read_timeout))
    await expect_error(client.image_seed("1711"), ErrorKind.TIMEOUT)
    assert server.calls == 1


async def test_seed_5xx_is_retried(make: MakeClient) -> None:
    client, server = make(
        httpx.Response(502), httpx.Response(200, json={"code": 1, "result": "42"})
    )
    submission = await client.image_seed("1711")
    assert submission.result == "42"
    assert server.calls == 2


async def test_seed_empty_body_is_bad_response(make: MakeClient) -> None:
    client, _ = make(httpx.Response(200))
    await expect_error(client.image_seed("1711"), ErrorKind.BAD_RESPONSE)


# ========================================================================= the key never leaks


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(401, text=f"invalid token {KEY}"),
        httpx.Response(401, json={"description": f"无效的令牌 {KEY}", "code": 5}),
        httpx.Response(429, text=f"slow down {KEY}"),
        httpx.Response(500, text=f"trace: Authorization: Bearer {KEY}"),
        httpx.Response(200, text=f"<html>{KEY}</html>"),
        httpx.Response(404, text=KEY),
        httpx.Response(400, text=("x" * 480) + KEY + ("y" * 100)),  # straddles the cut
        raising(lambda r: httpx.ConnectError(f"cannot reach {KEY}", request=r)),
        raising(lambda r: httpx.ReadTimeout(f"timeout {KEY}", request=r)),
        raising(lambda r: httpx.RemoteProtocolError(f"bad {KEY}", request=r)),
    ],
)
async def test_api_key_never_in_errors(
    make: MakeClient, reply: Reply | Handler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.mj")
    client, _ = make(reply)
    for call in (client.imagine("cat"), client.fetch("1")):
        with pytest.raises(MjError) as info:
            await call
        error = info.value
        for text in (str(error), repr(error), error.detail, *map(str, error.args)):
            assert KEY not in text
            assert KEY[:12] not in text  # not even a cut-off prefix
    assert KEY not in caplog.text


async def test_logs_never_carry_headers(make: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.mj")
    client, _ = make(
        httpx.Response(503),
        httpx.Response(200, json=TASK),
        httpx.Response(200, json=OK),
        auth_header="raw-authorization",
    )
    await client.fetch("1")
    await client.imagine("cat")
    assert caplog.records  # something was logged
    assert KEY not in caplog.text
    assert "authorization" not in caplog.text.lower()


# ========================================================================= lifecycle


async def test_aclose_leaves_injected_client_open(make: MakeClient) -> None:
    client, _ = make()
    await client.aclose()
    assert not client._transport.is_closed
    await client.imagine("cat")  # still usable by its owner


async def test_aclose_closes_own_client() -> None:
    client = MjClient(BASE, KEY)
    await client.aclose()
    assert client._transport.is_closed


async def test_async_context_manager() -> None:
    async with MjClient(BASE, KEY) as client:
        assert not client._transport.is_closed
    assert client._transport.is_closed


async def test_bom_prefixed_json_is_accepted(make: MakeClient) -> None:
    client, _ = make(httpx.Response(200, content=b"\xef\xbb\xbf" + json.dumps(OK).encode()))
    submission = await client.imagine("cat")
    assert submission.task_id == "1712205491372224"


async def test_video_extend_in_the_resellers_spelling(make: MakeClient) -> None:
    """A profile with extend_spelling task_id names the parent task_id, the index a string."""
    profile = profile_for("openai-hk", extend_spelling="task_id")
    client, server = make(profile=profile)
    await client.extend_video("1711", 0)
    assert server.body() == {"action": "extend", "task_id": "1711", "index": "0", "motion": "low"}


async def test_video_options_out_of_range_send_nothing(make: MakeClient) -> None:
    client, server = make()
    with pytest.raises(ValueError):
        await client.video("waves", PNG, batch_size=3)
    with pytest.raises(ValueError):
        await client.video("waves", PNG, video_type="vid_2_1080")
    with pytest.raises(ValueError):
        await client.extend_video("1711", 4)
    assert server.calls == 0
