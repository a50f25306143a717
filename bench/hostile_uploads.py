"""``python -m bench.hostile_uploads``: what hostile images cost mjbot, in memory and CPU.

    python -m bench.hostile_uploads                  # both parts (~1 min)
    python -m bench.hostile_uploads --files          # one conversion per file only
    python -m bench.hostile_uploads --before 1e805e0~1   # the same, with an older bot/media.py
    python -m bench.hostile_uploads --at-once 5      # five uploads at once through mjbot run

Part 1 runs each conversion (``media.upload_data_uri`` for a user's upload, ``media.to_jpeg``
for a result) on each file in a fresh interpreter and prints its peak RSS growth and CPU time;
``--before REV`` loads ``bot/media.py`` from a git revision instead, for before/after figures;
``--pyvips`` adds the same conversions done with pyvips when it is installed (for comparison;
mjbot does not depend on it).

Part 2 starts ``mjbot run`` against the simulator and the fake Telegram server (as the tests
do), lets N users send the same file as a document captioned ``/describe`` at the same
moment, waits until each has an answer, and prints the bot process's peak RSS (VmHWM).

Files: a 165 KB RGBA PNG of 40 Mpx (8000x5000, the reported one), the largest PNG mjbot
accepts (4096x4096), a 48 Mpx phone-sized JPEG, a 24 Mpx CMYK JPEG, and a real 2048 px grid
rendered by the simulator. Figures are printed, never asserted (tests/test_media.py asserts
the bounds that matter).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return struct.pack(">I", len(data)) + kind + data + crc


def solid_png(width: int, height: int) -> bytes:
    """A real RGBA PNG of one colour: tiny on disk, ``width * height`` pixels decoded."""
    row = b"\x00" + bytes((30, 120, 200, 128)) * width
    squeeze = zlib.compressobj(9)
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def photo_jpeg(size: tuple[int, int], mode: str = "RGB") -> bytes:
    """Something like a photo: noise scaled up (it compresses like one), as JPEG."""
    noise = Image.effect_noise((size[0] // 4, size[1] // 4), 30).convert(mode)
    out = io.BytesIO()
    noise.resize(size).save(out, "JPEG", quality=80)
    return out.getvalue()


def grid_png() -> bytes:
    from mjsim.art import ArtSpec, result_png

    return result_png(ArtSpec("a fox in the snow", "a fox in the snow"), 2048)


def files(folder: Path) -> dict[str, Path]:
    made = {
        "40mpx.png": lambda: solid_png(8000, 5000),
        "16mpx.png": lambda: solid_png(4096, 4096),
        "48mpx.jpg": lambda: photo_jpeg((8000, 6000)),
        "cmyk.jpg": lambda: photo_jpeg((6000, 4000), "CMYK"),
        "grid.png": grid_png,
    }
    paths = {}
    for name, make in made.items():
        path = folder / name
        if not path.exists():
            path.write_bytes(make())
        paths[name] = path
    return paths


# --- part 1: one conversion in a fresh interpreter ---------------------------------------

_MEASURE = """
import importlib.util, json, sys, time
sys.path.insert(0, {root!r})
kind, path, call = sys.argv[1:4]
if kind == "pyvips":
    import pyvips
    pyvips.cache_set_max(0)
    def run(data, side):
        image = pyvips.Image.thumbnail_buffer(data, side, height=side, size="down")
        if image.interpretation == "cmyk":
            image = image.colourspace("srgb")
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return image.jpegsave_buffer(Q=90)
    def head(data):
        image = pyvips.Image.new_from_buffer(data, "")
        jpeg = image.get("vips-loader") == "jpegload_buffer"  # shrinks on load: no cap
        if image.width * image.height > 4096 * 4096 and not jpeg:
            raise ValueError("too_many_pixels")
    conversions = {{
        "upload_data_uri": lambda data: (head(data), run(data, 2048)),
        "to_jpeg": lambda data: (head(data), run(data, 2560)),
    }}
else:
    spec = importlib.util.spec_from_file_location("media_under_test", kind)
    media = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(media)
    conversions = {{"upload_data_uri": media.upload_data_uri, "to_jpeg": media.to_jpeg}}
data = open(path, "rb").read()
def vm(key):  # ru_maxrss survives exec (it would count the parent's peak): /proc it is
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = vm("VmRSS:")
started = time.process_time()
try:
    conversions[call](data)
    result = "ok"
except Exception as exc:
    result = getattr(exc, "reason", type(exc).__name__)
cpu = time.process_time() - started
grown = (vm("VmHWM:") - before) / 1024
print(json.dumps({{"mb": round(grown), "cpu_s": round(cpu, 2), "result": result}}))
"""


def measure(kind: str, path: Path, call: str) -> dict[str, object]:
    script = _MEASURE.format(root=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script, kind, str(path), call],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        return {"mb": "-", "cpu_s": "-", "result": done.stderr.strip().splitlines()[-1][:40]}
    return json.loads(done.stdout)


def media_at(rev: str, folder: Path) -> str:
    """bot/media.py (and the modules it imports from bot/) as of ``rev``, importable."""
    source = subprocess.run(
        ["git", "show", f"{rev}:bot/media.py"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    path = folder / f"media_{rev.replace('~', '_').replace('/', '_')}.py"
    path.write_text(source)
    return str(path)


def part_one(paths: dict[str, Path], kinds: list[tuple[str, str]]) -> None:
    print("\nOne conversion per file (fresh interpreter; peak RSS growth, CPU time):\n")
    print(f"{'file':<12} {'conversion':<16} " + " ".join(f"{label:>26}" for label, _ in kinds))
    for name, path in paths.items():
        for call in ("upload_data_uri", "to_jpeg"):
            cells = []
            for _, kind in kinds:
                m = measure(kind, path, call)
                cells.append(f"{m['mb']:>5} MB {m['cpu_s']:>5} s {str(m['result'])[:12]:>12}")
            print(f"{name:<12} {call:<16} " + " ".join(f"{c:>26}" for c in cells))


# --- part 2: N uploads at once through mjbot run ------------------------------------------


def _status(pid: int) -> dict[str, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) // 1024
    return fields


async def at_once(data: bytes, name: str, count: int, folder: Path) -> dict[str, object]:
    from mjsim import SimConfig, Simulator
    from tests.fakes.telegram import FakeTelegram
    from tests.harness import API_KEY, TG_TOKEN, BotProcess

    simulator = Simulator(SimConfig(api_key=API_KEY, time_scale=0.05))
    await simulator.start()
    try:
        async with FakeTelegram(token=TG_TOKEN) as tg:
            tg.group(-100123, "Artists")
            users = [tg.user(8000 + n, f"User {n}") for n in range(count)]
            work = folder / f"bot-{name.replace('.', '-')}"
            work.mkdir(exist_ok=True)
            bot = BotProcess(work, simulator.base_url, tg.url, logging={"level": "WARNING"})
            bot.start()
            try:
                await tg.wait_for_call("deleteWebhook", timeout=60)
                assert bot.proc is not None
                idle = _status(bot.proc.pid)
                started = time.monotonic()
                sent = await asyncio.gather(
                    *(tg.send_document(-100123, u, data, name, caption="/describe") for u in users)
                )
                for message in sent:
                    await tg.wait_for_bot_message(
                        -100123,
                        lambda m, i=message.message_id: m.reply_to_message_id == i,
                        timeout=120,
                    )
                answered = time.monotonic() - started
                peak = _status(bot.proc.pid)
            finally:
                await bot.stop()
    finally:
        await simulator.stop()
    return {
        "idle_mb": idle["VmRSS"],
        "peak_mb": peak["VmHWM"],
        "answered_s": round(answered, 1),
    }


async def part_two(paths: dict[str, Path], count: int, folder: Path) -> None:
    print(f"\n{count} users send the same file at once (mjbot run; peak RSS of the bot):\n")
    print(f"{'file':<12} {'idle RSS':>9} {'peak RSS':>9} {'all answered in':>16}")
    for name in ("40mpx.png", "16mpx.png", "48mpx.jpg", "cmyk.jpg", "grid.png"):
        figures = await at_once(paths[name].read_bytes(), name, count, folder)
        print(
            f"{name:<12} {figures['idle_mb']:>6} MB {figures['peak_mb']:>6} MB"
            f" {figures['answered_s']:>14} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", action="store_true", help="part 1 only")
    parser.add_argument("--at-once", type=int, default=0, help="part 2 only, with N uploads")
    parser.add_argument("--before", default="", help="also bot/media.py as of this git revision")
    parser.add_argument("--pyvips", action="store_true", help="also pyvips (when installed)")
    parser.add_argument("--keep", default="", help="folder for the files (default: a temp one)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="mjbot-hostile-"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = files(folder)
    print("files:", ", ".join(f"{n} {p.stat().st_size // 1024} KB" for n, p in paths.items()))
    if not args.at_once:
        kinds = [("now", str(ROOT / "bot" / "media.py"))]
        if args.before:
            kinds.insert(0, (f"bot/media.py @ {args.before}", media_at(args.before, folder)))
        if args.pyvips:
            kinds.append(("pyvips", "pyvips"))
        part_one(paths, kinds)
    if not args.files:
        asyncio.run(part_two(paths, args.at_once or 5, folder))


if __name__ == "__main__":
    main()
