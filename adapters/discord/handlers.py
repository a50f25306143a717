"""Interactions in: one idea per handler, each turning an interaction into one Service call.

Slash commands and modal answers are deferred at once (Discord's 3 s) and registered with the
port, so the service's first reply replaces the "thinking…" placeholder. Button presses are
answered with the service's short notice, visible only to whoever pressed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import aiohttp
import discord

from bot import commands, mask, media
from bot.chat import MessageRef, Requester
from bot.i18n import normalize, t
from bot.usecases import Service
from bot.views import Ask, View, clip

from .ids import ASK_PREFIX, MODAL_PREFIX, PLATFORM

log = logging.getLogger("adapters.discord")

MAX_DOWNLOAD = 20 * 1024 * 1024  # what we accept from users; the core checks the content
ACK_WITHIN_S = 2.0  # a press not answered by then is deferred (Discord allows 3 s)
TITLE_LIMIT = 45
LABEL_LIMIT = 45
PLACEHOLDER_LIMIT = 100
VALUE_LIMIT = 4000


class Deferrals(Protocol):
    """The port's half of a deferred interaction (``DiscordPort.register``/``finish``)."""

    def register(self, interaction: discord.Interaction) -> MessageRef: ...

    async def finish(self, ref: MessageRef) -> None: ...


class Client(Protocol):
    """What the handlers use of the discord.py client (``adapters.discord.DiscordClient``)."""

    service: Service
    port: Deferrals


def client_of(interaction: discord.Interaction) -> Client:
    return cast(Client, interaction.client)


def requester(interaction: discord.Interaction, message: MessageRef | None) -> Requester:
    """Who asked: the user, the channel, their client language and what to answer."""
    user = interaction.user
    return Requester(
        platform=PLATFORM,
        chat_id=str(interaction.channel_id),
        user_id=str(user.id),
        language=normalize(str(interaction.locale)),
        user_name=user.display_name,
        handle=user.name,
        is_private=interaction.guild_id is None,
        message=message,
        event=f"{PLATFORM}:{interaction.id}",
    )


def _message_ref(interaction: discord.Interaction) -> MessageRef | None:
    message = interaction.message
    if message is None:
        return None
    kind = "photo" if message.attachments else "text"
    return MessageRef(PLATFORM, str(interaction.channel_id), str(message.id), kind)


async def _tell(interaction: discord.Interaction, text_: str) -> None:
    """A short answer only the user sees (as the first response, or a followup)."""
    text_ = clip(text_, 2000)
    if interaction.response.is_done():
        await interaction.followup.send(text_, ephemeral=True)
    else:
        await interaction.response.send_message(text_, ephemeral=True)


async def _language(interaction: discord.Interaction) -> str:
    service = client_of(interaction).service
    return (await service.who(requester(interaction, None))).language


async def _download(attachments: Sequence[discord.Attachment]) -> list[bytes]:
    return [await attachment.read() for attachment in attachments]


async def run(
    interaction: discord.Interaction,
    name: str,
    args: str,
    attachments: Sequence[discord.Attachment | None] = (),
) -> None:
    """Defer, download the attachments, run the command; whatever the service says first
    replaces the placeholder, and a placeholder it never used is removed."""
    files = [a for a in attachments if a is not None]
    if any(a.size > MAX_DOWNLOAD for a in files):
        await _tell(interaction, t("upload.too_big", await _language(interaction)))
        return
    await interaction.response.defer(thinking=True)
    client = client_of(interaction)
    ref = client.port.register(interaction)
    req = requester(interaction, ref)
    try:
        # The entrance opened before downloading: outsiders and banned users cost nothing,
        # and the command run inside passes the same gate (once).
        async with client.service.entrance(req) as entered:
            if entered is None:
                return
            try:
                images = await _download(files)
            except (discord.HTTPException, aiohttp.ClientError, OSError):
                await client.service.reply(entered, View(t("upload.download", entered.language)))
                return
            await commands.run(client.service, entered, name, args, images)
    except Exception:
        log.exception("command failed (interaction %s)", interaction.id)
    finally:
        await client.port.finish(ref)


async def press(interaction: discord.Interaction, data: str) -> None:
    """A button with one of our tokens: the service acts, the presser gets its notice."""
    service = client_of(interaction).service
    req = requester(interaction, _message_ref(interaction))
    work = asyncio.ensure_future(service.press(req, data))
    done, _ = await asyncio.wait({work}, timeout=ACK_WITHIN_S)
    if not done:
        await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        notice = await work
    except Exception:
        log.exception("press failed (interaction %s)", interaction.id)
        notice_text = t("press.expired", await _language(interaction))
    else:
        notice_text = notice.text
        if notice.where is not None and notice.where.message_id.isdigit():
            notice_text += "\n" + _jump_url(interaction, notice.where)
    await _tell(interaction, notice_text)


def _jump_url(interaction: discord.Interaction, ref: MessageRef) -> str:
    """A message link; Discord shows it as "jump to message"."""
    guild = interaction.guild_id or "@me"
    return f"https://discord.com/channels/{guild}/{ref.chat_id}/{ref.message_id}"


# --- questions: the Answer button, the modal, the answer ------------------------------------

# A question modal's custom_id (MODAL_PREFIX): the question message and the task key it asks
# for (empty for a photo question). Everything else is in the store, so an answer is understood
# whenever it comes: after a restart, or after discord.py would have forgotten the modal.
# Modals opened by earlier versions carry the interaction id instead of the key: for them the
# key is read from the question message's Answer button (Discord sends that message along).
_MODAL_ID = re.compile(
    r"^q1:(?P<message>\d{1,20}):(?:(?P<ref>[a-z2-9]{10})|(?P<legacy>\d{11,20}))?$"
)


async def open_answer(interaction: discord.Interaction, ref: str) -> None:
    """The Answer button: open the question as a modal (prefilled), for its owner only."""
    client = client_of(interaction)
    message = interaction.message
    req = await client.service.who(requester(interaction, None))
    found = None
    if message is not None:
        found = await client.service.question(req, str(message.id), ref)
    if found is None or message is None:
        await _tell(interaction, t("modal.expired", req.language))
        return
    ask, owner = found
    if owner != req.user_id:
        await _tell(interaction, t("modal.not_owner", req.language))
        return
    modal = AnswerModal(ask, f"{MODAL_PREFIX}{message.id}:{ask.ref}", req.language)
    # Stopped before it is sent, so discord.py does not hold it in memory and dispatch the
    # submit to it: every submit takes the one path below (submitted), which reads the
    # question from the store and works the same before and after a restart.
    modal.stop()
    await interaction.response.send_modal(modal)


class AnswerModal(discord.ui.Modal):
    """A question as a Discord modal (the form only; see ``submitted``): a prefilled prompt;
    for Vary (Region) also the grid cells and a mask upload; for a photo question an
    upload."""

    def __init__(self, ask: Ask, custom_id: str, lang: str) -> None:
        super().__init__(title=clip(ask.title.strip() or "mjbot", TITLE_LIMIT), custom_id=custom_id)
        if ask.kind == "mask":
            options = [
                discord.SelectOption(label=t("discord.region.cell", lang, n=n), value=str(n))
                for n in range(1, 10)
            ]
            cells: discord.ui.Select[AnswerModal] = discord.ui.Select(
                custom_id="cells", options=options, min_values=0, max_values=9, required=False
            )
            self._field(t("discord.region.cells", lang), cells)
            upload: discord.ui.FileUpload[AnswerModal] = discord.ui.FileUpload(
                custom_id="mask", required=False, max_values=1
            )
            self._field(t("discord.region.mask", lang), upload)
        elif not ask.ref:
            files: discord.ui.FileUpload[AnswerModal] = discord.ui.FileUpload(
                custom_id="files", required=True, min_values=1, max_values=5
            )
            self._field(t("discord.answer.files", lang), files)
        prompt: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
            custom_id="text",
            style=discord.TextStyle.paragraph,
            default=clip(ask.prefill, VALUE_LIMIT) or None,
            placeholder=clip(ask.placeholder, PLACEHOLDER_LIMIT) or None,
            required=False,
            max_length=VALUE_LIMIT,
        )
        self._field(t("discord.answer.prompt", lang), prompt)

    def _field(self, label: str, component: discord.ui.Item[Any]) -> None:
        self.add_item(discord.ui.Label(text=clip(label, LABEL_LIMIT), component=component))


@dataclass(frozen=True)
class Answer:
    """What a submitted question modal carries, read from the interaction's data."""

    text: str = ""
    cells: tuple[int, ...] = ()
    files: tuple[discord.Attachment, ...] = ()


def read_answer(interaction: discord.Interaction) -> Answer:
    """The fields of a submitted modal (text input "text", select "cells", uploads "mask"
    and "files"), from the raw interaction data: no live Modal object is needed."""
    data: dict[str, Any] = dict(interaction.data or {})
    fields: dict[str, Any] = {}

    def walk(components: Sequence[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 1:  # an action row (older modals)
                walk(component.get("components") or [])
            elif component.get("type") == 18:  # a label around one component
                walk([component["component"]])
            elif component.get("custom_id"):
                fields[component["custom_id"]] = component.get("values", component.get("value"))

    walk(data.get("components") or [])
    resolved = (data.get("resolved") or {}).get("attachments") or {}
    uploads = [*(fields.get("mask") or []), *(fields.get("files") or [])]
    # discord.py builds Attachments from payloads this way itself (its state does the
    # downloading); the payloads are the resolved attachments Discord sent with the submit.
    state = interaction._state
    files = tuple(
        discord.Attachment(data=resolved[str(i)], state=state)
        for i in uploads
        if str(i) in resolved
    )
    picked = [str(v) for v in fields.get("cells") or []]
    cells = tuple(sorted({int(v) for v in picked if v.isdigit() and 1 <= int(v) <= 9}))
    text = fields.get("text")
    return Answer(text if isinstance(text, str) else "", cells, files)


def custom_id_of(interaction: discord.Interaction) -> str:
    """The custom_id an interaction carries (a component's or a modal's), or ""."""
    data: dict[str, Any] = dict(interaction.data or {})
    return str(data.get("custom_id") or "")


def _asked_key(interaction: discord.Interaction) -> str:
    """The task key on the Answer button of the message a modal was opened from."""
    message = interaction.message
    for row in message.components if message is not None else []:
        for item in getattr(row, "children", ()):
            custom_id = getattr(item, "custom_id", None) or ""
            if custom_id.startswith(ASK_PREFIX):
                return custom_id[len(ASK_PREFIX) :]
    return ""


async def submitted(interaction: discord.Interaction) -> None:
    """A submitted question modal: the answer to the question message it names, taken from
    the store whenever it comes (also after a restart). Always answered: the answer's own
    messages replace the "thinking…" placeholder, a refusal is private."""
    parsed = _MODAL_ID.match(custom_id_of(interaction))
    client = client_of(interaction)
    service = client.service
    req = await service.who(requester(interaction, None))
    found = None
    if parsed is not None:
        key = _asked_key(interaction) if parsed["legacy"] else parsed["ref"] or ""
        found = await service.question(req, parsed["message"], key)
    if parsed is None or found is None:
        await _tell(interaction, t("modal.expired", req.language))
        return
    ask, owner = found
    if owner != req.user_id:
        await _tell(interaction, t("modal.not_owner", req.language))
        return
    answer = read_answer(interaction)
    if any(a.size > MAX_DOWNLOAD for a in answer.files):
        await _tell(interaction, t("upload.too_big", req.language))
        return
    if ask.kind == "mask" and not answer.files and not answer.cells:
        await _tell(interaction, t("region.cells_needed", req.language))
        return
    await interaction.response.defer(thinking=True)
    ref = client.port.register(interaction)
    req = requester(interaction, ref)
    ask_id = parsed["message"]
    try:
        # The entrance opened before downloading: outsiders and banned users cost nothing,
        # and the answer given inside passes the same gate (once).
        async with service.entrance(req) as entered:
            if entered is None:
                return
            try:
                images = await _download(answer.files)
            except (discord.HTTPException, aiohttp.ClientError, OSError):
                await service.reply(entered, View(t("upload.download", entered.language)))
                return
            if ask.kind == "mask" and not images:
                cells = list(answer.cells)
                await _answer_cells(service, entered, ask, ask_id, cells, answer.text)
            else:
                await service.answer(entered, ask_id, answer.text, images)
    except Exception:
        log.exception("answer failed (interaction %s)", interaction.id)
    finally:
        await client.port.finish(ref)


async def _answer_cells(
    service: Service, req: Requester, ask: Ask, ask_id: str, cells: list[int], prompt: str
) -> None:
    """Vary (Region) from picked grid cells: the mask is drawn here, so a prompt that starts
    with a number or "top …" is never mistaken for more cells."""
    base = await service.region_image(ask.ref)
    if base is None:
        await service.answer(req, ask_id, " ".join(map(str, cells)) + " " + prompt)
        return
    size = await service.convert(media.image_size, base)
    png = await service.convert(mask.cells_mask, size, cells)
    await service.answer_mask(req, ask.ref, png, prompt)
