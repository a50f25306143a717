"""Images in and out: uploads to validated data URIs, results downloaded and converted.

Uploads are checked by content (Pillow), never by file name. Results are downloaded as soon as
a task succeeds (CDN links expire), streamed with a size cap and retried on transient errors,
and re-encoded as JPEG within the platforms' photo limits; the original bytes stay available
as a document.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from pathlib import Path

import httpx
from PIL import Image, ImageOps

log = logging.getLogger("bot.media")

MAX_DOWNLOAD = 50 * 1024 * 1024
MAX_UPLOAD = 20 * 1024 * 1024  # Telegram's getFile limit; the API wants far less per image
MAX_UPLOAD_PIXELS = 40_000_000  # well below Pillow's bomb guard, above any phone photo
PHOTO_MAX_SIDE = 2560  # keeps w + h <= 10000 and the JPEG far below 10 MB
UPLOAD_MAX_SIDE = 2048  # what we send to the API; MJ re-encodes anything larger anyway


class MediaError(Exception):
    """An upload we refuse or a download that failed; ``reason`` is an i18n key suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Downloader:
    """Fetches result media with bounded concurrency, size cap and retries."""

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        *,
        concurrency: int = 8,
        max_bytes: int = MAX_DOWNLOAD,
        retries: int = 2,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._http = http or httpx.AsyncClient(timeout=30.0, follow_redirects=True)
        self._own = http is None
        self._slots = asyncio.Semaphore(concurrency)
        self.max_bytes = max_bytes
        self.retries = retries
        self.retry_delay_s = retry_delay_s

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def get(self, url: str) -> bytes:
        """The body of ``url``; raises MediaError('download') after the retries."""
        if not url.startswith(("http://", "https://")):
            raise MediaError("download")
        for attempt in range(self.retries + 1):
            try:
                async with self._slots:
                    return await self._get_once(url)
            except MediaError:
                raise
            except (httpx.HTTPError, _Transient) as exc:
                log.info("download attempt %d failed: %s", attempt + 1, type(exc).__name__)
                if attempt < self.retries:
                    await asyncio.sleep(self.retry_delay_s * (attempt + 1))
        raise MediaError("download")

    async def _get_once(self, url: str) -> bytes:
        async with self._http.stream("GET", url) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise _Transient()
            if response.status_code != 200:
                raise MediaError("download")
            size = int(response.headers.get("content-length") or 0)
            if size > self.max_bytes:
                raise MediaError("too_big")
            chunks, total = [], 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > self.max_bytes:
                    raise MediaError("too_big")
                chunks.append(chunk)
            return b"".join(chunks)


class _Transient(Exception):
    pass


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_UPLOAD_PIXELS:
            raise MediaError("too_many_pixels")
        image.load()
    except MediaError:
        raise
    except Image.DecompressionBombError:
        raise MediaError("too_many_pixels") from None
    except Exception:
        raise MediaError("not_image") from None
    return image


def to_jpeg(data: bytes, max_side: int = PHOTO_MAX_SIDE, quality: int = 90) -> bytes:
    """Re-encode any image as an RGB JPEG no larger than ``max_side`` on its long edge."""
    image = _open(data)
    if image.mode not in ("RGB", "L"):
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    # reducing_gap: a fast box reduction first, then the fine filter; no `optimize` pass (it
    # doubles the encode time for a few percent of size). Images already small enough and
    # already RGB are not copied at all: a third of the time for a 2048 px grid.
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), reducing_gap=2.0)
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def looks_like_image(data: bytes) -> bool:
    """Whether the bytes start like an image Pillow knows (reads the header only: cheap)."""
    try:
        with Image.open(io.BytesIO(data)):
            return True
    except Exception:
        return False


def image_size(data: bytes) -> tuple[int, int]:
    return _open(data).size


def upload_data_uri(data: bytes, max_bytes: int = MAX_UPLOAD) -> str:
    """Validate a user's upload by content and turn it into a data URI the API accepts.

    Anything that is not a decodable image, is oversized, or is a decompression bomb raises
    MediaError. Large images are downscaled and sent as JPEG; small PNG/JPEG/WebP pass as-is.
    """
    if len(data) > max_bytes:
        raise MediaError("too_big")
    image = _open(data)
    fmt = (image.format or "").upper()
    upright = image.getexif().get(0x0112, 1) == 1  # no EXIF rotation to apply
    small = max(image.size) <= UPLOAD_MAX_SIDE and len(data) < 4e6
    if fmt in ("PNG", "JPEG", "WEBP") and upright and small:
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"
    jpeg = to_jpeg(_encode_png(ImageOps.exif_transpose(image)), UPLOAD_MAX_SIDE)
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}"


def _encode_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class MediaCache:
    """Result originals on disk, by task key: CDN links expire, buttons and /task do not."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def put(self, key: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.folder / key)  # atomic: a reader never sees half a file

    def get(self, key: str) -> bytes | None:
        path = self.folder / key
        return path.read_bytes() if path.is_file() else None
