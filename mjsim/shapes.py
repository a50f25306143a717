"""What tasks and submit envelopes look like on each flavour's wire (``Flavour.shape``).

The simulator's model builds one Plus-shaped task (mj-api.md §6, :meth:`SimTask.to_json`) and
one envelope (§4); the functions here turn them into what the flavour's provider sends:

- "plus": unchanged.
- "java": Java OSS has no ``buttons``, ``customId``, ``mode`` or ``parentId`` on tasks.
- "openai-hk": the keys, types and button lists of the examples in openai-hk's own document
  (reference/openai-hk-api.txt; compared field by field in tests/test_sim_openai_hk.py). Its
  tasks are the gateway DTO of the EDITS example (Go zero values: "" and 0; a slice that was
  never filled is null); a VIDEO task has the keys of the VIDEO example, with the Discord
  properties it shows.
"""

from __future__ import annotations

from typing import Any

from . import buttons as kinds
from .art import ArtSpec, size_for
from .config import INSTANCE_ID
from .flavours import Flavour
from .state import SUCCESS, SimTask

# The EDITS fetch example's keys, in its order: every openai-hk task but a video has these.
DOCUMENT_TASK_KEYS = (
    "id",
    "action",
    "customId",
    "botType",
    "prompt",
    "promptEn",
    "description",
    "state",
    "submitTime",
    "startTime",
    "finishTime",
    "imageUrl",
    "status",
    "progress",
    "failReason",
    "buttons",
    "imageUrls",
    "videoUrls",
    "videoUrl",
    "maskBase64",
    "properties",
)
# The VIDEO fetch example's keys, in its order.
DOCUMENT_VIDEO_KEYS = (
    "id",
    "action",
    "customId",
    "botType",
    "prompt",
    "promptEn",
    "description",
    "state",
    "mode",
    "proxy",
    "submitTime",
    "startTime",
    "finishTime",
    "imageUrl",
    "imageUrls",
    "imageHeight",
    "imageWidth",
    "videoUrl",
    "videoUrls",
    "status",
    "progress",
    "failReason",
    "buttons",
    "maskBase64",
    "properties",
)
# Routes whose accepted submit answers {code, description: "Submit Success", result} (the
# VIDEO and EDITS examples), and those answering Message«string» {code, description, result}.
_SUBMIT_SUCCESS = frozenset({"video", "edits"})
_MESSAGE = frozenset({"swap", "image-seed"})


def edit_image_paths(task_id: str) -> list[str]:
    """Relative URLs of an EDITS result's four images (MJ's CDN names them 0_0 .. 0_3)."""
    return [f"/sim/images/{task_id}/0_{n}.png" for n in range(4)]


def task_json(
    spec: Flavour, data: dict[str, Any], task: SimTask, public_url: str, image_size: int
) -> dict[str, Any]:
    """``data`` (the Plus-shaped task) as the flavour's provider sends it."""
    if not spec.describe_final and task.kind == kinds.DESCRIBE:
        data["properties"].pop("finalPrompt", None)
    if spec.shape == "java":
        for key in ("buttons", "customId", "mode", "parentId"):
            data.pop(key, None)
        return data
    if spec.shape == "openai-hk":
        return _document_task(data, task, public_url.rstrip("/"), image_size)
    return data


def _document_task(
    data: dict[str, Any], task: SimTask, base: str, image_size: int
) -> dict[str, Any]:
    done = task.status == SUCCESS
    props = data["properties"]
    final_prompt = props.get("finalPrompt") or ""
    values: dict[str, Any] = {
        **data,
        "customId": task.custom_id,
        "botType": "",
        "imageUrls": None,
        "videoUrls": None,
        "videoUrl": "",
        "maskBase64": "",
        "properties": {"finalPrompt": final_prompt, "finalZhPrompt": ""},
    }
    if done and task.kind == kinds.EDIT:
        values["imageUrls"] = [{"url": base + path} for path in edit_image_paths(task.id)]
    if task.kind not in (kinds.VIDEO, kinds.VIDEO_UPSCALE):
        return {key: values[key] for key in DOCUMENT_TASK_KEYS}
    if done:
        values["videoUrls"] = [{"url": item["url"]} for item in data.get("videoUrls") or []]
        if task.inputs:  # the document's imageUrl is the uploaded first frame ("upload_...jpg")
            values["imageUrl"] = f"{base}/sim/images/{task.id}/input_1.{task.inputs[0].ext}"
    width, height = size_for((task.art or ArtSpec(task.id, "")).ratio, image_size)
    values.update(
        proxy="",
        imageWidth=width if done else 0,
        imageHeight=height if done else 0,
        properties={
            "notifyHook": task.notify_hook,
            "flags": 0,
            "messageId": "",
            "messageHash": props.get("messageHash", ""),
            "nonce": "",
            "customId": "",
            "finalPrompt": final_prompt,
            "progressMessageId": "",
            "messageContent": "",
            "discordInstanceId": INSTANCE_ID,
            "discordChannelId": INSTANCE_ID,
        },
    )
    return {key: values[key] for key in DOCUMENT_VIDEO_KEYS}


def envelope(spec: Flavour, route: str, body: Any) -> Any:
    """A submit (or image-seed) answer as the flavour's provider sends it.

    ``route`` is the submit route's last segment ("imagine", "video", "swap") or "image-seed".
    """
    if spec.shape != "openai-hk" or not isinstance(body, dict) or "code" not in body:
        return body
    if route in _MESSAGE:
        return {key: body.get(key) for key in ("code", "description", "result")}
    if body["code"] != 1:
        return body  # queued, modal and refusals: the document has no example, Plus's shape
    if route in _SUBMIT_SUCCESS:
        return {"code": 1, "description": "Submit Success", "result": body.get("result")}
    return {
        "code": 1,
        "description": body["description"],
        "properties": {},
        "result": body["result"],
    }
