"""The result's original file, as the API served it, is decoded under the same pixel cap as
everything else. ✂️ (split the grid) decoded the cached original whole, and the original is
cached after a header check only: a 40-megapixel PNG of 160 KB from the API (its link posted,
since delivery refused it) cost ~600 MB per press. Discord's ``fit`` (an attachment over the
channel's limit, such as the 📎 original) decoded whatever it was given in the same way."""

from __future__ import annotations

import subprocess
import sys

from bot import results
from bot.store import TaskRow
from tests.harness import ROOT
from tests.test_media import solid_png

ROW = "TaskRow(key='k2345678ab', platform='telegram', chat_id='1', user_id='2', kind='imagine')"


def run_fresh(call: str, data: bytes, tmp_path) -> tuple[float, str]:
    """Peak memory growth (MB) of ``call`` on ``data`` in a fresh interpreter, and what it
    printed (Pillow allocates outside Python's allocator: only the peak RSS sees it)."""
    source = tmp_path / "input"
    source.write_bytes(data)
    script = f"""
from adapters.discord.port import fit
from bot import results
from bot.store import TaskRow
from bot.views import Media
data = open({str(source)!r}, "rb").read()
def vm(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
open("/proc/self/clear_refs", "w").write("5")
before = vm("VmRSS:")
out = {call}
print((vm("VmHWM:") - before) / 1024, repr(out)[:60].replace(" ", "_"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    grown, printed = done.stdout.split()
    return float(grown), printed


def test_splitting_a_40_megapixel_original_is_refused_within_bounds(tmp_path):
    grown, printed = run_fresh(
        f"results.split_view({ROW}, data).text", solid_png(8000, 5000), tmp_path
    )
    assert "too_large" in printed
    assert grown < 40, grown  # was ~600 MB


def test_a_real_grid_is_still_split_into_four(tmp_path):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2048, 2048), (200, 40, 40)).save(out, "PNG")
    view = results.split_view(
        TaskRow(key="k2345678ab", platform="telegram", chat_id="1", user_id="2", kind="imagine"),
        out.getvalue(),
    )
    assert [m.kind for m in view.media] == ["photo"] * 4
    assert Image.open(io.BytesIO(view.media[0].data)).size == (1024, 1024)


def test_discord_fit_refuses_a_pixel_bomb_within_bounds(tmp_path):
    grown, printed = run_fresh(
        "fit(Media('document', data, 'k.png'), 100_000)", solid_png(8000, 5000), tmp_path
    )
    assert printed == "None"
    assert grown < 40, grown
