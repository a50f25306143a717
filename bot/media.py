"""Images in and out: uploads to validated data URIs, results downloaded and converted.

Uploads are checked by content (Pillow), never by file name. Results are downloaded as soon as
a task succeeds (CDN links expire), streamed with a size cap and retried on transient errors,
and posted as they are when small and plain enough (``to_photo``), else re-encoded as JPEG
within the platforms' photo limits; the original bytes stay available as a document.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import struct
from pathlib import Path

import aiohttp
from PIL import Image
from yarl import URL

from bot.egress import CheckedSession, Egress, Refused, endpoint

log = logging.getLogger("bot.media")

MAX_DOWNLOAD = 50 * 1024 * 1024
# Early downloads (Downloader.prefetch): how many may be held at once (a confirmation covers
# 3-4 results at ten a second), and for how long.
PREFETCH_SLOTS = 4
PREFETCH_KEEP_S = 30.0
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
_EXIF_ORIENTATION = 0x0112  # the tag a viewer rotates by
_REDIRECTS = (301, 302, 303, 307, 308)


class MediaError(Exception):
    """An upload we refuse or a download that failed; ``reason`` is an i18n key suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _retrieved(task: asyncio.Task[bytes]) -> None:
    """An early download nobody took: its error is not worth a warning at exit."""
    if not task.cancelled():
        task.exception()


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
        self._http = CheckedSession(self.egress, timeout_s=timeout_s)
        self._slots = asyncio.Semaphore(concurrency)
        self.max_bytes = max_bytes
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.deadline_s = deadline_s
        self._early: dict[str, tuple[float, asyncio.Task[bytes]]] = {}  # url -> (when, download)

    async def aclose(self) -> None:
        for _, early in self._early.values():
            early.cancel()
        await asyncio.gather(*(early for _, early in self._early.values()), return_exceptions=True)
        self._early.clear()
        await self._http.aclose()

    def prefetch(self, url: str) -> None:
        """Start downloading ``url`` now; the next ``get(url)`` takes what it got (once).

        For a result image while the callback that named it is being confirmed: the download
        overlaps the confirmation instead of following it. The bytes are only ever used for
        this same URL, so a URL a forged callback named is fetched (within the egress rules)
        but never shown unless the API itself answers with it. At most PREFETCH_SLOTS are held,
        each for PREFETCH_KEEP_S; beyond that nothing is fetched early."""
        now = asyncio.get_running_loop().time()
        for stale in [u for u, (at, _) in self._early.items() if now - at > PREFETCH_KEEP_S]:
            self._early.pop(stale)[1].cancel()
        if url in self._early or len(self._early) >= PREFETCH_SLOTS:
            return
        early = asyncio.ensure_future(self._download(url))
        early.add_done_callback(_retrieved)
        self._early[url] = (now, early)

    async def get(self, url: str) -> bytes:
        """The body of ``url``; raises MediaError('download' or 'too_big') when refused,
        failed after the retries, or not done by the deadline."""
        held = self._early.pop(url, None)
        if held is not None:
            try:
                return await held[1]
            except MediaError:
                pass  # the early attempt failed: try again, as if it never happened
        return await self._download(url)

    async def _download(self, url: str) -> bytes:
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
            except (aiohttp.ClientError, TimeoutError, _Transient) as exc:
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
            async with self._http.get(url) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    try:
                        url = str(response.url.join(URL(location)))
                    except ValueError:
                        raise MediaError("download") from None
                    continue
                return await self._body(response)
        log.info("download gave up after %d redirects", MAX_REDIRECTS)
        raise MediaError("download")

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        if response.status >= 500 or response.status == 429:
            raise _Transient()
        if response.status != 200:
            raise MediaError("download")
        try:
            size = int(response.headers.get("content-length") or 0)
        except ValueError:
            size = 0
        if size > self.max_bytes:
            raise MediaError("too_big")
        chunks, total = [], 0
        async for chunk in response.content.iter_any():
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


def decode(data: bytes, max_side: int, *, fast: bool = False) -> Image.Image:
    """The pixels of an image as a viewer shows them (EXIF rotation applied), at most
    ``max_side`` on the long edge, in RGB, RGBA, L, LA or CMYK; refused from the header alone
    when it has too many pixels.

    JPEGs are decoded already reduced (libjpeg's 1/2, 1/4, 1/8 scaling: a fraction of the
    memory and time; the result may then be up to 10 % under ``max_side``); everything else
    is decoded whole (at most MAX_PIXELS), then shrunk a band at a time (bicubic).

    ``fast`` (previews): an RGB or greyscale image is first box-averaged by a whole factor
    (``Image.reduce``) to within ``_PREVIEW_GAP`` of its size, then shrunk bilinear: about
    half the time of a bicubic shrink from 2048 px to 640, within ~45 dB of it
    (bench/convert.py measures both).
    """
    image = _open(data)
    if image.format == "JPEG" and max(image.size) >= 2 * max_side:
        # asked for 10 % under max_side: an 8000 px photo then decodes at 1/4 (2000 px,
        # 12 MB) rather than at 1/2 (4000 px, 48 MB) only to be shrunk to 2048 px after
        scale = max(image.size) / (max_side * 0.9)
        image.draft(None, (int(image.width / scale), int(image.height / scale)))
    _check_pixels(image)
    try:
        image.load()
        # after load: free for every format
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        mode = _working_mode(image)
        size = _fit(image.size, max_side)
        resample = Image.Resampling.BICUBIC
        if fast:
            resample = Image.Resampling.BILINEAR
            factor = int(max(image.size) / max(size) / _PREVIEW_GAP)
            # not with alpha: Pillow's reduce premultiplies into a full-size copy first
            if factor >= 2 and image.mode == mode and mode in ("RGB", "L"):
                image = image.reduce(factor)
        if size != image.size or image.mode != mode:
            image = _shrunk(image, mode, size, resample)
        if orientation in _ROTATIONS:
            image = image.transpose(_ROTATIONS[orientation])
    except MediaError:
        raise
    except Exception:  # truncated, corrupt, or a mode Pillow cannot convert
        raise MediaError("not_image") from None
    return image


_ROTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_BAND_ROWS = 64
_BICUBIC_SUPPORT = 2.0  # source pixels the bicubic filter reaches, per output pixel of scale
# A preview is box-reduced to at most this much over its size before the last (bilinear)
# step: 2048 px -> 640 goes 2048 -> 1024 (reduce) -> 640.
_PREVIEW_GAP = 1.5


def _working_mode(image: Image.Image) -> str:
    """What we work in: the image's own mode when it is a plain one; palettes, 16-bit and
    the like widened (with alpha when they have transparency)."""
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image.mode
    transparent = "A" in image.mode or "a" in image.mode or "transparency" in image.info
    return "RGBA" if transparent else "RGB"


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    if max(size) <= max_side:
        return size
    scale = max_side / max(size)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrunk(
    image: Image.Image,
    mode: str,
    size: tuple[int, int],
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> Image.Image:
    """``image`` converted to ``mode`` and resized to ``size`` (bicubic unless ``resample``
    says otherwise: its reach is within bicubic's), a band of rows at a time.

    Done on the whole image, conversions and Pillow's resize of RGBA (it premultiplies into a
    full-size copy, then keeps a full-height intermediate) held two more copies of a 67 MB
    image. Each band is cut with a margin wider than the filter's reach, so its rows come out
    exactly as they would from the whole image.
    """
    width, height = image.size
    out = Image.new(mode, size)
    scale = height / size[1]
    margin = math.ceil(_BICUBIC_SUPPORT * max(scale, 1.0)) + 2
    for top in range(0, size[1], _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, size[1])
        if size == image.size:  # a conversion only
            band = image.crop((0, top, width, bottom)).convert(mode)
        else:
            y0, y1 = top * scale, bottom * scale
            cut = (max(0, int(y0) - margin), min(height, math.ceil(y1) + margin))
            band = image.crop((0, cut[0], width, cut[1]))
            if band.mode != mode:
                band = band.convert(mode)
            box = (0.0, y0 - cut[0], float(width), y1 - cut[0])
            band = band.resize((size[0], bottom - top), resample, box=box)
        out.paste(band, (0, top))
    return out


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


def to_jpeg(
    data: bytes, max_side: int = PHOTO_MAX_SIDE, quality: int = 90, *, fast: bool = False
) -> bytes:
    """Re-encode any image as an RGB JPEG no larger than ``max_side`` on its long edge
    (``fast``: shrunk the cheaper way previews are, see ``decode``)."""
    image = decode(data, max_side, fast=fast)
    try:
        image = _flatten(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
        out = io.BytesIO()
        # no `optimize` pass: it doubles the encode time for a few percent of size
        image.save(out, "JPEG", quality=quality)
    except Exception:
        raise MediaError("not_image") from None
    return out.getvalue()


# A result's photo is its original when that is already a photo every platform takes and
# small: the default is media.photo_as_is_max_kb (config). Real Midjourney grids (2048 px
# PNGs of 6-8 MB) stay above it and are converted: whole, each would be ~6x the upload.
PHOTO_AS_IS_MAX_BYTES = 1024 * 1024


def to_photo(data: bytes, as_is_max_bytes: int = PHOTO_AS_IS_MAX_BYTES) -> tuple[bytes, str]:
    """A result's photo and its file extension: the original itself when it is a PNG or JPEG
    the platforms show as it is (see ``_postable``) of at most ``as_is_max_bytes``, else
    ``to_jpeg``.

    Why not always convert: decoding a 2048 px PNG and encoding its JPEG was half of one
    instance's CPU (py-spy, bench/run.py), and for a small original it buys nothing: the
    upload is no smaller, and the picture loses a generation.
    """
    if len(data) <= as_is_max_bytes and _postable(data):
        return data, "png" if data.startswith(b"\x89PNG") else "jpg"
    return to_jpeg(data), "jpg"


def _postable(data: bytes) -> bool:
    """Whether ``data`` can go to a platform as a photo unchanged: a PNG or JPEG in RGB or
    greyscale (transparency is flattened onto white by ``to_jpeg``; a platform might choose
    black), within PHOTO_MAX_SIDE, with no EXIF rotation to apply, and whole (a PNG's chunks
    all pass their CRC, a JPEG ends with its end marker): damage is left to ``to_jpeg`` to
    refuse, rather than to the platform to refuse the post again on every retry."""
    try:
        image = _open(data)
        if image.format not in ("PNG", "JPEG") or image.mode not in ("RGB", "L"):
            return False
        if max(image.size) > PHOTO_MAX_SIDE:
            return False
        if image.format == "JPEG":
            return image.getexif().get(_EXIF_ORIENTATION, 1) == 1 and data.endswith(b"\xff\xd9")
        # Every chunk read and its CRC checked; no pixels decoded. (A PNG's orientation, an
        # eXIf chunk, is rare and read only after decoding: Midjourney writes none.)
        image.verify()
    except Exception:
        return False
    return True


PREVIEW_MAX_SIDE = 640  # a progress message's picture: small, replaced within seconds
PREVIEW_QUALITY = 70


def to_preview(data: bytes) -> bytes:
    """A progress preview as a small JPEG (PREVIEW_MAX_SIDE, PREVIEW_QUALITY), shrunk the
    fast way: it is shown for seconds and replaced by the result."""
    return to_jpeg(data, PREVIEW_MAX_SIDE, PREVIEW_QUALITY, fast=True)


THUMB_MAX_SIDE = 320  # Telegram: a thumbnail is a JPEG under 200 kB, at most 320 px a side


def to_thumbnail(data: bytes) -> bytes:
    """A video's thumbnail (its cover or first frame) as Telegram takes one: a small JPEG."""
    return to_jpeg(data, THUMB_MAX_SIDE, quality=80)


def mp4_seconds(data: bytes) -> float | None:
    """A clip's length from its movie header (moov/mvhd: duration / timescale), without
    decoding anything; None when the bytes are no MP4 we can read."""
    moov = _box(data, b"moov")
    mvhd = _box(moov, b"mvhd") if moov is not None else None
    if mvhd is None or len(mvhd) < 32:
        return None
    if mvhd[0] == 1:  # version 1: 64-bit times
        timescale, duration = struct.unpack(">IQ", mvhd[20:32])
    else:
        timescale, duration = struct.unpack(">II", mvhd[12:20])
    return duration / timescale if timescale else None


def _box(data: bytes, kind: bytes) -> bytes | None:
    """The payload of the first top-level ``kind`` box in ``data`` (ISO BMFF)."""
    at = 0
    while at + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[at : at + 8])
        head = 8
        if size == 1 and at + 16 <= len(data):  # a 64-bit size follows
            size, head = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif size == 0:  # to the end of the file
            size = len(data) - at
        if size < head:
            return None
        if name == kind:
            return data[at + head : at + size]
        at += size
    return None


# Magic numbers: (offset, bytes, content type). Uploads and results are never trusted by name.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (4, b"ftyp", "video/mp4"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
)


def sniff(data: bytes) -> str:
    """The content type the first bytes show, "" when they show none we know (the one file
    sniffer: a cheap look at the header; ``looks_like_image`` asks Pillow)."""
    head = bytes(data[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for at, magic, kind in _MAGIC if head[at : at + len(magic)] == magic), "")


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
    if fmt in _PASS_AS_IS and image.mode in _PASS_MODES and small:
        try:
            image.load()  # proves it decodes; at most 2048 px by the checks above
        except Exception:
            raise MediaError("not_image") from None
        if image.getexif().get(_EXIF_ORIENTATION, 1) == 1:  # no EXIF rotation to apply
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
