"""The entrance of a request: the access gate runs once per request (not again inside the use
case it reaches), and a command is a typed value, also when read back from the database."""

from __future__ import annotations

from bot import commands
from bot.chat import MessageRef
from bot.commands import Command
from bot.usecases.jobs import Kind
from tests.inprocess import CHAT, OWNER, png, worlds


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
