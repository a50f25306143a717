"""Provider profiles (bot/mj/profiles.py), the client following them, the auto probe, and the
simulator flavours that reproduce each provider on the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.config import ConfigError, load
from bot.mj.client import ErrorKind, MjClient, MjError
from bot.mj.custom_ids import change_for, refusal_prefix
from bot.mj.models import Outcome, TaskState
from bot.mj.probe import probe, resolve_profile
from bot.mj.profiles import PROFILES, PROVIDERS, SIM_FLAVOURS, Profile, profile_for
from mjsim import FLAVOURS, SimConfig, Simulator

BASE = "https://api.example.com"
KEY = "sk-provider-0123456789"
PARENT = "1712205491372224"
HASH = "3dbbd469-36af-4a0f-8f02-df6c579e7011"
OK = {"code": 1, "description": "提交成功", "result": "1712205491372999", "properties": {}}


class Server:
    """Records requests; ``answer`` (a function of the request) decides the reply."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.answer = answer or (lambda request: httpx.Response(200, json=OK))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    @property
    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[MjClient, Server]]]:
    opened: list[httpx.AsyncClient] = []

    def factory(
        provider: str = "openai-hk",
        answer: Callable[[httpx.Request], httpx.Response] | None = None,
        **options: Any,
    ) -> tuple[MjClient, Server]:
        server = Server(answer)
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        opened.append(http)
        profile = options.pop("profile", None) or PROFILES[provider]
        client = MjClient(BASE, KEY, profile=profile, http=http, retry_delay_s=0, **options)
        return client, server

    yield factory
    for http in opened:
        await http.aclose()


# ========================================================================= profiles


def test_every_provider_has_a_profile_and_a_simulator_flavour() -> None:
    assert set(PROFILES) == set(PROVIDERS) - {"auto"}
    assert set(SIM_FLAVOURS) == set(PROVIDERS)
    assert set(SIM_FLAVOURS.values()) <= set(FLAVOURS)
    assert profile_for("auto") == PROFILES["openai-hk"]  # until the probe has run


def test_profile_keys_can_be_overridden_one_by_one() -> None:
    base = PROFILES["new-api"]
    changed = profile_for("new-api", hooks=True, auth_header="", hidden_buttons=["MJ::X::"])
    assert changed.hooks is True and changed.hidden_buttons == ("MJ::X::",)
    assert changed.auth_header == base.auth_header  # "" = keep the profile's
    assert changed.list_route == base.list_route
    with pytest.raises(ValueError, match="mode_form"):
        Profile("x", mode_form="header")
    with pytest.raises(ValueError, match="unknown profile keys"):
        base.with_overrides(colour="red")
    with pytest.raises(ValueError, match="unknown provider"):
        profile_for("midjourney")


@pytest.mark.parametrize(
    ("provider", "mode", "prefix", "body", "flag"),
    [
        ("openai-hk", "fast", "/fast", [], ""),
        ("new-api", "relax", "/relax", [], ""),
        ("trueai", "fast", "/mj-fast", [], ""),
        ("trueai", "turbo", "/mj-turbo", [], ""),
        ("plus", "relax", "", ["RELAX"], ""),
        ("midjourney-proxy", "relax", "", [], "--relax"),
        ("plus", "/mj-fast", "/mj-fast", [], ""),  # a path is always used verbatim
        ("trueai", "", "", [], ""),
    ],
)
def test_mode_forms(provider: str, mode: str, prefix: str, body: list[str], flag: str) -> None:
    profile = PROFILES[provider]
    assert profile.mode_prefix(mode) == prefix
    assert profile.mode_body(mode) == body
    assert profile.mode_flag(mode) == flag


def test_change_translation_and_button_families() -> None:
    assert change_for(f"MJ::JOB::upsample::2::{HASH}") == ("UPSCALE", 2)
    assert change_for(f"MJ::JOB::variation::4::{HASH}") == ("VARIATION", 4)
    assert change_for(f"MJ::JOB::reroll::0::{HASH}::SOLO") == ("REROLL", None)
    assert change_for(f"MJ::CustomZoom::{HASH}") is None
    assert change_for(f"MJ::JOB::upsample_v7_2x_subtle::1::{HASH}::SOLO") is None
    assert refusal_prefix("MJ::Job::PicReader::all") == "MJ::Job::PicReader::all"
    assert refusal_prefix("MJ::Job::PicReader::2") == "MJ::Job::PicReader::"
    assert refusal_prefix(f"MJ::BOOKMARK::{HASH}") == "MJ::BOOKMARK::"
    assert refusal_prefix(f"MJ::JOB::animate_high::1::{HASH}::SOLO") == "MJ::JOB::animate_high::"


def test_config_provider_and_overrides(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[midjourney]\nprovider = "new-api"\nhooks = true\nhidden_buttons = ["MJ::BOOKMARK::"]\n'
    )
    cfg = load(path, env={"MJBOT_MIDJOURNEY__LIST_ROUTE": "false"})
    cfg.validate(need_chat=False)
    mj = cfg.midjourney
    assert mj.auth_header == ""  # not set: the profile's
    assert mj.profile_overrides() == {
        "hooks": True,
        "hidden_buttons": ("MJ::BOOKMARK::",),
        "list_route": False,
    }
    profile = profile_for(mj.provider, **mj.profile_overrides())
    assert profile.auth_header == "bearer" and profile.hooks and not profile.list_route
    assert load(None, env={}).midjourney.provider == "openai-hk"  # today's behaviour
    for text, key in (
        ('[midjourney]\nprovider = "midjourney"\n', "midjourney.provider"),
        ('[midjourney]\ncode21 = "maybe"\n', "midjourney.code21"),
        ('[midjourney]\nmode_form = "header"\n', "midjourney.mode_form"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load(path, env={}).validate(need_chat=False)


# ========================================================================= the client


async def test_java_buttons_go_through_change(make) -> None:
    client, server = make("midjourney-proxy")
    await client.action(PARENT, f"MJ::JOB::upsample::2::{HASH}", state="k1")
    await client.action(PARENT, f"MJ::JOB::variation::3::{HASH}")
    await client.action(PARENT, f"MJ::JOB::reroll::0::{HASH}::SOLO")
    assert server.paths == ["/mj/submit/change"] * 3
    assert server.body(0) == {"taskId": PARENT, "action": "UPSCALE", "index": 2, "state": "k1"}
    assert server.body(1) == {"taskId": PARENT, "action": "VARIATION", "index": 3}
    assert server.body(2) == {"taskId": PARENT, "action": "REROLL"}
    assert server.requests[0].headers["mj-api-secret"] == KEY
    assert "authorization" not in server.requests[0].headers
    # Anything /change cannot do is refused here, without spending a request.
    refused = await client.action(PARENT, f"MJ::CustomZoom::{HASH}")
    assert refused.outcome is Outcome.UNSUPPORTED and len(server.requests) == 3


async def test_code_21_follows_the_profile(make) -> None:
    existing = {"code": 21, "description": "任务已存在", "result": "1", "properties": {}}
    java, _ = make("midjourney-proxy", lambda r: httpx.Response(200, json=existing))
    assert (await java.action(PARENT, f"MJ::JOB::upsample::1::{HASH}")).outcome is Outcome.EXISTS
    modal = {"code": 21, "description": "窗口等待", "result": "2"}
    plus, _ = make("plus", lambda r: httpx.Response(200, json=modal))
    assert (await plus.action(PARENT, f"MJ::CustomZoom::{HASH}")).outcome is Outcome.MODAL


async def test_code_9_queue_full_on_trueai_only(make) -> None:
    full = {"code": 9, "description": "提交失败，队列已满，请稍后重试", "properties": {}}
    broken = {"code": 9, "description": "提交失败，系统异常", "properties": {}}
    trueai, _ = make("trueai", lambda r: httpx.Response(200, json=full))
    assert (await trueai.imagine("cat")).outcome is Outcome.QUEUE_FULL
    other, _ = make("trueai", lambda r: httpx.Response(200, json=broken))
    assert (await other.imagine("cat")).outcome is Outcome.FAILED
    plus, _ = make("plus", lambda r: httpx.Response(200, json=full))
    assert (await plus.imagine("cat")).outcome is Outcome.FAILED


async def test_refused_buttons_are_unsupported_and_remembered(make) -> None:
    custom_id = "MJ::Job::PicReader::2"
    refusal = {"code": 4, "description": f"unknown_action:{custom_id}"}
    client, _ = make("plus", lambda r: httpx.Response(400, json=refusal))
    assert "MJ::Job::PicReader::" not in client.hidden_buttons
    submission = await client.action(PARENT, custom_id)
    assert submission.outcome is Outcome.UNSUPPORTED
    assert "MJ::Job::PicReader::" in client.hidden_buttons  # not offered again
    trueai = {"code": 4, "description": "未知的 Action 类型"}
    client, _ = make("trueai", lambda r: httpx.Response(200, json=trueai))
    pressed = await client.action(PARENT, f"MJ::JOB::animate_low::1::{HASH}::SOLO")
    assert pressed.outcome is Outcome.UNSUPPORTED
    # An ordinary validation error stays what it is.
    invalid = {"code": 4, "description": "关联任务状态错误"}
    client, _ = make("plus", lambda r: httpx.Response(200, json=invalid))
    assert (await client.action(PARENT, f"MJ::JOB::upsample::1::{HASH}")).outcome is (
        Outcome.INVALID
    )


async def test_modes_auth_and_hooks_per_profile(make) -> None:
    plus, server = make("plus", mode="fast")
    await plus.imagine("cat", notify_hook="https://bot/hook")
    assert server.paths == ["/mj/submit/imagine"]
    assert server.body()["accountFilter"] == {"modes": ["FAST"]}
    assert server.body()["notifyHook"] == "https://bot/hook"
    trueai, server = make("trueai")
    await trueai.imagine("cat", mode="relax")
    assert server.paths == ["/mj-relax/mj/submit/imagine"]
    assert server.requests[0].headers["authorization"] == KEY  # raw, no "Bearer "
    java, server = make("midjourney-proxy")
    await java.imagine("cat", mode="relax")
    await java.imagine("dog --fast", mode="relax")  # the user's own flag wins
    assert [server.body(i)["prompt"] for i in (0, 1)] == ["cat --relax", "dog --fast"]
    new_api, server = make("new-api")
    await new_api.imagine("cat", mode="fast", notify_hook="https://bot/hook")
    assert server.paths == ["/fast/mj/submit/imagine"]
    assert "notifyHook" not in server.body()  # dropped by the relay anyway: rely on polling
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_list_falls_back_to_bounded_fetches(make) -> None:
    running = 0
    peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        task_id = request.url.path.split("/")[-2]
        if task_id == "404":
            return httpx.Response(200)  # unknown: empty body
        return httpx.Response(200, json={"id": task_id, "status": "IN_PROGRESS"})

    class AsyncServer(Server):
        async def __call__(self, request: httpx.Request) -> httpx.Response:  # type: ignore[override]
            self.requests.append(request)
            return await answer(request)

    server = AsyncServer()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    profile = PROFILES["plus"].with_overrides(list_route=False)
    client = MjClient(BASE, KEY, profile=profile, http=http, list_concurrency=8)
    try:
        ids = [str(1712205491372000 + n) for n in range(30)] + ["404"]
        tasks = await client.list_by_condition(ids)
    finally:
        await http.aclose()
    assert sorted(t.id for t in tasks) == sorted(ids[:-1])
    assert all(r.url.path.endswith("/fetch") for r in server.requests)
    assert peak <= 8


async def test_list_404_switches_to_fetches_for_good(make) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("list-by-condition"):
            return httpx.Response(404)
        return httpx.Response(200, json={"id": PARENT, "status": "SUCCESS"})

    client, server = make("openai-hk", answer)
    assert [t.id for t in await client.list_by_condition([PARENT])] == [PARENT]
    assert [t.id for t in await client.list_by_condition([PARENT])] == [PARENT]
    assert server.paths.count("/mj/task/list-by-condition") == 1


async def test_java_grids_get_u_v_reroll_buttons(make) -> None:
    grid = {"id": PARENT, "action": "IMAGINE", "status": "SUCCESS", "properties": {}}
    upscale = {"id": "2", "action": "UPSCALE", "status": "SUCCESS"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("list-by-condition"):
            return httpx.Response(200, json=[grid, upscale])
        return httpx.Response(200, json=grid)

    client, _ = make("midjourney-proxy", answer)
    task = await client.fetch(PARENT)
    assert task is not None and task.status is TaskState.SUCCESS
    assert [b.label or b.emoji for b in task.buttons] == [
        "U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4",
    ]  # fmt: skip
    assert task.raw["buttons"]  # stored with the snapshot, so the keyboard survives restarts
    listed = await client.list_by_condition([PARENT, "2"])
    assert [len(t.buttons) for t in listed] == [9, 0]
    plus, _ = make("plus", answer)
    assert (await plus.fetch(PARENT)).buttons == ()  # other providers: only what the API says


@pytest.mark.parametrize(
    ("reply", "expect"),
    [
        (httpx.Response(401), ErrorKind.AUTH),  # Java / Plus
        (httpx.Response(401, text="Authorization header missing."), ErrorKind.AUTH),  # trueai
        (httpx.Response(401, json={"error": {"message": "无效的令牌"}}), ErrorKind.AUTH),  # relay
        (httpx.Response(429), ErrorKind.RATE_LIMITED),
    ],
)
async def test_refusals_in_every_shape_are_one_error(make, reply, expect) -> None:
    client, _ = make("trueai", lambda r: reply)
    with pytest.raises(MjError) as info:
        await client.imagine("cat")
    assert info.value.kind is expect


async def test_trueai_failure_shape_is_a_submission(make) -> None:
    body = {"success": False, "code": -1, "message": "操作失败", "timestamp": "1"}
    client, _ = make("trueai", lambda r: httpx.Response(500, json=body))
    submission = await client.describe("data:image/png;base64,AAAA")
    assert submission.outcome is Outcome.FAILED and submission.description == "操作失败"
    for reply in (
        httpx.Response(204),
        httpx.Response(200),
        httpx.Response(400, json={"code": 4, "description": "task_no_exist"}),
    ):
        client, _ = make("trueai", lambda r, reply=reply: reply)
        assert await client.fetch(PARENT) is None


# ========================================================================= simulator flavours


@pytest.fixture
async def flavoured() -> AsyncIterator[Callable[..., Any]]:
    started: list[Simulator] = []

    async def start(flavour: str, **settings: Any) -> tuple[Simulator, httpx.AsyncClient]:
        sim = Simulator(SimConfig(flavour=flavour, time_scale=0.01, **settings))
        url = await sim.start()
        started.append(sim)
        http = httpx.AsyncClient(base_url=url, timeout=5)
        clients.append(http)
        return sim, http

    clients: list[httpx.AsyncClient] = []
    yield start
    for http in clients:
        await http.aclose()
    for sim in started:
        await sim.stop()


async def finish(http: httpx.AsyncClient, task_id: str, **headers: str) -> dict[str, Any]:
    for _ in range(400):
        task = (await http.get(f"/mj/task/{task_id}/fetch", headers=headers)).json()
        if task["status"] in ("SUCCESS", "FAILURE"):
            return task
        await asyncio.sleep(0.005)
    raise AssertionError(task)


@pytest.mark.parametrize(
    ("flavour", "accepted"),
    [
        ("plus", {"secret"}),
        ("java", {"secret"}),
        ("openai-hk", {"bearer", "secret"}),
        ("trueai", {"raw", "secret"}),
        ("new-api", {"bearer", "raw", "secret"}),
        ("superset", {"bearer", "raw", "secret"}),
    ],
)
async def test_sim_auth_per_flavour(flavoured, flavour: str, accepted: set[str]) -> None:
    _, http = await flavoured(flavour, api_key="k")
    schemes = {
        "bearer": {"Authorization": "Bearer k"},
        "raw": {"Authorization": "k"},
        "secret": {"mj-api-secret": "k"},
    }
    passed = set()
    for name, headers in schemes.items():
        answer = await http.get("/mj/task/1/fetch", headers=headers)
        if answer.status_code != 401:
            passed.add(name)
        elif flavour == "trueai":
            assert answer.text == "Authorization header missing."
        elif flavour in ("java", "plus"):
            assert answer.content == b""
    assert passed == accepted


async def test_sim_java_has_no_action_and_says_the_task_exists(flavoured) -> None:
    _, http = await flavoured("java")
    made = (await http.post("/mj/submit/imagine", json={"prompt": "cat"})).json()
    done = await finish(http, made["result"])
    assert "buttons" not in done and "customId" not in done
    missing = await http.post("/mj/submit/action", json={"taskId": made["result"]})
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    body = {"taskId": made["result"], "action": "UPSCALE", "index": 2}
    first = (await http.post("/mj/submit/change", json=body)).json()
    assert first["code"] == 1
    await finish(http, first["result"])
    again = (await http.post("/mj/submit/change", json=body)).json()
    assert again["code"] == 21 and again["description"] == "任务已存在"
    assert again["result"] == first["result"] and again["properties"]["status"] == "SUCCESS"
    assert (await http.post("/fast/mj/submit/imagine", json={"prompt": "x"})).status_code == 404


async def test_sim_trueai_quirks(flavoured) -> None:
    sim, http = await flavoured("trueai", concurrency=1, queue_size=0)
    assert (await http.get("/mj/task/0000000000000000/fetch")).status_code == 204
    banned = (await http.post("/mj-fast/mj/submit/imagine", json={"prompt": "nude art"})).json()
    assert banned["code"] == 1  # accepted ...
    failed = await finish(http, banned["result"])
    assert failed["failReason"] == "可能包含敏感词"  # ... then failed (P4)
    first = (await http.post("/mj/submit/imagine", json={"prompt": "a"})).json()
    full = (await http.post("/mj/submit/imagine", json={"prompt": "b"})).json()
    assert first["code"] == 1 and full["code"] == 9 and "队列已满" in full["description"]
    done = await finish(http, first["result"])
    analyse = {"taskId": done["id"], "customId": "MJ::Job::PromptAnalyzer::1"}
    refused = (await http.post("/mj/submit/action", json=analyse)).json()
    assert refused == {**refused, "code": 4, "description": "未知的 Action 类型"}
    orphan = await http.post("/mj/submit/action", json={**analyse, "taskId": "1", "customId": "x"})
    assert orphan.status_code == 404 and orphan.json()["code"] == 3
    broken = await http.post("/mj/submit/imagine", content=b"{not json")
    assert broken.json()["success"] is False and broken.json()["code"] == -1
    assert (await http.post("/mj/submit/change", json={})).status_code == 404
    assert sim.tasks[first["result"]].mode == "FAST"


async def test_sim_new_api_quirks(flavoured) -> None:
    sim, http = await flavoured("new-api")
    hook = "http://127.0.0.1:9/hook"
    made = (
        await http.post("/anything/mj/submit/imagine", json={"prompt": "cat", "notifyHook": hook})
    ).json()
    assert made["code"] == 1 and sim.tasks[made["result"]].notify_hook == ""  # dropped
    done = await finish(http, made["result"])
    upscale_id = next(b["customId"] for b in done["buttons"] if b["label"] == "U1")
    up = await http.post("/mj/submit/action", json={"taskId": done["id"], "customId": upscale_id})
    upscaled = await finish(http, up.json()["result"])
    like = next(b["customId"] for b in upscaled["buttons"] if b["emoji"] == "❤️")
    refused = await http.post(
        "/mj/submit/action", json={"taskId": upscaled["id"], "customId": like}
    )
    assert refused.status_code == 400 and refused.json()["description"] == f"unknown_action:{like}"
    unknown = await http.get("/mj/task/0000000000000000/fetch")
    assert unknown.status_code == 400 and unknown.json()["code"] == 4
    zeros = (await http.get(f"/mj/task/{done['id']}/fetch")).json()
    assert zeros["failReason"] == ""


async def test_sim_plus_refuses_imagine_all_and_the_heart(flavoured) -> None:
    _, http = await flavoured("plus")
    png = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
        "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    made = (await http.post("/mj/submit/describe", json={"base64": png})).json()
    done = await finish(http, made["result"])
    everything = {"taskId": done["id"], "customId": "MJ::Job::PicReader::all"}
    assert (await http.post("/mj/submit/action", json=everything)).json()["code"] == 4
    pick = {"taskId": done["id"], "customId": "MJ::Job::PicReader::1"}
    assert (await http.post("/mj/submit/action", json=pick)).json()["code"] == 21
    body = {"prompt": "cat", "accountFilter": {"modes": ["RELAX"]}}
    relax = (await http.post("/mj/submit/imagine", json=body)).json()
    assert (await http.get(f"/mj/task/{relax['result']}/fetch")).json()["mode"] == "RELAX"


# ========================================================================= auto


@pytest.mark.parametrize(
    ("flavour", "provider", "auth"),
    [
        ("plus", "plus", "mj-api-secret"),
        ("java", "midjourney-proxy", "mj-api-secret"),
        ("openai-hk", "openai-hk", "bearer"),
        ("trueai", "trueai", "raw-authorization"),
        ("new-api", "new-api", "bearer"),
        ("superset", "openai-hk", "bearer"),
    ],
)
async def test_probe_names_the_nearest_profile(flavoured, flavour, provider, auth) -> None:
    sim, _ = await flavoured(flavour, api_key=KEY)
    found = await probe(sim.base_url, KEY)
    assert found.provider == provider and found.profile.auth_header == auth
    assert found.reachable and found.evidence
    assert not sim.submits("imagine") and not sim.tasks  # probing never creates a task
    profile, again = await resolve_profile("auto", sim.base_url, KEY, {"hooks": False})
    assert again is not None and profile.name == provider and profile.hooks is False


async def test_probe_of_an_unreachable_api_keeps_the_default() -> None:
    found = await probe("http://127.0.0.1:9", KEY, timeout_s=2)
    assert not found.reachable and found.provider == "openai-hk"
