"""The fake Discord against the real discord.py 2.7 (REST + gateway over 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands

from adapters.discord.seams import point_discord_at
from tests.fakes.discord import SPEC_AVAILABLE, FakeDiscord, FakeMessage

REPO = Path(__file__).resolve().parents[1]
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
async def fake(seams: None) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        point_discord_at(server.api_base, server.gateway_url)
        yield server


def make_client() -> tuple[discord.Client, app_commands.CommandTree[discord.Client]]:
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    return client, app_commands.CommandTree(client)


@contextlib.asynccontextmanager
async def running(client: discord.Client) -> AsyncIterator[discord.Client]:
    start = asyncio.create_task(client.start("fake-token"))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({start, ready}, timeout=5, return_when="FIRST_COMPLETED")
        if start in done:
            start.result()
        assert ready in done, "client did not become ready"
        yield client
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await start


async def test_login_ready_and_guild(fake: FakeDiscord) -> None:
    client, _ = make_client()
    async with running(client):
        assert client.user is not None
        assert client.user.id == int(fake.bot_user_id)
        assert client.application_id == int(fake.application_id)
        channel = client.get_channel(int(fake.channel_id))
        assert isinstance(channel, discord.TextChannel)
        assert channel.guild.id == int(fake.guild_id)
        assert fake.identify is not None and fake.identify["token"] == "fake-token"
        paths = [r.path for r in fake.requests]
        assert "/api/v10/users/@me" in paths and "/api/v10/oauth2/applications/@me" in paths
    assert fake.errors == []


async def test_sync_records_commands(fake: FakeDiscord) -> None:
    client, tree = make_client()

    @tree.command(description="Generate an image")
    async def imagine(interaction: discord.Interaction, prompt: str) -> None:
        pass

    @tree.command(description="Describe an image")
    async def describe(interaction: discord.Interaction, image: discord.Attachment) -> None:
        pass

    async with running(client):
        synced = await tree.sync()
        assert sorted(c.name for c in synced) == ["describe", "imagine"]
        assert sorted(c["name"] for c in fake.commands) == ["describe", "imagine"]
        assert all(c["id"] for c in fake.commands)
        assert fake.command("describe")["options"][0]["type"] == 11  # type: ignore[index]
        put = [r for r in fake.requests if r.method == "PUT"]
        assert put and put[0].path.endswith(f"/applications/{fake.application_id}/commands")

        guild = discord.Object(int(fake.guild_id))
        tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)
        assert len(fake.guild_commands[fake.guild_id]) == 2
    assert fake.errors == []


async def test_slash_defer_then_followup_with_file(fake: FakeDiscord) -> None:
    client, tree = make_client()
    seen: dict[str, Any] = {}

    @tree.command(description="Generate an image")
    async def imagine(interaction: discord.Interaction, prompt: str) -> None:
        seen["prompt"], seen["locale"] = prompt, str(interaction.locale)
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(
            f"**{prompt}**", file=discord.File(io.BytesIO(PNG), filename="grid.png")
        )

    async with running(client):
        await tree.sync()
        inter = await fake.slash("imagine", {"prompt": "a red fox"}, locale="ru")
        msg = await inter.wait_message()
        assert seen == {"prompt": "a red fox", "locale": "ru"}
        assert inter.response_type == 5
        assert msg is inter.original  # the first followup replaced the "thinking" message
        assert msg.content == "**a red fox**"
        assert msg.attachments == [("grid.png", PNG, "image/png")]
        async with aiohttp.ClientSession() as http:
            url = fake._message_payload(msg)["attachments"][0]["url"]
            async with http.get(url) as resp:
                assert await resp.read() == PNG
    assert fake.errors == []


async def test_slash_attachment_option_is_downloadable(fake: FakeDiscord) -> None:
    client, tree = make_client()
    got: dict[str, Any] = {}

    @tree.command(description="Describe an image")
    async def describe(interaction: discord.Interaction, image: discord.Attachment) -> None:
        got["data"] = await image.read()
        got["meta"] = (image.filename, image.content_type, image.width, image.height)
        await interaction.response.send_message(f"{image.size} bytes", ephemeral=True)

    async with running(client):
        await tree.sync()
        inter = await fake.slash("describe", attachments={"image": PNG})
        msg = await inter.wait_message()
        assert got["data"] == PNG
        assert got["meta"] == ("image.png", "image/png", 1, 1)
        assert msg.content == f"{len(PNG)} bytes" and msg.ephemeral
    assert fake.errors == []


async def test_button_click_reaches_callback(fake: FakeDiscord) -> None:
    client, _ = make_client()
    clicked = asyncio.Event()

    class Grid(discord.ui.View):
        @discord.ui.button(label="U2", custom_id="mj:u:2:job1")
        async def u2(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            clicked.set()
            await interaction.response.edit_message(content="upscaling U2", view=None)

    async with running(client):
        channel = client.get_channel(int(fake.channel_id))
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("grid ready", view=Grid())
        msg = fake.messages[str(sent.id)]
        assert fake.buttons(msg) == [[("U2", "mj:u:2:job1")]]
        inter = await fake.click(msg.id, label="U2")
        await asyncio.wait_for(clicked.wait(), 2)
        await inter.wait_callback()
        assert inter.response_type == 7
        await fake.wait_for(lambda: msg.content == "upscaling U2")
        assert msg.components == [] and len(msg.edits) == 1
    assert fake.errors == []


async def test_modal_round_trip(fake: FakeDiscord) -> None:
    client, tree = make_client()
    submitted: dict[str, str] = {}

    class Settings(discord.ui.Modal, title="Settings"):
        prompt = discord.ui.TextInput(label="Prompt", custom_id="prompt", default="old prompt")
        style = discord.ui.Label(
            text="Style", component=discord.ui.TextInput(custom_id="style", default="raw")
        )

        async def on_submit(self, interaction: discord.Interaction) -> None:
            assert isinstance(self.style.component, discord.ui.TextInput)
            submitted.update(prompt=self.prompt.value, style=self.style.component.value)
            await interaction.response.send_message("saved", ephemeral=True)

    @tree.command(description="Settings")
    async def settings(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Settings(custom_id="settings-modal"))

    async with running(client):
        await tree.sync()
        opened = await fake.slash("settings")
        callback = await opened.wait_callback()
        assert callback.type == 9
        assert callback.data is not None and callback.data["title"] == "Settings"
        # discord.py 2.7 sends a bare TextInput wrapped in an action row, a Label as type 18.
        assert [c["type"] for c in callback.data["components"]] == [1, 18]

        submit = await fake.submit_modal("settings-modal", {"prompt": "new prompt"})
        reply = await submit.wait_message()
        assert submitted == {"prompt": "new prompt", "style": "raw"}
        assert reply.content == "saved" and reply.ephemeral
    assert fake.errors == []


async def test_custom_id_over_100_chars_is_rejected(fake: FakeDiscord) -> None:
    client, _ = make_client()
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="x", custom_id="x" * 101))
    async with running(client):
        channel = client.get_channel(int(fake.channel_id))
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as exc:
            await channel.send("grid", view=view)
        assert exc.value.status == 400 and exc.value.code == 50035
    assert [(e.status, e.code) for e in fake.errors] == [(400, 50035)]
    assert "custom_id" in str(fake.errors[0])
    assert fake.channel_messages() == []


async def test_content_over_2000_chars_is_rejected(fake: FakeDiscord) -> None:
    client, _ = make_client()
    async with running(client):
        channel = client.get_channel(int(fake.channel_id))
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as exc:
            await channel.send("x" * 2001)
        assert exc.value.code == 50035
        ok = await channel.send("x" * 2000)
        assert isinstance(fake.messages[str(ok.id)], FakeMessage)
    assert len(fake.errors) == 1 and "content" in fake.errors[0].errors


async def test_documented_limits_hold_without_the_spec(seams: None) -> None:
    async with FakeDiscord(validate_spec=False) as fake:
        point_discord_at(fake.api_base, fake.gateway_url)
        client, tree = make_client()

        @tree.command(description="modal with a 46-char title")
        async def wide(interaction: discord.Interaction) -> None:
            modal = discord.ui.Modal(title="t" * 46, custom_id="wide")
            modal.add_item(discord.ui.TextInput(label="x", custom_id="x"))
            with pytest.raises(discord.HTTPException):
                await interaction.response.send_modal(modal)

        async with running(client):
            await tree.sync()
            route = discord.http.Route(
                "POST", "/channels/{channel_id}/messages", channel_id=fake.channel_id
            )

            def row(*ids: str) -> dict[str, Any]:
                buttons = [{"type": 2, "style": 1, "label": i, "custom_id": i} for i in ids]
                return {"type": 1, "components": buttons}

            bad_bodies = [
                {"content": "x" * 2001},
                {"components": [row("x" * 101)]},
                {"components": [row(str(i)) for i in range(6)]},
                {"components": [row("a", "a")]},
                {"components": [{"type": 1, "components": [
                    {"type": 2, "style": 1, "label": "x" * 81, "custom_id": "a"}
                ]}]},
            ]  # fmt: skip
            for body in bad_bodies:
                with pytest.raises(discord.HTTPException) as exc:
                    await client.http.request(route, json=body)
                assert exc.value.code == 50035, body
            await fake.slash("wide")
            await fake.wait_for(lambda: len(fake.errors) == len(bad_bodies) + 1)
        assert all(e.code == 50035 for e in fake.errors)
        assert "title" in fake.errors[-1].errors["data"]
        assert fake.channel_messages() == []


async def test_subcommand_choices_dm_and_select(fake: FakeDiscord) -> None:
    client, tree = make_client()
    got: dict[str, Any] = {}
    group = app_commands.Group(name="settings", description="Settings")

    @group.command(description="Language")
    @app_commands.choices(
        lang=[
            app_commands.Choice(name="English", value="en"),
            app_commands.Choice(name="Русский", value="ru"),
        ]
    )
    async def language(
        interaction: discord.Interaction, lang: app_commands.Choice[str], n: int = 1
    ) -> None:
        got["lang"] = (lang.value, n)
        await interaction.response.send_message("ok", file=discord.File(io.BytesIO(PNG), "a.png"))

    tree.add_command(group)

    class Pick(discord.ui.View):
        @discord.ui.select(
            custom_id="pick",
            options=[
                discord.SelectOption(label="A", value="a"),
                discord.SelectOption(label="B", value="b"),
            ],
        )
        async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
            got["picked"] = select.values
            file = discord.File(io.BytesIO(PNG), "b.png")
            await interaction.response.edit_message(attachments=[file])

    @tree.command(description="Hello")
    async def hello(interaction: discord.Interaction) -> None:
        got["dm"] = (interaction.guild_id, type(interaction.channel).__name__)
        await interaction.response.send_message("hi", view=Pick())

    async with running(client):
        await tree.sync()
        with pytest.raises(ValueError, match="not one of"):
            await fake.slash("settings language", {"lang": "de"})
        msg = await (await fake.slash("settings language", {"lang": "ru", "n": 3})).wait_message()
        assert got["lang"] == ("ru", 3) and msg.attachments[0].filename == "a.png"

        hi = await (await fake.slash("hello", dm=True)).wait_message()
        assert got["dm"] == (None, "DMChannel")
        picked = await fake.click(hi, "pick", values=["b"])
        assert (await picked.wait_callback()).type == 7
        await fake.wait_for(lambda: [f.filename for f in hi.attachments] == ["b.png"])
        assert got["picked"] == ["b"]
    assert fake.errors == []


async def test_channel_files_edit_delete(fake: FakeDiscord) -> None:
    client, _ = make_client()
    async with running(client):
        channel = client.get_channel(int(fake.channel_id))
        assert isinstance(channel, discord.TextChannel)
        async with channel.typing():
            files = [
                discord.File(io.BytesIO(PNG), "1.png"),
                discord.File(io.BytesIO(b"hi"), "t.txt"),
            ]
            sent = await channel.send("two files", files=files)
        stored = fake.messages[str(sent.id)]
        assert [(f.filename, f.content_type) for f in stored.attachments] == [
            ("1.png", "image/png"),
            ("t.txt", "text/plain"),
        ]
        assert (sent.attachments[0].width, sent.attachments[0].height) == (1, 1)
        new_file = discord.File(io.BytesIO(PNG), "3.png")
        edited = await sent.edit(content="kept one", attachments=[sent.attachments[1], new_file])
        assert [a.filename for a in edited.attachments] == ["t.txt", "3.png"]
        assert stored.content == "kept one" and stored.edited_at is not None
        await edited.delete()
        assert stored.deleted and fake.channel_messages() == []

        with pytest.raises(discord.HTTPException) as empty:
            await channel.send("")
        assert empty.value.code == 50006
        big = discord.File(io.BytesIO(b"0" * (fake.max_file_size + 1)), "big.bin")
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send("big", file=big)
        assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert [e.code for e in fake.errors] == [50006, 40005]


async def test_late_callback_and_expired_token(seams: None) -> None:
    async with FakeDiscord(interaction_deadline=0.5) as fake:
        point_discord_at(fake.api_base, fake.gateway_url)
        client, tree = make_client()
        outcome: dict[str, Any] = {}
        go_on = asyncio.Event()

        @tree.command(description="slow")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.7)
            try:
                await interaction.response.defer()
            except discord.NotFound as exc:
                outcome["late"] = exc.code

        @tree.command(description="long job")
        async def job(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await go_on.wait()
            try:
                await interaction.followup.send("done")
            except discord.HTTPException as exc:
                outcome["expired"] = (exc.status, exc.code)

        async with running(client):
            await tree.sync()
            await fake.slash("slow")
            await fake.wait_for(lambda: "late" in outcome)
            assert outcome["late"] == 10062
            assert [e.code for e in fake.errors] == [10062]
            fake.errors.clear()

            inter = await fake.slash("job")
            await inter.wait_callback()
            fake.expire_token(inter)
            go_on.set()
            await fake.wait_for(lambda: "expired" in outcome)
            assert outcome["expired"] == (401, 50027)
        assert fake.errors == []


async def test_unknown_route_is_404_and_recorded(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.api_base}/nope", headers={"Authorization": "Bot t"}) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
    assert [(e.status, e.path) for e in fake.errors] == [(404, "/api/v10/nope")]


async def test_bot_in_a_subprocess(fake: FakeDiscord) -> None:
    script = textwrap.dedent(
        f"""
        import discord
        from discord import app_commands
        from adapters.discord.seams import point_discord_at

        point_discord_at({fake.api_base!r}, {fake.gateway_url!r})
        client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        tree = app_commands.CommandTree(client)

        @tree.command(description="ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

        @client.event
        async def setup_hook() -> None:
            await tree.sync()

        client.run("sub-token", log_handler=None)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=REPO, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await fake.wait_ready(timeout=10)
        await fake.wait_for(lambda: fake.command("ping"), timeout=5)
        inter = await fake.slash("ping")
        msg = await inter.wait_message()
    except Exception as exc:
        proc.terminate()
        _, stderr = await proc.communicate()
        raise AssertionError(f"bot subprocess: {stderr.decode()[-2000:]}") from exc
    proc.terminate()
    await proc.communicate()
    assert msg.content == "pong" and not msg.ephemeral
    assert fake.errors == []


@pytest.mark.skipif(not SPEC_AVAILABLE, reason="../shared/specs/discord-openapi.json is absent")
def test_spec_rejects_what_discord_rejects() -> None:
    from tests.fakes.discord_spec import validate_body

    callback = "/interactions/{interaction_id}/{interaction_token}/callback"
    button = {"type": 2, "style": 1, "label": "x", "custom_id": "a" * 101}
    bad = {"type": 4, "data": {"components": [{"type": 1, "components": [button]}]}}
    [violation] = validate_body(callback, "post", bad)
    assert violation.path == ("data", "components", 0, "components", 0, "custom_id")
    ok = {"content": "hi", "attachments": [{"id": 0, "filename": "a.png"}], "tts": False}
    assert validate_body("/channels/{channel_id}/messages", "post", ok) == []


def test_seams_exist_in_installed_discord_py() -> None:
    assert isinstance(discord.http.Route.BASE, str)
    assert discord.http.Route.BASE.startswith("https://discord.com/api/v")
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).startswith("wss://")


@pytest.mark.parametrize(
    ("owner", "attr"),
    [(discord.http.Route, "BASE"), (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY")],
)
def test_point_discord_at_fails_loudly_without_seam(
    monkeypatch: pytest.MonkeyPatch, owner: type, attr: str
) -> None:
    monkeypatch.delattr(owner, attr)
    with pytest.raises(RuntimeError, match=attr):
        point_discord_at("http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/gateway")
