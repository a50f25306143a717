"""Photos kept for a later answer: state, not a cache, so they live in the store.

A question's answer, or a press on a held prompt's buttons, may reach any instance behind the
load balancer; a photo kept in one instance's media folder is missing on the others (a
face-first /swap answered elsewhere used to run with one photo). What is kept here:

- ``face-<key>``: the face of a face-first /swap, until the target photo comes;
- ``start-<key>``: /video's first frame, until its end frame comes;
- ``held-<key>-<n>``: the photos of a prompt the check held, until it is sent or dropped;
- ``ref-<key>``: a reference the provider gave no URL (sent as an image prompt);
- ``pic-<key>``: a picture the studio's ✏️/🖼 asked a prompt for.

Result originals stay in the per-instance ``media.MediaCache``: a miss there downloads again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot import media
from bot.store import KEPT_MAX_BYTES, Store

log = logging.getLogger("bot.kept")

# How long a photo waits for its answer. Questions are answered in minutes; a day lets a
# user come back to one, and then the photo goes (the answer says the question expired).
KEPT_FOR_S = 86400.0
# A reference without a URL is used by every following prompt: kept this long after its
# last use (each prompt that sends it renews it).
REFERENCE_KEPT_FOR_S = 30 * 86400.0

Convert = Callable[..., Awaitable[Any]]


class Kept:
    """The one door to kept photos for the use cases: ``put`` and ``get`` by name."""

    def __init__(
        self, store: Store, convert: Convert, *, legacy: media.MediaCache | None = None
    ) -> None:
        self.store = store
        self.convert = convert  # image work in the runtime's bounded pool
        # The media folder where versions before the store kept them (read once, then moved
        # into the store): a reference kept that way still works after the upgrade.
        self.legacy = legacy

    async def put(self, name: str, data: bytes, *, keep_for_s: float = KEPT_FOR_S) -> None:
        """Keep ``data`` under ``name``. A photo over the store's cap is kept as what the API
        would be sent anyway (``media.upload_data_uri`` turns it into the same JPEG); raises
        ``media.MediaError`` when it is no image, or still too big."""
        if len(data) > KEPT_MAX_BYTES:
            data = await self.convert(media.to_jpeg, data, media.UPLOAD_MAX_SIDE)
            if len(data) > KEPT_MAX_BYTES:
                raise media.MediaError("too_big")
        await self.store.keep_photo(name, data, keep_for_s)

    async def get(self, name: str, *, renew_for_s: float | None = None) -> bytes | None:
        """The photo kept under ``name``; None when it is gone (expired, or never kept)."""
        data = await self.store.kept_photo(name, renew_for_s=renew_for_s)
        if data is None and self.legacy is not None and _plain(name):
            data = await asyncio.to_thread(self.legacy.get, name)
            if data is not None:
                try:
                    await self.put(name, data, keep_for_s=renew_for_s or KEPT_FOR_S)
                except media.MediaError:
                    return None
                log.info("a photo kept in the media folder moved into the store")
        return data


def _plain(name: str) -> bool:
    """A name that is a file name in the media folder, nothing more (no path)."""
    return name.replace("-", "").isalnum()
