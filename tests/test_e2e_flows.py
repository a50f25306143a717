"""Every Midjourney capability on Telegram, end to end: what the API received and what the
user saw, for image prompts, describe, blend, swap, shorten, video, edits, Vary (Region),
seed, settings, history and bad input."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.conftest import ALICE, GROUP
from tests.test_media import bomb_png


def photo(color: str, size=(320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def decode(uri: str) -> bytes:
    assert uri.startswith("data:image/")
    return base64.b64decode(uri.split(",", 1)[1])


def replies(tg, chat: int, request_id: int):
    return [m for m in tg.bot_messages(chat) if m.reply_to_message_id == request_id]


async def result_of(tg, request_id: int, chat: int = GROUP, timeout: float = 30):  # noqa: ASYNC109
    """The finished message (with buttons) posted in reply to a request."""
    return await tg.wait_for(
        lambda: next((m for m in replies(tg, chat, request_id) if m.buttons), None),
        timeout=timeout,
        message=f"a result for message {request_id}",
    )


async def question(tg, after: int, chat: int = GROUP):
    return await tg.wait_for(
        lambda: next(
            (
                m
                for m in tg.bot_messages(chat)
                if m.message_id > after and (m.reply_markup or {}).get("force_reply")
            ),
            None,
        ),
        timeout=20,
        message="a ForceReply question",
    )


async def region_question(tg, command: str, pick: str):
    """Imagine, upscale one image, press Vary (Region): the question the bot then asks."""
    alice = tg.users[ALICE]
    asked = await tg.send_text(GROUP, alice, command)
    grid = await result_of(tg, asked.message_id)
    await tg.press(GROUP, grid, pick, alice)
    upscaled = await tg.wait_for(
        lambda: next((m for m in replies(tg, GROUP, grid.message_id) if m.buttons), None),
        timeout=30,
    )
    last = tg.last_message_id(GROUP)
    await tg.press(GROUP, upscaled, "🖌️ Vary (Region)", alice)
    return await question(tg, last)


def labels(message) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


async def test_image_prompt_describe_and_pick(bot, sim, tg):
    alice = tg.users[ALICE]
    cat = photo("orange")
    asked = await tg.send_photo(GROUP, alice, cat, caption="/imagine a cat in a hat")
    await result_of(tg, asked.message_id)
    sent = sim.submits("imagine")[0].body
    assert sent["prompt"] == "a cat in a hat"
    assert [decode(u) for u in sent["base64Array"]] == [cat]

    described = await tg.send_photo(GROUP, alice, photo("navy"), caption="/describe")
    text = await result_of(tg, described.message_id)
    assert decode(sim.submits("describe")[0].body["base64"]) == photo("navy")
    assert text.photo is None and "1️⃣" in text.text and "4️⃣" in text.text
    assert labels(text)[:4] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]

    last = tg.last_message_id(GROUP)
    await tg.press(GROUP, text, "2️⃣", alice)
    ask = await question(tg, last)
    suggestion = sim.tasks[sim.submits("action")[0].body["taskId"]]  # the DESCRIBE task
    assert suggestion.action == "DESCRIBE"
    answer = await tg.send_text(GROUP, alice, "a navy square, minimal", reply_to=ask.message_id)
    await result_of(tg, answer.message_id)
    modal = sim.submits("modal")[0].body
    assert modal["prompt"] == "a navy square, minimal"
    assert sim.tasks[modal["taskId"]].action == "IMAGINE"


async def test_blend_album_and_privacy_mode_conversation(bot, sim, tg):
    alice = tg.users[ALICE]
    colors = [photo("red"), photo("green"), photo("blue")]
    album = await tg.send_album(GROUP, alice, colors, caption="/blend landscape")
    await result_of(tg, album[0].message_id)
    body = sim.submits("blend")[0].body
    assert [decode(u) for u in body["base64Array"]] == colors  # all of them, in order
    assert body["dimensions"] == "LANDSCAPE"

    alone = await tg.send_text(GROUP, alice, "/blend")
    ask = await tg.wait_for(
        lambda: next(
            (
                m
                for m in replies(tg, GROUP, alone.message_id)
                if (m.reply_markup or {}).get("force_reply")
            ),
            None,
        ),
        timeout=15,
    )
    parts = await tg.send_album(
        GROUP, alice, [photo("white"), photo("black")], reply_to=ask.message_id
    )
    await result_of(tg, parts[0].message_id)
    assert len(sim.submits("blend")[1].body["base64Array"]) == 2

    one = await tg.send_photo(GROUP, alice, photo("gray"), caption="/blend")
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, one.message_id), timeout=15)
    assert "2–5 photos" in refusal[0].text
    six = await tg.send_album(
        GROUP,
        alice,
        [photo(c) for c in ("red", "tan", "pink", "gold", "lime", "plum")],
        caption="/blend",
    )
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, six[0].message_id), timeout=15)
    assert "I got 6" in refusal[0].text
    assert len(sim.submits("blend")) == 2


async def test_swap_and_edit(bot, sim, tg):
    alice = tg.users[ALICE]
    face, target = photo("peachpuff"), photo("skyblue")
    album = await tg.send_album(GROUP, alice, [face, target], caption="/swap")
    swapped = await result_of(tg, album[0].message_id)
    body = sim.submits("swap")[0].body
    assert decode(body["sourceBase64"]) == face and decode(body["targetBase64"]) == target
    assert swapped.photo

    twice = await tg.send_album(GROUP, alice, [face, face], caption="/swap")
    same = await tg.wait_for(lambda: replies(tg, GROUP, twice[0].message_id), timeout=15)
    assert "same photo" in same[0].text
    assert len(sim.submits("swap")) == 1

    picture = await tg.send_photo(GROUP, alice, photo("olive"))
    edit = await tg.send_text(GROUP, alice, "/edit make it snowy", reply_to=picture.message_id)
    await result_of(tg, edit.message_id)
    body = sim.submits("edits")[0].body
    assert body["prompt"] == "make it snowy" and decode(body["image"]) == photo("olive")


async def test_shorten_video_seed_file_and_split(bot, sim, tg):
    alice = tg.users[ALICE]
    long_prompt = "a majestic ancient dragon, in the style of expert draftsmanship, ethereal"
    asked = await tg.send_text(GROUP, alice, f"/shorten {long_prompt}")
    shortened = await result_of(tg, asked.message_id)
    assert "Important tokens" in shortened.text and "5️⃣" in shortened.text
    last = tg.last_message_id(GROUP)
    await tg.press(GROUP, shortened, "3️⃣", alice)
    ask = await question(tg, last)
    answer = await tg.send_text(GROUP, alice, "ancient dragon, ethereal", reply_to=ask.message_id)
    grid = await result_of(tg, answer.message_id)
    assert sim.submits("modal")[0].body["prompt"] == "ancient dragon, ethereal"

    await tg.press(GROUP, grid, "🌱", alice)
    seed = await tg.wait_for_bot_message(GROUP, lambda m: "Seed:" in (m.text or ""), timeout=20)
    assert seed.text.split("Seed:")[1].strip().isdigit()

    await tg.press(GROUP, grid, "📎", alice)
    doc = await tg.wait_for_bot_message(GROUP, lambda m: m.document is not None, timeout=20)
    assert doc.document.data.startswith(b"\x89PNG")
    await tg.press(GROUP, grid, "✂️", alice)
    await tg.wait_for(
        lambda: len({m.media_group_id for m in tg.bot_messages(GROUP) if m.media_group_id}) >= 1,
        timeout=20,
    )
    tiles = [m for m in tg.bot_messages(GROUP) if m.media_group_id and m.photo]
    assert len(tiles) == 4

    clip = await tg.send_photo(
        GROUP, alice, photo("maroon"), caption="/video --motion high the dragon takes off"
    )
    buttons_msg = await result_of(tg, clip.message_id, timeout=40)
    body = sim.submits("video")[0].body
    assert body["motion"] == "high" and body["prompt"] == "the dragon takes off"
    assert decode(body["image"]) == photo("maroon")
    videos = [m for m in tg.bot_messages(GROUP) if m.video is not None]
    assert len(videos) == 4 and all(v.video.data[4:8] == b"ftyp" for v in videos)
    assert "U1" in labels(buttons_msg)


async def test_vary_region_with_grid_cells(bot, sim, tg):
    alice = tg.users[ALICE]
    ask = await region_question(tg, "/imagine a red barn --ar 1:1", "U1")
    assert ask.photo is not None  # the image with its numbered 3x3 grid
    answer = await tg.send_text(GROUP, alice, "1 2 5 a golden weathervane", reply_to=ask.message_id)
    await result_of(tg, answer.message_id)
    body = sim.submits("modal")[0].body
    assert body["prompt"] == "a golden weathervane"
    mask = Image.open(io.BytesIO(decode(body["maskBase64"]))).convert("L")
    assert body["maskBase64"].startswith("data:image/png;base64,")
    w, h = mask.size
    assert (w, h) == (1024, 1024)
    assert mask.getpixel((w // 6, h // 6)) == 255  # cell 1
    assert mask.getpixel((w // 2, h // 6)) == 255  # cell 2
    assert mask.getpixel((w // 2, h // 2)) == 255  # cell 5
    assert mask.getpixel((5 * w // 6, h // 6)) == 0  # cell 3
    assert mask.getpixel((w // 6, 5 * h // 6)) == 0  # cell 7


async def test_settings_history_and_show(bot, sim, tg):
    alice = tg.users[ALICE]
    menu_req = await tg.send_text(GROUP, alice, "/settings")
    menu = await result_of(tg, menu_req.message_id)
    await tg.press(GROUP, menu, "relax", alice)
    await tg.wait_for(lambda: "Speed: relax" in tg.message(GROUP, menu.message_id).text, timeout=10)
    assert "✅ relax" in labels(tg.message(GROUP, menu.message_id))
    suffix = await tg.send_text(GROUP, alice, "/settings --v 7")
    await tg.wait_for(lambda: replies(tg, GROUP, suffix.message_id), timeout=10)
    asked = await tg.send_text(GROUP, alice, "/imagine a tea house")
    grid = await result_of(tg, asked.message_id, timeout=60)
    request = sim.submits("imagine")[0]
    assert request.prefix == "/relax" and request.body["prompt"] == "a tea house --v 7"

    fast = await tg.send_text(GROUP, alice, "/fast")
    await tg.wait_for(lambda: replies(tg, GROUP, fast.message_id), timeout=10)
    history = await tg.send_text(GROUP, alice, "/tasks")
    listing = await tg.wait_for(lambda: replies(tg, GROUP, history.message_id), timeout=10)
    key = listing[0].text.split("/task ")[1].split()[0]
    show = await tg.send_text(GROUP, alice, f"/task {key}")
    again = await result_of(tg, show.message_id)
    assert again.photo and labels(again)[:5] == labels(grid)[:5]
    await tg.press(GROUP, again, "U4", alice)  # the re-posted buttons work
    await tg.wait_for(lambda: sim.submits("action"), timeout=15)
    assert sim.submits("action")[0].prefix == "/relax"  # a child keeps its parent's mode


async def test_bad_input_is_refused_and_nothing_is_submitted(bot, sim, tg):
    alice = tg.users[ALICE]
    pdf = await tg.send_document(
        GROUP,
        alice,
        b"%PDF-1.4 fake",
        filename="a.pdf",
        mime_type="application/pdf",
        caption="/describe",
    )
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, pdf.message_id), timeout=15)
    assert "not an image" in refusal[0].text
    bomb = await tg.send_document(
        GROUP, alice, bomb_png(), filename="bomb.png", mime_type="image/png", caption="/describe"
    )
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, bomb.message_id), timeout=15)
    assert "too many pixels" in refusal[0].text
    # Over Telegram's 20 MB getFile limit: refused from its size, never downloaded.
    huge = await tg.send_document(
        GROUP,
        alice,
        b"\x89PNG\r\n\x1a\n" + bytes(21 * 1024 * 1024),
        filename="huge.png",
        mime_type="image/png",
        caption="/describe",
    )
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, huge.message_id), timeout=15)
    assert "at most 20 MB" in refusal[0].text
    huge_id = huge.document.file_id
    assert not [c for c in tg.calls_to("getFile") if c.params.get("file_id") == huge_id]
    empty = await tg.send_text(GROUP, alice, "/shorten")
    refusal = await tg.wait_for(lambda: replies(tg, GROUP, empty.message_id), timeout=15)
    assert "/shorten" in refusal[0].text
    late = await tg.send_text(GROUP, alice, "an answer to nothing", reply_to=refusal[0].message_id)
    assert late.message_id
    assert sim.submits() == []


async def test_vary_region_through_the_mini_app(make_bot, sim, tg):
    import json
    import time
    from urllib.parse import parse_qs, urlencode, urlparse

    import httpx

    from adapters.telegram.initdata import sign
    from bot import mask as masks
    from tests.harness import TG_TOKEN, free_port

    port = free_port()
    bot = make_bot(
        telegram={
            "webapp_url": "https://bot.example.com/mask",
            "webapp_listen": f"127.0.0.1:{port}",
        }
    )
    bot.start()
    await tg.wait_for_call("deleteWebhook", timeout=30)
    alice = tg.users[ALICE]
    asked = await tg.send_text(ALICE, alice, "/imagine a blue tractor --ar 1:1")
    grid = await result_of(tg, asked.message_id, chat=ALICE)
    await tg.press(ALICE, grid, "U2", alice)
    upscaled = await tg.wait_for(
        lambda: next((m for m in replies(tg, ALICE, grid.message_id) if m.buttons), None),
        timeout=30,
    )
    await tg.press(ALICE, upscaled, "🖌️ Vary (Region)", alice)
    editor = await tg.wait_for(
        lambda: next(
            (m for m in tg.bot_messages(ALICE) if "web_app" in json.dumps(m.reply_markup or {})),
            None,
        ),
        timeout=20,
    )
    url = editor.inline_keyboard[0][0]["web_app"]["url"]
    assert url.startswith("https://bot.example.com/mask?ref=")
    ref = parse_qs(urlparse(url).query)["ref"][0]

    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/mask?ref={ref}")).status_code == 200
        fields = {
            "auth_date": str(int(time.time())),
            "query_id": "AAE",
            "user": json.dumps({"id": ALICE, "first_name": "Alice"}),
        }
        init_data = urlencode({**fields, "hash": sign(fields, TG_TOKEN)})
        forged = urlencode({**fields, "hash": sign(fields, "999:not-the-token")})
        bob = {**fields, "user": json.dumps({"id": 7002, "first_name": "Bob"})}
        not_owner = urlencode({**bob, "hash": sign(bob, TG_TOKEN)})
        # The image is Alice's: no initData, forged initData, or Bob's initData see nothing.
        image_url = f"{base}/api/region/{ref}/image"
        assert (await http.get(image_url)).status_code == 403
        for other in (forged, not_owner):
            refused = await http.get(image_url, headers={"Authorization": f"tma {other}"})
            assert refused.status_code == 403
        answer = await http.get(image_url, headers={"Authorization": f"tma {init_data}"})
        assert answer.status_code == 200
        size = Image.open(io.BytesIO(answer.content)).size
        drawn = masks.shapes_mask(size, [{"type": "rect", "x": 0.5, "y": 0.5, "w": 0.4, "h": 0.4}])
        body = {
            "ref": ref,
            "prompt": "a red tractor",
            "mask_png": "data:image/png;base64," + base64.b64encode(drawn).decode(),
        }
        refused = await http.post(f"{base}/api/mask", json={**body, "init_data": forged})
        assert refused.status_code == 403
        no_sig = await http.post(f"{base}/api/mask", json=body)
        assert no_sig.status_code == 403
        accepted = await http.post(f"{base}/api/mask", json={**body, "init_data": init_data})
        assert accepted.status_code == 200
    await tg.wait_for(lambda: sim.submits("modal"), timeout=20)
    modal = sim.submits("modal")[0].body
    assert modal["prompt"] == "a red tractor"
    sent = Image.open(io.BytesIO(decode(modal["maskBase64"]))).convert("L")
    w, h = sent.size
    assert sent.getpixel((3 * w // 4, 3 * h // 4)) == 255
    assert sent.getpixel((w // 4, h // 4)) == 0


async def test_remix_asks_for_the_prompt_and_strangers_cannot_answer(make_bot, tg):
    from mjsim import SimConfig, Simulator
    from tests.conftest import BOB
    from tests.harness import API_KEY

    async with Simulator(SimConfig(api_key=API_KEY, time_scale=0.05, remix=True)) as remix:
        bot = make_bot(midjourney={"base_url": remix.base_url})
        bot.start()
        await tg.wait_for_call("deleteWebhook", timeout=30)
        alice = tg.users[ALICE]
        asked = await tg.send_text(GROUP, alice, "/imagine a lantern festival")
        grid = await result_of(tg, asked.message_id)
        last = tg.last_message_id(GROUP)
        await tg.press(GROUP, grid, "V2", alice)  # remix on: V answers code 21
        ask = await question(tg, last)
        assert "a lantern festival" in ask.text
        stranger = await tg.send_text(GROUP, tg.users[BOB], "hijack", reply_to=ask.message_id)
        refused = await tg.wait_for(lambda: replies(tg, GROUP, stranger.message_id), timeout=15)
        assert "按钮" in refused[0].text  # Bob is told, in Chinese, that it is not his
        answer = await tg.send_text(
            GROUP, alice, "a lantern festival in the rain", reply_to=ask.message_id
        )
        await result_of(tg, answer.message_id)
        modals = remix.submits("modal")
        assert [m.body["prompt"] for m in modals] == ["a lantern festival in the rain"]
        late = await tg.send_text(GROUP, alice, "again?", reply_to=ask.message_id)
        expired = await tg.wait_for(lambda: replies(tg, GROUP, late.message_id), timeout=15)
        assert "already been answered" in expired[0].text
        assert len(remix.submits("modal")) == 1
        await bot.stop()


async def test_vary_region_with_a_mask_image_reply(bot, sim, tg):
    alice = tg.users[ALICE]
    ask = await region_question(tg, "/imagine a white cottage --ar 1:1", "U3")
    drawn = Image.new("RGB", (200, 200), "black")
    drawn.paste((255, 255, 255), (0, 100, 200, 200))  # repaint the lower half
    out = io.BytesIO()
    drawn.save(out, "PNG")
    answer = await tg.send_photo(
        GROUP, alice, out.getvalue(), caption="a garden", reply_to=ask.message_id
    )
    await result_of(tg, answer.message_id)
    body = sim.submits("modal")[0].body
    mask = Image.open(io.BytesIO(decode(body["maskBase64"]))).convert("L")
    w, h = mask.size
    assert body["prompt"] == "a garden" and (w, h) == (1024, 1024)
    assert mask.getpixel((w // 2, 3 * h // 4)) == 255 and mask.getpixel((w // 2, h // 4)) == 0


async def test_swap_as_a_conversation_face_first(bot, sim, tg):
    alice = tg.users[ALICE]
    face, target = photo("bisque"), photo("teal")
    picture = await tg.send_photo(GROUP, alice, face)
    asked = await tg.send_text(GROUP, alice, "/swap", reply_to=picture.message_id)
    ask = await tg.wait_for(
        lambda: next(
            (
                m
                for m in replies(tg, GROUP, asked.message_id)
                if (m.reply_markup or {}).get("force_reply")
            ),
            None,
        ),
        timeout=15,
    )
    assert "face" in ask.text
    answer = await tg.send_photo(GROUP, alice, target, reply_to=ask.message_id)
    await result_of(tg, answer.message_id)
    body = sim.submits("swap")[0].body
    assert decode(body["sourceBase64"]) == face and decode(body["targetBase64"]) == target
