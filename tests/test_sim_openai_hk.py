"""The simulator's openai-hk flavour against openai-hk's own document, example for example.

tests/fixtures/openai_hk/ holds the document's request and response examples, copied verbatim.
Each request is sent as the document writes it (only placeholders a server must refuse are
filled in: empty base64, the example's task ids and job hash), and the answer must have the
example's keys, JSON types and button lists, field by field; ids, URLs and texts may differ.

Two kinds of examples: the VIDEO and EDITS ones are real answers (exact key sets, list lengths);
the others are generated from the API's schema (placeholders such as one empty button, `"code":
0`), so the simulator's answer must have at least their keys, with the same types.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mjsim import SimConfig, Simulator

FIXTURES = Path(__file__).parent / "fixtures" / "openai_hk"
FAST = 0.01
EXAMPLE_HASH = "3dbbd469-36af-4a0f-8f02-df6c579e7011"  # the job hash in the action example
EXAMPLE_TASK_ID = "14001934816969359"  # the task id in the action and modal examples


def example(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def png_uri(colour: str) -> str:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def same_shape(documented: Any, answered: Any, path: str = "$", *, exact: bool = True) -> None:
    """``answered`` has ``documented``'s keys (exactly, or at least when not ``exact``), the
    same JSON type in every field, and lists of the same items; an empty documented list
    must be empty (``"buttons": []``), and ``exact`` lists have the same length."""
    assert json_type(answered) == json_type(documented), (
        f"{path}: the document has {json_type(documented)} {documented!r:.60}, "
        f"the simulator {json_type(answered)} {answered!r:.60}"
    )
    if isinstance(documented, dict):
        missing = set(documented) - set(answered)
        assert not missing, f"{path}: the simulator lacks {sorted(missing)}"
        if exact:
            extra = set(answered) - set(documented)
            assert not extra, f"{path}: the document has no {sorted(extra)}"
        for key, value in documented.items():
            same_shape(value, answered[key], f"{path}.{key}", exact=exact)
    elif isinstance(documented, list):
        if not documented:
            assert answered == [], f"{path}: the document has [], the simulator {answered!r:.80}"
        if exact:
            assert len(answered) == len(documented), f"{path}: {len(answered)} items"
        for index, item in enumerate(answered):
            pattern = documented[min(index, len(documented) - 1)]
            same_shape(pattern, item, f"{path}[{index}]", exact=exact)


@pytest.fixture
async def hk() -> AsyncIterator[tuple[Simulator, httpx.AsyncClient]]:
    # room for every task at once: an answer is then code 1, the one the examples show
    sim = Simulator(SimConfig(flavour="openai-hk", time_scale=FAST, concurrency=20))
    url = await sim.start()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield sim, http
    await sim.stop()


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(path, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def finish(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    for _ in range(600):
        task: dict[str, Any] = (await http.get(f"/mj/task/{task_id}/fetch")).json()
        if task["status"] in ("SUCCESS", "FAILURE"):
            assert task["status"] == "SUCCESS", task
            return task
        await asyncio.sleep(0.005)
    raise AssertionError(f"task {task_id} never finished")


def schema_submit_example(name: str) -> dict[str, Any]:
    """A submit example of the schema kind. Its ``result`` is printed as a number, while the
    document's response table types ``result`` (任务 ID) as string, and its real answers (VIDEO,
    EDITS) and task ids are strings: the simulator answers strings (mj-api.md P15)."""
    documented = example(name)
    assert isinstance(documented["result"], int)
    return {**documented, "result": str(documented["result"])}


def filled(name: str, **values: Any) -> dict[str, Any]:
    """The document's request example with its placeholders replaced by ``values``."""
    body = example(name)
    unknown = set(values) - set(body)
    assert not unknown, f"{name} has no {unknown}"
    return {**body, **values}


# ------------------------------------------------------------------------------ submit routes


async def test_each_submit_answers_with_the_documented_envelope(hk) -> None:
    sim, http = hk
    imagine = await post(http, "/mj/submit/imagine", example("imagine_request"))
    same_shape(schema_submit_example("imagine_response"), imagine)
    assert imagine["properties"] == {}

    grid = await finish(http, imagine["result"])
    hash_ = sim.tasks[grid["id"]].message_hash
    action = example("action_request")
    action = filled(
        "action_request",
        taskId=grid["id"],
        customId=action["customId"].replace(EXAMPLE_HASH, hash_),
    )
    assert action["customId"] == f"MJ::JOB::upsample::2::{hash_}"
    upscaled = await post(http, "/mj/submit/action", action)
    same_shape(schema_submit_example("action_response"), upscaled)

    upscale = await finish(http, upscaled["result"])
    zoom = next(b["customId"] for b in upscale["buttons"] if b["label"] == "Custom Zoom")
    waiting = await post(http, "/mj/submit/action", {"taskId": upscale["id"], "customId": zoom})
    assert waiting["code"] == 21  # the document shows no modal answer: Plus's, kept
    modal = filled("modal_request", taskId=waiting["result"])
    assert modal["taskId"] != EXAMPLE_TASK_ID and modal["prompt"] == modal["maskBase64"] == ""
    same_shape(schema_submit_example("modal_response"), await post(http, "/mj/submit/modal", modal))

    blend = filled("blend_request", base64Array=[png_uri("red"), png_uri("blue")])
    same_shape(schema_submit_example("blend_response"), await post(http, "/mj/submit/blend", blend))
    describe = filled("describe_request", base64=png_uri("green"))
    same_shape(
        schema_submit_example("describe_response"),
        await post(http, "/mj/submit/describe", describe),
    )
    shorten = await post(http, "/mj/submit/shorten", example("shorten_request"))
    same_shape(schema_submit_example("shorten_response"), shorten)

    swap = filled("swap_request", sourceBase64=png_uri("tan"), targetBase64=png_uri("navy"))
    swapped = await post(http, "/mj/insight-face/swap", swap)
    # Message«string»: the example's "code": 0 and "result": "" are the schema's placeholders
    same_shape(example("swap_response"), swapped)
    assert swapped["code"] == 1 and swapped["result"] in sim.tasks


@pytest.mark.parametrize("route", ["video", "edits"])
async def test_video_and_edits_answer_as_the_documented_answers(hk, route: str) -> None:
    sim, http = hk
    # the examples' notifyHook is the provider's own callback relay: not called from a test
    body = filled(f"{route}_request", notifyHook="")
    answer = await post(http, f"/mj/submit/{route}", body)
    same_shape(example(f"{route}_response"), answer)
    assert answer["description"] == "Submit Success" and "properties" not in answer
    assert sim.submits(route)[0].body["image"] == example(f"{route}_request")["image"]


# ------------------------------------------------------------------------------ tasks


async def test_a_video_task_is_the_documented_video_task(hk) -> None:
    _, http = hk
    made = await post(http, "/mj/submit/video", filled("video_request", notifyHook=""))
    video = await finish(http, made["result"])
    same_shape(example("video_fetch"), video)
    assert video["action"] == "VIDEO" and video["buttons"] == []
    assert video["videoUrl"] == "" and video["imageUrls"] is None and video["failReason"] == ""
    for clip in video["videoUrls"]:  # four real clips
        served = await http.get(clip["url"])
        assert served.status_code == 200 and served.content[4:8] == b"ftyp"


async def test_an_edits_task_is_the_documented_edits_task(hk) -> None:
    _, http = hk
    made = await post(http, "/mj/submit/edits", filled("edits_request", notifyHook=""))
    edited = await finish(http, made["result"])
    same_shape(example("edits_fetch"), edited)
    assert edited["action"] == "EDITS" and edited["buttons"] == []
    assert edited["videoUrls"] is None and edited["videoUrl"] == ""
    pictures = []
    for image in edited["imageUrls"]:  # the results are the four links in imageUrls
        served = await http.get(image["url"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        pictures.append(Image.open(io.BytesIO(served.content)).tobytes())
    assert len(set(pictures)) == 4  # four different images, not the grid four times


async def test_fetch_list_and_seed_of_an_imagine_follow_the_schema(hk) -> None:
    _, http = hk
    made = await post(http, "/mj/submit/imagine", example("imagine_request"))
    grid = await finish(http, made["result"])
    # the schema example's keys and types; its one button shows a button's fields
    same_shape(example("fetch_response"), grid, exact=False)
    assert [b["label"] for b in grid["buttons"]][:4] == ["U1", "U2", "U3", "U4"]
    # and the real answers' keys: every task is the same gateway object (EDITS example)
    assert set(grid) == set(example("edits_fetch"))
    assert grid["failReason"] == "" and grid["imageUrls"] is None

    listed = (await http.post("/mj/task/list-by-condition", json={"ids": [grid["id"]]})).json()
    same_shape(example("list_by_condition_response"), listed, exact=False)
    assert listed == [grid]
    assert (
        await http.post("/mj/task/list-by-condition", json=example("list_by_condition_request"))
    ).json() == []

    seed = (await http.get(f"/mj/task/{grid['id']}/image-seed")).json()
    same_shape(example("image_seed_response"), seed)  # Message«string»: no properties
    assert seed["code"] == 1 and seed["result"].isdigit()


async def test_describe_and_shorten_results_keep_their_text_in_the_prompt_fields(hk) -> None:
    _, http = hk
    made = await post(
        http, "/mj/submit/describe", filled("describe_request", base64=png_uri("red"))
    )
    described = await finish(http, made["result"])
    text = described["properties"]["finalPrompt"]
    assert text.startswith("1️⃣") and "4️⃣" in text
    assert described["prompt"] == described["promptEn"] == text  # as the Java proxy does
    assert described["failReason"] == ""

    made = await post(http, "/mj/submit/shorten", example("shorten_request"))
    shortened = await finish(http, made["result"])
    assert shortened["imageUrl"] == "" and shortened["failReason"] == ""  # never null
    assert "Shortened prompts" in shortened["properties"]["finalPrompt"]


# ------------------------------------------------------------------------------ routes

DOCUMENTED = [
    ("POST", "/mj/submit/action"),
    ("POST", "/mj/submit/blend"),
    ("POST", "/mj/submit/describe"),
    ("POST", "/mj/submit/imagine"),
    ("POST", "/mj/submit/modal"),
    ("POST", "/mj/insight-face/swap"),
    ("POST", "/mj/submit/shorten"),
    ("POST", "/mj/submit/video"),
    ("POST", "/mj/submit/edits"),
    ("GET", "/mj/task/1751342042863641/fetch"),
    ("GET", "/mj/task/1751342042863641/image-seed"),
    ("POST", "/mj/task/list-by-condition"),
]
# Routes other members of the family have (mj-api.md §1.1) that the document does not list.
UNDOCUMENTED = [
    ("POST", "/mj/submit/change"),
    ("POST", "/mj/submit/simple-change"),
    ("POST", "/mj/submit/upload-discord-images"),
    ("POST", "/mj/submit/edit"),
    ("POST", "/mj/submit/retexture"),
    ("GET", "/mj/task/list"),
    ("GET", "/mj/task/queue"),
    ("POST", "/mj/task/1751342042863641/cancel"),
    ("POST", "/mj/task/list-by-ids"),
]


async def test_only_the_documented_routes_exist(hk) -> None:
    _, http = hk
    for prefix in ("", "/fast", "/relax"):  # the document's three access points
        for method, path in DOCUMENTED:
            answer = await http.request(method, prefix + path, json={})
            assert (answer.status_code, answer.content) != (404, b""), (prefix, path)
    for method, path in UNDOCUMENTED:
        # the document does not say how an unknown route is answered: a bare 404 (the
        # flavour's docstring says so)
        answer = await http.request(method, "/fast" + path, json={"ids": [], "taskId": "1"})
        assert (answer.status_code, answer.content) == (404, b""), path
