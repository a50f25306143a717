"""Deterministic Pillow placeholder art: 2x2 grids, single upscales, blurred previews, swaps.

Everything is derived from a text key (the prompt, plus the path of buttons that led here), so
the same prompt always draws the same picture and an upscale shows the tile it was cut from.
Rendering is CPU work: callers run these functions in a thread.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import textwrap
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

GRID = "grid"
SINGLE = "single"


@dataclass(frozen=True, slots=True)
class ArtSpec:
    """What a result image shows."""

    key: str  # seed of colours and shapes
    caption: str  # the prompt, drawn small
    ratio: tuple[int, int] = (1, 1)  # --ar
    layout: str = GRID  # GRID (2x2, tiles 1..4) or SINGLE (one tile)
    tile: int = 1  # which tile a SINGLE shows
    label: str = ""  # e.g. "Vary (Strong)", drawn in a corner
    variant: str = ""  # path of buttons from the original job: changes the shapes
    hue_tile: int = 0  # variations keep the colours of the tile they came from (0 = own)


def size_for(ratio: tuple[int, int], short_side: int) -> tuple[int, int]:
    """Pixel size with the given aspect ratio whose short side is ``short_side`` (even numbers)."""
    w, h = ratio
    width: float
    height: float
    if w >= h:
        width, height = short_side * w / h, short_side
    else:
        width, height = short_side, short_side * h / w
    return (max(2, int(width) // 2 * 2), max(2, int(height) // 2 * 2))


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError, TypeError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _rgb(h: float, s: float, v: float, alpha: int | None = None) -> tuple[int, ...]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    rgb = (int(r * 255), int(g * 255), int(b * 255))
    return rgb if alpha is None else (*rgb, alpha)


def tile(
    key: str,
    index: int,
    size: tuple[int, int],
    caption: str = "",
    label: str = "",
    variant: str = "",
    hue_tile: int = 0,
) -> Image.Image:
    """One picture of a job: tile ``index`` (1..4) of the job ``key``, at ``size``."""
    w, h = size
    base = _digest(key)
    d = _digest(f"{key}|{variant}#{index}")
    hue = base[0] / 255 + ((hue_tile or index) - 1) * 0.07 + (d[0] - 128) / 3000
    top = _rgb(hue, 0.45 + base[1] / 900, 0.95)
    bottom = _rgb(hue + 0.12 + base[2] / 2550, 0.7, 0.35 + base[3] / 900)

    mask = Image.linear_gradient("L").rotate(d[1] % 40 - 20, expand=False).resize((w, h))
    img = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), mask)

    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    unit = min(w, h)
    for i in range(5):  # a few soft shapes: sun, hills, blobs
        x = d[2 + i] / 255 * w
        y = d[8 + i] / 255 * h
        r = unit * (0.08 + d[14 + i] / 255 * 0.25)
        colour = _rgb(hue + 0.5 * (i % 2) + d[20 + i] / 1000, 0.5, 0.9, 90 + d[26 + i] % 90)
        box = (x - r, y - r, x + r, y + r)
        if i % 3 == 2:
            draw.rectangle(box, fill=colour)
        else:
            draw.ellipse(box, fill=colour)
    horizon = h * (0.55 + d[31] / 255 * 0.25)
    draw.polygon(
        [
            (0, h),
            (0, horizon),
            (w * 0.3, horizon - unit * 0.08),
            (w * 0.65, horizon + unit * 0.04),
            (w, horizon - unit * 0.05),
            (w, h),
        ],
        fill=_rgb(hue + 0.3, 0.4, 0.3, 150),
    )
    img = Image.alpha_composite(img.convert("RGBA"), overlay)
    draw = ImageDraw.Draw(img)

    big = _font(max(10, unit // 5))
    number = str(index)
    pad = unit // 24
    draw.text((pad + 2, pad + 2), number, font=big, fill=(0, 0, 0, 140))
    draw.text((pad, pad), number, font=big, fill=(255, 255, 255, 235))
    small = _font(max(9, unit // 26))
    if label:
        draw.text((w - pad, pad), label, font=small, fill=(255, 255, 255, 230), anchor="ra")
    if caption:
        per_line = max(10, int(w / (small.size * 0.55))) if hasattr(small, "size") else 40
        lines = textwrap.wrap(caption, per_line)[:3]
        line_h = (small.size if hasattr(small, "size") else 11) + 4
        band = line_h * len(lines) + pad
        draw.rectangle((0, h - band - pad // 2, w, h), fill=(0, 0, 0, 110))
        for n, line in enumerate(lines):
            draw.text((pad, h - band + n * line_h), line, font=small, fill=(255, 255, 255, 230))
    return img.convert("RGB")


def tile_of(spec: ArtSpec, index: int, size: tuple[int, int], caption: bool = True) -> Image.Image:
    """Tile ``index`` of the job ``spec`` describes."""
    text = spec.caption if caption else ""
    return tile(spec.key, index, size, text, spec.label, spec.variant, spec.hue_tile)


def render(spec: ArtSpec, short_side: int) -> Image.Image:
    """The full result picture of ``spec``."""
    w, h = size_for(spec.ratio, short_side)
    if spec.layout == SINGLE:
        return tile_of(spec, spec.tile, (w, h))
    grid = Image.new("RGB", (w, h))
    tw, th = w // 2, h // 2
    for n in range(4):
        part = tile_of(spec, n + 1, (tw, th))
        grid.paste(part, ((n % 2) * tw, (n // 2) * th))
    return grid


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=3)
    return out.getvalue()


def webp(image: Image.Image, quality: int = 50) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality)
    return out.getvalue()


def result_png(spec: ArtSpec, short_side: int) -> bytes:
    return png(render(spec, short_side))


def preview_webp(spec: ArtSpec, short_side: int, progress: int) -> bytes:
    """A smaller, blurry version of the result, sharper as ``progress`` (0..100) grows."""
    small = render(spec, max(64, short_side // 4))
    radius = 1 + (100 - max(0, min(100, progress))) / 100 * 10
    return webp(small.filter(ImageFilter.GaussianBlur(radius)), quality=40)


def _open(data: bytes) -> Image.Image | None:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return ImageOps.exif_transpose(img).convert("RGB")
    except Exception:  # any undecodable upload just gets placeholder art
        return None


def image_ratio(data: bytes) -> tuple[int, int]:
    """Rough aspect ratio of an uploaded image, as /describe reports it (1:1 if unreadable)."""
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            w, h = img.size
    except Exception:
        return (1, 1)
    if not w or not h:
        return (1, 1)
    best = min(
        ((a, b) for a in range(1, 17) for b in range(1, 17)),
        key=lambda ab: (abs(ab[0] / ab[1] - w / h), ab[0] + ab[1]),
    )
    return best


def swap_png(source: bytes, target: bytes, fallback: ArtSpec, short_side: int) -> bytes:
    """The target picture with the source face pasted in a circle (placeholder when unreadable)."""
    face, canvas = _open(source), _open(target)
    if canvas is None:
        canvas = render(fallback, short_side)
    canvas.thumbnail((short_side * 2, short_side * 2))
    if face is not None:
        side = max(8, min(canvas.size) // 3)
        face = ImageOps.fit(face, (side, side))
        circle = Image.new("L", (side, side), 0)
        ImageDraw.Draw(circle).ellipse((0, 0, side - 1, side - 1), fill=255)
        canvas.paste(face, ((canvas.width - side) // 2, canvas.height // 6), circle)
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (8, 8), "face swap", font=_font(max(10, min(canvas.size) // 24)), fill=(255, 255, 255)
    )
    return png(canvas)
