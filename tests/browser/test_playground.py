"""``mjbot demo`` in a real browser: Debian's Chromium driven by Playwright.

Every step saves a screenshot under ``tests/browser/output/`` (look at them after a change to
the page). Skipped, with the reason, where Chromium or Playwright is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from adapters.web import WebAdapter
from bot.app import App, demo_config

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).parent / "output"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright is not installed (pip install playwright)"
)
pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's Chromium is missing (apt-get install chromium)"
    ),
    pytest.mark.timeout(120),
]
expect = playwright_api.expect


@dataclass
class Stage:
    app: App
    adapter: WebAdapter
    context: Any
    page: Any
    prefix: str
    shots: list[str]

    @property
    def sim(self) -> Any:
        return self.app.simulator

    async def shot(self, name: str) -> None:
        path = OUTPUT / f"{self.prefix}-{len(self.shots) + 1:02d}-{name}.png"
        await self.page.screenshot(path=str(path))
        self.shots.append(path.name)

    def bot_message(self, has_text: str | re.Pattern[str] | None = None) -> Any:
        messages = self.page.locator("article.msg.from-bot")
        return messages.filter(has_text=has_text) if has_text else messages


@pytest.fixture
async def stage(tmp_path, request) -> AsyncIterator[Stage]:
    base = demo_config(tmp_path)
    config = replace(
        base,
        simulator=replace(base.simulator, time_scale=0.1),
        tracking=replace(base.tracking, poll_interval_s=0.2, edit_interval_s=0.2),
    )
    adapter = WebAdapter("127.0.0.1", 0)
    app = App(config, adapters=[adapter])
    adapter.playground.app = app
    await app.start()
    OUTPUT.mkdir(exist_ok=True)
    prefix = request.node.name.removeprefix("test_").split("_")[0]
    for old in OUTPUT.glob(f"{prefix}-*.png"):
        old.unlink()  # only this run's screenshots: none left over from an older page
    try:
        async with playwright_api.async_playwright() as pw:
            profile = tmp_path / "profile"
            context = await pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 800},
                locale="en-US",
            )
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                page.set_default_timeout(20_000)
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on(
                    "console",
                    lambda msg: errors.append(msg.text) if msg.type == "error" else None,
                )
                # The link `mjbot demo` prints: its token becomes a cookie, the URL goes clean.
                await page.goto(adapter.admin_link)
                assert page.url == adapter.url + "/"
                await expect(page.locator("body")).to_have_attribute("data-ready", "true")
                yield Stage(app, adapter, context, page, prefix, [])
                assert errors == [], f"JavaScript or console errors: {errors}"
            finally:
                await context.close()
    finally:
        await app.stop()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


async def wait_for(check: Callable[[], Any], within: float = 20) -> Any:
    """Poll a condition on the Python side (the simulator's records)."""

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value := check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


def png_file(path: Path, color: tuple[int, int, int], shape: str) -> Path:
    image = Image.new("RGB", (320, 320), color)
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((70, 70, 250, 250), fill=(255, 230, 80))
    else:
        draw.rectangle((60, 120, 260, 200), fill=(250, 250, 250))
    image.save(path, "PNG")
    return path


# --- what every screen must satisfy ---------------------------------------------------------

LETTER = re.compile(r"[A-Za-z\u4e00-\u9fff]")  # a name that is more than an icon


async def assert_every_button_is_named(page: Any) -> None:
    """Every button says what it does (icon-only ones through aria-label, with a tooltip)."""
    buttons = page.get_by_role("button")
    named = page.get_by_role("button", name=LETTER)
    assert await buttons.count() == await named.count(), await page.evaluate(
        """() => [...document.querySelectorAll('button')]
            .filter(b => !/[A-Za-z\u4e00-\u9fff]/.test(
                b.getAttribute('aria-label') || b.textContent))
            .map(b => b.outerHTML)"""
    )
    for icon in await page.locator("button.btn[aria-label]").all():
        assert await icon.get_attribute("title") == await icon.get_attribute("aria-label")
    await expect(page.get_by_label(re.compile("Attach images|添加图片"))).to_have_count(1)


async def assert_no_label_is_cut(page: Any) -> None:
    cut = await page.evaluate(
        """() => [...document.querySelectorAll('.btn, .example, .tabs button, #send')]
            .filter(b => b.offsetParent && (b.scrollWidth > b.clientWidth
                || b.getBoundingClientRect().right > window.innerWidth))
            .map(b => b.textContent)"""
    )
    assert cut == [], f"labels cut or sticking out: {cut}"


async def toast_overlaps(page: Any) -> list[str]:
    """What the toast covers: messages (their visible part), the composer, or any of the area
    where messages appear (a bubble may arrive there while it shows); [] when nothing."""
    return await page.evaluate(
        """() => {
            const t = document.getElementById('toast').getBoundingClientRect();
            const box = document.getElementById('messages').getBoundingClientRect();
            const hits = [];
            if (t.top < box.bottom && box.top < t.bottom) hits.push('the messages area');
            for (const a of document.querySelectorAll('article.msg, .composer')) {
                const r = a.getBoundingClientRect();
                const top = Math.max(r.top, box.top);
                const bottom = a.matches('.composer') ? r.bottom : Math.min(r.bottom, box.bottom);
                if (bottom <= top) continue;  // scrolled out of view
                if (t.left < r.right && r.left < t.right && t.top < bottom && top < t.bottom) {
                    hits.push(a.textContent.slice(0, 40));
                }
            }
            return hits;
        }"""
    )


async def test_playground_in_a_real_browser(stage: Stage, tmp_path: Path) -> None:
    page = stage.page
    # The first screen says what to type, with examples to tap.
    welcome = page.locator("#messages .welcome")
    await expect(welcome).to_contain_text("/imagine")
    await expect(welcome.locator("button.example")).to_have_count(3)
    await assert_every_button_is_named(page)
    await stage.shot("open")
    box = page.locator("#input")
    await welcome.locator("button.example").first.click()
    await expect(box).to_have_value(re.compile(r"^/imagine a red fox"))
    await expect(box).to_be_focused()

    # /imagine, with the command hints on the way
    await box.fill("/im")
    await expect(page.locator("#hints .hint").first).to_contain_text("/imagine")
    await stage.shot("command-hints")
    await box.fill("/imagine a lighthouse on a cliff at dusk --ar 1:1")
    await box.press("Enter")
    await expect(page.locator("article.msg.from-user").last).to_contain_text(
        "/imagine a lighthouse"
    )

    # progress, edited live, then the grid with its buttons
    progress = stage.bot_message(re.compile(r"\d+% · fast"))
    await expect(progress).to_have_count(1)
    await expect(progress.filter(has=page.locator(".media img"))).to_have_count(1)  # preview
    await stage.shot("progress")
    grid = stage.bot_message().filter(has=page.get_by_role("button", name="U1", exact=True))
    await expect(grid).to_have_count(1)
    await expect(grid.locator(".media img")).to_have_count(1)
    for name in ("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"):
        await expect(grid.get_by_role("button", name=name, exact=True)).to_be_visible()
    await expect(progress).to_have_count(0)  # the progress message gave way to the result
    await expect(grid.locator(".media img")).to_have_js_property("complete", True)
    await expect(welcome).to_have_count(0)
    # 🔄 🌱 📎 ✂️ are icons: each has a name for screen readers and a tooltip
    for name in ("Reroll", "Show the seed", "The original file", "The four images"):
        icon = grid.get_by_role("button", name=name, exact=True)
        await expect(icon).to_have_attribute("title", name)
    await assert_every_button_is_named(page)
    await stage.shot("grid")

    # U1 -> the toast says so, above the chat: it covers neither the progress nor the grid
    await grid.get_by_role("button", name="U1", exact=True).click()
    toast = page.locator("#toast")
    await expect(toast).to_be_visible()
    await expect(toast).to_contain_text("U1")
    await expect(stage.bot_message(re.compile(r"U1|\d+%")).last).to_be_visible()
    assert await toast_overlaps(page) == []
    await stage.shot("toast")
    upscale = stage.bot_message().filter(
        has=page.get_by_role("button", name=re.compile("Vary \\(Region\\)"))
    )
    await expect(upscale).to_have_count(1)
    for name in ("Vary (Subtle)", "Vary (Strong)", "Zoom Out 2x", "Custom Zoom"):
        await expect(
            upscale.get_by_role("button", name=re.compile(re.escape(name)))
        ).to_be_visible()
    await expect(upscale.locator(".media img")).to_have_js_property("complete", True)
    await assert_no_label_is_cut(page)
    await stage.shot("upscale")

    # Vary (Region): the API answers code 21, the editor opens over the image
    await upscale.get_by_role("button", name=re.compile("Vary \\(Region\\)")).click()
    editor = page.locator("#mask-dialog .mask-editor")
    await expect(editor).to_have_attribute("data-ready", "true")
    assert stage.sim.submits("action")[-1].body["customId"].startswith("MJ::Inpaint::")
    await stage.shot("mask-editor")

    canvas = editor.locator("canvas.mask-canvas")
    bounds = await canvas.bounding_box()
    assert bounds is not None
    # a rectangle from 20 %/25 % to 60 %/70 % of the image
    x0, y0 = bounds["x"] + bounds["width"] * 0.2, bounds["y"] + bounds["height"] * 0.25
    x1, y1 = bounds["x"] + bounds["width"] * 0.6, bounds["y"] + bounds["height"] * 0.7
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    await page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    await page.mouse.move(x1, y1, steps=5)
    await page.mouse.up()
    await expect(editor).to_have_attribute("data-shapes", "1")
    await editor.locator("textarea.mask-prompt").fill("a red scarf on the lighthouse")
    await stage.shot("mask-drawn")
    await editor.get_by_role("button", name="Submit").click()

    modal = await wait_for(lambda: stage.sim.submits("modal"))
    body = modal[0].body
    assert body["prompt"].startswith("a red scarf on the lighthouse")
    mask = Image.open(io.BytesIO(base64.b64decode(body["maskBase64"].split(",", 1)[1])))
    assert mask.format == "PNG"
    shown = await upscale.locator(".media img").evaluate(
        "img => [img.naturalWidth, img.naturalHeight]"
    )
    ref = body.get("taskId") or ""
    assert ref
    row = await stage.app.store.task_by_id(ref)
    original = await stage.app.service.region_image(row.key)
    size = Image.open(io.BytesIO(original)).size
    assert mask.size == size, (mask.size, size, shown)
    w, h = size
    gray = mask.convert("L")
    for fx, fy in ((0.25, 0.3), (0.4, 0.47), (0.55, 0.65), (0.22, 0.68), (0.58, 0.27)):
        assert gray.getpixel((int(w * fx), int(h * fy))) == 255, ("inside", fx, fy)
    for fx, fy in ((0.1, 0.1), (0.15, 0.5), (0.65, 0.5), (0.4, 0.2), (0.4, 0.75), (0.9, 0.9)):
        assert gray.getpixel((int(w * fx), int(h * fy))) == 0, ("outside", fx, fy)
    await expect(page.locator("#mask-dialog")).not_to_have_attribute("open", "")
    region = stage.bot_message(re.compile("Vary \\(Region\\)")).filter(
        has=page.get_by_role("button", name="U1", exact=True)
    )
    await expect(region).to_have_count(1)
    await expect(region.locator(".media img")).to_have_js_property("complete", True)
    await stage.shot("region-result")

    # two images from the file picker, then /blend
    files = [
        png_file(tmp_path / "sunset.png", (230, 90, 40), "circle"),
        png_file(tmp_path / "sea.png", (30, 80, 200), "bar"),
    ]
    await page.locator("#file").set_input_files([str(f) for f in files])
    await expect(page.locator("#attachments .attachment")).to_have_count(2)
    await box.fill("/blend")
    await stage.shot("blend-attachments")
    await page.locator("#send").click()
    mine = page.locator("article.msg.from-user").filter(has_text="/blend")
    await expect(mine.locator(".media img")).to_have_count(2)
    blend = await wait_for(lambda: stage.sim.submits("blend"))
    assert len(blend[0].body["base64Array"]) == 2
    result = stage.bot_message().filter(has=page.get_by_role("button", name="V1", exact=True))
    await expect(result).to_have_count(3)  # the first grid, the region vary, the blend
    await expect(result.last.locator(".media img")).to_have_js_property("complete", True)
    await stage.shot("blend-result")

    # Chinese: the page's strings and the bot's answers
    await page.locator("#lang-zh").click()
    await expect(page.locator("#tab-chat")).to_have_text("聊天")
    await expect(page.locator("#send")).to_have_text("发送")
    await expect(page.locator("#input")).to_have_attribute("placeholder", re.compile("输入"))
    await box.fill("/help")
    await box.press("Enter")
    await expect(stage.bot_message("提示词").last).to_be_visible()
    await stage.shot("chinese")
    print("screenshots:", ", ".join(stage.shots))


async def test_admin_tab_and_phone_screen(stage: Stage) -> None:
    page = stage.page
    await page.locator("#input").fill("/imagine a small red boat")
    await page.locator("#input").press("Enter")
    await expect(page.get_by_role("button", name="V4", exact=True)).to_be_visible()

    await page.locator("#tab-admin").click()
    await expect(page.locator("#admin")).to_have_attribute("data-loaded", "true")
    await expect(page.locator("#recent tbody tr")).to_have_count(1)
    await expect(page.locator("#recent tbody")).to_contain_text("SUCCESS")
    await expect(page.locator("#usage tbody tr")).to_have_count(1)
    await expect(page.locator("#chart")).to_have_attribute("data-total", "1")
    await expect(page.locator("#health")).to_contain_text("OK")
    # The app's one metrics object: the grid posted once, charged once, nothing refunded.
    delivered = page.locator("#health tr", has_text="Results delivered").locator("td")
    await expect(delivered).to_have_text("1")
    ledger = page.locator("#health tr", has_text="Charges / refunds").locator("td")
    await expect(ledger).to_have_text("1 / 0")
    hints = page.locator(".scroll-hint")
    await expect(hints.first).to_be_hidden()  # wide enough: nothing to scroll
    await stage.shot("admin")

    # On a phone the task tables scroll sideways, and say so.
    await page.set_viewport_size({"width": 390, "height": 844})
    recent = page.locator("#recent").locator("xpath=..")
    await expect(recent).to_have_attribute("data-overflow", "true")
    await expect(recent.locator("xpath=following-sibling::p[1]")).to_be_visible()
    await expect(recent.locator("xpath=following-sibling::p[1]")).to_contain_text("sideways")
    await recent.locator("xpath=following-sibling::p[1]").scroll_into_view_if_needed()
    await stage.shot("admin-phone")
    await page.locator("#tab-chat").click()
    await expect(page.get_by_role("button", name="V4", exact=True)).to_be_in_viewport()
    await assert_no_label_is_cut(page)
    await assert_every_button_is_named(page)
    await stage.shot("chat-phone")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing sticks out sideways on a phone"

    # The chat link (shared with others) opens the chat but no admin tab.
    await stage.context.clear_cookies()
    await page.goto(stage.adapter.chat_link)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.locator("#tab-admin")).to_be_hidden()  # no tabs at all: only the chat
    await expect(page.locator("#messages .welcome button.example")).to_have_count(3)
    await assert_no_label_is_cut(page)
    await stage.shot("welcome-phone-chat-token")


async def test_mask_editor_on_a_phone_lasso_undo_and_mini_app_page(stage: Stage) -> None:
    page = stage.page
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#input").fill("/imagine a quiet harbour")
    await page.locator("#input").press("Enter")
    await page.get_by_role("button", name="U2", exact=True).click()
    await expect(page.locator("#toast")).to_contain_text("U2")
    await expect(stage.bot_message(re.compile(r"U2|\d+%")).last).to_be_visible()
    assert await toast_overlaps(page) == []
    await stage.shot("toast-phone")
    region = page.get_by_role("button", name=re.compile("Vary \\(Region\\)"))
    await expect(page.get_by_role("button", name=re.compile("Custom Zoom"))).to_be_visible()
    await assert_no_label_is_cut(page)  # "Custom Zo…" no more
    await page.get_by_role("button", name=re.compile("Custom Zoom")).scroll_into_view_if_needed()
    await stage.shot("upscale-phone")
    await region.click()
    editor = page.locator("#mask-dialog .mask-editor")
    await expect(editor).to_have_attribute("data-ready", "true")

    canvas = editor.locator("canvas.mask-canvas")
    bounds = await canvas.bounding_box()
    assert bounds is not None
    assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 390, "the editor fits"

    def at(fx: float, fy: float) -> tuple[float, float]:
        return bounds["x"] + bounds["width"] * fx, bounds["y"] + bounds["height"] * fy

    # a stray rectangle, undone; then a lasso triangle
    await page.mouse.move(*at(0.1, 0.1))
    await page.mouse.down()
    await page.mouse.move(*at(0.3, 0.3), steps=4)
    await page.mouse.up()
    await expect(editor).to_have_attribute("data-shapes", "1")
    await editor.get_by_role("button", name=re.compile("Undo")).click()
    await expect(editor).to_have_attribute("data-shapes", "0")
    await editor.get_by_role("button", name=re.compile("Lasso")).click()
    await page.mouse.move(*at(0.5, 0.2))
    await page.mouse.down()
    await page.mouse.move(*at(0.8, 0.8), steps=8)
    await page.mouse.move(*at(0.2, 0.8), steps=8)
    await page.mouse.move(*at(0.5, 0.21), steps=8)
    await page.mouse.up()
    await expect(editor).to_have_attribute("data-shapes", "1")
    await stage.shot("lasso-phone")
    await editor.get_by_role("button", name="Submit").click()

    (modal,) = await wait_for(lambda: stage.sim.submits("modal"))
    mask = Image.open(io.BytesIO(base64.b64decode(modal.body["maskBase64"].split(",", 1)[1])))
    gray = mask.convert("L")
    w, h = gray.size
    assert gray.getpixel((w // 2, int(h * 0.6))) == 255, "inside the lasso"
    for fx, fy in ((0.15, 0.15), (0.3, 0.3), (0.85, 0.3), (0.5, 0.9)):
        assert gray.getpixel((int(w * fx), int(h * fy))) == 0, ("outside", fx, fy)

    # The same editor alone, as Telegram opens it (the Mini App page).
    ask_ref = (await stage.app.store.task_by_id(modal.body["taskId"])).key
    await page.goto(f"{stage.adapter.url}/mask?ref={ask_ref}&lang=zh")
    alone = page.locator("#mask-root.mask-editor")
    await expect(alone).to_have_attribute("data-ready", "true")
    await expect(alone.get_by_role("button", name=re.compile("套索"))).to_be_visible()
    await stage.shot("mini-app-page")


async def test_an_edit_as_four_tiles_and_its_video_in_a_real_browser(
    stage: Stage, tmp_path: Path
) -> None:
    """The demo runs openai-hk's flavour: an /edit arrives as four tiles numbered 1-4 with a
    named button row per picture, and 🎬 on one gives four playable clips with posters and
    their running length (issue 15)."""
    page = stage.page
    photo = png_file(tmp_path / "tulip.png", (200, 60, 120), "circle")
    await page.locator("#file").set_input_files([str(photo)])
    await expect(page.locator("#attachments .attachment")).to_have_count(1)
    await page.locator("#input").fill("/edit make the background white")
    await page.locator("#send").click()
    edited = stage.bot_message().filter(
        has=page.get_by_role("button", name="Animate this picture 2", exact=True)
    )
    await expect(edited).to_have_count(1)
    await expect(edited.locator(".media figure.tile img")).to_have_count(4)
    await expect(edited.locator(".media figcaption")).to_have_text(["1", "2", "3", "4"])
    for img in await edited.locator(".media img").all():
        await expect(img).to_have_js_property("complete", True)
    await assert_every_button_is_named(page)
    await stage.shot("edit-tiles")

    await edited.get_by_role("button", name="Animate this picture 2", exact=True).click()
    video = await wait_for(lambda: stage.sim.submits("video"))
    assert video[0].body["image"].startswith("data:image/")
    clips = stage.bot_message().filter(has=page.locator(".media video"))
    await expect(clips.locator(".media video")).to_have_count(4, timeout=30_000)
    await expect(clips.locator(".media figcaption")).to_have_text(
        ["1 · 5 s", "2 · 5 s", "3 · 5 s", "4 · 5 s"]
    )
    for clip in await clips.locator(".media video").all():
        assert (await clip.get_attribute("poster") or "").startswith("/media/")
    await expect(
        clips.get_by_role("button", name=re.compile("^Make this clip 4 s longer 1"))
    ).to_have_count(2)
    await assert_every_button_is_named(page)
    await stage.shot("edit-video")
