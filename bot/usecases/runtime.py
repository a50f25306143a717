"""What the use cases share besides the store and the outbox: work that runs after the user
is answered, the bounded pool all image work runs in, and where result media comes from."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot import media
from bot.mj.client import MjClient

T = TypeVar("T")

IMAGE_WORKERS = 2  # image conversions at once (bench/hostile_uploads.py measures the peak)


class Runtime:
    """Background work and the image pool, one per Service; also the ``results.Sources``
    the result views are built from (the client's hidden buttons, the cache, the downloader).
    """

    def __init__(
        self,
        client: MjClient,
        downloader: media.Downloader,
        cache: media.MediaCache | None,
        *,
        photo_as_is_max_bytes: int = media.PHOTO_AS_IS_MAX_BYTES,
    ) -> None:
        self.client = client
        self.downloader = downloader
        self.cache = cache
        self.photo_as_is_max_bytes = photo_as_is_max_bytes  # media.to_photo
        self._background: set[asyncio.Task[Any]] = set()
        # All image work (uploads, results, masks, previews) runs here, two at a time: under
        # load this bounds memory and keeps threads from starving the event loop. A pool of
        # its own, not the shared default executor: decoding big grids in many threads at
        # once drove peak memory up in the benchmark (251 -> 186 MB); with decoding capped
        # at media.MAX_PIXELS two conversions at once stay under ~170 MB.
        self._images = ThreadPoolExecutor(max_workers=IMAGE_WORKERS, thread_name_prefix="images")

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work after answering the user (a press is acknowledged before the submit)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def convert(self, function: Callable[..., T], *args: Any) -> T:
        """Run image work (bot.media, bot.mask) off the event loop in the bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._images, functools.partial(function, *args))

    async def close(self, grace_s: float = 10.0) -> None:
        """Let work in flight (submits, results being posted) finish, for a while: what is
        cut off is picked up by the next start (interrupted submits, unposted results)."""
        if self._background:
            _, late = await asyncio.wait(self._background, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._images.shutdown(wait=False, cancel_futures=True)
