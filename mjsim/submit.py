"""The submit routes (/mj/submit/*, /mj/insight-face/swap): validation, envelopes, new tasks.

Validation texts and codes follow reference/mj-api.md §3 and §4 ("plus" flavour): code 4 for bad
input, 3 for an unknown parent, 24 for a banned word, 23 when the queue is full, 21 when a modal
is needed, 1 or 22 when accepted. ``SimConfig.flavour`` changes what differs per provider:
trueai's code 9 queue full, late banned-word failures and 404 parents, the refused buttons,
Java OSS's 21 "任务已存在", new-api's dropped notifyHook and HTTP 400 errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import buttons as kinds
from . import params, shapes
from .art import GRID, SINGLE, ArtSpec, image_ratio
from .buttons import Press, parse_press
from .config import INSTANCE_ID, MODE_SLOWDOWN, SimConfig
from .faults import Faults
from .prompts import (
    aspect,
    describe_prompts,
    describe_text,
    find_word,
    mode_flag,
    param,
    shorten,
    strip_params,
)
from .state import (
    BANNED_LATE,
    INVALID_VALUE,
    MODAL,
    NOT_START,
    SUCCESS,
    VIDEO_EXTEND_SECONDS,
    VIDEO_MAX_SECONDS,
    QueueFull,
    SimTask,
    TaskBoard,
)
from .uploads import BadBase64, Upload, parse_data_uri, parse_lenient

SUBMIT_OK = "提交成功"
NOT_FOUND = "关联任务不存在或已失效"
NO_INSTANCE = "无可用的账号实例"  # trueai: no account matches the mode asked for
BAD_STATUS = "关联任务状态错误"
BAD_BASE64 = "base64格式错误"
UNKNOWN_ACTION = "未知的 Action 类型"
QUEUE_FULL = "队列已满，请稍后尝试"  # code 23, Java / Plus
QUEUE_FULL_9 = "提交失败，队列已满，请稍后重试"  # code 9, trueai (P3)
BLEND_RATIOS = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: ``body`` None = empty body, else JSON."""

    body: Any = None
    status: int = 200


class Rejected(Exception):
    """Answer with this envelope instead (validation failed)."""

    def __init__(self, code: int, description: str, status: int = 200, **properties: Any) -> None:
        super().__init__(description)
        self.reply = Reply(envelope(code, description, None, properties), status)


def envelope(
    code: int, description: str, result: Any = None, properties: Any = None
) -> dict[str, Any]:
    return {
        "code": code,
        "description": description,
        "result": result,
        "properties": dict(properties or {}),
    }


def _clip_index(value: Any, *, strings: bool) -> int | None:
    """Which clip of a video an extend continues: 0-3 (as a string too where ``strings``)."""
    if strings and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return value
    return None


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _upload(value: Any, lenient: bool = False) -> Upload:
    try:
        return parse_lenient(value) if lenient else parse_data_uri(value)
    except BadBase64:
        raise Rejected(4, BAD_BASE64) from None


class Submitter:
    """Turns submit bodies into tasks on the board, answering like a Plus server."""

    def __init__(
        self,
        board: TaskBoard,
        config: SimConfig,
        faults: Faults,
        public_url: Callable[[], str],
    ) -> None:
        self.board = board
        self.config = config
        self.faults = faults
        self.public_url = public_url
        self.uploads: dict[str, Upload] = {}  # upload-discord-images, by file name

    def handle(self, route: str, body: dict[str, Any], mode: str) -> Reply:
        handler = {
            "imagine": self.imagine,
            "action": self.action,
            "modal": self.modal,
            "blend": self.blend,
            "describe": self.describe,
            "shorten": self.shorten,
            "video": self.video,
            "edits": self.edits,
            "edit": self.edits,
            "retexture": self.retexture,
            "change": self.change,
            "simple-change": self.simple_change,
            "upload-discord-images": self.upload_images,
            "swap": self.swap,
        }.get(route)
        if handler is None:
            return Reply(None, 404)
        spec = self.config.spec
        if not mode and spec.account_filter:  # Plus / trueai: accountFilter.modes (§2.3)
            account = body.get("accountFilter")
            modes = account.get("modes") if isinstance(account, dict) else None
            if isinstance(modes, list) and modes and str(modes[0]).upper() in MODE_SLOWDOWN:
                mode = str(modes[0]).upper()
        try:
            reply = handler(body, mode)
            return replace(reply, body=shapes.envelope(spec, route, reply.body))
        except Rejected as rejected:
            reply = rejected.reply
            if reply.status == 200 and reply.body["code"] == 4 and spec.error_http != 200:
                return replace(reply, status=spec.error_http)  # new-api: 400 + envelope
            return reply

    # shared steps ---------------------------------------------------------------------

    def _result(self, task_id: str) -> Any:
        return int(task_id) if self.faults.numeric_ids else task_id

    def _common(self, task: SimTask, body: dict[str, Any]) -> None:
        state = body.get("state")
        if state is not None:
            state = str(state)
            if len(state) > 255:
                raise Rejected(4, "State参数过长，最大255字符")
            task.state = state
        hook = _text(body, "notifyHook")
        if hook and not self.config.spec.drops_hooks:  # new-api strips it (MjNotifyEnabled off)
            task.notify_hook = hook
        bot = body.get("botType")
        if self.config.spec.bot_types and bot is not None and task.bot_type != "INSIGHT_FACE":
            # trueai's BotType values, and its short spellings (mj-api §3)
            known = {"MID_JOURNEY": "MID_JOURNEY", "NIJI_JOURNEY": "NIJI_JOURNEY"}
            known |= {"mj": "MID_JOURNEY", "niji": "NIJI_JOURNEY"}
            if bot not in known:
                raise Rejected(4, "botType参数错误")  # the real answer is not known: chosen
            task.bot_type = known[bot]

    def _check_words(self, prompt: str, task: SimTask | None = None) -> None:
        word = find_word(prompt, self.config.banned_words)
        if not word:
            return
        if task is not None and self.config.spec.banned_late:
            task.planned_failure = BANNED_LATE  # trueai: accepted now, failed right after (P4)
            return
        raise Rejected(24, "可能包含敏感词", promptEn=prompt, bannedWord=word)

    def _queue_full(self) -> Rejected:
        if self.config.spec.queue_full == 9:
            return Rejected(9, QUEUE_FULL_9, discordInstanceId=INSTANCE_ID)
        return Rejected(23, QUEUE_FULL, discordInstanceId=INSTANCE_ID)

    def _parent_missing(self) -> Rejected:
        """trueai answers an unknown parent with HTTP 404 and the envelope (§2.4)."""
        return Rejected(3, NOT_FOUND, 404 if self.config.spec.parent_404 else 200)

    def _fates(self, task: SimTask, prompt: str) -> None:
        if task.planned_failure == BANNED_LATE:
            return
        if find_word(prompt, self.config.fail_words):
            task.planned_failure = INVALID_VALUE
        if find_word(prompt, self.config.stall_words):
            task.stall = True

    def _need_room(self, count: int = 1) -> None:
        if self.board.room() < count:
            raise self._queue_full()

    def _mode(self, mode: str, prompt: str = "") -> str:
        return mode or mode_flag(prompt) or "FAST"

    def _accept(self, task: SimTask) -> Reply:
        """Queue the task and answer 1 (starts now) or 22 (waits behind others)."""
        known = task.id in self.board.tasks
        self.board.add(task)
        try:
            ahead = self.board.admit(task)
        except QueueFull:
            if not known:
                self.board.tasks.pop(task.id, None)
            raise self._queue_full() from None
        result = self._result(task.id)
        if not ahead:
            return Reply(envelope(1, SUBMIT_OK, result, {"discordInstanceId": INSTANCE_ID}))
        props = {"numberOfQueues": ahead, "discordInstanceId": INSTANCE_ID}
        return Reply(envelope(22, f"排队中，前面还有{ahead}个任务", result, props))

    def _new(self, action: str, kind: str, mode: str, **fields: Any) -> SimTask:
        return SimTask(id=self.board.new_id(), action=action, kind=kind, mode=mode, **fields)

    def _input_url(self, task_id: str, n: int, upload: Upload) -> str:
        return f"{self.public_url().rstrip('/')}/sim/images/{task_id}/input_{n}.{upload.ext}"

    # /mj/submit/imagine ---------------------------------------------------------------

    def imagine(self, body: dict[str, Any], mode: str) -> Reply:
        prompt = _text(body, "prompt")
        if not prompt:
            raise Rejected(4, "prompt不能为空")
        raw_refs = body.get("base64Array")
        if raw_refs is None and body.get("base64"):
            raw_refs = [body["base64"]]
        if raw_refs is not None and not isinstance(raw_refs, list):
            raise Rejected(4, BAD_BASE64)
        refs = [_upload(item) for item in raw_refs or []]
        task = self._new("IMAGINE", kinds.GRID, self._mode(mode, prompt))
        if task.mode == "TURBO" and not self.config.turbo:
            raise Rejected(3, NO_INSTANCE)
        self._common(task, body)
        self._check_words(prompt, task)
        self._need_room()
        urls = [self._input_url(task.id, n + 1, up) for n, up in enumerate(refs)]
        full = " ".join([*urls, prompt])
        task.prompt, task.prompt_en, task.final_prompt = prompt, full, full
        task.description = f"/imagine {prompt}"
        task.inputs = refs
        key = " ".join([prompt, *(up.digest for up in refs)])
        task.art = ArtSpec(key, strip_params(prompt), aspect(prompt))
        if param(prompt, "video") is not None:  # trueai: --video makes it a VIDEO job
            task.action, task.kind, task.video_count = "VIDEO", kinds.VIDEO, 4
        self._fates(task, prompt)
        if not task.planned_failure:  # Midjourney fails a parameter its model lacks
            task.planned_failure = params.refusal(prompt, task.bot_type) or ""
        return self._accept(task)

    # /mj/submit/action ----------------------------------------------------------------

    def action(self, body: dict[str, Any], mode: str) -> Reply:
        task_id, custom_id = _text(body, "taskId"), _text(body, "customId")
        if not task_id:
            raise Rejected(4, "taskId不能为空")
        if not custom_id:
            raise Rejected(4, "customId不能为空")
        for refusal in self.config.spec.refusals:  # checked before the task (P11, §7.10)
            if refusal.pattern.search(custom_id):
                raise Rejected(4, refusal.description.replace("{id}", custom_id))
        parent = self.board.tasks.get(task_id)
        if parent is None:
            raise self._parent_missing()
        if parent.status != SUCCESS:
            raise Rejected(4, BAD_STATUS)
        press = parse_press(custom_id)
        if press is None or custom_id not in {b["customId"] for b in parent.buttons}:
            raise Rejected(4, UNKNOWN_ACTION)
        if (
            press.special == "extend"
            and parent.video_seconds + VIDEO_EXTEND_SECONDS > VIDEO_MAX_SECONDS
        ):
            raise Rejected(4, "参数错误")  # past ~21 s (the real answer is not known)
        mode = mode or parent.mode
        if press.special == "all":
            return self._imagine_all(parent, body, mode)
        remix = self.config.remix or body.get("enableRemix") is True
        child = self._child(parent, press, custom_id, mode)
        self._common(child, body)
        if press.modal == "always" or (press.modal == "remix" and remix):
            child.status = MODAL
            child.modal = press.special or "remix"
            if press.special == "zoom" and param(child.final_prompt, "zoom") is None:
                child.final_prompt = f"{child.final_prompt} --zoom 2".strip()
            self.board.add(child)
            parent.children += 1
            props = {"finalPrompt": child.final_prompt, "remix": True}
            return Reply(envelope(21, "Waiting for window confirm", self._result(child.id), props))
        self._need_room()
        parent.children += 1
        return self._accept(child)

    def _parent_prompt(self, parent: SimTask) -> str:
        return parent.final_prompt or parent.prompt_en or parent.prompt

    def _child(self, parent: SimTask, press: Press, custom_id: str, mode: str) -> SimTask:
        """The task a button press creates (before any modal input)."""
        child = self._new(
            press.action,
            press.kind,
            mode,
            prompt=parent.prompt,
            prompt_en=parent.prompt_en,
            final_prompt=self._parent_prompt(parent),
            description=f"/up {parent.id} {press.name}".strip(),
            parent_id=parent.id,
            custom_id=custom_id,
        )
        art = parent.art or ArtSpec(parent.id, parent.prompt)
        single = art.layout == SINGLE
        here = art.tile if single else press.index or 1
        if press.special == "pick":
            picks = parent.extra.get("picks") or []
            pick = picks[press.index - 1] if 0 < press.index <= len(picks) else ""
            child.prompt = child.prompt_en = child.final_prompt = pick
            child.description = f"/imagine {pick}"
            child.art = ArtSpec(pick, strip_params(pick), aspect(pick))
        elif press.special == "retry":
            child.inputs = list(parent.inputs)
            child.extra.update({k: v for k, v in parent.extra.items() if k == "image_url"})
            child.prompt = child.prompt_en = child.final_prompt = ""
            seed = b"".join(up.data for up in parent.inputs) or parent.id.encode()
            self._describe_result(child, seed + f"#retry{parent.children + 1}".encode())
        elif press.kind in (kinds.UPSCALE, kinds.VIDEO_UPSCALE):
            child.art = replace(art, layout=SINGLE, tile=press.index, label="")
            if press.kind == kinds.VIDEO_UPSCALE:
                child.video_count = 1
                child.video_seconds, child.video_hd = parent.video_seconds, parent.video_hd
        elif press.kind == kinds.UPSCALE_HD:
            child.art = replace(art, label=press.name)
        else:  # a new grid or video from this picture: same colours, new shapes
            step = f"{press.name}#{parent.children + 1}" if press.action == "REROLL" else press.name
            child.art = replace(
                art,
                layout=GRID,
                variant=f"{art.variant}/{step}",
                hue_tile=0 if press.action == "REROLL" else here,
                label=press.name if press.action in ("PAN", "ZOOM", "VIDEO") else "",
            )
            if press.kind == kinds.VIDEO:
                child.video_count = 4
                child.video_hd = parent.video_hd
                if press.special == "extend":
                    child.video_seconds = parent.video_seconds + VIDEO_EXTEND_SECONDS
                motion = press.detail or "low"
                video = f"{child.final_prompt} --video 1 --motion {motion}".strip()
                child.final_prompt = child.prompt_en = video
        return child

    def _imagine_all(self, parent: SimTask, body: dict[str, Any], mode: str) -> Reply:
        picks = parent.extra.get("picks") or []
        self._need_room(len(picks))
        ids = []
        for pick in picks:
            task = self._new("IMAGINE", kinds.GRID, mode, prompt=pick, prompt_en=pick)
            task.final_prompt, task.description = pick, f"/imagine {pick}"
            task.parent_id, task.custom_id = parent.id, "MJ::Job::PicReader::all"
            task.art = ArtSpec(pick, strip_params(pick), aspect(pick))
            self._common(task, body)
            self._accept(task)
            ids.append(task.id)
        parent.children += 1
        props = {"discordInstanceId": INSTANCE_ID}
        return Reply(envelope(1, SUBMIT_OK, ",".join(ids), props))

    # /mj/submit/modal -----------------------------------------------------------------

    def modal(self, body: dict[str, Any], mode: str) -> Reply:
        task_id = _text(body, "taskId")
        if not task_id:
            raise Rejected(4, "taskId不能为空")
        task = self.board.tasks.get(task_id)
        if task is None:
            raise self._parent_missing()
        if task.status != MODAL:
            raise Rejected(4, BAD_STATUS)
        parent = self.board.tasks.get(task.parent_id)
        fallback = task.final_prompt or (self._parent_prompt(parent) if parent else "")
        prompt = _text(body, "prompt") or fallback
        if not prompt:
            raise Rejected(4, "prompt不能为空")
        mask = None
        if task.modal == "inpaint":
            if not body.get("maskBase64"):
                raise Rejected(4, "maskBase64不能为空")
            mask = _upload(body.get("maskBase64"), lenient=True)
        self._check_words(prompt, task)
        self._need_room()

        task.prompt = task.prompt_en = task.final_prompt = prompt
        art = task.art or ArtSpec(prompt, strip_params(prompt), aspect(prompt))
        ratio = aspect(prompt) if param(prompt, "ar", "aspect") else art.ratio
        if task.modal == "pick":
            task.description = f"/imagine {prompt}"
            art = ArtSpec(prompt, strip_params(prompt), aspect(prompt))
        elif task.modal == "zoom":
            zoom = param(prompt, "zoom")
            try:
                factor = float(zoom) if zoom else 2.0
            except ValueError:
                factor = 0.0
            if not 1.0 <= factor <= 2.0:
                task.planned_failure = INVALID_VALUE
            art = replace(
                art, ratio=ratio, label=f"Zoom {factor:g}x", variant=f"{art.variant}|{prompt}"
            )
        else:  # remix / inpaint: the new prompt changes the picture
            art = replace(
                art, caption=strip_params(prompt), ratio=ratio, variant=f"{art.variant}|{prompt}"
            )
        task.art = art
        task.mask = mask
        if mode:
            task.mode = mode
        self._fates(task, prompt)
        task.status = NOT_START
        task.submit_time = self.board.clock.epoch_ms()
        return self._accept(task)

    # /mj/submit/blend -----------------------------------------------------------------

    def blend(self, body: dict[str, Any], mode: str) -> Reply:
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            raise Rejected(4, "base64List参数错误")
        uploads = [_upload(item) for item in images]
        dimensions = body.get("dimensions", "SQUARE")
        ratio = BLEND_RATIOS.get(str(dimensions).upper()) if dimensions is not None else None
        if ratio is None:
            raise Rejected(4, "dimensions参数错误")
        task = self._new("BLEND", kinds.GRID, self._mode(mode))
        self._common(task, body)
        self._need_room()
        urls = [self._input_url(task.id, n + 1, up) for n, up in enumerate(uploads)]
        task.final_prompt = " ".join([*urls, f"--ar {ratio[0]}:{ratio[1]}"])
        task.description = f"/blend {task.id} {len(uploads)}"
        task.inputs = uploads
        key = "blend " + " ".join(up.digest for up in uploads)
        task.art = ArtSpec(key, f"blend of {len(uploads)} images", ratio)
        return self._accept(task)

    # /mj/submit/describe --------------------------------------------------------------

    def _describe_result(self, task: SimTask, seed: bytes) -> None:
        ratio = image_ratio(task.inputs[0].data) if task.inputs else (1, 1)
        picks = describe_prompts(seed, ratio)
        task.extra["picks"] = picks
        task.result_prompt = describe_text(picks)

    def describe(self, body: dict[str, Any], mode: str) -> Reply:
        raw, link = body.get("base64"), _text(body, "link")
        if not raw and not link:
            raise Rejected(4, "base64不能为空")
        upload = _upload(raw) if raw else None
        if upload is None and not re.match(r"^https?://", link):
            raise Rejected(4, "链接格式错误")
        task = self._new("DESCRIBE", kinds.DESCRIBE, self._mode(mode))
        self._common(task, body)
        self._need_room()
        if upload is not None:
            task.inputs = [upload]
            task.description = f"/describe {task.id}.{upload.ext}"
            self._describe_result(task, upload.data)
        else:
            task.extra["image_url"] = link
            task.description = f"/describe {link}"
            self._describe_result(task, link.encode())
        return self._accept(task)

    # /mj/submit/shorten ---------------------------------------------------------------

    def shorten(self, body: dict[str, Any], mode: str) -> Reply:
        prompt = _text(body, "prompt")
        if not prompt:
            raise Rejected(4, "prompt不能为空")
        task = self._new("SHORTEN", kinds.SHORTEN, self._mode(mode, prompt))
        self._common(task, body)
        self._check_words(prompt, task)
        self._need_room()
        task.prompt = task.prompt_en = task.final_prompt = prompt
        task.description = f"/shorten {prompt}"
        task.result_prompt, task.extra["picks"] = shorten(prompt)
        self._fates(task, prompt)
        return self._accept(task)

    # /mj/insight-face/swap ------------------------------------------------------------

    def swap(self, body: dict[str, Any], mode: str) -> Reply:
        source, target = body.get("sourceBase64"), body.get("targetBase64")
        if not source:
            raise Rejected(4, "人脸图片不能为空")
        if not target:
            raise Rejected(4, "目标图片不能为空")
        face, image = _upload(source), _upload(target)
        if face.data == image.data:
            raise Rejected(4, "人脸图片和目标图片不能相同")
        task = self._new("SWAP_FACE", kinds.SWAP, self._mode(mode), bot_type="INSIGHT_FACE")
        self._common(task, body)
        self._need_room()
        task.description = f"/swap {task.id}"
        task.inputs = [face, image]
        task.art = ArtSpec(f"swap {face.digest} {image.digest}", "", (1, 1), SINGLE)
        return self._accept(task)

    # /mj/submit/video -----------------------------------------------------------------

    def video(self, body: dict[str, Any], mode: str) -> Reply:
        prompt = _text(body, "prompt")
        kind = _text(body, "action").lower()
        if kind or _text(body, "taskId"):
            return self._extend(body, mode, prompt, kind)
        if not prompt:
            raise Rejected(4, "Prompt 不能为空")
        image = body.get("image")
        if not image:
            raise Rejected(4, "image不能为空")
        motion = (_text(body, "motion") or "low").lower()
        if motion not in ("low", "high"):
            raise Rejected(4, "参数错误")
        task = self._new("VIDEO", kinds.VIDEO, self._mode(mode, prompt))
        self._common(task, body)
        self._check_words(prompt, task)
        self._need_room()
        if isinstance(image, str) and re.match(r"^https?://", image.strip()):
            image_url, digest = image.strip(), image.strip()
        else:
            upload = _upload(image, lenient=True)
            task.inputs = [upload]
            image_url, digest = self._input_url(task.id, 1, upload), upload.digest
        batch = body.get("batchSize")
        task.video_count = batch if batch in (1, 2) else 4
        task.video_hd = _text(body, "videoType") == "vid_1.1_i2v_720"
        task.prompt = prompt
        ending = ""
        if body.get("loop") is True:
            ending = " --end loop"
        elif isinstance(body.get("endImage"), str) and body["endImage"].strip():
            end = body["endImage"].strip()
            if not re.match(r"^https?://", end):
                upload = _upload(end, lenient=True)
                task.inputs.append(upload)
                end = self._input_url(task.id, len(task.inputs), upload)
            task.extra["end_image"] = end
            ending = f" --end {end}"
        bs = f" --bs {batch}" if batch in (1, 2) else ""
        task.prompt_en = task.final_prompt = (
            f"{image_url} {prompt} --video 1{ending} --motion {motion}{bs}"
        )
        task.description = f"/video {prompt}"
        task.art = ArtSpec(f"video {prompt} {digest}", strip_params(prompt), (1, 1), label="video")
        self._fates(task, prompt)
        return self._accept(task)

    def _extend(self, body: dict[str, Any], mode: str, prompt: str, kind: str) -> Reply:
        if kind != "extend":
            raise Rejected(4, "任务类型错误")
        spellings = self.config.spec.extend_ids
        parent_id = next((_text(body, key) for key in spellings if _text(body, key)), "")
        parent = self.board.tasks.get(parent_id)
        if parent is None:
            raise self._parent_missing()
        if parent.status != SUCCESS:
            raise Rejected(4, BAD_STATUS)
        if parent.kind not in (kinds.VIDEO, kinds.VIDEO_UPSCALE):
            raise Rejected(4, "任务类型错误")
        index = _clip_index(body.get("index"), strings="task_id" in spellings)
        if index is None or index >= max(1, parent.video_count):
            raise Rejected(4, "参数错误")
        if parent.video_seconds + VIDEO_EXTEND_SECONDS > VIDEO_MAX_SECONDS:
            raise Rejected(4, "参数错误")
        motion = (_text(body, "motion") or "low").lower()
        custom_id = f"MJ::JOB::animate_{motion}_extend::1::{parent.message_hash}"
        press = parse_press(custom_id)
        if press is None:
            raise Rejected(4, "参数错误")
        self._need_room()
        press = replace(press, index=index + 1)  # the clip it continues
        child = self._child(parent, press, custom_id, mode or parent.mode)
        child.extra["extends"] = {"taskId": parent.id, "index": index}
        if body.get("loop") is True:  # trueai builds --end loop from the flag
            child.final_prompt = child.prompt_en = f"{child.final_prompt} --end loop"
        if prompt:
            self._check_words(prompt, child)
            child.prompt = prompt
            self._fates(child, prompt)
        self._common(child, body)
        parent.children += 1
        return self._accept(child)

    # /mj/submit/edits -----------------------------------------------------------------

    def edits(self, body: dict[str, Any], mode: str) -> Reply:
        prompt, image = _text(body, "prompt"), body.get("image")
        if not image and isinstance(body.get("base64Array"), list) and body["base64Array"]:
            image = body["base64Array"][0]  # the other reseller shape
        if not prompt or not image:
            raise Rejected(4, "image或prompt不能为空")
        task = self._new(self.config.spec.edit_action, kinds.EDIT, self._mode(mode, prompt))
        self._common(task, body)
        self._check_words(prompt, task)
        self._need_room()
        if isinstance(image, str) and re.match(r"^https?://", image.strip()):
            digest = image.strip()
        else:
            upload = _upload(image, lenient=True)
            task.inputs, digest = [upload], upload.digest
        task.prompt = task.prompt_en = task.final_prompt = prompt
        task.description = f"/edits {prompt}"
        task.art = ArtSpec(
            f"edit {prompt} {digest}", strip_params(prompt), aspect(prompt), label="edit"
        )
        self._fates(task, prompt)
        return self._accept(task)

    # /mj/submit/retexture (trueai) -----------------------------------------------------

    def retexture(self, body: dict[str, Any], mode: str) -> Reply:
        """trueai's {prompt, image}: a new grid of the picture's shapes in the prompt's look.
        Its refusal texts are not known: /edits's are used."""
        prompt, image = _text(body, "prompt"), body.get("image")
        if not prompt or not image:
            raise Rejected(4, "image或prompt不能为空")
        task = self._new("RETEXTURE", kinds.GRID, self._mode(mode, prompt))
        self._common(task, body)
        self._check_words(prompt, task)
        self._need_room()
        if isinstance(image, str) and re.match(r"^https?://", image.strip()):
            digest = image.strip()
        else:
            upload = _upload(image, lenient=True)
            task.inputs, digest = [upload], upload.digest
        task.prompt = task.prompt_en = task.final_prompt = prompt
        task.description = f"/retexture {prompt}"
        task.art = ArtSpec(
            f"retexture {prompt} {digest}", strip_params(prompt), aspect(prompt), label="retexture"
        )
        self._fates(task, prompt)
        return self._accept(task)

    # /mj/submit/change and /simple-change (legacy Java OSS) ---------------------------

    def change(self, body: dict[str, Any], mode: str) -> Reply:
        task_id = _text(body, "taskId")
        if not task_id:
            raise Rejected(4, "taskId不能为空")
        action = _text(body, "action").upper()
        if action not in ("UPSCALE", "VARIATION", "REROLL"):
            raise Rejected(4, "action参数错误")
        index = body.get("index")
        if action != "REROLL" and (not isinstance(index, int) or not 1 <= index <= 4):
            raise Rejected(4, "index参数错误")
        parent = self.board.tasks.get(task_id)
        if parent is None:
            raise Rejected(3, NOT_FOUND)
        if parent.status != SUCCESS:
            raise Rejected(4, BAD_STATUS)
        if parent.action not in ("IMAGINE", "VARIATION", "REROLL", "BLEND"):
            raise Rejected(4, "关联任务不允许执行变化")
        h = parent.message_hash
        custom_id = {
            "UPSCALE": f"MJ::JOB::upsample::{index}::{h}",
            "VARIATION": f"MJ::JOB::variation::{index}::{h}",
            "REROLL": f"MJ::JOB::reroll::0::{h}::SOLO",
        }[action]
        done = parent.extra.setdefault("upscaled", {})
        earlier = self.board.tasks.get(done.get(index, "")) if action == "UPSCALE" else None
        if earlier is not None and self.config.spec.exists_21:
            # old Java OSS: the same U of the same image exists already (P2, §4.2)
            path = earlier.image_path()
            props = {
                "status": earlier.status,
                "imageUrl": f"{self.public_url().rstrip('/')}{path}" if path else None,
            }
            return Reply(envelope(21, "任务已存在", self._result(earlier.id), props))
        press = parse_press(custom_id)
        assert press is not None
        self._need_room()
        child = self._child(parent, press, custom_id, mode or parent.mode)
        self._common(child, body)
        reply = self._accept(child)
        parent.children += 1
        if action == "UPSCALE":
            done[index] = child.id
        return reply

    def simple_change(self, body: dict[str, Any], mode: str) -> Reply:
        match = re.fullmatch(r"(\d+)\s+(?:([UV])([1-4])|R)", _text(body, "content"), re.I)
        if not match:
            raise Rejected(4, "content参数错误")
        letter = (match.group(2) or "R").upper()
        action = {"U": "UPSCALE", "V": "VARIATION", "R": "REROLL"}[letter]
        index = int(match.group(3)) if match.group(3) else None
        changed = {**body, "taskId": match.group(1), "action": action, "index": index}
        return self.change(changed, mode)

    # /mj/submit/upload-discord-images -------------------------------------------------

    def upload_images(self, body: dict[str, Any], mode: str) -> Reply:
        images = body.get("base64Array")
        if not isinstance(images, list) or not images:
            raise Rejected(4, "base64List参数错误")
        urls = []
        for item in images:
            upload = _upload(item)
            name = f"{upload.digest[:24]}.{upload.ext}"
            self.uploads[name] = upload
            urls.append(f"{self.public_url().rstrip('/')}/sim/uploads/{name}")
        return Reply(envelope(1, SUBMIT_OK, urls, {}))
