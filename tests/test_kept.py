"""Photos kept for a later answer live in the store (issue 14): a question asked on one
instance and answered on another finds its photo.

The store's rules on both stores; the two-instance tests on PostgreSQL, in-process: two
Services on one database, each with its own media folder (as replicas have), the second
store opened with ``exclusive=False`` beside the first (tests/test_guards.py's ``twin``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os

import pytest
from PIL import Image

from bot import commands, media, results
from bot.media import MediaCache
from bot.mj.prompt import RefKind
from bot.store import KEPT_MAX_BYTES
from bot.usecases.jobs import Kind
from bot.usecases.kept import Kept
from tests.dbrows import stored
from tests.inprocess import OWNER, png, worlds
from tests.storage import BOTH
from tests.test_guards import PG, close, stores, twin
from tests.test_studio_flows import decoded, started


def uri(photo: bytes) -> str:
    """What the API gets for a small PNG (passed as it is)."""
    return f"data:image/png;base64,{base64.b64encode(photo).decode()}"


# --- the store's rules -------------------------------------------------------------------------


@BOTH
async def test_a_kept_photo_is_read_by_another_store_until_its_time_is_up(tmp_path) -> None:
    opened = await stores(tmp_path, 2)
    here, there = opened
    try:
        await here.keep_photo("face-a", b"one", 60.0)
        assert await there.kept_photo("face-a") == b"one"
        await there.keep_photo("face-a", b"two", 60.0)  # the same name again: replaced
        assert await here.kept_photo("face-a") == b"two"
        assert await here.kept_photo("face-b") is None
        # Past its time it is gone, renewed or not, and the next keep prunes it.
        await here.keep_photo("held-x-0", b"old", 0.05)
        await asyncio.sleep(0.1)
        assert await there.kept_photo("held-x-0") is None
        assert await there.kept_photo("held-x-0", renew_for_s=60.0) is None
        await there.keep_photo("ref-r", b"ref", 0.3)
        keys = [r["key"] for r in stored(here, "SELECT key FROM kept ORDER BY key")]
        assert keys == ["face-a", "ref-r"]
        # Renewed on use: kept from now on for that long, never shortened by a renewal.
        assert await here.kept_photo("ref-r", renew_for_s=60.0) == b"ref"
        await asyncio.sleep(0.4)
        assert await there.kept_photo("ref-r", renew_for_s=0.0) == b"ref"
        (row,) = stored(here, "SELECT created_at, expires_at FROM kept WHERE key = 'ref-r'")
        assert row["expires_at"] - row["created_at"] > 59
        # The size is capped.
        with pytest.raises(ValueError):
            await here.keep_photo("big", b"x" * (KEPT_MAX_BYTES + 1), 60.0)
        assert await there.kept_photo("big") is None
    finally:
        await close(opened)


@BOTH
async def test_kept_shrinks_a_photo_over_the_cap_and_moves_one_from_the_media_folder(
    tmp_path,
) -> None:
    (store,) = await stores(tmp_path, 1)
    legacy = MediaCache(tmp_path / "media")

    async def convert(function, *args):
        return function(*args)

    kept = Kept(store, convert, legacy=legacy)
    try:
        side = 1200  # noise: a PNG over the cap
        noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        buffer = io.BytesIO()
        noise.save(buffer, "PNG")
        big = buffer.getvalue()
        assert len(big) > KEPT_MAX_BYTES
        await kept.put("face-big", big)
        small = await kept.get("face-big")
        assert small is not None and len(small) <= KEPT_MAX_BYTES
        assert media.sniff(small) == "image/jpeg" and media.image_size(small) == (side, side)
        with pytest.raises(media.MediaError):
            await kept.put("face-junk", b"\0" * (KEPT_MAX_BYTES + 1))  # no image to shrink
        # Kept on disk by an older version: read from there once, and kept in the store.
        legacy.put("ref-old", b"photo")
        assert await kept.get("ref-old") == b"photo"
        (tmp_path / "media" / "ref-old").unlink()
        assert await kept.get("ref-old") == b"photo"
        assert await kept.get("../ref-old") is None
    finally:
        await close([store])


# --- questions answered on another instance ---------------------------------------------------


@PG
async def test_a_face_sent_to_one_instance_and_the_target_to_another_is_one_swap(tmp_path):
    async with worlds(tmp_path)() as w, twin(w) as other:
        face, target = png((64, 64), "red"), png((64, 64), "blue")
        await commands.run(w.service, w.who(), "swap", "", [face])
        asked, _ = w.chat.sent[-1]
        assert await other.answer(w.who(), asked, "", [target]) is True
        (sent,) = w.sim.submits("swap")
        assert sent.body["sourceBase64"] == uri(face)
        assert sent.body["targetBase64"] == uri(target)
        (task,) = stored(w.store, "SELECT key FROM tasks WHERE kind = 'swap'")
        rows = await w.settled(task["key"])
        assert [r["outcome"] for r in rows] == ["success"]
        assert await w.spent() == rows[0]["units"]
        assert not any("photos" in text for text in w.chat.texts())  # no count refusal


@PG
async def test_a_prompt_held_with_its_photo_is_sent_from_another_instance(tmp_path):
    async with worlds(tmp_path)() as w, twin(w) as other:
        photo = png((64, 64), "green")
        await w.service.imagine(w.who(), "a fox --s 5000", [photo])
        held_id, held = w.chat.sent[-1]
        assert "--s 5000 is out of range: 0–1000." in held.text
        token = w.chat.tokens(held_id)["✅ Fix and send"]
        await other.press(w.who(message=held_id), token)
        await w.until(lambda: w.submits("imagine") == 1)
        (sent,) = w.sim.submits("imagine")
        assert sent.body["prompt"] == "a fox --s 1000"
        assert sent.body["base64Array"] == [uri(photo)]
        (task,) = stored(w.store, "SELECT key FROM tasks WHERE kind = 'imagine'")
        assert [r["outcome"] for r in await w.settled(task["key"])] == ["success"]
        await asyncio.sleep(0.2)
        assert w.submits("imagine") == 1


@PG
async def test_a_result_original_missing_on_another_instance_is_downloaded_again(tmp_path):
    """Result originals stay a per-instance cache: a miss downloads the image once more."""
    async with worlds(tmp_path)() as w, twin(w) as other:
        key, _ = await w.imagine()
        assert (w.tmp / "media" / key).is_file()  # the first instance cached its original
        assert not (w.tmp / "media-twin" / key).exists()
        row = await w.store.task(key)
        assert row is not None
        before = w.sim.image_requests
        data = await results.original(other.runtime, row)
        assert data == (w.tmp / "media" / key).read_bytes()
        assert w.sim.image_requests == before + 1
        assert (w.tmp / "media-twin" / key).read_bytes() == data
        assert await results.original(other.runtime, row) == data  # now cached there
        assert w.sim.image_requests == before + 1


@PG
async def test_the_studio_and_video_questions_and_a_reference_without_a_url_on_another_instance(
    tmp_path,
):
    """✏️ pressed on A and its prompt answered on B; /video --end on A and the end frame on B;
    a reference the provider gave no URL kept on A and a prompt on B sending it."""
    async with worlds(tmp_path)(flavour="openai-hk") as w, twin(w) as other:
        key = await started(w, Kind.EDIT, "make it snowy", [png(colour="teal")])
        message = await w.result(key)
        row = await w.store.task(key)
        assert row is not None and row.task is not None
        first = await w.downloader.get(row.task.image_urls[0])
        await w.press(message, "✏️ 1")
        ask = await w.until(lambda: next((m for m, v in w.chat.sent if v.ask), None))
        # the question is recorded just after it is posted (a person takes longer to answer)
        await w.until(lambda: stored(w.store, "SELECT 1 FROM asks WHERE command = 'edit'"))
        assert await other.answer(w.who(message="reply"), ask, "now at night")
        await w.until(lambda: w.submits("edits") == 2)
        body = w.sim.submits("edits")[-1].body
        assert body["prompt"] == "now at night" and decoded(body["image"]) == first

        start, end = png(colour="navy"), png(colour="gold")
        await w.service.start_kind(Kind.VIDEO, w.who(), "--end sunrise", [start])
        asked = await w.until(lambda: next((m for m, v in w.chat.sent if v.ask and m != ask), None))
        assert await other.answer(w.who(message="r"), asked, "", [end])
        await w.until(lambda: w.submits("video") == 1)
        body = w.sim.submits("video")[0].body
        assert decoded(body["image"]) == start and decoded(body["endImage"]) == end

        w.sim.faults.fail_next("upload-discord-images", status=500, times=3)
        photo = png(colour="olive")
        await w.service.keep_reference(w.who(), RefKind.IMAGE, "", [photo])
        (ref,) = (await w.store.user_settings("t", OWNER)).references
        assert ref.url.startswith("cached:")
        await other.imagine(w.who(), "a lighthouse")
        await w.until(lambda: w.submits("imagine") == 1)
        assert w.sim.submits("imagine")[0].body["base64Array"] == [uri(photo)]


async def test_a_face_whose_time_is_up_says_the_question_expired(tmp_path) -> None:
    async with worlds(tmp_path)() as w:
        await commands.run(w.service, w.who(), "swap", "", [png(colour="red")])
        asked, _ = w.chat.sent[-1]
        (ask,) = stored(w.store, "SELECT args FROM asks")
        name = "face-" + ask["args"].removeprefix("face=")
        await w.store.keep_photo(name, png(colour="red"), 0.0)  # its time is up
        assert await w.service.answer(w.who(), asked, "", [png(colour="blue")])
        assert w.chat.sent[-1][1].text == "This question has already been answered or has expired."
        assert w.sim.submits() == [] and await w.spent() == 0


async def test_a_reference_whose_photo_is_gone_is_dropped_and_said(tmp_path) -> None:
    async with worlds(tmp_path)() as w:
        w.sim.faults.fail_next("upload-discord-images", status=500, times=3)
        await w.service.keep_reference(w.who(), RefKind.IMAGE, "", [png(colour="olive")])
        (ref,) = (await w.store.user_settings("t", OWNER)).references
        await w.store.keep_photo(ref.url.removeprefix("cached:"), png(), 0.0)  # unused too long
        kept_at = len(w.chat.sent)
        await w.imagine("a lighthouse")
        assert (
            "photo#1: this reference's photo was unused for 30 days and is no longer kept, so"
            " this prompt goes without it. Send the photo again with /ref to use it."
        ) in w.chat.texts()
        (sent,) = w.sim.submits("imagine")
        assert not sent.body.get("base64Array")
        assert (await w.store.user_settings("t", OWNER)).references == ()
        progress = [v.text for _, v in w.chat.sent[kept_at:] if "Imagine" in v.text]
        assert progress and not any("photo#1" in text for text in progress)
