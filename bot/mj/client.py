"""The API's methods: what mjbot asks a midjourney-proxy-compatible server, route by route.

:class:`MjClient` knows the routes, the three auth header schemes, the speed-mode path prefix
and which calls may be retried (reads) or never (submits: money is spent on every accepted one),
and reads every answer into a :class:`Submission` (the server answered in its own words) or
tasks. Under it, :class:`~bot.mj.transport.Transport` does the network: httpx, retries, decoding
and the :class:`MjError` for an answer the API family does not define (mj-api.md §2, §3, §5).

A :class:`~bot.mj.profiles.Profile` says how the configured provider differs: auth scheme,
speed-mode form, what code 21 and code 9 mean, whether /submit/action and list-by-condition
exist, whether tasks carry buttons and notifyHook is honoured (mj-api.md §1.1, P1-P23).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx

from bot.metrics import Metrics
from bot.mj.custom_ids import change_for, grid_buttons, refusal_prefix
from bot.mj.failures import Reason
from bot.mj.models import Action, Outcome, Submission, Task, TaskState
from bot.mj.profiles import AUTH_SCHEMES, PROFILES, Profile
from bot.mj.transport import ErrorKind, MjError, Reply, Transport, body_text, is_envelope

# The transport's errors are the client's: callers catch them from here.
__all__ = ["VIDEO_BATCH_SIZES", "VIDEO_TYPES", "ErrorKind", "MjClient", "MjError"]

log = logging.getLogger("bot.mj")

_AUTH_SCHEMES = AUTH_SCHEMES
_DEFAULT_PROFILE = PROFILES["openai-hk"]
_LIST_FALLBACK_CONCURRENCY = 8  # parallel fetches when a provider has no list-by-condition
_MODE_FLAG = re.compile(r"(?<!\S)--(fast|relax|turbo)\b", re.I)
_SYNTHESISED_GRIDS = (Action.IMAGINE, Action.VARIATION, Action.REROLL, Action.BLEND)
_MODE_RE = re.compile(r"^[A-Za-z0-9_.\-/]*$")
_SEED_TIMEOUT_S = 90.0  # trueai blocks up to ~60 s asking Discord for the seed (§3.14, P23)
_UNPARSEABLE_KEPT = 10_000  # ids remembered so an odd task is logged once, not every tick
VIDEO_TYPES = ("vid_1.1_i2v_480", "vid_1.1_i2v_720")  # SD (the default) and HD (§3.8)
VIDEO_BATCH_SIZES = (1, 2, 4)


def _mode_prefix(mode: str) -> str:
    """'' -> '', 'fast' -> '/fast', '/mj-fast/' -> '/mj-fast' (§2.1)."""
    mode = mode.strip()
    if not _MODE_RE.match(mode) or ".." in mode:
        raise ValueError(f"invalid mode prefix: {mode!r}")
    mode = mode.strip("/")
    return f"/{mode}" if mode else ""


class MjClient:
    """A midjourney-proxy client: base URL + provider profile + mode, lenient replies."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        *,
        profile: Profile | None = None,
        auth_header: str = "",
        mode: str = "",
        timeout_s: float = 30.0,
        read_retries: int = 2,
        http: httpx.AsyncClient | None = None,
        retry_delay_s: float = 0.5,
        list_concurrency: int = _LIST_FALLBACK_CONCURRENCY,
        metrics: Metrics | None = None,
    ) -> None:
        """Validate the settings now so a bad config fails at start, not at the first /imagine.

        ``auth_header`` "" means the profile's scheme; without a profile the client behaves as
        the openai-hk profile (Bearer, /fast-style prefixes), mjbot's original defaults.
        """
        base = base_url.strip().rstrip("/")
        if not base.lower().startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        profile = profile or _DEFAULT_PROFILE
        scheme = (auth_header or profile.auth_header).strip().lower()
        if scheme not in _AUTH_SCHEMES:
            raise ValueError(f"auth_header must be one of {_AUTH_SCHEMES}, got {auth_header!r}")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if scheme != profile.auth_header:
            profile = dataclasses.replace(profile, auth_header=scheme)
        self._profile = profile
        self._base = base
        self._key = api_key.strip()
        self._scheme = scheme
        self._mode = mode
        self._prefix = _mode_prefix(self._profile.mode_prefix(mode))
        self._list_route = self._profile.list_route
        self._upload_route = True  # until the provider answers 404 (upload_images)
        self._list_concurrency = max(1, int(list_concurrency))
        self._refused: list[str] = []  # button families the provider answered "unknown" to
        self._unparseable: set[str] = set()  # task ids already logged as unparseable
        self._transport = Transport(
            base,
            headers=self._headers(),
            secret=self._key,
            timeout_s=timeout_s,
            read_retries=read_retries,
            retry_delay_s=retry_delay_s,
            http=http,
            metrics=metrics,
        )

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def mode(self) -> str:
        """The default speed-mode prefix used by task routes and submits without ``mode``."""
        return self._mode

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def hidden_buttons(self) -> tuple[str, ...]:
        """customId prefixes not to offer: the profile's, plus those refused since start."""
        return (*self._profile.hidden_buttons, *self._refused)

    async def aclose(self) -> None:
        """Close the connection pool only if we created it: an injected one is the caller's."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def path(self, route: str, mode: str | None = None) -> str:
        """The request path for ``route`` ('/mj/...') under a speed-mode prefix (§2.1, §2.3)."""
        prefix = self._prefix if mode is None else _mode_prefix(self._profile.mode_prefix(mode))
        route = route if route.startswith("/") else f"/{route}"
        return f"{prefix}{route}"

    # ---------------------------------------------------------------- submits (never retried)

    async def imagine(
        self,
        prompt: str,
        images: Sequence[str] = (),
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
        bot_type: str = "",
    ) -> Submission:
        """Start a grid; ``images`` are data URIs the server uploads and prepends (§3.1).
        ``bot_type`` (MID_JOURNEY, NIJI_JOURNEY) is sent where the profile takes botType."""
        flag = self._profile.mode_flag(self._mode if mode is None else mode)
        if flag and not _MODE_FLAG.search(prompt):
            prompt = f"{prompt} {flag}"  # Java OSS: Midjourney reads the speed from the prompt
        body: dict[str, Any] = {"prompt": prompt}
        if images:
            body["base64Array"] = list(images)
        if bot_type and self._profile.bot_types:
            body["botType"] = bot_type
        return await self._submit("/mj/submit/imagine", body, mode, notify_hook, state)

    async def action(
        self,
        task_id: str,
        custom_id: str,
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
        enable_remix: bool = False,
    ) -> Submission:
        """Press a button of a finished task; code 21 means a modal must follow (§3.2, §8).

        On a provider without /submit/action (Java OSS) U/V/🔄 go through /submit/change and
        anything else is refused here, without a request (P8).
        """
        if not self._profile.action_route:
            change = change_for(custom_id)
            if change is None:
                return Submission(
                    code=4,
                    outcome=Outcome.UNSUPPORTED,
                    description=f"unknown_action:{custom_id}",
                    reason=Reason.UNKNOWN_ACTION,
                )
            action, index = change
            return await self.change(
                task_id, action, index, mode=mode, notify_hook=notify_hook, state=state
            )
        body: dict[str, Any] = {"taskId": task_id, "customId": custom_id}
        if enable_remix:
            body["enableRemix"] = True
        submission = await self._submit("/mj/submit/action", body, mode, notify_hook, state)
        # A refused button says so in words only: new-api's machine token, trueai's text (P11).
        if submission.outcome is Outcome.INVALID and (
            submission.reason is Reason.UNKNOWN_ACTION or self._profile.hides(custom_id)
        ):
            prefix = refusal_prefix(custom_id)
            if prefix not in self.hidden_buttons:
                log.info("the provider refuses %s buttons; hiding them from now on", prefix)
                self._refused.append(prefix)
            submission = dataclasses.replace(submission, outcome=Outcome.UNSUPPORTED)
        return submission

    async def modal(
        self,
        task_id: str,
        prompt: str = "",
        *,
        mask_base64: str = "",
        mode: str | None = None,
    ) -> Submission:
        """Confirm a MODAL task; an empty prompt lets the server reuse the parent's (§3.3)."""
        body: dict[str, Any] = {"taskId": task_id}
        if prompt:
            body["prompt"] = prompt
        if mask_base64:
            body["maskBase64"] = mask_base64
        return await self._submit("/mj/submit/modal", body, mode, "", "")

    async def blend(
        self,
        images: Sequence[str],
        dimensions: str = "SQUARE",
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Blend 2–5 data-URI images; dimensions PORTRAIT | SQUARE | LANDSCAPE (§3.4)."""
        body: dict[str, Any] = {"base64Array": list(images), "dimensions": dimensions}
        return await self._submit("/mj/submit/blend", body, mode, notify_hook, state)

    async def describe(
        self,
        image: str = "",
        *,
        link: str = "",
        language: str = "",
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Ask for four prompts describing a data-URI image, or an image already hosted at
        ``link``; ``language`` "zh" asks for them in Chinese (§3.5: ``link`` and ``language``
        are trueai's, sent only where the profile's describe_link says so)."""
        body: dict[str, Any] = {"link": link} if link and not image else {"base64": image}
        if language:
            body["language"] = language
        return await self._submit("/mj/submit/describe", body, mode, notify_hook, state)

    async def shorten(
        self,
        prompt: str,
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Ask MJ to analyse and shorten a prompt (§3.6)."""
        return await self._submit(
            "/mj/submit/shorten", {"prompt": prompt}, mode, notify_hook, state
        )

    async def swap_face(
        self,
        source: str,
        target: str,
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Put the face of ``source`` onto ``target`` (both data URIs) (§3.11)."""
        body = {"sourceBase64": source, "targetBase64": target}
        return await self._submit("/mj/insight-face/swap", body, mode, notify_hook, state)

    async def video(
        self,
        prompt: str,
        image: str,
        *,
        motion: str = "low",
        end_image: str = "",
        loop: bool = False,
        batch_size: int = 0,
        video_type: str = "",
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Animate ``image`` (URL or data URI, the first frame) into clips (§3.8, trueai's
        SubmitVideoDTO; resellers the same): motion low | high, ``end_image`` the last frame,
        ``loop`` back to the first, ``batch_size`` 1 | 2 | 4 clips (0: the server's default,
        four), ``video_type`` one of VIDEO_TYPES (""/absent: the server's default, 480p)."""
        body: dict[str, Any] = {"prompt": prompt, "image": image, "motion": motion}
        if end_image:
            body["endImage"] = end_image
        if loop:
            body["loop"] = True
        if batch_size:
            if batch_size not in VIDEO_BATCH_SIZES:
                raise ValueError(f"batch_size must be one of {VIDEO_BATCH_SIZES}")
            body["batchSize"] = batch_size
        if video_type:
            if video_type not in VIDEO_TYPES:
                raise ValueError(f"video_type must be one of {VIDEO_TYPES}")
            body["videoType"] = video_type
        return await self._submit("/mj/submit/video", body, mode, notify_hook, state)

    async def extend_video(
        self,
        task_id: str,
        index: int,
        *,
        motion: str = "low",
        prompt: str = "",
        loop: bool = False,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Extend clip ``index`` (0-3) of the finished video ``task_id`` by about 4 s (``loop``:
        ending on the clip's first frame) through
        /submit/video ``action: "extend"``: the way where the provider's video results carry
        no Extend buttons (openai-hk answers ``buttons: []``). The profile's extend_spelling
        says whether the parent goes as ``taskId`` (trueai) or ``task_id`` with the index as a
        string (a reseller's spelling)."""
        if not 0 <= index <= 3:
            raise ValueError("index must be 0-3")
        body: dict[str, Any] = {"action": "extend", "motion": motion}
        if self._profile.extend_spelling == "task_id":
            body |= {"task_id": task_id, "index": str(index)}
        else:
            body |= {"taskId": task_id, "index": index}
        if prompt:
            body["prompt"] = prompt
        if loop:
            body["loop"] = True
        return await self._submit("/mj/submit/video", body, mode, notify_hook, state)

    async def edits(
        self,
        prompt: str,
        image: str,
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Edit an image with a prompt (trueai shape; provider-specific, §3.9)."""
        body = {"prompt": prompt, "image": image}
        return await self._submit("/mj/submit/edits", body, mode, notify_hook, state)

    async def retexture(
        self,
        prompt: str,
        image: str,
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """A new grid of ``image``'s shapes in the look ``prompt`` asks for (trueai,
        §3.9); only where the profile has it (Profile.retexture)."""
        body = {"prompt": prompt, "image": image}
        return await self._submit("/mj/submit/retexture", body, mode, notify_hook, state)

    async def change(
        self,
        task_id: str,
        action: str,
        index: int | None = None,
        *,
        mode: str | None = None,
        notify_hook: str = "",
        state: str = "",
    ) -> Submission:
        """Legacy U/V/R for Java OSS, which has no /action (§3.7, P8)."""
        body: dict[str, Any] = {"taskId": task_id, "action": action}
        if index is not None:
            body["index"] = index
        return await self._submit("/mj/submit/change", body, mode, notify_hook, state)

    async def upload_images(self, images: Sequence[str]) -> list[str] | None:
        """Data-URI images -> URLs a prompt can name (``--oref <url>``): POST
        /mj/submit/upload-discord-images ``{base64Array}`` -> ``result: [url, ...]`` (§3.10).

        None where there is no URL to be had: the provider has no such route (a 404, Java OSS;
        openai-hk's document does not list it; then it is not asked again) or refuses uploads
        (trueai's ``禁止上传``, any code but 1). The caller then sends the images as
        ``base64Array`` image prompts instead. Nothing is charged for an upload, so a failed
        attempt is retried like a read.
        """
        if not images:
            return []
        if not self._upload_route:
            return None
        try:
            reply = await self._transport.call(
                "POST",
                self.path("/mj/submit/upload-discord-images"),
                body={"base64Array": list(images)},
                idempotent=True,
            )
        except MjError as exc:
            if exc.kind is not ErrorKind.NOT_FOUND:
                raise
            log.warning("upload-discord-images answered 404: sending images as base64Array")
            self._upload_route = False
            return None
        submission = self._submission(reply)
        urls = submission.result
        if submission.code != 1:
            log.info("the provider refused an upload: %s", submission.description)
            return None
        if (
            not isinstance(urls, list)
            or len(urls) != len(images)
            or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)
        ):
            raise self._transport.error(
                ErrorKind.BAD_RESPONSE,
                f"upload-discord-images answered {body_text(reply.body, '')!r}",
                status=reply.status,
            )
        return list(urls)

    # ---------------------------------------------------------------- reads (retried)

    async def fetch(self, task_id: str) -> Task | None:
        """One task, or None when the server does not know the id (empty 200, 204, envelope)."""
        reply = await self._transport.call(
            "GET", self.path(f"/mj/task/{_seg(task_id)}/fetch"), idempotent=True
        )
        if not reply.ok:
            return None  # a 4xx envelope: unknown id on aggregators (§3.12)
        body = reply.body
        if is_envelope(body) and isinstance(body.get("result"), dict):
            body = body["result"]  # relays that wrap the task
        tasks = self._tasks([body])
        return tasks[0] if tasks else None

    async def list_by_condition(self, ids: Sequence[str]) -> list[Task]:
        """Many tasks in one request (the poller's call); unknown ids are simply absent (§3.13).

        Where the provider has no list route (the profile says so, or it answered 404), every
        id is fetched on its own instead, a few at a time.
        """
        wanted = [str(task_id) for task_id in ids if str(task_id)]
        if not wanted:
            return []
        if not self._list_route:
            return await self._fetch_each(wanted)
        try:
            reply = await self._transport.call(
                "POST",
                self.path("/mj/task/list-by-condition"),
                body={"ids": wanted},
                idempotent=True,
            )
        except MjError as exc:
            if exc.kind is not ErrorKind.NOT_FOUND:
                raise
            log.warning("list-by-condition answered 404: fetching tasks one by one from now on")
            self._list_route = False
            return await self._fetch_each(wanted)
        body = reply.body
        if body is None:
            return []
        if is_envelope(body) and isinstance(body.get("result"), list):
            body = body["result"]
        if not isinstance(body, list):
            raise self._transport.error(
                ErrorKind.BAD_RESPONSE,
                f"list-by-condition answered {body_text(body, '')!r} instead of a list",
                status=reply.status,
            )
        return self._tasks(body)

    async def _fetch_each(self, ids: list[str]) -> list[Task]:
        """list-by-condition's answer built from one fetch per id, at bounded concurrency."""
        gate = asyncio.Semaphore(self._list_concurrency)
        failures: list[MjError] = []

        async def one(task_id: str) -> Task | None:
            async with gate:
                try:
                    return await self.fetch(task_id)
                except MjError as exc:
                    failures.append(exc)
                    return None

        found = await asyncio.gather(*(one(task_id) for task_id in dict.fromkeys(ids)))
        tasks = [task for task in found if task is not None]
        if failures and not tasks:
            raise failures[0]  # nothing came back: report it like a failed list request
        return tasks

    def _tasks(self, items: list[Any]) -> list[Task]:
        """The tasks of an answer, each parsed on its own: one the parser cannot use is logged
        once (per id) and skipped, and the rest of the answer still counts (one odd task used
        to fail the whole poll answer, on every tick)."""
        tasks = []
        for item in items:
            try:
                task = self._complete(Task.from_json(item))
            except Exception as exc:
                self._skip(item, exc)
                continue
            if task is not None:
                tasks.append(task)
        return tasks

    def _skip(self, item: Any, exc: Exception) -> None:
        task_id = item.get("id") if isinstance(item, dict) else None
        key = str(task_id)[:64] if isinstance(task_id, str | int) else repr(item)[:64]
        if key in self._unparseable:
            return
        if len(self._unparseable) >= _UNPARSEABLE_KEPT:
            self._unparseable.clear()  # a bound, not a history: at worst logged again
        self._unparseable.add(key)
        log.warning("skipping task %s: the API's answer cannot be parsed (%r)", key, exc)

    def _complete(self, task: Task | None) -> Task | None:
        """Give grids the U/V/🔄 buttons a provider without buttons[] (Java OSS) leaves out."""
        if (
            task is None
            or self._profile.buttons_on_tasks
            or task.buttons
            or task.status is not TaskState.SUCCESS
            or task.action not in _SYNTHESISED_GRIDS
        ):
            return task
        raw = {**task.raw, "buttons": grid_buttons(task.message_hash or task.id)}
        return Task.from_json(raw)

    async def image_seed(self, task_id: str) -> Submission:
        """The seed of a finished task (result = seed string). Slow: keep it off chat handlers."""
        reply = await self._transport.call(
            "GET",
            self.path(f"/mj/task/{_seg(task_id)}/image-seed"),
            idempotent=True,
            envelope_on_5xx=True,
            timeout_s=max(self._transport.timeout_s, _SEED_TIMEOUT_S),
            retry_timeouts=False,  # the server already waited ~60 s; asking again repeats that
        )
        return self._submission(reply)

    # ---------------------------------------------------------------- plumbing

    async def _submit(
        self,
        route: str,
        body: dict[str, Any],
        mode: str | None,
        notify_hook: str,
        state: str,
    ) -> Submission:
        if notify_hook and self._profile.hooks:  # a relay that drops it would only leak it
            body["notifyHook"] = notify_hook
        if state:
            body["state"] = state
        modes = self._profile.mode_body(self._mode if mode is None else mode)
        if modes and route != "/mj/submit/modal":
            body["accountFilter"] = {"modes": modes}
        reply = await self._transport.call(
            "POST", self.path(route, mode), body=body, idempotent=False, envelope_on_5xx=True
        )
        return self._classify(self._submission(reply))

    def _classify(self, submission: Submission) -> Submission:
        """The profile's reading of the codes that mean different things per provider."""
        outcome = submission.outcome
        if submission.code == 21 and self._profile.code21 == "exists":
            outcome = Outcome.EXISTS  # Java OSS: the same job was done before (P2)
        elif (
            submission.code == 9
            and self._profile.queue_full_code9
            and submission.reason is Reason.QUEUE_FULL
        ):
            outcome = Outcome.QUEUE_FULL  # trueai: code 9 with a queue-full text (P3)
        if outcome is submission.outcome:
            return submission
        return dataclasses.replace(submission, outcome=outcome)

    def _submission(self, reply: Reply) -> Submission:
        body = reply.body
        if not is_envelope(body):
            what = "an empty body" if body is None else json.dumps(body, ensure_ascii=False)
            raise self._transport.error(
                ErrorKind.BAD_RESPONSE,
                f"expected a submit envelope, got {what}",
                status=reply.status,
            )
        return Submission.from_json(body)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._key:
            if self._scheme == "bearer":
                headers["Authorization"] = f"Bearer {self._key}"
            elif self._scheme == "raw-authorization":
                headers["Authorization"] = self._key
            else:
                headers["mj-api-secret"] = self._key
        return headers


def _seg(task_id: str) -> str:
    """A task id as one path segment: ids are digits, but never let one escape its segment."""
    return quote(str(task_id), safe="")
