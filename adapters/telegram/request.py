"""python-telegram-bot's HTTP calls over aiohttp instead of its default httpx.

Why: Telegram's calls were the largest part of one instance's CPU once the result photo
stopped being converted (py-spy over ``bench/run.py``), and half of that was httpx and
httpcore. Through aiohttp, which mjbot already uses for its servers, a call costs ~1.4 ms of
CPU against ~2.4 (sendMessage; ``python -m bench.http_clients`` measures both).

What stays as PTB's ``HTTPXRequest`` did it: the same default timeouts (a longer write for
uploads), form fields url-encoded and files as multipart, proxies from the environment
(``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, as httpx reads them), certifi's CA roots, and
PTB's errors: ``TimedOut`` for a timeout, ``NetworkError`` for anything else on the wire.

The environment's proxy is looked up once per origin, not per call: aiohttp's ``trust_env``
reads the environment and ``~/.netrc`` on every request, in a worker thread each time (py-spy
showed those threads and their hand-offs beside every call). Telegram's calls all go to one
origin. ``~/.netrc`` is not read: httpx did not read it for proxies either.
"""

from __future__ import annotations

import ssl
from urllib.request import getproxies, proxy_bypass

import aiohttp
import certifi
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

# HTTPXRequest's defaults (python-telegram-bot 22)
CONNECT_S = 5.0
READ_S = 5.0
WRITE_S = 5.0
POOL_S = 1.0
MEDIA_WRITE_S = 20.0

_Timeout = float | None


class AiohttpRequest(BaseRequest):
    """One aiohttp session (its connection pool) for the bot's calls, or for long polling."""

    def __init__(
        self,
        connection_pool_size: int = 256,
        *,
        read_timeout: _Timeout = READ_S,
        connect_timeout: _Timeout = CONNECT_S,
        write_timeout: _Timeout = WRITE_S,
        pool_timeout: _Timeout = POOL_S,
        media_write_timeout: _Timeout = MEDIA_WRITE_S,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read, self._connect, self._pool = read_timeout, connect_timeout, pool_timeout
        self._write, self._media_write = write_timeout, media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}  # origin -> its proxy from the environment

    @property
    def read_timeout(self) -> float | None:
        return self._read

    @property
    def closed(self) -> bool:
        """No connection of its own is open: never initialized, or shut down."""
        return self._session is None or self._session.closed

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # certifi's roots, as httpx: a slim image may have no system store
                connector=aiohttp.TCPConnector(
                    limit=self._pool_size,
                    ssl=ssl.create_default_context(cafile=certifi.where()),
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # the environment's proxy is looked up once (_proxy_for)
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data and request_data.contains_files else {}
        fields = request_data.json_parameters if request_data else {}
        body: aiohttp.FormData | dict[str, str] | None = fields or None
        if files:
            form = aiohttp.FormData(fields)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        read = _given(read_timeout, self._read)
        connect = _given(connect_timeout, self._connect)
        pool = _given(pool_timeout, self._pool)
        write = _given(write_timeout, self._media_write if files else self._write)
        # aiohttp has no write timeout: the whole call is bounded by the sum of the four
        # (none of them set: unbounded, as httpx was)
        parts = (read, connect, pool, write)
        timeout = aiohttp.ClientTimeout(
            total=None if None in parts else sum(p for p in parts if p is not None),
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        proxy = self._proxy_for(url)
        try:
            async with session.request(
                method, url, data=body, timeout=timeout, proxy=proxy
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's own timeouts subclass it too
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy_for(self, url: str) -> str | None:
        """The environment's proxy for ``url``'s origin (``NO_PROXY`` honoured, credentials
        from the proxy's URL), as httpx read it; looked up once per origin."""
        origin = "/".join(url.split("/", 3)[:3])  # scheme://host[:port]
        if origin not in self._proxies:
            self._proxies[origin] = _env_proxy(URL(url))
        return self._proxies[origin]


def _env_proxy(target: URL) -> str | None:
    # A user:password in the proxy's URL is sent as Proxy-Authorization by aiohttp itself.
    found = getproxies().get(target.scheme)
    return None if not found or proxy_bypass(target.host or "") else found


def _given(value: object, default: _Timeout) -> _Timeout:
    """A timeout the call passed (a number or None), else this request's default."""
    if isinstance(value, int | float) or value is None:
        return float(value) if value is not None else None
    return default  # PTB's DEFAULT_NONE and friends: not given
