"""The kinds of submission a user starts with a command, as typed values, and each kind as a
small job description (``Job``) instead of seven near-copies of the same steps.

A kind's value is the word stored in ``tasks.kind`` and ``asks.command`` (a question asking for
photos remembers which command asked), so a name read back from the database is turned into a
``Kind`` with ``Kind.of`` and never looked up as an attribute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.mj.client import MjClient
from bot.mj.models import Submission
from bot.studio import VideoOptions


class Kind(StrEnum):
    IMAGINE = "imagine"
    DESCRIBE = "describe"
    BLEND = "blend"
    SWAP = "swap"
    SHORTEN = "shorten"
    VIDEO = "video"
    EDIT = "edit"
    RETEXTURE = "retexture"

    @classmethod
    def of(cls, name: str) -> Kind | None:
        """The kind named ``name``; None for a name no command has (an old or forged row)."""
        try:
            return cls(name)
        except ValueError:
            return None


@dataclass(frozen=True)
class Sent:
    """How a job is sent: the speed mode, the webhook the API calls, the task's key."""

    mode: str
    notify_hook: str
    key: str


Call = Callable[[MjClient, Sequence[str], Sent], Awaitable[Submission]]


@dataclass(frozen=True, kw_only=True)
class Job:
    """One submission, described: what the prompt rules check, which photos it takes, and the
    one API call it makes. ``Submitting`` checks and uploads, the ``Submitter`` pays and calls."""

    kind: Kind
    call: Call
    prompt: str = ""  # stored with the task and shown in its messages
    checked: str | None = None  # the text the prompt rules check (None: no prompt to check)
    photos: tuple[int, int] | None = None  # (least, most) photos; None: takes none
    args: str = ""  # what a question asking for the photos remembers of the command
    cost: str = ""  # the action the policy weighs ("" = the kind's own: imagine, video, ...)
    label: str = ""  # what the task's messages say beside its kind (/video: what was asked)


def imagine(prompt: str, checked: str, bot_type: str = "") -> Job:
    """``prompt`` is what is sent (the user's settings applied), ``checked`` what they typed;
    ``bot_type`` the bot it runs on where the provider takes botType (niji 7)."""
    return Job(
        kind=Kind.IMAGINE,
        prompt=prompt,
        checked=checked,
        photos=(0, 5),
        args=prompt,
        call=lambda client, uris, s: client.imagine(
            prompt,
            list(uris),
            mode=s.mode,
            notify_hook=s.notify_hook,
            state=s.key,
            bot_type=bot_type,
        ),
    )


def describe(args: str, language: str = "") -> Job:
    """``language`` "zh": the suggestions in Chinese, where the provider takes it."""
    return Job(
        kind=Kind.DESCRIBE,
        photos=(1, 1),
        args=args,
        call=lambda client, uris, s: client.describe(
            uris[0], language=language, mode=s.mode, notify_hook=s.notify_hook, state=s.key
        ),
    )


def blend(args: str, dimensions: str) -> Job:
    return Job(
        kind=Kind.BLEND,
        photos=(2, 5),
        args=args,
        call=lambda client, uris, s: client.blend(
            list(uris), dimensions, mode=s.mode, notify_hook=s.notify_hook, state=s.key
        ),
    )


def swap(args: str) -> Job:
    return Job(
        kind=Kind.SWAP,
        photos=(2, 2),
        args=args,
        call=lambda client, uris, s: client.swap_face(
            uris[0], uris[1], mode=s.mode, notify_hook=s.notify_hook, state=s.key
        ),
    )


def shorten(prompt: str) -> Job:
    return Job(
        kind=Kind.SHORTEN,
        prompt=prompt,
        checked=prompt,
        call=lambda client, _, s: client.shorten(
            prompt, mode=s.mode, notify_hook=s.notify_hook, state=s.key
        ),
    )


def video(args: str, prompt: str, options: VideoOptions, label: str, *, check: bool) -> Job:
    """``check``: the prompt is checked only once the photo is there (without it, the bot
    asks for the photo first). A second photo is the end frame; HD costs video_hd."""
    return Job(
        kind=Kind.VIDEO,
        prompt=prompt,
        checked=prompt if check else None,
        photos=(1, 2),
        args=args,
        cost=options.cost,
        label=label,
        call=lambda client, uris, s: client.video(
            prompt,
            uris[0],
            motion=options.motion,
            end_image=uris[1] if len(uris) > 1 else "",
            loop=options.loop,
            batch_size=options.batch_size,
            video_type=options.video_type,
            mode=s.mode,
            notify_hook=s.notify_hook,
            state=s.key,
        ),
    )


def edit(args: str, prompt: str, *, check: bool) -> Job:
    return Job(
        kind=Kind.EDIT,
        prompt=prompt,
        checked=prompt if check else None,
        photos=(1, 1),
        args=args,
        call=lambda client, uris, s: client.edits(
            prompt, uris[0], mode=s.mode, notify_hook=s.notify_hook, state=s.key
        ),
    )


def retexture(args: str, prompt: str, *, check: bool) -> Job:
    """A new grid of the photo's shapes in the look the prompt asks for (trueai)."""
    return Job(
        kind=Kind.RETEXTURE,
        prompt=prompt,
        checked=prompt if check else None,
        photos=(1, 1),
        args=args,
        call=lambda client, uris, s: client.retexture(
            prompt, uris[0], mode=s.mode, notify_hook=s.notify_hook, state=s.key
        ),
    )
