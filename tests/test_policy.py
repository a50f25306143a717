import asyncio

import pytest

from bot.chat import Requester
from bot.config import AccessConfig, QuotaConfig, WeightsConfig
from bot.policy import Policy, action_of
from tests import storage
from tests.dbrows import stored
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


@pytest.fixture
async def store(tmp_path):
    store = await storage.open_store(tmp_path / "p.db")
    yield store
    await store.close()


def who(user="1", chat="-10", private=False) -> Requester:
    return Requester("telegram", chat, user, is_private=private)


async def test_access_modes_rules_and_admins(store):
    policy = Policy(
        store,
        AccessConfig(
            mode="allowlist", allowed_chats=("-10",), banned_users=("telegram:6",), admins=("9",)
        ),
        QuotaConfig(),
    )
    assert await policy.admitted(who("1", "-10"))
    assert not await policy.admitted(who("1", "-11"))
    assert not await policy.admitted(who("6", "-10"))  # banned, even in an allowed chat
    assert await policy.admitted(who("9", "-99"))  # admins always
    await policy.set_rule(who("9"), "user", "1", "allow")
    assert await policy.admitted(who("1", "-11"))
    await policy.set_rule(who("9"), "user", "6", "allow")  # the database wins over the file
    assert await policy.admitted(who("6", "-10"))
    await policy.set_rule(who("9", "-10"), "chat", "-10", "deny")
    assert not await policy.admitted(who("2", "-10"))
    private = Policy(store, AccessConfig(mode="private_only"), QuotaConfig())
    assert await private.admitted(who("3", "3", private=True))
    assert not await private.admitted(who("3", "-12"))


async def test_quota_limits_refunds_and_weights(store):
    policy = Policy(
        store,
        AccessConfig(admins=("9",)),
        QuotaConfig(
            daily_units=5, concurrency=2, global_daily_units=12, weights=WeightsConfig(video=4)
        ),
    )
    assert policy.units("video") == 4 and policy.units(action_of("MJ::JOB::upsample::1::h")) == 0
    k1 = await policy.charge(who(), "k1", "video")
    k2 = await policy.charge(who(), "k2", "upscale")
    assert isinstance(k1, str) and isinstance(k2, str)
    refusal = await policy.charge(who(), "k3", "imagine")
    assert refusal.key == "quota.concurrency"  # two in flight
    await policy.settle(k2, success=True)
    refusal = await policy.charge(who(), "k3", "video")
    assert refusal.key == "quota.daily" and refusal.fields["left"] == 1
    await policy.settle(k1, success=False)  # refunded
    assert isinstance(await policy.charge(who(), "k3", "video"), str)
    usage = await policy.usage("telegram", "1")
    assert usage.today == 4 and usage.refunded == 1 and usage.running == 1
    # admins skip personal limits but not the bot's budget
    assert isinstance(await policy.charge(who("9"), "a1", "video"), str)
    assert isinstance(await policy.charge(who("9"), "a2", "video"), str)
    refusal = await policy.charge(who("9"), "a3", "video")
    assert refusal.key == "quota.global"


async def test_a_video_weighs_eight_images_and_hd_more(store):
    """Issue 15: a video job costs about 8x an image job; HD more. Configurable."""
    policy = Policy(store, AccessConfig(), QuotaConfig())
    assert (policy.units("imagine"), policy.units("video"), policy.units("video_hd")) == (1, 8, 16)


async def test_simultaneous_charges_against_a_quota_of_one(store):
    policy = Policy(store, AccessConfig(), QuotaConfig(daily_units=1, concurrency=0))
    results = await asyncio.gather(*(policy.charge(who(), f"k{i}", "imagine") for i in range(10)))
    assert sum(isinstance(r, str) for r in results) == 1


async def test_a_refund_touches_only_its_own_attempt(store):
    """Two attempts on one task (a press, then the answer to its question): settling one
    leaves the other alone; a void charge is neither spent nor a failure."""
    policy = Policy(store, AccessConfig(), QuotaConfig())
    press = await policy.charge(who(), "task", "zoom")
    await policy.void(press)
    answer = await policy.charge(who(), "task", "zoom")
    assert isinstance(press, str) and isinstance(answer, str) and press != answer
    await policy.settle(press, success=False)  # late, and for the other attempt: no effect
    rows = stored(store, "SELECT id, outcome FROM ledger ORDER BY created_at")
    assert [(r["id"], r["outcome"]) for r in rows] == [(press, "void"), (answer, "pending")]
    await policy.settle(answer, success=True)
    usage = await policy.usage("telegram", "1")
    assert usage.today == 1 and usage.jobs == 1 and usage.refunded == 0
    stats = await policy.stats()
    assert stats.jobs_today == 1 and stats.failures_week == 0


def test_banned_words_match_whole_words_only(store):
    policy = Policy(store, AccessConfig(), QuotaConfig(banned_words=("gore",)))
    assert policy.banned_word("a Gore scene") == "gore"
    assert policy.banned_word("a gorgeous gorey-less scene") is None
