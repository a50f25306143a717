"""Delivery (bot/usecases/delivery.py): what the tracker and the notifyHook receiver report
becomes progress edits and one result message, also when the same news comes twice; a task
the API never finishes is ended and refunded. In-process against the simulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.i18n import t
from bot.mj.models import TaskState
from tests.dbrows import stored
from tests.inprocess import worlds
from tests.storage import BOTH

pytestmark = BOTH


@pytest.fixture
def world(tmp_path):
    return worlds(tmp_path)


async def test_the_same_final_news_twice_posts_one_result(world):
    async with world() as w:
        key, result = await w.imagine()
        row = await w.store.task(key)
        assert row is not None and row.task_id
        task = await w.client.fetch(row.task_id)
        assert task is not None and task.status is TaskState.SUCCESS
        before = len(w.chat.sent)
        await asyncio.gather(w.service.on_tasks([task]), w.service.on_tasks([task]))
        await asyncio.sleep(0.3)  # a second result would be posted in the background
        assert len(w.chat.sent) == before
        assert [r["outcome"] for r in await w.settled(key)] == ["success"]
        assert (await w.store.task(key)).result_ref.split("|")[2] == result


async def test_a_user_who_wants_files_gets_the_original_after_the_picture(world):
    async with world() as w:
        req = w.who()
        await w.store.change_user_settings(
            req.platform, req.user_id, lambda s: replace(s, delivery="file")
        )
        _, result = await w.imagine()
        await w.until(lambda: w.chat.sent[-1][0] != result)
        _, view = w.chat.sent[-1]
        assert view.text == t("result.file", "en")
        (media,) = view.media
        assert media.kind == "document" and media.data.startswith(b"\x89PNG")


async def test_a_task_the_api_never_finishes_is_ended_told_and_refunded(world):
    async with world(time_scale=1.0) as w:  # real time: a grid takes far longer than this test
        await w.service.imagine(w.who(), "a slow snail")
        (row,) = stored(w.store, "SELECT key FROM tasks")
        key = row["key"]
        running = await w.until(lambda: _running(w, key))
        await w.service.time_out(running)
        rows = await w.settled(key)
        assert [r["outcome"] for r in rows] == ["refunded"]
        # the refund is settled before the notice is posted and recorded: wait for the record
        ended = await w.result(key) and await w.store.task(key)
        assert ended is not None and ended.status == TaskState.TIMEOUT and ended.delivered_at
        shown = w.chat.shown[ended.result_ref.split("|")[2]]
        assert t("failure.timeout", "en") in shown.text
        assert shown.text.endswith("\n1 unit refunded.")


async def _running(w, key):
    row = await w.store.task(key)
    return row if row is not None and row.task_id else None


async def test_progress_is_edited_in_place_and_removed_with_the_result(world):
    async with world(time_scale=0.05) as w:
        key, result = await w.imagine()
        progress = [m for m, v in w.chat.sent if m != result]
        assert len(progress) == 1  # one message for every step: edited, not re-posted
        assert progress[0] in w.chat.deleted
        row = await w.store.task(key)
        assert row is not None and row.delivered_at

        async def forgotten() -> bool:  # the row lets go of the message once it is deleted
            fresh = await w.store.task(key)
            return fresh is not None and fresh.progress_ref is None

        await w.until(forgotten, timeout=5)
