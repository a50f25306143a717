"""The gate (bot/usecases/gate.py) on its own: a real store, policy and outbox around a chat
double. One request, one decision: an entrance opened again inside it reuses the decision
(no second bookkeeping); outsiders are told once per chat (every time where refusals are
private); a redelivered update is ignored; ``@gated`` runs a method only for a passed entry."""

from __future__ import annotations

import pytest

from bot.chat import MessageRef, Requester
from bot.config import AccessConfig, QuotaConfig
from bot.i18n import t
from bot.outbox import Outbox
from bot.policy import Policy
from bot.usecases.gate import Gate, gated
from tests import storage
from tests.dbrows import stored
from tests.inprocess import CHAT, Chat
from tests.storage import BOTH

pytestmark = BOTH
DENIED = t("access.denied", "en")


class Private(Chat):
    private_replies = True  # as Discord's: a refusal only its person sees


@pytest.fixture
async def parts(tmp_path):
    store = await storage.open_store(tmp_path / "mjbot.db")
    chat, private = Chat(), Private()
    private.platform = "p"
    outbox = Outbox({"t": chat, "p": private}, edit_interval_s=0.05, send_interval_s=0)
    policy = Policy(store, AccessConfig(mode="allowlist", allowed_users=("7",)), QuotaConfig())
    remembered: list[Requester] = []
    remember = policy.remember

    async def counted(req: Requester) -> None:
        remembered.append(req)
        await remember(req)

    policy.remember = counted  # type: ignore[method-assign]
    yield Gate(store, policy, outbox), store, chat, private, remembered
    await outbox.close()
    await store.close()


def who(user: str, event: str, platform: str = "t", chat: str = CHAT) -> Requester:
    return Requester(platform, chat, user, message=MessageRef(platform, chat, "1"), event=event)


async def test_an_entrance_inside_the_same_request_reuses_the_decision(parts):
    gate, store, _, _, remembered = parts
    req = who("7", "u-1")
    async with gate.entrance(req) as outer:
        assert outer.passed is not None
        async with gate.entrance(outer.passed) as inner:  # e.g. the command after a download
            assert inner is outer
    assert len(remembered) == 1
    assert len(stored(store, "SELECT * FROM seen WHERE event = 'u-1'")) == 1


async def test_the_same_update_again_is_ignored(parts):
    gate, _, chat, _, _ = parts
    async with gate.entrance(who("7", "u-2")) as first:
        assert first.passed is not None
    async with gate.entrance(who("7", "u-2")) as again:
        assert again.admitted and again.redelivered and again.passed is None
    assert chat.texts() == []  # ignored in silence


async def test_outsiders_in_a_group_hear_one_refusal_in_private_every_time(parts):
    gate, _, chat, private, _ = parts
    for n, user in enumerate(["8", "9", "8"]):
        async with gate.entrance(who(user, f"g-{n}")) as entry:
            assert entry.passed is None and not entry.admitted
    assert chat.texts() == [DENIED]
    for n in range(2):
        async with gate.entrance(who("8", f"p-{n}", platform="p")) as entry:
            assert entry.passed is None
    assert private.texts() == [DENIED, DENIED]


async def test_a_quiet_entrance_leaves_the_telling_to_the_one_inside(parts):
    gate, _, chat, _, remembered = parts
    req = who("8", "q-1")
    async with gate.entrance(req, quiet=True) as outer:
        assert chat.texts() == []
        async with gate.entrance(req) as inner:  # it was a request to us after all
            assert inner is outer
        async with gate.entrance(req):
            pass
    assert chat.texts() == [DENIED] and len(remembered) == 1


async def test_gated_runs_the_method_only_for_a_passed_entry(parts):
    gate = parts[0]

    class Facade:
        def __init__(self) -> None:
            self.gate = gate
            self.ran: list[str] = []

        @gated
        async def act(self, req: Requester, what: str) -> None:
            self.ran.append(f"{req.user_id}:{what}")

    facade = Facade()
    await facade.act(who("7", "m-1"), "a")
    await facade.act(who("7", "m-1"), "b")  # redelivered
    await facade.act(who("8", "m-2"), "c")  # an outsider
    assert facade.ran == ["7:a"]
