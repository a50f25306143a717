"""Handlers in: the playground's HTTP and WebSocket routes, each turning a request into one
Service call (through the shared command table) and answering through the WebPort.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from bot.chat import Requester
from bot.i18n import normalize, t

from .access import COOKIE as TOKEN_COOKIE
from .access import Level, unauthorised
from .admin import admin_report
from .playground import Playground, command_list
from .port import PLATFORM, sniff
from .uploads import MAX_FILE_BYTES, read_form

__all__ = ["build_app", "build_mini_app"]

log = logging.getLogger("adapters.web")

COOKIE = "mjbot_session"
MAX_BODY = 2 * MAX_FILE_BYTES  # JSON bodies (a mask); uploads are streamed by read_form
# A mask as a PNG data URI in JSON: the editor's are a few hundred KB (two colours).
MASK_BODY = 12 * 1024 * 1024
# Bytes of memory per body byte while a mask is handled: the body, its copy, the JSON
# string and the decoded PNG.
_COPIES = 4
_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_DATA_URI = re.compile(r"^data:image/png;base64,(.*)$", re.S)

LEVEL = web.RequestKey("level", Level)  # what the request's token proves (the guard sets it)


def static_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("static")))


PLAYGROUND = web.AppKey("playground", Playground)


def playground(request: web.Request) -> Playground:
    return request.app[PLAYGROUND]


def session_of(request: web.Request) -> str | None:
    for value in (request.query.get("session"), request.cookies.get(COOKIE)):
        if value and _SESSION.match(value):
            return value
    return None


def new_session() -> str:
    return secrets.token_urlsafe(12)


def lang_of(request: web.Request, pg: Playground, session: str) -> str:
    wanted = request.query.get("lang")
    if wanted:
        pg.langs[session] = normalize(wanted)
    return pg.langs.setdefault(session, "en")


# --- pages -----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    """The chat page. ``?token=`` is traded for a cookie and the clean URL; no token: 401.

    Also gives the browser a session (its private chat) on the first visit."""
    pg = playground(request)
    presented = request.query.get("token")
    if presented is not None:
        level = pg.access.level_of(presented)
        if level is Level.NONE:
            raise web.HTTPForbidden(
                text="403: this token is not (or no longer) valid: open the URL `mjbot demo`"
                " printed at its last start.\n"
            )
        # Keep the better token when the browser already has one (the operator opening the
        # shared chat link must not lose the admin tab).
        keep = presented if level >= request[LEVEL] else request.cookies.get(TOKEN_COOKIE, "")
        found = web.HTTPFound(str(request.rel_url.without_query_params("token")))
        _set_cookie(found, TOKEN_COOKIE, keep, max_age=None)  # until the browser closes
        raise found
    if request[LEVEL] is Level.NONE:
        raise unauthorised()
    response = web.FileResponse(static_dir() / "index.html")
    if session_of(request) is None:
        _set_cookie(response, COOKIE, new_session(), max_age=86400 * 30)
    return response


def _set_cookie(
    response: web.StreamResponse, name: str, value: str, *, max_age: int | None
) -> None:
    # SameSite=Strict: no other site's page, link or form ever carries it here.
    response.set_cookie(name, value, httponly=True, samesite="Strict", max_age=max_age, path="/")


async def mask_page(request: web.Request) -> web.StreamResponse:
    """The mask editor alone: the Telegram Mini App for Vary (Region)."""
    return web.FileResponse(static_dir() / "mask.html")


async def media(request: web.Request) -> web.Response:
    """Bytes of a photo, video or document shown in the chat."""
    blob = playground(request).port.blob(request.match_info["blob"])
    if blob is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "private, max-age=3600"}
    if blob.content_type.startswith("application/"):
        headers["Content-Disposition"] = f'attachment; filename="{_safe_name(blob.filename)}"'
    return web.Response(body=blob.data, content_type=blob.content_type, headers=headers)


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)[:100] or "file"


# --- the chat socket -------------------------------------------------------------------------


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """One open page: history on connect, then events out and user actions in."""
    pg = playground(request)
    session = session_of(request) or new_session()
    lang_of(request, pg, session)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    # the history snapshot and the subscription in the same tick
    hello = pg.hello(session, request[LEVEL])
    pg.port.connect(session, ws)
    await ws.send_json(hello)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = _json_object(msg.data)
            if data is not None:
                await on_event(pg, ws, session, data)
    finally:
        pg.port.disconnect(session, ws)
    return ws


async def on_event(
    pg: Playground, ws: web.WebSocketResponse, session: str, data: dict[str, Any]
) -> None:
    """One thing the page sent: text, a button press, an answer or a language switch."""
    kind = data.get("type")
    if kind == "text":
        reply_to = _int(data.get("reply_to"))
        pg.spawn(pg.on_text(session, str(data.get("text", "")), reply_to=reply_to), session)
    elif kind == "press":
        token = str(data.get("token", ""))

        async def press() -> None:
            notice = await pg.press(session, token)
            if not ws.closed:
                await ws.send_json(notice)

        pg.spawn(press(), session)
    elif kind == "answer":
        ask_id = _int(data.get("ask_message_id"))
        if ask_id is not None:
            text = str(data.get("text", ""))
            pg.spawn(pg.on_text(session, text, reply_to=ask_id), session)
    elif kind == "lang":
        lang = normalize(str(data.get("lang", "")))
        pg.langs[session] = lang
        await ws.send_json({"type": "lang", "lang": lang, "commands": command_list(lang)})
    elif kind == "ping":
        await ws.send_json({"type": "pong"})


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 parses as inf
        return None


def _json_object(text: str | bytes) -> dict[str, Any] | None:
    """A JSON object from the page (or from anyone who posts here), else None: a list, a
    number or nesting deeper than the parser recurses (RecursionError, not a ValueError)
    crashed the handler with a traceback (500, or a closed socket)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


# --- uploads, masks, region images -----------------------------------------------------------


async def upload(request: web.Request) -> web.Response:
    """Images plus a command (``/blend``, ``/describe``...): multipart ``files`` and ``text``.

    Files are checked (size, image header) while they stream in, inside the port's budget;
    nothing is kept before the whole form has passed."""
    pg = playground(request)
    session = session_of(request)
    form = await read_form(request, pg.port, pg.langs.get(session or "", "en"))
    try:
        if _SESSION.match(form.session) and "session" not in request.query:
            session = form.session  # named explicitly: before the browser's cookie
        if session is None:
            raise web.HTTPBadRequest(text="no session")
        if form.lang:
            pg.langs[session] = normalize(form.lang)
    finally:
        form.done(pg.port)  # record_user keeps the images in the budget from here on
    images = form.images
    pg.spawn(pg.on_text(session, form.text, images, _int(form.reply_to)), session)
    return web.json_response({"ok": True, "files": len(images)}, status=202)


async def mask(request: web.Request) -> web.Response:
    """A Vary (Region) answer from the editor: the PNG mask and the prompt for the region.

    The Mini App's proof of who sends it (initData) is inside the body, so the body is read
    before anyone is known: within MASK_BODY, and inside the port's one memory budget while
    it is handled (an unsigned flood is refused with 503 instead of growing the process)."""
    pg = playground(request)
    reserved = 0
    try:
        body = bytearray()
        async for chunk in request.content.iter_chunked(256 * 1024):
            if len(body) + len(chunk) > MASK_BODY:
                raise web.HTTPRequestEntityTooLarge(
                    max_size=MASK_BODY, actual_size=len(body) + len(chunk)
                )
            if not pg.port.reserve(_COPIES * len(chunk)):
                lang = normalize(request.query.get("lang"))
                mb = pg.port.budget // (1024 * 1024)
                raise web.HTTPServiceUnavailable(text=t("web.upload.busy", lang, mb=mb))
            reserved += _COPIES * len(chunk)
            body += chunk
        data = _json_object(bytes(body))
        del body
        if data is None:
            raise web.HTTPBadRequest(text="a JSON object expected")
        return await _mask(request, pg, data)
    finally:
        pg.port.release(reserved)


async def _mask(request: web.Request, pg: Playground, data: dict[str, Any]) -> web.Response:
    ref = str(data.get("ref") or "")
    prompt = str(data.get("prompt") or "")
    if not ref:
        raise web.HTTPBadRequest(text="ref missing")
    png = decode_mask(str(data.get("mask_png") or ""))
    init_data = str(data.get("init_data") or "") or _tma(request)
    req = await requester_of(request, pg, init_data, str(data.get("session") or ""))
    if req.platform != PLATFORM:
        # The Mini App inside Telegram: the user is whoever Telegram's signed initData names.
        await pg.svc.answer_mask(req, ref, png, prompt)
        return web.json_response({"ok": True})
    session = req.chat_id
    if data.get("lang"):
        pg.langs[session] = normalize(str(data["lang"]))
    ask_id = _int(data.get("ask_message_id"))
    own = await pg.port.record_user(session, f"🖌 {prompt}".strip(), [png], ask_id)
    req = pg.requester(session, own)
    await pg.svc.answer_mask(req, ref, png, prompt)
    if ask_id is not None:
        await pg.port.mark_answered(session, ask_id)
    return web.json_response({"ok": True})


def decode_mask(value: str) -> bytes:
    """``data:image/png;base64,...`` -> PNG bytes, refusing anything that is not a PNG."""
    match = _DATA_URI.match(value.strip())
    if not match:
        raise web.HTTPBadRequest(text="mask_png must be a data:image/png;base64 URI")
    try:
        png = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise web.HTTPBadRequest(text="mask_png is not base64") from None
    if not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) > MAX_FILE_BYTES:
        raise web.HTTPBadRequest(text="mask_png is not a PNG")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
    except Exception:
        raise web.HTTPBadRequest(text="mask_png is not a PNG") from None
    return png


async def region_image(request: web.Request) -> web.Response:
    """The image a Vary (Region) question is about, for the editor to draw over: only for the
    task's owner (Telegram's signed initData in ``Authorization: tma``, or a playground session
    with the token)."""
    pg = playground(request)
    ref = request.match_info["ref"]
    who = await requester_of(request, pg, _tma(request), request.query.get("session", ""))
    row = await pg.svc.store.task(ref)
    if row is None:
        raise web.HTTPNotFound()
    if (row.platform, row.user_id) != (who.platform, who.user_id):
        raise web.HTTPForbidden(text="403: this question is someone else's")
    try:
        data = await pg.svc.region_image(ref)
    except (KeyError, LookupError, ValueError):
        raise web.HTTPNotFound() from None
    if not data:
        raise web.HTTPNotFound()
    return web.Response(
        body=data, content_type=sniff(data), headers={"Cache-Control": "private, max-age=600"}
    )


async def requester_of(
    request: web.Request, pg: Playground, init_data: str, session: str = ""
) -> Requester:
    """Who asks: the Telegram user signed initData names, else the playground session of a
    request that carries the token. Raises 401/403 when neither proves anyone."""
    if init_data:
        req = await pg.check_init_data(init_data) if pg.check_init_data else None
        if req is None:
            raise web.HTTPForbidden(text="403: initData not valid")
        return req
    if pg.mini_app_only:
        raise web.HTTPForbidden(text="403: Telegram initData required")
    if request.get(LEVEL, Level.NONE) < Level.CHAT:
        raise unauthorised()
    session = session if _SESSION.match(session) else session_of(request) or ""
    if not _SESSION.match(session):
        raise web.HTTPBadRequest(text="no session")
    return pg.requester(session)


def _tma(request: web.Request) -> str:
    """Telegram Mini App initData sent the usual way: ``Authorization: tma <initData>``."""
    auth = request.headers.get("Authorization", "")
    return auth[4:].strip() if auth[:4].lower() == "tma " else ""


# --- admin -----------------------------------------------------------------------------------


async def admin(request: web.Request) -> web.Response:
    """Everything the admin tab shows, in one JSON document (read-only queries).

    Every user's prompts: the admin token only (the guard checks it)."""
    return web.json_response(
        await admin_report(playground(request)),
        dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
    )


# --- assembly --------------------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path in ("/", "/mask"):
        # Everything ships inside the package: the page loads nothing from elsewhere.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:;"
            " connect-src 'self' ws: wss:; style-src 'self'; script-src 'self';"
            " object-src 'none'; base-uri 'none'"
        )
        response.headers["Cache-Control"] = "no-cache"
    elif request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# Routes open without the token: the package's own files, and the editor page (its data comes
# from routes that check). "/" trades ?token= for the cookie itself.
_OPEN_PATHS = ("/", "/mask")
# Routes where a Telegram Mini App's signed initData may stand in for the token.
_INIT_DATA_PATHS = ("/api/mask", "/api/region/")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host and Origin first (403), then the token each route needs (401/403)."""
    access = playground(request).access
    refusal = access.refusal(request)
    if refusal is not None:
        raise refusal
    level = request[LEVEL] = access.level(request)
    path = request.path
    if path in _OPEN_PATHS or path.startswith("/static/") or path.startswith(_INIT_DATA_PATHS):
        return await handler(request)
    if path.startswith("/api/admin"):
        if level < Level.ADMIN:
            raise unauthorised(admin=level > Level.NONE)
    elif level < Level.CHAT:
        raise unauthorised()
    return await handler(request)


def build_app(pg: Playground) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard, security_headers])
    app[PLAYGROUND] = pg
    app.router.add_get("/", index)
    app.router.add_get("/mask", mask_page)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/media/{blob}", media)
    app.router.add_post("/api/upload", upload)
    app.router.add_post("/api/mask", mask)
    app.router.add_get("/api/region/{ref}/image", region_image)
    app.router.add_get("/api/admin", admin)
    app.router.add_static("/static/", static_dir())
    return app


def build_mini_app(pg: Playground) -> web.Application:
    """Only the mask editor and its two API routes: the Telegram Mini App in production."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[security_headers])
    app[PLAYGROUND] = pg
    app.router.add_get("/mask", mask_page)
    app.router.add_post("/api/mask", mask)
    app.router.add_get("/api/region/{ref}/image", region_image)
    app.router.add_static("/static/", static_dir())
    return app
