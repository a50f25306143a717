"""``python -m bench.convert``: CPU per image conversion, the preview's old way beside its new.

    python -m bench.convert            # ~20 s on 2 cores
    python -m bench.convert --runs 30  # steadier figures

Each input is converted ``--runs`` times in this process; the figure is CPU milliseconds per
conversion (``time.process_time``: other load on the machine changes it little). Inputs are
the simulator's own pictures (what ``python -m bench.run`` delivers: a 2048 px PNG grid and
512 px WebP previews) and a few a real provider may serve instead (previews at full size, a
JPEG, a noisy "photographic" PNG that compresses like a real result). Rows:

- ``preview bicubic``: ``to_jpeg(data, 640, 70)``, what progress previews cost before;
- ``preview fast``: ``to_preview(data)`` (box reduce, then bilinear), with the PSNR of its
  JPEG against the bicubic one's (identical outputs read over 100 dB; around 40 dB is a
  difference of the order the two q70 encodings add themselves);
- ``result``: ``to_jpeg(data)``, the photo posted with each result (unchanged; its split into
  decoding and encoding shows where the time goes).
"""

from __future__ import annotations

import argparse
import io
import math
import time
from collections.abc import Callable

from PIL import Image, ImageChops, ImageStat

from bot import media
from mjsim import art


def _encoded(image: Image.Image, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photographic(image: Image.Image) -> Image.Image:
    """The simulator's flat art with a photograph's grain: as a PNG it weighs what a real
    Midjourney grid does (2048 px: 6.6-7.6 MB by compression level, against ~230 KB flat)."""
    noise = Image.effect_noise(image.size, 40).convert("RGB")
    return Image.blend(image.convert("RGB"), noise, 0.25)


def inputs() -> dict[str, bytes]:
    spec = art.ArtSpec("a lighthouse at dusk", "a lighthouse at dusk")
    grid = art.render(spec, 2048)
    photo = photographic(grid)
    return {
        "sim grid PNG 2048": art.png(grid),
        "sim preview WebP 512": art.preview_webp(spec, 2048, 50),
        "WebP 1024": _encoded(grid.resize((1024, 1024)), "WEBP", quality=40),
        "PNG 2048": art.png(grid),
        "JPEG 2048": _encoded(grid, "JPEG", quality=90),
        "noisy PNG 2048": _encoded(photo, "PNG"),
    }


def cpu_ms(call: Callable[[], object], runs: int) -> float:
    call()  # warm: imports, plugin lookups
    started = time.process_time()
    for _ in range(runs):
        call()
    return (time.process_time() - started) / runs * 1000.0


def psnr(a: bytes, b: bytes) -> float:
    one, two = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    if one.size != two.size:
        return float("nan")
    stat = ImageStat.Stat(ImageChops.difference(one, two))
    mse = sum(stat.sum2) / (3 * one.width * one.height)
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"CPU ms per conversion, mean of {args.runs} (Pillow {Image.__version__})")
    print(f"{'input':22} {'bytes':>9}  {'preview bicubic':>15} {'preview fast':>12} {'PSNR':>6}")
    sources = inputs()
    for name, data in sources.items():
        if name == "PNG 2048":
            continue  # the same bytes as the sim's grid; listed for the results below
        old = media.to_jpeg(data, media.PREVIEW_MAX_SIDE, media.PREVIEW_QUALITY)
        new = media.to_preview(data)
        assert Image.open(io.BytesIO(new)).size == Image.open(io.BytesIO(old)).size
        before = cpu_ms(
            lambda d=data: media.to_jpeg(d, media.PREVIEW_MAX_SIDE, media.PREVIEW_QUALITY),
            args.runs,
        )
        after = cpu_ms(lambda d=data: media.to_preview(d), args.runs)
        print(f"{name:22} {len(data):>9,}  {before:>15.1f} {after:>12.1f} {psnr(old, new):>6.1f}")
    print()
    print(f"{'result (to_jpeg)':22} {'bytes':>9}  {'total':>8} {'decode':>8} {'encode':>8}")
    for name in ("sim grid PNG 2048", "JPEG 2048", "noisy PNG 2048"):
        data = sources[name]
        total = cpu_ms(lambda d=data: media.to_jpeg(d), args.runs)
        decoded = media.decode(data, media.PHOTO_MAX_SIDE)
        decode = cpu_ms(lambda d=data: media.decode(d, media.PHOTO_MAX_SIDE), args.runs)
        encode = cpu_ms(lambda i=decoded: i.save(io.BytesIO(), "JPEG", quality=90), args.runs)
        print(f"{name:22} {len(data):>9,}  {total:>8.1f} {decode:>8.1f} {encode:>8.1f}")


if __name__ == "__main__":
    main()
