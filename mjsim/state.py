"""Tasks, their lifecycle and the queue: the simulator's model, free of HTTP and asyncio.

A task waits in the queue (NOT_START) until one of ``concurrency`` slots is free, then plays a
plan of timed steps (SUBMITTED -> IN_PROGRESS 0..93 % -> SUCCESS or FAILURE) on the simulated
clock. :meth:`TaskBoard.run_until` plays every step that is due, in time order, so the result
is the same whether the clock is ticked in real time or advanced in one jump.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import buttons as kinds
from .art import ArtSpec
from .clock import Clock
from .config import INSTANCE_ID, MODE_SLOWDOWN, SimConfig
from .uploads import Upload

NOT_START = "NOT_START"
SUBMITTED = "SUBMITTED"
IN_PROGRESS = "IN_PROGRESS"
MODAL = "MODAL"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
CANCEL = "CANCEL"
FINAL = frozenset({SUCCESS, FAILURE, CANCEL})

GRID_PROGRESS = (0, 15, 31, 46, 62, 78, 93)
INVALID_VALUE = "[Invalid parameter] Invalid value"
TIMED_OUT = "任务超时"
BANNED_LATE = "可能包含敏感词"  # trueai: a banned word fails the task after code 1 (P4)


# Midjourney video (mid-2025): a clip is ~5 s, each extend adds ~4 s, up to ~21 s.
VIDEO_SECONDS = 5
VIDEO_EXTEND_SECONDS = 4
VIDEO_MAX_SECONDS = 21


@dataclass(frozen=True, slots=True)
class Step:
    """After ``delay`` simulated seconds (× the mode's slowdown), move to status/progress."""

    delay: float
    status: str
    progress: int = 0
    reason: str = ""


@dataclass
class SimTask:
    """One simulated task; :meth:`to_json` is exactly what fetch and the notifyHook send."""

    id: str
    action: str
    kind: str  # result kind (buttons.GRID, UPSCALE, ...): decides art and buttons
    prompt: str = ""
    prompt_en: str = ""
    final_prompt: str = ""
    description: str = ""
    state: str | None = None
    notify_hook: str = ""
    mode: str = "FAST"
    status: str = NOT_START
    progress: str | None = None
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    fail_reason: str | None = None
    buttons: list[dict[str, Any]] = field(default_factory=list)
    message_hash: str = field(default_factory=lambda: str(uuid.uuid4()))
    parent_id: str = ""
    custom_id: str = ""
    bot_type: str = "MID_JOURNEY"
    art: ArtSpec | None = None
    inputs: list[Upload] = field(default_factory=list)
    mask: Upload | None = None
    modal: str = ""  # for MODAL tasks: "zoom", "inpaint", "pick", "remix"
    planned_failure: str = ""  # failReason this task will end with
    stall: bool = False  # hangs until the timeout
    video_count: int = 0  # videos this task delivers (VIDEO: 4, video upscale: 1)
    video_seconds: int = VIDEO_SECONDS  # each clip's length: 5 s, +4 s per extend, 21 s at most
    video_hd: bool = False  # videoType vid_1.1_i2v_720: larger frames
    children: int = 0  # how many tasks were made from this one (varies rerolls)
    result_prompt: str = ""  # DESCRIBE/SHORTEN: the finalPrompt text revealed at SUCCESS
    extra: dict[str, Any] = field(default_factory=dict)
    # scheduling (simulated seconds)
    plan: list[Step] = field(default_factory=list)
    finished_at: float | None = None
    holds_slot: bool = False
    _gen: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def shows_prompt(self) -> bool:
        """MJ echoes the final prompt once the job runs; a MODAL task shows its prefill."""
        return self.status in (MODAL, IN_PROGRESS, SUCCESS) or bool(self.start_time)

    @property
    def percent(self) -> int:
        try:
            return int((self.progress or "0").rstrip("%"))
        except ValueError:
            return 0

    def image_path(self, preview: bool = True) -> str | None:
        """Relative URL of the picture this task shows right now (None when there is none)."""
        base = f"/sim/images/{self.id}"
        if self.status == SUCCESS:
            if self.kind == kinds.DESCRIBE:  # the uploaded image itself
                return f"{base}/input_1.{self.inputs[0].ext}" if self.inputs else None
            if self.kind == kinds.SHORTEN:
                return None
            return f"{base}/image.png"
        if self.status == IN_PROGRESS and preview and self.percent > 0:
            if self.kind in (kinds.DESCRIBE, kinds.SHORTEN, kinds.UPSCALE, kinds.VIDEO_UPSCALE):
                return None
            return f"{base}/preview_{self.percent}.webp"
        return None

    def to_json(
        self, public_url: str, *, preview: bool = True, zero_times: bool = False
    ) -> dict[str, Any]:
        """The task object of §6 (Plus superset), URLs absolute under ``public_url``."""

        def url(path: str | None) -> str | None:
            return public_url.rstrip("/") + path if path else None

        def ms(value: int | None) -> int | None:
            return value if value is not None or not zero_times else 0

        props: dict[str, Any] = {
            "botType": self.bot_type,
            "discordInstanceId": INSTANCE_ID,
            "discordChannelId": INSTANCE_ID,
            "finalPrompt": self.final_prompt if self.shows_prompt else None,
        }
        if self.status in (IN_PROGRESS, SUCCESS) or (self.status == FAILURE and self.start_time):
            props["messageHash"] = self.message_hash
        if self.notify_hook:
            props["notifyHook"] = self.notify_hook
        if self.status == MODAL:
            props["remix"] = True
        data: dict[str, Any] = {
            "id": self.id,
            "action": self.action,
            "customId": self.custom_id,
            "status": self.status,
            "prompt": self.prompt,
            "promptEn": self.prompt_en,
            "description": self.description,
            "state": self.state if self.state is not None or not zero_times else "",
            "submitTime": ms(self.submit_time),
            "startTime": ms(self.start_time),
            "finishTime": ms(self.finish_time),
            "imageUrl": url(self.image_path(preview))
            or (self.extra.get("image_url") if self.status == SUCCESS else None)
            or ("" if zero_times else None),
            "progress": self.progress if self.progress is not None or not zero_times else "",
            "failReason": self.fail_reason
            if self.fail_reason is not None or not zero_times
            else "",
            "mode": self.mode,
            "properties": props,
            "buttons": list(self.buttons),
        }
        if self.parent_id:
            data["parentId"] = self.parent_id
        if self.status == SUCCESS and self.video_count:
            videos = [
                url(f"/sim/images/{self.id}/video_{n}.mp4") for n in range(1, self.video_count + 1)
            ]
            data["videoUrl"] = videos[0]
            # trueai's shape: each clip with its thumbnail (mj-api §3.8); openai-hk's drops it
            data["videoUrls"] = [
                {"url": v, "thumbnail": url(f"/sim/images/{self.id}/thumb_{n}.jpg")}
                for n, v in enumerate(videos, start=1)
            ]
        return data


class QueueFull(Exception):
    """No room in the waiting queue (-> code 23)."""


def plan_for(task: SimTask, config: SimConfig) -> list[Step]:
    """The timed steps a task plays once it holds a slot (the first one is SUBMITTED)."""
    step = config.step_s * MODE_SLOWDOWN.get(task.mode, 1.0)
    start = Step(step * 0.4, SUBMITTED, 0)
    if task.stall:
        ahead = [Step(step * 0.5, IN_PROGRESS, p) for p in GRID_PROGRESS[:4]]
        spent = sum(s.delay for s in ahead)
        return [start, *ahead, Step(max(step, config.timeout_s - spent), FAILURE, 0, TIMED_OUT)]
    if task.planned_failure == BANNED_LATE:  # refused before it ever reaches Discord
        return [Step(step * 0.2, FAILURE, 0, BANNED_LATE)]
    if task.planned_failure:
        return [
            start,
            Step(step * 0.5, IN_PROGRESS, 0),
            Step(step, IN_PROGRESS, 15),
            Step(step, FAILURE, 0, task.planned_failure),
        ]
    if task.kind in (kinds.UPSCALE, kinds.VIDEO_UPSCALE):
        return [Step(step * 0.2, SUBMITTED, 0), Step(step, SUCCESS, 100)]
    if task.kind in (kinds.DESCRIBE, kinds.SHORTEN):
        return [start, Step(step * 0.5, IN_PROGRESS, 0), Step(step, SUCCESS, 100)]
    if task.kind == kinds.SWAP:
        return [
            start,
            Step(step * 0.5, IN_PROGRESS, 0),
            Step(step, IN_PROGRESS, 46),
            Step(step, SUCCESS, 100),
        ]
    ramp = [Step(step * 0.5 if p == 0 else step, IN_PROGRESS, p) for p in GRID_PROGRESS]
    return [start, *ramp, Step(step * 0.5, SUCCESS, 100)]


class TaskBoard:
    """All tasks, the running slots and the waiting queue of one simulated account."""

    def __init__(
        self,
        config: SimConfig,
        clock: Clock,
        on_change: Callable[[SimTask], None] = lambda task: None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.on_change = on_change
        self.tasks: dict[str, SimTask] = {}
        self.waiting: deque[str] = deque()
        self.active = 0  # tasks holding a slot (starting or running)
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._id_seq = itertools.count(int(clock.epoch_ms()) % 997)

    # ids and creation -------------------------------------------------------------------

    def new_id(self) -> str:
        """16 digits: epoch milliseconds + 3 more digits, unique within the board."""
        ms = self.clock.epoch_ms()
        while True:
            task_id = f"{ms}{next(self._id_seq) % 1000:03d}"
            if task_id not in self.tasks:
                return task_id
            ms += 1

    def add(self, task: SimTask) -> SimTask:
        if task.submit_time is None:
            task.submit_time = self.clock.epoch_ms()
        self.tasks[task.id] = task
        return task

    # queue ------------------------------------------------------------------------------

    def room(self) -> int:
        """How many more tasks can be accepted now (free slots + free queue places)."""
        free_slots = max(0, self.config.concurrency - self.active) if not self.waiting else 0
        return free_slots + max(0, self.config.queue_size - len(self.waiting))

    def admit(self, task: SimTask) -> int:
        """Queue a NOT_START task; returns how many tasks are ahead (0 = starts at once).

        Raises QueueFull when the queue has no room; the task is then not changed.
        """
        now = self.clock.now()
        if self.active < self.config.concurrency and not self.waiting:
            self._take_slot(task, now)
            return 0
        if len(self.waiting) >= self.config.queue_size:
            raise QueueFull
        ahead = len(self.waiting) + 1  # the waiting ones, plus the running one it waits for
        self.waiting.append(task.id)
        return ahead

    def _take_slot(self, task: SimTask, now: float) -> None:
        task.holds_slot = True
        self.active += 1
        task.plan = plan_for(task, self.config)
        self._schedule(task, now + task.plan[0].delay)

    def _release(self, task: SimTask, now: float) -> None:
        if task.holds_slot:
            task.holds_slot = False
            self.active -= 1
        while self.waiting and self.active < self.config.concurrency:
            waiting = self.tasks.get(self.waiting.popleft())
            if waiting is not None and waiting.status == NOT_START:
                self._take_slot(waiting, now)

    def _schedule(self, task: SimTask, at: float) -> None:
        task._gen += 1
        heapq.heappush(self._heap, (at, next(self._seq), task.id, task._gen))

    def cancel(self, task: SimTask) -> None:
        """Plus's CANCEL: the task stops where it is and frees its slot or queue place."""
        if task.final:
            return
        now = self.clock.now()
        with_slot = task.holds_slot
        if task.id in self.waiting:
            self.waiting.remove(task.id)
        task._gen += 1
        task.status = CANCEL
        task.finish_time = self.clock.epoch_ms(now)
        task.finished_at = now
        task.plan = []
        if with_slot:
            self._release(task, now)
        self.on_change(task)

    # time -------------------------------------------------------------------------------

    def run_until(self, now: float) -> None:
        """Play every step due by ``now``, each at its own scheduled instant."""
        while self._heap and self._heap[0][0] <= now:
            at, _, task_id, gen = heapq.heappop(self._heap)
            task = self.tasks.get(task_id)
            if task is None or gen != task._gen or not task.plan:
                continue
            self._play(task, at)

    def _play(self, task: SimTask, at: float) -> None:
        step = task.plan.pop(0)
        task.status = step.status
        if step.status == SUBMITTED:
            task.progress = "0%"
            task.start_time = self.clock.epoch_ms(at)
        elif step.status == IN_PROGRESS:
            task.progress = f"{step.progress}%"
        elif step.status == SUCCESS:
            task.progress = "100%"
            task.finish_time = self.clock.epoch_ms(at)
            task.fail_reason = None
            spec = self.config.spec
            task.buttons = (
                []
                if task.kind in spec.bare_kinds
                else kinds.buttons_for(task.kind, task.message_hash, bookmark=spec.bookmark)
            )
            if task.result_prompt:
                task.final_prompt = task.result_prompt
            if task.kind == kinds.DESCRIBE:  # the text is in the prompt fields too (§3.5)
                task.prompt_en = task.result_prompt
                if spec.describe_prompt == "both":
                    task.prompt = task.result_prompt
        elif step.status == FAILURE:
            task.progress = ""
            task.finish_time = self.clock.epoch_ms(at)
            task.fail_reason = step.reason or INVALID_VALUE
        if task.final:
            task.finished_at = at
            task.plan = []
            self._release(task, at)
        elif task.plan:
            self._schedule(task, at + task.plan[0].delay)
        self.on_change(task)
