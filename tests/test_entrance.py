"""The entrance of a request: the access gate runs once per request (not again inside the use
case it reaches), and a command is a typed value, also when read back from the database."""

from __future__ import annotations

import logging

from bot import commands, logs
from bot.chat import MessageRef
from bot.commands import Command
from bot.config import AccessConfig
from bot.i18n import t
from bot.usecases.jobs import Kind
from tests.dbrows import stored
from tests.inprocess import CHAT, OWNER, png, worlds
from tests.storage import BOTH

# Every test here on SQLite and on PostgreSQL (tests/storage.py).
pytestmark = BOTH


def count_gates(w) -> list[object]:
    """Every run of the gate's bookkeeping (``policy.remember``), recorded."""
    runs: list[object] = []
    remember = w.policy.remember

    async def counted(req):
        runs.append(req)
        await remember(req)

    w.policy.remember = counted
    return runs


async def test_a_command_passes_the_gate_once(tmp_path):
    async with worlds(tmp_path)() as w:
        runs = count_gates(w)
        await commands.run(w.service, w.who(), "imagine", "a fox at dawn")
        await w.until(lambda: w.submits("imagine") == 1)
        assert len(runs) == 1
        runs.clear()
        await commands.run(w.service, w.who(), "fast", "")
        assert len(runs) == 1


async def test_a_use_case_called_on_its_own_still_passes_the_gate(tmp_path):
    async with worlds(tmp_path)() as w:
        runs = count_gates(w)
        await w.service.imagine(w.who(), "a fox at dawn")
        await w.until(lambda: w.submits("imagine") == 1)
        assert len(runs) == 1


async def test_an_answer_with_photos_passes_the_gate_once(tmp_path):
    async with worlds(tmp_path)() as w:
        await commands.run(w.service, w.who(), "describe", "")  # no photo: it asks for one
        asked = await w.until(lambda: [m for m, v in w.chat.sent if v.ask is not None])
        runs = count_gates(w)
        assert await w.service.answer(w.who(), asked[0], "", [png()]) is True
        await w.until(lambda: w.submits("describe") == 1)
        assert len(runs) == 1


async def test_an_ask_naming_no_command_is_expired_not_looked_up(tmp_path):
    async with worlds(tmp_path)() as w:
        ref = MessageRef("t", CHAT, "555")
        await w.store.add_ask(ref, OWNER, "close", "", "en")  # a forged or old row
        assert await w.service.answer(w.who(), "555", "", [b"not even an image"]) is True
        assert any("expired" in text.lower() for text in w.chat.texts())


def test_every_command_name_is_typed_and_every_kind_is_a_command():
    assert all(Command.of(name) is not None for name in commands.COMMANDS)
    assert all(Command.of(name) is not None for name in commands.ADMIN_COMMANDS)
    assert Command.of("close") is None and Kind.of("close") is None
    assert {Command(kind.value) for kind in Kind} <= set(commands.HANDLERS)


# --- redeliveries, outsiders and the log context: at the entrance, once -------------------------


async def test_a_redelivered_update_is_ignored_at_the_entrance_for_every_command(tmp_path):
    async with worlds(tmp_path)() as w:
        again = w.who()
        await commands.run(w.service, again, "settings", "")
        await commands.run(w.service, again, "settings", "")  # the same update once more
        assert len(w.chat.sent) == 1  # one menu (before: the menu twice)
        asked = w.who()
        await commands.run(w.service, asked, "describe", "")
        await commands.run(w.service, asked, "describe", "")
        assert sum(v.ask is not None for _, v in w.chat.sent) == 1  # asked once, not twice
        assert len(stored(w.store, "SELECT * FROM asks")) == 1


async def test_a_redelivered_press_is_told_it_runs_and_submits_nothing(tmp_path):
    async with worlds(tmp_path)() as w:
        _, result = await w.imagine()
        token = w.chat.tokens(result)["U1"]
        press = w.who()
        first = await w.service.press(press, token)
        again = await w.service.press(press, token)
        await w.until(lambda: w.submits("action") == 1)
        assert "U1" in first.text and not first.alert
        assert again.text == t("press.running", "en")
        assert len(stored(w.store, "SELECT * FROM ledger WHERE action != 'imagine'")) == 1


async def test_an_adapters_entrance_and_the_command_inside_run_the_gate_once(tmp_path):
    async with worlds(tmp_path)() as w:
        runs = count_gates(w)
        req = w.who()
        async with w.service.entrance(req) as entered:  # e.g. before downloading a photo
            assert entered is not None
            await commands.run(w.service, entered, "describe", "", [png()])
        await w.until(lambda: w.submits("describe") == 1)
        assert len(runs) == 1
        assert len(stored(w.store, "SELECT * FROM seen WHERE event = ?", req.event)) == 1


async def test_an_outsider_entering_quietly_is_told_once_when_it_answers_our_question(tmp_path):
    async with worlds(tmp_path)() as w:
        await commands.run(w.service, w.who(), "describe", "")
        asked = w.chat.sent[-1][0]
        w.policy.access = AccessConfig(mode="allowlist", allowed_users=("someone-else",))
        runs = count_gates(w)
        outsider = w.who(user="99")
        async with w.service.entrance(outsider, quiet=True) as entered:  # a photo reply
            assert entered is None
            assert t("access.denied", "en") not in w.chat.texts()  # quiet: not told yet
            assert await w.service.answer(outsider, asked, "") is True
        denied = [text for text in w.chat.texts() if text == t("access.denied", "en")]
        assert len(denied) == 1 and len(runs) == 1
        assert w.submits("describe") == 0


async def test_log_lines_of_a_request_carry_its_chat_and_user(tmp_path, caplog):
    caplog.handler.addFilter(logs._Context())  # as bot.logs.setup installs it
    async with worlds(tmp_path)() as w:
        with caplog.at_level(logging.INFO, logger="bot.service"):
            await w.service.imagine(w.who(), "a fox at dawn")
        (line,) = [r for r in caplog.records if r.getMessage() == "submitting imagine"]
        assert f"chat={CHAT}" in line.ctx and f"user={OWNER}" in line.ctx and "task=" in line.ctx
        assert line.ctx.count("chat=") == 1  # the request's context, not repeated per step
