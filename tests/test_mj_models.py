"""bot.mj.models against every fixture of reference/mj-api.md §13, plus the pitfalls of §14.

Fixtures are copied verbatim (as JSON text) so a diff against the reference stays easy to read.
"""

# ruff: noqa: E501  (fixtures are one-line JSON exactly as published; wrapping them would alter them)

from __future__ import annotations

import json

import pytest

from bot.mj import models
from bot.mj.models import (
    FINAL_STATES,
    Action,
    Button,
    Outcome,
    Submission,
    Task,
    TaskState,
    parse_progress,
)

HASH = "03ee7a3e-b4d2-4465-9165-b93c99cb6617"

# ------------------------------------------------------------------------- §13.1 submit responses

SUBMIT_JAVA_OK = r"""{"code": 1, "description": "成功", "result": "8498455807619990", "properties": {"discordInstanceId": "1118138338562560102"}}"""
SUBMIT_JAVA_EXISTS = r"""{"code": 21, "description": "任务已存在", "result": "0741798445574458", "properties": {"status": "SUCCESS", "imageUrl": "https://xxxx"}}"""
SUBMIT_JAVA_QUEUED = r"""{"code": 22, "description": "排队中，前面还有1个任务", "result": "0741798445574458", "properties": {"numberOfQueues": 1, "discordInstanceId": "1118138338562560102"}}"""
SUBMIT_JAVA_QUEUE_FULL = r"""{"code": 23, "description": "队列已满，请稍后尝试", "result": "14001929738841620", "properties": {"discordInstanceId": "1118138338562560102"}}"""
SUBMIT_JAVA_BANNED = r"""{"code": 24, "description": "可能包含敏感词", "properties": {"promptEn": "nude body", "bannedWord": "nude"}}"""
SUBMIT_PLUS_MODAL = r"""{"code": 21, "description": "窗口等待", "result": "14001929738841620"}"""
SUBMIT_PLUS_SEED = r"""{"code": 1, "description": "成功", "result": "636646138"}"""
SUBMIT_RIXAPI_MODAL = (
    r"""{"code": 21, "description": "Waiting for window confirm", "result": "17381923542354"}"""
)
SUBMIT_KKIAI_OK = r"""{"code": 1, "description": "Submit success", "result": "1730621718151844", "properties": {"discordChannelId": "1300842676874379336", "discordInstanceId": "1572398367386955776"}}"""
SUBMIT_TRUEAI_MODAL = r"""{"code": 21, "description": "Waiting for window confirm", "result": "1730621900000123", "properties": {"finalPrompt": "pig --v 6.1", "remix": true}}"""

# ------------------------------------------------------------------------- §13.2 SUBMITTED / IN_PROGRESS

TASK_TRUEAI_55 = r"""{
  "parentId": null, "botType": "MID_JOURNEY", "userId": "admin", "isWhite": true, "nonce": "",
  "interactionMetadataId": "", "messageId": "", "remixModalMessageId": null, "remixAutoSubmit": false,
  "remixModaling": false, "instanceId": "", "subInstanceId": null, "messageIds": ["", ""],
  "action": "IMAGINE", "status": "IN_PROGRESS",
  "prompt": "dog in the car, rain day, cyberpunk", "promptEn": "dog in the car, rain day, cyberpunk",
  "promptFull": "dog in the car, rain day, cyberpunk",
  "description": "/imagine dog in the car, rain day, cyberpunk", "state": "midjourney-proxy-admin",
  "submitTime": 1729072764329, "startTime": 1729072767946, "finishTime": null,
  "imageUrl": null, "thumbnailUrl": null, "progress": "32%", "failReason": null, "buttons": [],
  "displays": {"status": "IN_PROGRESS", "submitTime": "2024-10-16 17:59:24", "startTime": "2024-10-16 17:59:27", "finishTime": null, "action": "IMAGINE", "discordInstanceId": ""},
  "seed": null, "seedMessageId": null, "clientIp": "", "jobId": null
}"""

TASK_JAVA_IN_PROGRESS = r"""{
  "id": "1712205491372224", "action": "IMAGINE", "status": "IN_PROGRESS",
  "prompt": "a red fox in snow --ar 3:2", "promptEn": "a red fox in snow --ar 3:2",
  "description": "/imagine a red fox in snow --ar 3:2", "state": "tg:12345:678",
  "submitTime": 1712205491372, "startTime": 1712205493101, "finishTime": null,
  "imageUrl": "https://cdn.discordapp.com/ephemeral-attachments/1092492867185950852/1225700000000000000/3dbbd469-36af-4a0f-8f02-df6c579e7011_grid_0.webp",
  "progress": "45%", "failReason": null,
  "properties": {"notifyHook": "https://bot.example/mj/hook/tok", "nonce": "1776000000000000000", "discordInstanceId": "1118138338562560102", "progressMessageId": "1225699999999999999", "finalPrompt": "a red fox in snow --ar 3:2", "messageHash": "3dbbd469-36af-4a0f-8f02-df6c579e7011"},
  "buttons": []
}"""

# ------------------------------------------------------------------------- §13.3 SUCCESS

TASK_JAVA_SUCCESS = r"""{
  "id": "14001929738841620",
  "action": "IMAGINE",
  "status": "SUCCESS",
  "prompt": "猫猫",
  "promptEn": "Cat",
  "description": "/imagine 猫猫",
  "submitTime": 1689231405854,
  "startTime": 1689231442755,
  "finishTime": 1689231544312,
  "progress": "100%",
  "imageUrl": "https://cdn.discordapp.com/attachments/xxx/xxx/xxxx.png",
  "failReason": null,
  "properties": {
    "finalPrompt": "Cat"
  }
}"""

# new-api#144, truncated at source inside the V1 button (not valid JSON on purpose).
TASK_NEWAPI_TRUNCATED = r"""{"id":"1711217942120945","action":"IMAGINE","customId":"","botType":"","prompt":"A beautiful girl","promptEn":"A beautiful girl","description":"提交成功","state":"","submitTime":1711217942120,"startTime":1711217944908,"finishTime":1711217980856,"imageUrl":"http://localhost:3000/mj/image/1711217942120945","status":"SUCCESS","progress":"100%","failReason":"","buttons":[{"customId":"MJ::JOB::upsample::1::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U1","type":2,"style":2},{"customId":"MJ::JOB::upsample::2::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U2","type":2,"style":2},{"customId":"MJ::JOB::upsample::3::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U3","type":2,"style":2},{"customId":"MJ::JOB::upsample::4::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U4","type":2,"style":2},{"customId":"MJ::JOB::reroll::0::03ee7a3e-b4d2-4465-9165-b93c99cb6617::SOLO","emoji":"🔄","label":"","type":2,"style":2},{"customId":"MJ::JOB::variation::1::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","l"""

TASK_NEWAPI_SUCCESS = r"""{"id":"1711217942120945","action":"IMAGINE","customId":"","botType":"","prompt":"A beautiful girl","promptEn":"A beautiful girl","description":"提交成功","state":"","submitTime":1711217942120,"startTime":1711217944908,"finishTime":1711217980856,"imageUrl":"http://localhost:3000/mj/image/1711217942120945","status":"SUCCESS","progress":"100%","failReason":"","buttons":[{"customId":"MJ::JOB::upsample::1::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U1","type":2,"style":2},{"customId":"MJ::JOB::upsample::2::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U2","type":2,"style":2},{"customId":"MJ::JOB::upsample::3::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U3","type":2,"style":2},{"customId":"MJ::JOB::upsample::4::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"U4","type":2,"style":2},{"customId":"MJ::JOB::reroll::0::03ee7a3e-b4d2-4465-9165-b93c99cb6617::SOLO","emoji":"🔄","label":"","type":2,"style":2},{"customId":"MJ::JOB::variation::1::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"V1","type":2,"style":2},{"customId":"MJ::JOB::variation::2::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"V2","type":2,"style":2},{"customId":"MJ::JOB::variation::3::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"V3","type":2,"style":2},{"customId":"MJ::JOB::variation::4::03ee7a3e-b4d2-4465-9165-b93c99cb6617","emoji":"","label":"V4","type":2,"style":2}],"maskBase64":"","properties":{"finalPrompt":"A beautiful girl","finalZhPrompt":""}}"""

# b3n list-by-condition, truncated at source inside the first button (not valid JSON on purpose).
TASKS_B3N_TRUNCATED = r"""[{"id": "1710586687972812", "action": "IMAGINE", "prompt": "Cat", "promptEn": "Cat --fast", "description": "提交成功", "state": "string", "submitTime": 1710586687972, "startTime": 1710586688884, "finishTime": 1710586723746, "imageUrl": "https://api.b3n.fun/mj/image/1710586687972812", "status": "SUCCESS", "progress": "100%", "failReason": "", "properties": {"botType": "MID_JOURNEY", "discordChannelId": "1204690409088094219", "discordInstanceId": "1488127569336270848", "finalPrompt": "Cat --fast", "flags": 0, "messageContent": "**Cat --fast** - <@1191714615428661273> (fast)", "messageHash": "135f1ae1-e8a6-49d5-ae78-7e8bb3d12ae2", "messageId": "1218513777016705094", "nonce": "1490062940190085120", "notifyHook": "string", "progressMessageId": "1218513635148697630"}, "buttons": [{"customId": "MJ::JOB::upsample::1::135f1ae1-e8a6-49d5-ae78-7e8bb3d12ae2", "emoji": "", "label": "U1", "style":"""
# Synthesised completion: the first button closed, the list closed.
TASKS_B3N_COMPLETED = TASKS_B3N_TRUNCATED + r""" 2, "type": 2}]}]"""

TASK_JAVA_DESCRIBE = r"""{
  "id": "14001929738841620",
  "action": "DESCRIBE",
  "status": "SUCCESS",
  "description": "/describe 14001929738841620.png",
  "imageUrl": "https://cdn.discordapp.com/attachments/xxx/xxx/14001929738841620.png",
  "properties": {
    "finalPrompt": "1️⃣ Cat --ar 5:4\n\n2️⃣ Cat2 --ar 5:4\n\n3️⃣ Cat3 --ar 5:4\n\n4️⃣ Cat4 --ar 5:4"
  }
}"""

TASK_PLUS_SHORTEN = r"""{
  "id": "1689252749098647",
  "action": "SHORTEN",
  "status": "SUCCESS",
  "description": "/shorten appdash appdash, in the style of expert draftsmanship, commission for, ethereal, dreamlike quality, dadaistic, toonami",
  "properties": {
    "finalPrompt": "## Important tokens\n**appdash** **appdash**, in the ~~style~~ of ~~expert~~ **draftsmanship**, commission for, ethereal, dreamlike quality, ~~dadaistic~~, **toonami**\n## Shortened prompts\n1️⃣ appdash appdash, draftsmanship, commission for, ethereal, toonami\n\n2️⃣ appdash appdash, draftsmanship, commission, toonami\n\n3️⃣ appdash appdash, draftsmanship, toonami\n\n4️⃣ appdash appdash, toonami\n\n5️⃣ appdash appdash"
  }
}"""

# ------------------------------------------------------------------------- §13.4 FAILURE

# PR #162 fragment exactly as posted (not an object); completed below with an invented id.
FAILURE_FRAGMENT_162 = '''"status": "FAILURE",
"progress": "",
"failReason": "Invalid Form Body"'''
FAILURE_162_COMPLETED = '{"id": "1686900000000001",\n' + FAILURE_FRAGMENT_162 + "}"

TASK_JAVA_FAILURE = r"""{"id": "1712205491372225", "action": "IMAGINE", "status": "FAILURE", "prompt": "xxx", "promptEn": "xxx", "description": "/imagine xxx", "state": "tg:1:2", "submitTime": 1712205491372, "startTime": 1712205492001, "finishTime": 1712205499876, "imageUrl": null, "progress": "", "failReason": "[Banned prompt detected] Sorry! Our AI moderator thinks this prompt is probably against our community standards.", "properties": {"discordInstanceId": "1118138338562560102", "finalPrompt": null}}"""
TASK_TRUEAI_TIMEOUT = r"""{"id": "1712205491372226", "action": "IMAGINE", "status": "FAILURE", "progress": "", "failReason": "执行超时 5 分钟", "buttons": [], "state": ""}"""


def load(text: str) -> object:
    return json.loads(text)


# ========================================================================= Submission


def test_submit_java_accepted() -> None:
    sub = Submission.from_json(load(SUBMIT_JAVA_OK))
    assert sub.code == 1
    assert sub.outcome is Outcome.ACCEPTED
    assert sub.outcome.is_accepted
    assert sub.task_id == "8498455807619990"
    assert sub.task_ids == ("8498455807619990",)
    assert sub.description == "成功"
    assert sub.queue_position is None
    assert sub.properties == {"discordInstanceId": "1118138338562560102"}


def test_submit_old_java_21_is_exists_not_modal() -> None:
    sub = Submission.from_json(load(SUBMIT_JAVA_EXISTS))
    assert sub.code == 21
    assert sub.outcome is Outcome.EXISTS
    assert sub.outcome.is_accepted
    assert sub.task_id == "0741798445574458"  # a leading zero survives: ids are strings
    assert sub.properties["status"] == "SUCCESS"


def test_submit_queued_has_queue_position() -> None:
    sub = Submission.from_json(load(SUBMIT_JAVA_QUEUED))
    assert sub.code == 22
    assert sub.outcome is Outcome.QUEUED
    assert sub.outcome.is_accepted
    assert sub.task_id == "0741798445574458"
    assert sub.queue_position == 1


def test_submit_queue_full_is_rejected() -> None:
    sub = Submission.from_json(load(SUBMIT_JAVA_QUEUE_FULL))
    assert sub.code == 23
    assert sub.outcome is Outcome.QUEUE_FULL
    assert not sub.outcome.is_accepted
    assert sub.description == "队列已满，请稍后尝试"


def test_submit_banned_word() -> None:
    sub = Submission.from_json(load(SUBMIT_JAVA_BANNED))
    assert sub.code == 24
    assert sub.outcome is Outcome.BANNED
    assert not sub.outcome.is_accepted
    assert sub.banned_word == "nude"
    assert sub.task_id == ""
    assert sub.task_ids == ()


@pytest.mark.parametrize(
    ("fixture", "task_id", "final_prompt"),
    [
        (SUBMIT_PLUS_MODAL, "14001929738841620", ""),
        (SUBMIT_RIXAPI_MODAL, "17381923542354", ""),
        (SUBMIT_TRUEAI_MODAL, "1730621900000123", "pig --v 6.1"),
    ],
)
def test_submit_21_without_status_is_modal(fixture: str, task_id: str, final_prompt: str) -> None:
    sub = Submission.from_json(load(fixture))
    assert sub.code == 21
    assert sub.outcome is Outcome.MODAL
    assert sub.outcome.is_accepted
    assert sub.task_id == task_id
    assert sub.final_prompt == final_prompt


def test_submit_seed_result_is_a_string() -> None:
    sub = Submission.from_json(load(SUBMIT_PLUS_SEED))
    assert sub.outcome is Outcome.ACCEPTED
    assert sub.result == "636646138"
    assert sub.task_id == "636646138"


def test_submit_english_success() -> None:
    sub = Submission.from_json(load(SUBMIT_KKIAI_OK))
    assert sub.outcome is Outcome.ACCEPTED
    assert sub.task_id == "1730621718151844"
    assert sub.description == "Submit success"


def test_submit_numeric_result_is_coerced_to_str() -> None:
    sub = Submission.from_json({"code": 1, "description": "ok", "result": 1320098173412546})
    assert sub.task_id == "1320098173412546"
    assert isinstance(sub.task_id, str)


def test_submit_numeric_code_as_string() -> None:
    assert Submission.from_json({"code": "22", "result": "1"}).outcome is Outcome.QUEUED


def test_submit_picreader_all_returns_several_ids() -> None:
    sub = Submission.from_json(
        {
            "code": 1,
            "description": "成功",
            "result": "1730621900000001,1730621900000002, 1730621900000003,1730621900000004",
        }
    )
    assert sub.task_ids == (
        "1730621900000001",
        "1730621900000002",
        "1730621900000003",
        "1730621900000004",
    )
    assert sub.task_id == "1730621900000001"


def test_submit_result_list() -> None:
    sub = Submission.from_json({"code": 1, "result": ["1730621900000001", 1730621900000002]})
    assert sub.task_ids == ("1730621900000001", "1730621900000002")


def test_submit_result_task_object() -> None:
    sub = Submission.from_json({"code": 1, "result": {"id": 1730621900000001, "status": "X"}})
    assert sub.task_ids == ("1730621900000001",)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (1, Outcome.ACCEPTED),
        (3, Outcome.NOT_FOUND),
        (4, Outcome.INVALID),
        (5, Outcome.FAILED),
        (9, Outcome.FAILED),
        (22, Outcome.QUEUED),
        (23, Outcome.QUEUE_FULL),
        (24, Outcome.BANNED),
        (-1, Outcome.FAILED),
        (42, Outcome.FAILED),
    ],
)
def test_submit_outcome_per_code(code: int, outcome: Outcome) -> None:
    sub = Submission.from_json({"code": code, "description": "x", "result": None})
    assert sub.outcome is outcome
    assert sub.outcome.is_accepted is (outcome in (Outcome.ACCEPTED, Outcome.QUEUED))


def test_submit_trueai_404_envelope_is_not_found() -> None:
    sub = Submission.from_json(
        {"code": 3, "description": "关联任务不存在或已失效", "result": None, "properties": {}}
    )
    assert sub.outcome is Outcome.NOT_FOUND
    assert sub.task_id == ""


def test_submit_trueai_logic_exception_shape() -> None:
    sub = Submission.from_json(
        {"success": False, "code": -1, "message": "并发数已达上限", "timestamp": "638000000000"}
    )
    assert sub.code == -1
    assert sub.outcome is Outcome.FAILED
    assert sub.description == "并发数已达上限"


def test_submit_newapi_error_envelope() -> None:
    sub = Submission.from_json({"description": "quota_not_enough", "type": "x", "code": 4})
    assert sub.outcome is Outcome.INVALID
    assert sub.description == "quota_not_enough"


@pytest.mark.parametrize("data", [None, [], "oops", 12, {"code": None}, {"code": "abc"}, {}])
def test_submit_junk_is_failed_not_raised(data: object) -> None:
    sub = Submission.from_json(data)
    assert sub.code == -1
    assert sub.outcome is Outcome.FAILED
    assert sub.task_id == ""


# ========================================================================= Task: in progress


def test_task_trueai_55_without_id_is_none() -> None:
    # The reporter blanked the ids: without one there is nothing to track.
    assert Task.from_json(load(TASK_TRUEAI_55)) is None


def test_task_trueai_55_with_id() -> None:
    data = load(TASK_TRUEAI_55)
    assert isinstance(data, dict)
    task = Task.from_json({**data, "id": "1729072764329001"})
    assert task is not None
    assert task.id == "1729072764329001"
    assert task.action is Action.IMAGINE
    assert task.status is TaskState.IN_PROGRESS
    assert task.progress == 32
    assert task.image_url == ""  # null preview at 32 % (trueai#55)
    assert task.fail_reason == ""
    assert task.state == "midjourney-proxy-admin"
    assert task.submit_time == 1729072764329
    assert task.start_time == 1729072767946
    assert task.finish_time is None
    assert task.message_hash == ""  # jobId null
    assert task.buttons == ()
    assert not task.is_final
    assert task.display_prompt == "dog in the car, rain day, cyberpunk"


def test_task_java_in_progress() -> None:
    task = Task.from_json(load(TASK_JAVA_IN_PROGRESS))
    assert task is not None
    assert task.id == "1712205491372224"
    assert task.status is TaskState.IN_PROGRESS
    assert task.progress == 45
    assert task.image_url.endswith("3dbbd469-36af-4a0f-8f02-df6c579e7011_grid_0.webp")
    assert task.state == "tg:12345:678"
    assert task.message_hash == "3dbbd469-36af-4a0f-8f02-df6c579e7011"
    assert task.final_prompt == "a red fox in snow --ar 3:2"
    assert task.finish_time is None
    assert task.rank == (3, 45)


# ========================================================================= Task: success


def test_task_java_success_notify_payload() -> None:
    task = Task.from_json(load(TASK_JAVA_SUCCESS))
    assert task is not None
    assert task.id == "14001929738841620"
    assert task.status is TaskState.SUCCESS
    assert task.is_final
    assert task.progress == 100
    assert task.prompt == "猫猫"
    assert task.prompt_en == "Cat"
    assert task.final_prompt == "Cat"
    assert task.display_prompt == "Cat"
    assert task.image_url == "https://cdn.discordapp.com/attachments/xxx/xxx/xxxx.png"
    assert task.fail_reason == ""
    assert task.finish_time == 1689231544312
    assert task.buttons == ()  # Java OSS has no buttons


def test_task_plus_success_with_empty_buttons() -> None:
    data = load(TASK_JAVA_SUCCESS)
    assert isinstance(data, dict)
    task = Task.from_json({**data, "buttons": []})
    assert task is not None
    assert task.buttons == ()
    assert task.status is TaskState.SUCCESS


def test_task_newapi_truncated_text_is_not_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(TASK_NEWAPI_TRUNCATED)
    assert Task.from_json(TASK_NEWAPI_TRUNCATED) is None


def test_task_newapi_success_buttons_in_order() -> None:
    task = Task.from_json(load(TASK_NEWAPI_SUCCESS))
    assert task is not None
    assert task.id == "1711217942120945"
    assert task.status is TaskState.SUCCESS
    assert task.progress == 100
    assert task.fail_reason == ""
    assert task.state == ""
    assert task.image_url == "http://localhost:3000/mj/image/1711217942120945"
    assert task.final_prompt == "A beautiful girl"
    assert [b.custom_id for b in task.buttons] == [
        f"MJ::JOB::upsample::1::{HASH}",
        f"MJ::JOB::upsample::2::{HASH}",
        f"MJ::JOB::upsample::3::{HASH}",
        f"MJ::JOB::upsample::4::{HASH}",
        f"MJ::JOB::reroll::0::{HASH}::SOLO",
        f"MJ::JOB::variation::1::{HASH}",
        f"MJ::JOB::variation::2::{HASH}",
        f"MJ::JOB::variation::3::{HASH}",
        f"MJ::JOB::variation::4::{HASH}",
    ]
    assert [b.label for b in task.buttons] == [
        "U1",
        "U2",
        "U3",
        "U4",
        "",
        "V1",
        "V2",
        "V3",
        "V4",
    ]
    assert task.buttons[4].emoji == "🔄"
    assert all(b.style == 2 for b in task.buttons)


def test_task_b3n_truncated_text_is_not_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(TASKS_B3N_TRUNCATED)


def test_task_b3n_completed_full_plus_properties() -> None:
    items = load(TASKS_B3N_COMPLETED)
    assert isinstance(items, list)
    assert len(items) == 1
    task = Task.from_json(items[0])
    assert task is not None
    assert task.id == "1710586687972812"
    assert task.status is TaskState.SUCCESS
    assert task.state == "string"
    assert task.prompt == "Cat"
    assert task.prompt_en == "Cat --fast"
    assert task.final_prompt == "Cat --fast"
    assert task.message_hash == "135f1ae1-e8a6-49d5-ae78-7e8bb3d12ae2"
    assert task.buttons == (
        Button("MJ::JOB::upsample::1::135f1ae1-e8a6-49d5-ae78-7e8bb3d12ae2", "U1", "", 2),
    )
    assert task.submit_time == 1710586687972


def test_task_describe_success() -> None:
    task = Task.from_json(load(TASK_JAVA_DESCRIBE))
    assert task is not None
    assert task.action is Action.DESCRIBE
    assert task.status is TaskState.SUCCESS
    assert task.progress == 100
    assert task.prompt == ""
    assert task.final_prompt.startswith("1️⃣ Cat --ar 5:4")
    assert task.final_prompt.count("\n\n") == 3
    assert task.display_prompt == task.final_prompt
    assert task.image_url.endswith("14001929738841620.png")


def test_task_shorten_success() -> None:
    task = Task.from_json(load(TASK_PLUS_SHORTEN))
    assert task is not None
    assert task.id == "1689252749098647"
    assert task.action is Action.SHORTEN
    assert "## Shortened prompts" in task.final_prompt
    assert "5️⃣ appdash appdash" in task.final_prompt
    assert task.description.startswith("/shorten appdash")


# ========================================================================= Task: failure


def test_task_failure_fragment_162() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(FAILURE_FRAGMENT_162)
    task = Task.from_json(load(FAILURE_162_COMPLETED))
    assert task is not None
    assert task.id == "1686900000000001"
    assert task.status is TaskState.FAILURE
    assert task.progress == 0
    assert task.fail_reason == "Invalid Form Body"
    assert task.action is Action.OTHER  # absent action


def test_task_java_failure() -> None:
    task = Task.from_json(load(TASK_JAVA_FAILURE))
    assert task is not None
    assert task.id == "1712205491372225"
    assert task.status is TaskState.FAILURE
    assert task.is_final
    assert task.progress == 0  # "" progress
    assert task.image_url == ""
    assert task.final_prompt == ""  # finalPrompt null
    assert task.fail_reason.startswith("[Banned prompt detected]")
    assert task.state == "tg:1:2"
    assert task.display_prompt == "xxx"
    assert task.rank == (5, 0)


def test_task_trueai_timeout_failure() -> None:
    task = Task.from_json(load(TASK_TRUEAI_TIMEOUT))
    assert task is not None
    assert task.status is TaskState.FAILURE
    assert task.fail_reason == "执行超时 5 分钟"
    assert task.submit_time is None
    assert task.buttons == ()


# ========================================================================= §13.5 progress


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Waiting to start", 0),  # old Java: the text inside the first parentheses
        ("0%", 0),
        ("15%", 15),
        ("31%", 31),
        ("46%", 46),
        ("62%", 62),
        ("75%", 75),
        ("100%", 100),
        ("", 0),
        (None, 0),
        ("garbage", 0),
        (46, 46),
        (46.9, 46),
        ("46.5%", 46),
        (150, 100),
        (-3, 0),
        (True, 0),
    ],
)
def test_parse_progress(value: object, expected: int) -> None:
    assert parse_progress(value) == expected


# ========================================================================= pitfalls


def test_task_numeric_id_is_coerced_to_str() -> None:
    task = Task.from_json({"id": 1711217942120945, "status": "SUCCESS"})
    assert task is not None
    assert task.id == "1711217942120945"


def test_task_newapi_zero_times_mean_none() -> None:
    task = Task.from_json(
        {
            "id": "1",
            "status": "NOT_START",
            "submitTime": 0,
            "startTime": 0,
            "finishTime": 0,
            "progress": "",
        }
    )
    assert task is not None
    assert (task.submit_time, task.start_time, task.finish_time) == (None, None, None)
    assert task.progress == 0


def test_task_unknown_status_and_action() -> None:
    task = Task.from_json({"id": "1", "status": "PAUSED", "action": "SWAP_VIDEO_FACE"})
    assert task is not None
    assert task.status is TaskState.UNKNOWN
    assert task.action is Action.OTHER
    assert not task.is_final
    assert task.rank == (-1, 0)


@pytest.mark.parametrize(
    ("raw", "action"),
    [
        ("IMAGINE", Action.IMAGINE),
        ("imagine", Action.IMAGINE),
        ("UPSCALE_HD", Action.UPSCALE_HD),
        ("EDITS", Action.EDIT),
        ("EDIT", Action.EDIT),
        ("CUSTOM_ZOOM", Action.ZOOM),
        ("OUTPAINT", Action.ZOOM),
        ("INPAINT", Action.VARIATION),
        ("HIGH_VARIATION", Action.VARIATION),
        ("PIC_READER", Action.IMAGINE),
        ("VIDEO_EXTEND", Action.VIDEO),
        ("RETEXTURE", Action.RETEXTURE),
        ("MODAL", Action.OTHER),
        (None, Action.OTHER),
    ],
)
def test_action_parse(raw: object, action: Action) -> None:
    assert Action.parse(raw) is action


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("in_progress", TaskState.IN_PROGRESS),
        ("MODAL", TaskState.MODAL),
        ("CANCEL", TaskState.CANCEL),
        ("", TaskState.UNKNOWN),
        (None, TaskState.UNKNOWN),
        (7, TaskState.UNKNOWN),
    ],
)
def test_status_parse(raw: object, status: TaskState) -> None:
    assert TaskState.parse(raw) is status


def test_status_rank_ordering() -> None:
    assert TaskState.UNKNOWN.rank < TaskState.NOT_START.rank == TaskState.MODAL.rank
    assert TaskState.NOT_START.rank < TaskState.SUBMITTED.rank < TaskState.IN_PROGRESS.rank
    assert TaskState.IN_PROGRESS.rank < TaskState.SUCCESS.rank
    assert TaskState.SUCCESS.rank == TaskState.FAILURE.rank == TaskState.CANCEL.rank
    final = {TaskState.SUCCESS, TaskState.FAILURE, TaskState.CANCEL}
    assert {s for s in TaskState if s.is_final} == final | {TaskState.REJECTED, TaskState.TIMEOUT}


def test_our_own_states_are_never_read_from_the_api() -> None:
    """SUBMITTING, REJECTED and TIMEOUT are mjbot's words: an API that sends them is not
    believed (a task it calls TIMEOUT is not final for us, nor refunded as ours)."""
    for ours in ("SUBMITTING", "REJECTED", "TIMEOUT", "timeout"):
        assert TaskState.parse(ours) is TaskState.UNKNOWN
        task = Task.from_json({"id": "1", "status": ours})
        assert task is not None and task.status is TaskState.UNKNOWN and not task.is_final


def test_task_states_are_stored_as_their_names() -> None:
    """tasks.status holds these strings (no migration); a plain str from the database equals
    its member, in comparisons and as a dict key."""
    assert all(state.name == state.value == str(state) for state in TaskState)
    assert "SUCCESS" == TaskState.SUCCESS and {TaskState.TIMEOUT: 1}.get("TIMEOUT") == 1
    assert "REJECTED" in FINAL_STATES and "MODAL" not in FINAL_STATES


def test_task_rank_orders_a_lifecycle() -> None:
    steps = [
        {"id": "1", "status": "NOT_START", "progress": None},
        {"id": "1", "status": "SUBMITTED", "progress": "0%"},
        {"id": "1", "status": "IN_PROGRESS", "progress": "0%"},
        {"id": "1", "status": "IN_PROGRESS", "progress": "15%"},
        {"id": "1", "status": "IN_PROGRESS", "progress": "62%"},
        {"id": "1", "status": "SUCCESS", "progress": "100%"},
    ]
    tasks = [Task.from_json(step) for step in steps]
    ranks = [task.rank for task in tasks if task is not None]
    assert len(ranks) == len(steps)
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    failure = Task.from_json({"id": "1", "status": "FAILURE", "progress": ""})
    assert failure is not None
    assert failure.rank > ranks[4]  # a failure beats any progress step
    assert failure.rank < ranks[5]  # and MJ finishing after a proxy timeout still wins (P19)


@pytest.mark.parametrize("data", [None, [], {}, {"id": ""}, {"id": None}, "1711", 5])
def test_task_from_json_without_id_is_none(data: object) -> None:
    assert Task.from_json(data) is None


def test_task_video_urls_objects() -> None:
    task = Task.from_json(
        {
            "id": "1",
            "action": "VIDEO",
            "status": "SUCCESS",
            "videoUrls": [
                {"url": "https://cdn.midjourney.com/video/h/0_0.mp4", "thumbnail": "t"},
                {"url": "https://cdn.midjourney.com/video/h/0_1.mp4"},
                {"thumbnail": "no url"},
            ],
            "imageUrls": [{"url": "https://cdn.midjourney.com/h/0_0.png"}, "https://x/0_1.png"],
            "mode": "relax",
        }
    )
    assert task is not None
    assert task.action is Action.VIDEO
    assert task.video_urls == (
        "https://cdn.midjourney.com/video/h/0_0.mp4",
        "https://cdn.midjourney.com/video/h/0_1.mp4",
    )
    assert task.video_url == "https://cdn.midjourney.com/video/h/0_0.mp4"
    assert task.image_urls == ("https://cdn.midjourney.com/h/0_0.png", "https://x/0_1.png")
    assert task.mode == "RELAX"


def test_task_message_hash_falls_back_to_job_id() -> None:
    task = Task.from_json({"id": "1", "jobId": "abc-hash"})
    assert task is not None
    assert task.message_hash == "abc-hash"


def test_buttons_drop_link_buttons_and_junk() -> None:
    task = Task.from_json(
        {
            "id": "1",
            "status": "SUCCESS",
            "buttons": [
                {"customId": "MJ::Inpaint::1::h::SOLO", "label": "Vary (Region)", "emoji": "🖌️"},
                {"label": "Web", "style": 5, "url": "https://www.midjourney.com/jobs/h"},
                "junk",
                None,
                {"customId": "MJ::CustomZoom::h", "label": "Custom Zoom", "style": "x"},
                {"customId": "MJ::JOB::upsample::1::h", "style": 1},
            ],
        }
    )
    assert task is not None
    assert task.buttons == (
        Button("MJ::Inpaint::1::h::SOLO", "Vary (Region)", "🖌️", 2),
        Button("MJ::CustomZoom::h", "Custom Zoom", "", 2),
        Button("MJ::JOB::upsample::1::h", "", "", 1),
    )


def test_task_raw_keeps_unknown_fields() -> None:
    data = {"id": "1", "isPartner": True, "displays": {"status": "X"}}
    task = Task.from_json(data)
    assert task is not None
    assert task.raw["isPartner"] is True


# --- odd input: lenient, and never a crash ----------------------------------------------------


def test_loads_turns_numbers_out_of_range_into_null():
    assert models.loads('{"a": 1e400, "b": -1e400, "c": NaN, "d": Infinity}') == {
        "a": None,
        "b": None,
        "c": None,
        "d": None,
    }
    assert models.loads('{"n": ' + "9" * 5000 + "}") == {"n": None}
    assert models.loads(b'{"id": 17}') == {"id": 17}
    for junk in ("not json", b"\xff\xfe", "{"):
        with pytest.raises(ValueError):
            models.loads(junk)


def test_loads_cuts_off_nesting_the_standard_parser_cannot_take():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)
    answer = models.loads('[{"id": "1", "x": ' + deep + '}, {"id": "2", "s": "[[[{{"}]')
    assert answer[1] == {"id": "2", "s": "[[[{{"}  # brackets inside strings do not count
    with pytest.raises(models.Unparseable):
        Task.from_json(answer[0])
    assert Task.from_json(answer[1]).id == "2"


@pytest.mark.parametrize(
    "odd",
    [
        {"buttons": 5},
        {"buttons": "U1"},
        {"buttons": [{"customId": "MJ::JOB::upsample::1::x", "style": 1e400}]},
        {"buttons": [{"customId": "MJ::JOB::upsample::1::x", "style": float("nan")}]},
        {"properties": 7},
        {"properties": [1, 2]},
        {"progress": float("inf")},
        {"progress": float("nan")},
        {"submitTime": float("inf"), "finishTime": "1e400", "startTime": True},
        {"imageUrl": {"url": "x"}, "prompt": [1, 2], "status": {"a": 1}, "action": []},
        {"videoUrls": 5, "imageUrls": {"a": 1}},
    ],
)
def test_odd_fields_are_coerced_or_defaulted(odd):
    task = Task.from_json({"id": "1710000000000000", "status": "IN_PROGRESS", **odd})
    assert task is not None and task.id == "1710000000000000"
    assert 0 <= task.progress <= 100
    assert all(isinstance(b.style, int) for b in task.buttons)
    assert isinstance(task.image_url, str)


@pytest.mark.parametrize("odd_id", [{"a": 1}, [1], None, "", True, "  "])
def test_a_task_without_a_usable_id_is_none(odd_id):
    assert Task.from_json({"id": odd_id, "status": "SUCCESS"}) is None


def test_odd_submit_envelopes_are_failures_not_crashes():
    assert Submission.from_json({"code": 1e400}).outcome is Outcome.FAILED
    assert Submission.from_json({"code": float("nan")}).code == -1
    queued = Submission.from_json({"code": 22, "properties": {"numberOfQueues": "²"}})
    assert queued.outcome is Outcome.QUEUED and queued.queue_position is None


@pytest.mark.parametrize(
    ("data", "text"),
    [
        # Java OSS before 2.4: the describe text in prompt and promptEn, no finalPrompt
        ({"action": "DESCRIBE", "prompt": "1️⃣ a", "promptEn": "1️⃣ a", "properties": {}}, "1️⃣ a"),
        ({"action": "DESCRIBE", "prompt": "", "promptEn": "1️⃣ b"}, "1️⃣ b"),  # no properties
        ({"action": "SHORTEN", "prompt": "long cat", "promptEn": ""}, "long cat"),
        # finalPrompt wins where it is given; other actions never borrow the prompt
        ({"action": "DESCRIBE", "promptEn": "x", "properties": {"finalPrompt": "1️⃣ c"}}, "1️⃣ c"),
        ({"action": "IMAGINE", "prompt": "cat", "promptEn": "cat"}, ""),
    ],
)
def test_describe_and_shorten_text_falls_back_to_the_prompt_fields(data, text) -> None:
    task = Task.from_json({"id": "1", "status": "SUCCESS", **data})
    assert task is not None and task.final_prompt == text
