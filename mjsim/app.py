"""The simulator as an aiohttp application: routing, auth, faults, task routes and media."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from . import art, shapes, video
from . import buttons as kinds
from .clock import Clock
from .config import MODE_PREFIXES, SimConfig
from .faults import RESET, Faults
from .flavours import BEARER, RAW, SECRET, mode_of_prefix
from .hooks import HookDelivery, HookSender
from .prompts import seed_for
from .state import FINAL, MODAL, NOT_START, SUCCESS, SimTask, TaskBoard
from .submit import BAD_STATUS, NOT_FOUND, Reply, Submitter, envelope

log = logging.getLogger(__name__)

_TASK_ROUTE = re.compile(r"^/mj/task/([^/]+)/(fetch|image-seed|cancel)$")
_SUBMIT_ROUTE = re.compile(r"^/mj/submit/([\w-]+)$")
_PREVIEW = re.compile(r"^preview_(\d{1,3})\.webp$")
_INPUT = re.compile(r"^input_(\d)\.\w+$")
_VIDEO = re.compile(r"^video_(\d)\.mp4$")
_THUMB = re.compile(r"^thumb_(\d)\.jpg$")
VIDEO_FPS = 4  # simulated clips: few frames a second keep a 21 s clip cheap to encode
_EDITED = re.compile(r"^0_([0-3])\.png$")  # the four images of an EDITS result
_CACHE_ITEMS = 256
_BROKEN_IMAGE_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One API request as the simulator received it."""

    method: str
    path: str  # without the mode prefix, e.g. "/mj/submit/imagine"
    prefix: str  # "", "/fast", "/relax", "/mj-fast", "/mj-relax" or "/mj-turbo"
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None (no body / not JSON)
    time: float  # time.time() on arrival


def split_prefix(path: str, any_segment: bool = False) -> tuple[str, str] | None:
    """("/fast", "/mj/submit/imagine") for "/fast/mj/submit/imagine"; None if not an API path.

    ``any_segment``: any single path segment is a prefix (new-api's ``/:mode/mj`` routes).
    """
    if path.startswith("/mj/"):
        return "", path
    head, sep, rest = path[1:].partition("/")
    known = f"/{head}" in MODE_PREFIXES or (any_segment and head)
    if sep and known and rest.startswith("mj/"):
        return f"/{head}", f"/{rest}"
    return None


def _route_key(path: str) -> str:
    """'/mj/submit/action' -> 'submit/action'; '/mj/task/1/fetch' -> 'task/fetch'."""
    task_route = _TASK_ROUTE.match(path)
    if task_route:
        return f"task/{task_route.group(2)}"
    return path.removeprefix("/mj/")


class Simulator:
    """A Midjourney-proxy-compatible server (``SimConfig.flavour``) with simulated tasks.

    Use ``await start()`` / ``await stop()`` (or ``async with``), or mount ``app`` in any aiohttp
    runner. Tasks progress on a simulated clock (``SimConfig.time_scale``) driven by a background
    loop; :meth:`advance` jumps it forward.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.faults = Faults()
        self.clock = Clock(self.config.time_scale)
        self.board = TaskBoard(self.config, self.clock, self._changed)
        self.tasks: dict[str, SimTask] = self.board.tasks
        self.requests: list[RecordedRequest] = []
        self.record_limit = 10_000  # oldest recorded requests are dropped beyond this
        self.image_requests = 0  # GETs of result images (image.png), answered or not
        self.hooks = HookSender(self.faults)
        self.hook_log: list[HookDelivery] = self.hooks.log
        self.submitter = Submitter(self.board, self.config, self.faults, lambda: self.public_url)
        self.base_url = ""
        self._origin = ""
        self._runner: web.AppRunner | None = None
        self._media: OrderedDict[tuple[str, str], tuple[bytes, str]] = OrderedDict()
        self._rendering: dict[tuple[str, str], asyncio.Future[tuple[bytes, str]]] = {}
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.app.cleanup_ctx.append(self._lifecycle)

    # public API --------------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        """Base of the URLs put into tasks: config.public_url, else the server's own address."""
        return (self.config.public_url or self.base_url or self._origin).rstrip("/")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = any free port); returns the base URL."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0][1]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
        shown = f"[{shown}]" if ":" in shown else shown
        self.base_url = f"http://{shown}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def submits(self, route: str | None = None) -> list[RecordedRequest]:
        """Recorded submit POSTs (/mj/submit/*, /mj/insight-face/swap), optionally by route."""
        found = [
            r
            for r in self.requests
            if r.method == "POST"
            and (r.path.startswith("/mj/submit/") or r.path == "/mj/insight-face/swap")
        ]
        if route:
            found = [r for r in found if r.path.endswith("/" + route.strip("/"))]
        return found

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by ``seconds`` (simulated, not scaled) and play every
        step that became due, in order. Works with any time_scale; 0 freezes real time."""
        self.clock.advance(seconds)
        self.board.run_until(self.clock.now())

    def task_json(self, task: SimTask) -> dict[str, Any]:
        """The task exactly as fetch returns it (in the flavour's shape)."""
        spec = self.config.spec
        data = task.to_json(
            self.public_url,
            preview=self.config.preview,
            zero_times=self.faults.zero_times or spec.zero_times,
        )
        return shapes.task_json(spec, data, task, self.public_url, self.config.image_size)

    # lifecycle ---------------------------------------------------------------------------

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.hooks.start()
        ticker = asyncio.create_task(self._tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.hooks.stop()

    def _tick_interval(self) -> float:
        if self.clock.frozen:
            return 0.05
        return max(0.002, min(0.05, self.config.step_s * self.clock.time_scale / 2))

    async def _tick(self) -> None:
        interval = self._tick_interval()
        while True:
            try:
                self.board.run_until(self.clock.now())
            except Exception:  # a bug in one step must not stop the clock for everyone
                log.exception("simulator tick failed")
            await asyncio.sleep(interval)

    def _changed(self, task: SimTask) -> None:
        if task.notify_hook and task.status not in (NOT_START, MODAL):
            self.hooks.send(task.notify_hook, self.task_json(task), task.final)

    # HTTP --------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if not self.base_url and not self._origin:
            self._origin = str(request.url.origin())
        if request.path.startswith("/sim/"):
            return await self._media_route(request)
        spec = self.config.spec
        split = split_prefix(request.path, any_segment=spec.prefixes is None)
        if split is None:
            return self._not_found(request.path)
        prefix, path = split
        raw = await request.read() if request.can_read_body else b""
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(request.method, path, prefix, headers, body, time.time())
        )
        if len(self.requests) > self.record_limit:  # a long-running `mjbot sim` polls forever
            del self.requests[: len(self.requests) - self.record_limit]

        if self.faults.down:
            return web.Response(status=503)
        if self.faults.hang_s > 0:
            await asyncio.sleep(self.faults.hang_s)
        rule = self.faults.take(path)
        if rule is not None:
            await _hold(request, rule.delay_s)
            return self._fault_response(request, rule.status, rule.body)
        if spec.prefixes is not None and prefix not in spec.prefixes:
            return self._not_found(request.path)
        if not self._authorized(request):
            return self._unauthorized()
        if bad_json or (
            request.method == "POST" and body is not None and not isinstance(body, dict)
        ):
            if spec.bad_json == "trueai":  # model binding failed: trueai's other shape (§5.2)
                failure = {"success": False, "code": -1, "message": "参数错误", "timestamp": "0"}
                return self._respond(Reply(failure, 200))
            return self._respond(Reply(envelope(4, "参数错误"), 400))

        self.board.run_until(self.clock.now())
        mode = MODE_PREFIXES.get(prefix) or mode_of_prefix(prefix)
        route = _route_key(path)
        if route in spec.missing or (spec.routes is not None and route not in spec.routes):
            return self._not_found(request.path)
        reply = await self._api(request.method, path, body or {}, mode)
        await _hold(request, self.faults.take_late(path))  # done; the answer is late
        if reply.status == 404 and reply.body is None:
            return self._not_found(request.path)
        return self._respond(reply)

    def _authorized(self, request: web.Request) -> bool:
        """The key in one of the schemes the flavour accepts (§2.2)."""
        key = self.config.api_key
        if not key:
            return True
        accepted = self.config.spec.auth
        auth = request.headers.get("Authorization", "").strip()
        secret = request.headers.get("mj-api-secret", "").strip()
        if SECRET in accepted and secret == key:
            return True
        if auth[:7].lower() == "bearer ":
            return BEARER in accepted and auth[7:].strip() == key
        return RAW in accepted and auth == key

    def _unauthorized(self) -> web.Response:
        failure = self.config.spec.auth_failure
        if failure == "text":  # trueai
            return web.Response(status=401, text="Authorization header missing.")
        if failure == "json":  # gateways answer like their OpenAI-style relays
            error = {"message": "无效的令牌 (invalid token)", "type": "new_api_error"}
            return web.json_response({"error": error}, status=401)
        return web.Response(status=401)  # Java / Plus: empty body

    def _not_found(self, path: str) -> web.Response:
        if self.config.spec.spring_404:  # Spring Boot's default error body
            body = {"timestamp": "2024-06-01T00:00:00.000+00:00", "status": 404}
            body.update({"error": "Not Found", "path": path})
            return web.json_response(body, status=404)
        return web.Response(status=404)

    def _fault_response(self, request: web.Request, status: int, body: Any) -> web.StreamResponse:
        if status == RESET:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client: the socket is gone
        if body is None:
            return web.Response(status=status)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body)
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status, dumps=_dumps)

    def _respond(self, reply: Reply) -> web.Response:
        if reply.body is None:
            return web.Response(status=reply.status)
        return web.json_response(reply.body, status=reply.status, dumps=_dumps)

    async def _api(self, method: str, path: str, body: dict[str, Any], mode: str) -> Reply:
        submit = _SUBMIT_ROUTE.match(path)
        if submit or path == "/mj/insight-face/swap":
            if method != "POST":
                return Reply(None, 405)
            return self.submitter.handle(submit.group(1) if submit else "swap", body, mode)
        task_route = _TASK_ROUTE.match(path)
        if task_route:
            task_id, what = task_route.groups()
            if what == "fetch" and method == "GET":
                task = self.tasks.get(task_id)
                if task is not None:
                    return Reply(self.task_json(task))
                unknown = self.config.spec.unknown_fetch
                if unknown == "204":  # trueai: a null result becomes 204 No Content
                    return Reply(None, 204)
                if unknown == "envelope":  # gateways answer with their error envelope
                    return Reply(envelope(4, "task_no_exist"), self.config.spec.error_http)
                return Reply(None)  # Java / Plus: 200 with an empty body
            if what == "image-seed" and method == "GET":
                seed = await self._image_seed(task_id)
                return replace(seed, body=shapes.envelope(self.config.spec, what, seed.body))
            if what == "cancel" and method == "POST":
                return self._cancel(task_id)
            return Reply(None, 405)
        if path in ("/mj/task/list-by-condition", "/mj/task/list-by-ids") and method == "POST":
            ids = body.get("ids")
            wanted = [str(i) for i in ids] if isinstance(ids, list) else []
            found = [self.tasks[i] for i in dict.fromkeys(wanted) if i in self.tasks]
            return Reply([self.task_json(t) for t in found])
        if path == "/mj/task/list" and method == "GET":
            newest = sorted(
                self.tasks.values(), key=lambda t: (t.submit_time or 0, t.id), reverse=True
            )
            return Reply([self.task_json(t) for t in newest])
        if path == "/mj/task/queue" and method == "GET":
            live = [t for t in self.tasks.values() if t.status not in FINAL and t.status != MODAL]
            return Reply([self.task_json(t) for t in live])
        return Reply(None, 404)

    async def _image_seed(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return Reply(envelope(3, NOT_FOUND), 404)
        if task.status != SUCCESS:
            return Reply(envelope(4, BAD_STATUS), 400)
        # MJ answers the seed DM after a while (advance() does not shorten a wait in progress)
        await asyncio.sleep(self.clock.real_seconds(2 * self.config.step_s))
        return Reply(envelope(1, "成功", seed_for(task.message_hash)))

    def _cancel(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return Reply(envelope(3, NOT_FOUND))
        if task.final:
            return Reply(envelope(4, BAD_STATUS))
        self.board.cancel(task)
        return Reply(envelope(1, "成功", task_id))

    # media -------------------------------------------------------------------------------

    async def _media_route(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        parts = request.path.strip("/").split("/")
        if parts == ["sim", "status"]:
            return web.json_response(self.status())
        if len(parts) == 3 and parts[1] == "uploads":
            upload = self.submitter.uploads.get(parts[2])
            if upload is None:
                return web.Response(status=404)
            return web.Response(body=upload.data, content_type=upload.mime)
        if len(parts) != 4 or parts[1] != "images":
            return web.Response(status=404)
        self.board.run_until(self.clock.now())
        task = self.tasks.get(parts[2])
        if task is None or self._expired(task):
            return web.Response(status=404)
        if parts[3] == "image.png":
            self.image_requests += 1
            if self.faults.image_delay_s > 0:
                await asyncio.sleep(self.faults.image_delay_s)
            if self.faults.broken_images:
                return web.Response(text=_BROKEN_IMAGE_PAGE, content_type="text/html")
        key = (task.id, parts[3])
        cached = self._media.get(key)
        if cached is None:
            job = self._rendering.get(key)
            if job is None:
                made = self._media_job(task, parts[3])
                if made is None:
                    return web.Response(status=404)
                job = asyncio.ensure_future(asyncio.to_thread(made))
                self._rendering[key] = job
                job.add_done_callback(lambda _: self._rendering.pop(key, None))
            cached = await asyncio.shield(job)
            self._media[key] = cached
            while len(self._media) > _CACHE_ITEMS:
                self._media.popitem(last=False)
        else:
            self._media.move_to_end(key)
        data, content_type = cached
        return web.Response(
            body=data, content_type=content_type, headers={"Cache-Control": "max-age=86400"}
        )

    def _expired(self, task: SimTask) -> bool:
        ttl = self.faults.image_ttl_s
        if ttl is None or task.finished_at is None:
            return False
        return self.clock.now() > task.finished_at + ttl

    def _media_job(self, task: SimTask, name: str) -> Any:
        """A no-argument function producing (bytes, content type), or None when not served."""
        size = self.config.image_size
        spec = task.art or art.ArtSpec(task.id, task.prompt)
        if name == "image.png" and task.status == SUCCESS:
            if task.kind == kinds.SWAP and len(task.inputs) == 2:
                face, target = task.inputs[0].data, task.inputs[1].data
                return lambda: (art.swap_png(face, target, spec, size), "image/png")
            return lambda: (art.result_png(spec, size), "image/png")
        preview = _PREVIEW.match(name)
        if preview and int(preview.group(1)) <= 100:
            percent = int(preview.group(1))
            return lambda: (art.preview_webp(spec, size, percent), "image/webp")
        upload = _INPUT.match(name)
        if upload and 1 <= int(upload.group(1)) <= len(task.inputs):
            item = task.inputs[int(upload.group(1)) - 1]
            return lambda: (item.data, item.mime)
        edited = _EDITED.match(name)
        if edited and task.status == SUCCESS and task.kind == kinds.EDIT:
            tile_size = art.size_for(spec.ratio, size)
            index = int(edited.group(1)) + 1
            return lambda: (
                art.png(art.tile_of(spec, index, tile_size, caption=False)),
                "image/png",
            )
        thumb = _THUMB.match(name)
        if thumb and task.status == SUCCESS and 1 <= int(thumb.group(1)) <= task.video_count:
            index = spec.tile if spec.layout == art.SINGLE else int(thumb.group(1))

            def render_thumbnail() -> tuple[bytes, str]:
                # the clip's first frame, small (a JPEG as trueai serves its thumbnails)
                still = art.tile_of(spec, index, video.video_size(spec.ratio), caption=False)
                out = io.BytesIO()
                still.convert("RGB").save(out, "JPEG", quality=80)
                return out.getvalue(), "image/jpeg"

            return render_thumbnail
        clip = _VIDEO.match(name)
        if clip and task.status == SUCCESS and 1 <= int(clip.group(1)) <= task.video_count:
            index = spec.tile if spec.layout == art.SINGLE else int(clip.group(1))

            seconds, side = task.video_seconds, 288 if task.video_hd else 192

            def render_video() -> tuple[bytes, str]:
                # as long as the clip claims to be (5 s, 9 s, ... 21 s), at a few frames a
                # second: a real, playable file whose length a test can read from its header
                frame_size = video.video_size(spec.ratio, side)
                still = art.tile_of(spec, index, frame_size, caption=False)
                fps = VIDEO_FPS
                return video.mp4(video.animate(still, seconds, fps), fps), "video/mp4"

            return render_video
        return None

    def status(self) -> dict[str, Any]:
        """A small summary (GET /sim/status): counts per status, queue, config."""
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.status] = counts.get(task.status, 0) + 1
        return {
            "tasks": counts,
            "running": self.board.active,
            "waiting": len(self.board.waiting),
            "requests": len(self.requests),
            "hooks": len(self.hook_log),
            "timeScale": self.config.time_scale,
            "auth": bool(self.config.api_key),
            "flavour": self.config.flavour,
        }


async def _hold(request: web.Request, seconds: float) -> None:
    """Hold a request up to ``seconds``, ending early when its client hangs up (a killed
    client leaves nothing waiting behind, and stopping the simulator waits for nothing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def serve(host: str, port: int, config: SimConfig) -> None:
    """Run a simulator on host:port until cancelled (``mjbot sim``)."""
    simulator = Simulator(config)
    url = await simulator.start(host, port)
    log.info("Midjourney-proxy simulator listening on %s (API under %s/mj/...)", url, url)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
