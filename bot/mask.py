"""Vary (Region) masks: what to repaint, as the PNG the API wants (black keep, white repaint).

Three ways in, one way out: grid cells named in a chat reply (``1 2 5``, ``top left``), vector
shapes from the mask editor (normalised rectangles and polygons), or a mask image the user
drew. All become a black/white PNG at the target image's pixel size (mj-api.md §10.1).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bot import media

GRID = 3
_WORDS = {
    "top": (0,),
    "middle": (1,),
    "center": (1,),
    "centre": (1,),
    "bottom": (2,),
    "上": (0,),
    "中": (1,),
    "下": (2,),
}
_COLUMNS = {"left": (0,), "right": (2,), "左": (0,), "右": (2,)}


def parse_cells(text: str) -> set[int]:
    """Cells 1-9 (row-major) named in text: digits, or words like "top left", "bottom"."""
    cells = {int(d) for d in re.findall(r"[1-9]", text)}
    lowered = text.lower()
    for phrase in re.split(r"[,;，、\n]+", lowered):
        rows = {r for word, rs in _WORDS.items() if word in phrase for r in rs}
        cols = {c for word, cs in _COLUMNS.items() if word in phrase for c in cs}
        if not rows and not cols:
            continue
        rows = rows or {0, 1, 2}
        cols = cols or {0, 1, 2}
        cells |= {r * GRID + c + 1 for r in rows for c in cols}
    return cells


def cells_mask(size: tuple[int, int], cells: Iterable[int]) -> bytes:
    width, height = size
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    for cell in cells:
        row, col = divmod(cell - 1, GRID)
        box = (
            col * width // GRID,
            row * height // GRID,
            (col + 1) * width // GRID - 1,
            (row + 1) * height // GRID - 1,
        )
        draw.rectangle(box, fill=255)
    return _png(image)


def shapes_mask(size: tuple[int, int], shapes: Sequence[dict[str, Any]]) -> bytes:
    """Rasterise editor shapes: {"type": "rect", "x","y","w","h"} or {"type": "poly",
    "points": [[x, y], ...]}, all coordinates normalised to 0..1."""
    width, height = size
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        if shape.get("type") == "rect":
            x, y = float(shape["x"]) * width, float(shape["y"]) * height
            w, h = float(shape["w"]) * width, float(shape["h"]) * height
            draw.rectangle((min(x, x + w), min(y, y + h), max(x, x + w), max(y, y + h)), 255)
        elif shape.get("type") == "poly" and len(shape.get("points", [])) >= 3:
            points = [(float(px) * width, float(py) * height) for px, py in shape["points"]]
            draw.polygon(points, fill=255)
    return _png(image)


def normalise_mask(data: bytes, size: tuple[int, int]) -> bytes:
    """A user-supplied mask image -> pure black/white at ``size`` (light = repaint).

    Decoded like any upload (bot.media: pixel cap from the header, reduced on load), so a
    mask cannot be a decompression bomb either; raises MediaError."""
    image = media.decode(data, max(size)).convert("L").resize(size)
    return _png(image.point(lambda v: 255 if v >= 128 else 0))


def is_empty(mask_png: bytes) -> bool:
    return Image.open(io.BytesIO(mask_png)).convert("L").getbbox() is None


def labelled_grid(data: bytes, max_side: int = 1024) -> bytes:
    """The image with a numbered 3x3 grid drawn over it, for the cell-picking fallback."""
    image = media.decode(data, max_side).convert("RGB")
    draw = ImageDraw.Draw(image, "RGBA")
    width, height = image.size
    font = ImageFont.load_default(size=max(18, min(width, height) // 10))
    for i in range(1, GRID):
        draw.line((i * width // GRID, 0, i * width // GRID, height), (255, 255, 255, 200), 3)
        draw.line((0, i * height // GRID, width, i * height // GRID), (255, 255, 255, 200), 3)
    for cell in range(1, GRID * GRID + 1):
        row, col = divmod(cell - 1, GRID)
        cx = col * width // GRID + width // (2 * GRID)
        cy = row * height // GRID + height // (2 * GRID)
        draw.text(
            (cx, cy),
            str(cell),
            font=font,
            fill=(255, 255, 255, 230),
            anchor="mm",
            stroke_width=3,
            stroke_fill=(0, 0, 0, 200),
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("L").save(out, "PNG")
    return out.getvalue()


_CELL_WORD = re.compile(
    r"^(?:[1-9]|top|middle|center|centre|bottom|left|right|上|中|下|左|右|and|,|，|、)$", re.I
)


def split_answer(text: str) -> tuple[str, str]:
    """ "1 2 5 a cat in a hat" -> ("1 2 5", "a cat in a hat"): leading cell words, then prompt."""
    words = (text or "").replace(",", " , ").split()
    cut = 0
    while cut < len(words) and _CELL_WORD.match(words[cut]):
        cut += 1
    return " ".join(words[:cut]), " ".join(w for w in words[cut:] if w != ",")
