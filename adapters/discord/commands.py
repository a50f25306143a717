"""Slash commands: each a thin function that defers, downloads and calls the Service.

Every command goes through ``bot.commands.run`` (the access gate, the same use cases as
Telegram); names follow the official bot where they differ (``/info``, ``/show``).
Descriptions are ``locale_str`` keyed by catalog keys; :class:`Translator` gives Discord the
Simplified Chinese ones at sync time.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n import t

from .handlers import run

__all__ = ["Translator", "install"]


def _s(key: str) -> app_commands.locale_str:
    return app_commands.locale_str(t(key, "en"), key=key)


class Translator(app_commands.Translator):
    """Command, option and choice texts in zh-CN from the catalogs (English is the default)."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        if key is None or locale is not discord.Locale.chinese:
            return None
        return t(key, "zh")


DIMENSIONS = [
    app_commands.Choice(name=_s(f"discord.choice.{value}"), value=value)
    for value in ("portrait", "square", "landscape")
]
MOTIONS = [
    app_commands.Choice(name=_s(f"discord.choice.{value}"), value=value)
    for value in ("high", "low")
]

BATCHES = [
    app_commands.Choice(name=_s(f"discord.choice.clips{count}"), value=count) for count in (1, 2, 4)
]

Attachment = discord.Attachment


def video_args(
    prompt: str,
    motion: app_commands.Choice[str] | None,
    loop: bool,
    batch: app_commands.Choice[int] | None,
    hd: bool,
) -> str:
    """The options as /video's text takes them (bot.studio.parse_video): one parser for both."""
    flags = [f"--motion {motion.value}"] if motion else []
    if batch is not None:
        flags.append(f"--bs {batch.value}")
    if loop:
        flags.append("--loop")
    if hd:
        flags.append("--hd")
    return " ".join([*flags, prompt])


def ref_args(link: str | None, weight: float | None) -> str:
    """/oref's options as the text command takes them (``<link> <weight>``)."""
    parts = [link.strip()] if link and link.strip() else []
    if weight is not None:
        parts.append(f"{weight:g}")
    return " ".join(parts)


# Commands without options, and the catalog key of their description.
PLAIN = (
    ("info", "cmd.quota"),
    ("tasks", "cmd.tasks"),
    ("help", "cmd.help"),
    ("fast", "cmd.fast"),
    ("relax", "cmd.relax"),
)


def _plain(name: str):
    async def command(interaction: discord.Interaction) -> None:
        await run(interaction, name, "")

    command.__name__ = command.__qualname__ = name
    command.__doc__ = f"/{name}: the shared command of that name."
    return command


def install(tree: app_commands.CommandTree, *, retexture: bool = False) -> None:
    """Add every command to ``tree`` (/retexture only where the provider has it)."""

    @tree.command(name="imagine", description=_s("cmd.imagine"))
    @app_commands.describe(prompt=_s("discord.opt.prompt"), image=_s("discord.opt.image"))
    async def imagine(
        interaction: discord.Interaction, prompt: str, image: Attachment | None = None
    ) -> None:
        """/imagine: four images from a prompt, optionally with an image prompt."""
        await run(interaction, "imagine", prompt, [image])

    @tree.command(name="describe", description=_s("cmd.describe"))
    @app_commands.describe(image=_s("discord.opt.describe_image"))
    async def describe(interaction: discord.Interaction, image: Attachment) -> None:
        """/describe: four prompts for a photo."""
        await run(interaction, "describe", "", [image])

    @tree.command(name="blend", description=_s("cmd.blend"))
    @app_commands.describe(
        image1=_s("discord.opt.blend_image"),
        image2=_s("discord.opt.blend_image"),
        image3=_s("discord.opt.blend_image"),
        image4=_s("discord.opt.blend_image"),
        image5=_s("discord.opt.blend_image"),
        dimensions=_s("discord.opt.dimensions"),
    )
    @app_commands.choices(dimensions=DIMENSIONS)
    async def blend(
        interaction: discord.Interaction,
        image1: Attachment,
        image2: Attachment,
        image3: Attachment | None = None,
        image4: Attachment | None = None,
        image5: Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
    ) -> None:
        """/blend: mix 2-5 photos, in the order given."""
        shape = dimensions.value if dimensions else ""
        await run(interaction, "blend", shape, [image1, image2, image3, image4, image5])

    @tree.command(name="swap", description=_s("cmd.swap"))
    @app_commands.describe(face=_s("discord.opt.face"), target=_s("discord.opt.target"))
    async def swap(interaction: discord.Interaction, face: Attachment, target: Attachment) -> None:
        """/swap: the face of the first photo onto the second."""
        await run(interaction, "swap", "", [face, target])

    @tree.command(name="shorten", description=_s("cmd.shorten"))
    @app_commands.describe(prompt=_s("discord.opt.shorten_prompt"))
    async def shorten(interaction: discord.Interaction, prompt: str) -> None:
        """/shorten: which words matter, and shorter versions."""
        await run(interaction, "shorten", prompt)

    @tree.command(name="video", description=_s("cmd.video"))
    @app_commands.describe(
        prompt=_s("discord.opt.video_prompt"),
        image=_s("discord.opt.video_image"),
        motion=_s("discord.opt.motion"),
        end_image=_s("discord.opt.end_image"),
        loop=_s("discord.opt.loop"),
        batch=_s("discord.opt.batch"),
        hd=_s("discord.opt.hd"),
    )
    @app_commands.choices(motion=MOTIONS)
    @app_commands.choices(batch=BATCHES)
    async def video(
        interaction: discord.Interaction,
        prompt: str,
        image: Attachment,
        motion: app_commands.Choice[str] | None = None,
        end_image: Attachment | None = None,
        loop: bool = False,
        batch: app_commands.Choice[int] | None = None,
        hd: bool = False,
    ) -> None:
        """/video: clips from a photo (and an end frame), as /video's options on Telegram."""
        await run(
            interaction, "video", video_args(prompt, motion, loop, batch, hd), [image, end_image]
        )

    @tree.command(name="edit", description=_s("cmd.edit"))
    @app_commands.describe(prompt=_s("discord.opt.edit_prompt"), image=_s("discord.opt.edit_image"))
    async def edit(interaction: discord.Interaction, prompt: str, image: Attachment) -> None:
        """/edit: four edited versions of a photo."""
        await run(interaction, "edit", prompt, [image])

    async def retexture_command(
        interaction: discord.Interaction, prompt: str, image: Attachment
    ) -> None:
        """/retexture: the photo's shapes in the look the prompt asks for."""
        await run(interaction, "retexture", prompt, [image])

    if retexture:
        tree.command(name="retexture", description=_s("cmd.retexture"))(
            app_commands.describe(
                prompt=_s("discord.opt.retexture_prompt"),
                image=_s("discord.opt.retexture_image"),
            )(retexture_command)
        )

    @tree.command(name="settings", description=_s("cmd.settings"))
    @app_commands.describe(suffix=_s("discord.opt.suffix"))
    async def settings(interaction: discord.Interaction, suffix: str | None = None) -> None:
        """/settings: speed, delivery and language buttons; with a suffix, set it."""
        await run(interaction, "settings", suffix or "")

    # References and presets (issue 16): Discord has no reply to a result for a slash
    # command, so a photo comes as an attachment and a result as its link (or a style code).
    @tree.command(name="oref", description=_s("cmd.oref"))
    @app_commands.describe(
        image=_s("discord.opt.ref_image"),
        link=_s("discord.opt.ref_link"),
        weight=_s("discord.opt.ow"),
    )
    async def oref(
        interaction: discord.Interaction,
        image: Attachment | None = None,
        link: str | None = None,
        weight: app_commands.Range[int, 0, 1000] | None = None,
    ) -> None:
        """/oref: a photo (or link) as omni reference for the next prompts."""
        await run(interaction, "oref", ref_args(link, weight), [image])

    @tree.command(name="sref", description=_s("cmd.sref"))
    @app_commands.describe(
        image=_s("discord.opt.ref_image"),
        link=_s("discord.opt.sref_link"),
        weight=_s("discord.opt.sw"),
    )
    async def sref(
        interaction: discord.Interaction,
        image: Attachment | None = None,
        link: str | None = None,
        weight: app_commands.Range[int, 0, 1000] | None = None,
    ) -> None:
        """/sref: a photo, link or style code as style reference for the next prompts."""
        await run(interaction, "sref", ref_args(link, weight), [image])

    @tree.command(name="ref", description=_s("cmd.ref"))
    @app_commands.describe(
        image=_s("discord.opt.ref_image"),
        link=_s("discord.opt.ref_link"),
        weight=_s("discord.opt.iw"),
    )
    async def ref(
        interaction: discord.Interaction,
        image: Attachment | None = None,
        link: str | None = None,
        weight: app_commands.Range[float, 0.0, 3.0] | None = None,
    ) -> None:
        """/ref: a photo (or link) as image prompt for the next prompts."""
        await run(interaction, "ref", ref_args(link, weight), [image])

    @tree.command(name="refs", description=_s("cmd.refs"))
    @app_commands.describe(clear=_s("discord.opt.refs_clear"))
    async def refs(interaction: discord.Interaction, clear: bool = False) -> None:
        """/refs: the active references; clear: drop them."""
        await run(interaction, "refs", "clear" if clear else "")

    @tree.command(name="preset", description=_s("cmd.preset"))
    @app_commands.describe(what=_s("discord.opt.preset"))
    async def preset(interaction: discord.Interaction, what: str = "") -> None:
        """/preset: save NAME, NAME (apply), delete NAME, or the list."""
        await run(interaction, "preset", what)

    @tree.command(name="personalize", description=_s("cmd.personalize"))
    @app_commands.describe(code=_s("discord.opt.personalize"))
    async def personalize(interaction: discord.Interaction, code: str = "") -> None:
        """/personalize: a --p code to use (kept), off, or the saved codes."""
        await run(interaction, "personalize", code)

    @tree.command(name="show", description=_s("discord.cmd.show"))
    @app_commands.describe(id=_s("discord.opt.id"))
    async def show(interaction: discord.Interaction, id: str) -> None:
        """/show: post a finished task again, with working buttons."""
        await run(interaction, "show", id)

    # Commands without options: /info (Midjourney's name for the usage view), /tasks, /help,
    # /fast and /relax each run the shared command of the same name.
    for name, key in PLAIN:
        tree.command(name=name, description=_s(key))(_plain(name))
