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

from bot.egress import Egress, Refused, checked_client, endpoint

log = logging.getLogger("bot.media")

MAX_DOWNLOAD = 50 * 1024 * 1024
MAX_UPLOAD = 20 * 1024 * 1024  # Telegram's getFile limit; the API wants far less per image
# Pixels we decode at most: Midjourney's largest output (a 4x upscale) is 4096 x 4096, and we
# send the API 2048 px anyway. A 16.8 Mpx RGBA image is 67 MB decoded; 40 Mpx (a 164 KB PNG
# can claim that) was 650 MB through the old conversions. JPEGs are decoded reduced (1/2, 1/4,
# 1/8) by libjpeg first, so a 48 Mpx phone photo costs a quarter of that and passes.
MAX_PIXELS = 4096 * 4096
PHOTO_MAX_SIDE = 2560  # keeps w + h <= 10000 and the JPEG far below 10 MB
UPLOAD_MAX_SIDE = 2048  # what we send to the API; MJ re-encodes anything larger anyway
DOWNLOAD_DEADLINE_S = 60.0  # one download, all hops and retries: a slow drip is cut here
MAX_REDIRECTS = 5
_PASS_AS_IS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_PASS_MODES = ("RGB", "RGBA", "L", "LA", "P")  # CMYK and the like are re-encoded


class MediaError(Exception):
    """An upload we refuse or a download that failed; ``reason`` is an i18n key suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Downloader:
    """Fetches result media: public addresses only (bot/egress.py), redirects followed by
    hand and each hop checked, one deadline for the whole download, size capped while
    streaming, transient errors retried, bounded concurrency."""

    def __init__(
        self,
        egress: Egress | None = None,
        *,
        concurrency: int = 8,
        max_bytes: int = MAX_DOWNLOAD,
        retries: int = 2,
        retry_delay_s: float = 0.5,
        deadline_s: float = DOWNLOAD_DEADLINE_S,
        timeout_s: float = 30.0,
    ) -> None:
        self.egress = egress or Egress()
        self._http = checked_client(self.egress, timeout_s=timeout_s)
        self._slots = asyncio.Semaphore(concurrency)
        self.max_bytes = max_bytes
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.deadline_s = deadline_s

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self, url: str) -> bytes:
        """The body of ``url``; raises MediaError('download' or 'too_big') when refused,
        failed after the retries, or not done by the deadline."""
        async with self._slots:
            try:
                async with asyncio.timeout(self.deadline_s):
                    return await self._get(url)
            except TimeoutError:
                log.info("download cut at its %.0f s deadline", self.deadline_s)
                raise MediaError("download") from None

    async def _get(self, url: str) -> bytes:
        for attempt in range(self.retries + 1):
            try:
                return await self._follow(url)
            except Refused as exc:
                log.warning(
                    "download refused: %s (list it in media.allow_private_hosts if it is yours)",
                    exc,
                )
                raise MediaError("download") from None
            except (httpx.HTTPError, _Transient) as exc:
                log.info("download attempt %d failed: %s", attempt + 1, type(exc).__name__)
                if attempt < self.retries:
                    await asyncio.sleep(self.retry_delay_s * (attempt + 1))
        raise MediaError("download")

    async def _follow(self, url: str) -> bytes:
        """One attempt: redirects followed by hand (each hop connects through the egress
        rule), at most MAX_REDIRECTS of them."""
        for _ in range(MAX_REDIRECTS + 1):
            if endpoint(url) is None:
                raise MediaError("download")  # file:, data:, ftp: or junk
            async with self._http.stream("GET", url) as response:
                if response.has_redirect_location:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                return await self._body(response)
        log.info("download gave up after %d redirects", MAX_REDIRECTS)
        raise MediaError("download")

    async def _body(self, response: httpx.Response) -> bytes:
        if response.status_code >= 500 or response.status_code == 429:
            raise _Transient()
        if response.status_code != 200:
            raise MediaError("download")
        try:
            size = int(response.headers.get("content-length") or 0)
        except ValueError:
            size = 0
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
    """The image's header only (Pillow opens lazily): format, mode and size, no pixels."""
    try:
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("too_many_pixels") from None
    except Exception:
        raise MediaError("not_image") from None


def _check_pixels(image: Image.Image) -> None:
    if image.width * image.height > MAX_PIXELS:
        raise MediaError("too_many_pixels")


def decode(data: bytes, max_side: int) -> Image.Image:
    """The pixels of an image, at most ``max_side`` on the long edge (mode kept, palette and
    odd modes widened); refused from the header alone when it has too many pixels.

    JPEGs are decoded already reduced (libjpeg's 1/2, 1/4, 1/8 scaling: a fraction of the
    memory and time); everything else is decoded whole (at most MAX_PIXELS), then reduced.
    """
    image = _open(data)
    if image.format == "JPEG" and max(image.size) >= 2 * max_side:
        scale = max(image.size) / max_side
        image.draft(None, (int(image.width / scale), int(image.height / scale)))
    _check_pixels(image)
    try:
        image.load()
        if image.mode in ("P", "PA", "1", "I", "I;16", "I;16B", "I;16L", "F", "La", "RGBa"):
            transparent = "A" in image.mode or "a" in image.mode or "transparency" in image.info
            image = image.convert("RGBA" if transparent else "RGB")
        factor = max(image.size) // max_side
        if factor >= 2:
            # a box reduction allocates only its output (the two-pass resize of a 4096 px
            # image allocated 48 MB more): the fine filter then works on the small image
            image = image.reduce(factor)
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), reducing_gap=None)
    except MediaError:
        raise
    except Exception:  # truncated, corrupt, or a mode Pillow cannot convert
        raise MediaError("not_image") from None
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB (or L) for JPEG: transparency onto white, CMYK and the like converted."""
    if image.mode in ("RGB", "L"):
        return image
    if "A" in image.mode:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def to_jpeg(data: bytes, max_side: int = PHOTO_MAX_SIDE, quality: int = 90) -> bytes:
    """Re-encode any image as an RGB JPEG no larger than ``max_side`` on its long edge."""
    image = decode(data, max_side)
    try:
        ImageOps.exif_transpose(image, in_place=True)
        image = _flatten(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
        out = io.BytesIO()
        # no `optimize` pass: it doubles the encode time for a few percent of size
        image.save(out, "JPEG", quality=quality)
    except Exception:
        raise MediaError("not_image") from None
    return out.getvalue()


def looks_like_image(data: bytes) -> bool:
    """Whether the bytes start like an image Pillow knows (reads the header only: cheap)."""
    try:
        with Image.open(io.BytesIO(data)):
            return True
    except Exception:
        return False


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header (no decoding); too many pixels is refused."""
    image = _open(data)
    _check_pixels(image)
    return image.size


def upload_data_uri(data: bytes, max_bytes: int = MAX_UPLOAD) -> str:
    """Validate a user's upload by content and turn it into a data URI the API accepts.

    Anything that is not a decodable image, is oversized, or is a decompression bomb raises
    MediaError. Large images are downscaled and sent as JPEG; small PNG/JPEG/WebP pass as-is.
    """
    if len(data) > max_bytes:
        raise MediaError("too_big")
    image = _open(data)
    fmt = (image.format or "").upper()
    small = max(image.size) <= UPLOAD_MAX_SIDE and len(data) < 4e6
    # getexif() decodes a whole PNG (its EXIF may follow the pixels): only asked of small ones
    if (
        fmt in _PASS_AS_IS
        and image.mode in _PASS_MODES
        and small
        and image.getexif().get(0x0112, 1) == 1  # no EXIF rotation to apply
    ):
        decode(data, UPLOAD_MAX_SIDE)  # proves it decodes; small by the checks above
        return f"data:{_PASS_AS_IS[fmt]};base64,{base64.b64encode(data).decode()}"
    jpeg = to_jpeg(data, UPLOAD_MAX_SIDE)
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}"


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
