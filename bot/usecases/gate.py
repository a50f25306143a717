"""The entrance every request passes once: who is asking (their language applied), whether
they may use the bot, whether this update was handled before, and the log context.

It wraps a request the way aiogram's middlewares wrap a handler: the facade's entrances
(``@gated`` commands, ``press``, ``answer``, ``answer_mask``, ``bot.commands.run``) and an
adapter that must decide before downloading an upload (``Service.entrance``) open it; the
use cases behind it never check access, redeliveries or logging themselves. An entrance
opened inside another one for the same request (an adapter's, then the command's) reuses its
decision: the gate's bookkeeping (``policy.remember``, the ``seen`` event) runs once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from bot import logs
from bot.chat import Requester
from bot.i18n import normalize, t
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import Store, UserSettings
from bot.usecases.base import SETTING_CHOICES

log = logging.getLogger("bot.service")  # the name log readers already filter on
P = ParamSpec("P")


@dataclass(eq=False)
class Entry:
    """One request at the entrance and what the gate decided about it."""

    incoming: Requester  # as the adapter handed it
    req: Requester  # with the user's language setting applied
    admitted: bool
    redelivered: bool = False  # admitted, but this update was handled before: do nothing
    told: bool = False  # an outsider has been told (or need not be) for this request

    @property
    def passed(self) -> Requester | None:
        """The requester the use case runs with; None when nothing should run."""
        return self.req if self.admitted and not self.redelivered else None

    def covers(self, req: Requester) -> bool:
        """Whether ``req`` is this request (handed on as it came, as admitted, or the same
        platform update)."""
        event = self.incoming.event
        return req is self.incoming or req is self.req or (bool(event) and req.event == event)


# The request being handled by this task (and the work it spawns), set by ``Gate.entrance``.
_CURRENT: ContextVar[Entry | None] = ContextVar("entry", default=None)


class Gate:
    """Access (bot.policy), redelivery de-duplication (the store's ``seen`` events) and the
    log context, once per request."""

    def __init__(
        self,
        store: Store,
        policy: Policy | None,
        outbox: Outbox,
        *,
        modes: tuple[str, ...] = SETTING_CHOICES["mode"],
    ) -> None:
        self.store = store
        self.policy = policy
        self.outbox = outbox
        self.modes = modes  # the speeds the provider has (turbo only where it exists)

    async def user_settings(self, req: Requester) -> UserSettings:
        """The user's settings; a value the menu does not offer counts as not set."""
        stored = await self.store.user_settings(req.platform, req.user_id)

        def offered(name: str, value: str | None) -> str | None:
            choices = self.modes if name == "mode" else SETTING_CHOICES[name]
            return value if value in choices else None

        return replace(
            stored,
            mode=offered("mode", stored.mode),
            delivery=offered("delivery", stored.delivery),
            lang=offered("lang", stored.lang),
        )

    async def who(self, req: Requester) -> Requester:
        """The requester with their language setting applied (the client language otherwise)."""
        lang = (await self.user_settings(req)).lang
        return replace(req, language=normalize(lang)) if lang else req

    @asynccontextmanager
    async def entrance(self, req: Requester, *, quiet: bool = False) -> AsyncIterator[Entry]:
        """Handle one request inside: ``entry.passed`` is the requester to run with, or None
        (an outsider, told unless ``quiet``; or a redelivered update, ignored).

        Opened again inside for the same request, it yields the same entry without its
        bookkeeping; an outsider not told yet (the adapter asked quietly) is told then,
        unless this one is quiet too.
        """
        current = _CURRENT.get()
        if current is not None and current.covers(req):
            if not quiet:
                await self._deny(current)
            yield current
            return
        with logs.context(chat=req.chat_id, user=req.user_id):
            entry = await self._check(req)
            if not quiet:
                await self._deny(entry)
            token = _CURRENT.set(entry)
            try:
                yield entry
            finally:
                _CURRENT.reset(token)

    async def _check(self, incoming: Requester) -> Entry:
        req = await self.who(incoming)
        if self.policy is not None:
            await self.policy.remember(req)
            if not await self.policy.admitted(req):
                return Entry(incoming, req, admitted=False)
        if not await self.store.first_time(incoming.event):
            log.info("ignoring a redelivered update %s", incoming.event)
            return Entry(incoming, req, admitted=True, redelivered=True)
        return Entry(incoming, req, admitted=True)

    async def _deny(self, entry: Entry) -> None:
        """Tell an outsider, once per request. Outsiders hear one polite message per chat,
        then silence: per chat, not per person, so a group full of strangers is not filled
        with refusals (nor a spam loop fed). Where refusals are private (Discord answers the
        person's own interaction), nobody else sees them and an unanswered command would
        just hang: there every attempt is told."""
        if entry.admitted or entry.told:
            return
        entry.told = True
        req = entry.req
        private = self.outbox.private_replies(req.platform)
        if private or await self.store.first_time(f"told:{req.platform}:{req.chat_id}"):
            await self.outbox.tell(req, t("access.denied", req.language))


class Gated(Protocol):
    """What ``@gated`` needs of the object whose methods it wraps."""

    @property
    def gate(self) -> Gate: ...


S = TypeVar("S", bound=Gated)


def gated(
    method: Callable[Concatenate[S, Requester, P], Awaitable[None]],
) -> Callable[Concatenate[S, Requester, P], Awaitable[None]]:
    """An entrance: the method runs once the gate admits the request (with the requester's
    language applied); for an outsider or a redelivered update it does not run."""

    @functools.wraps(method)
    async def entrance(self: S, req: Requester, /, *args: P.args, **kwargs: P.kwargs) -> None:
        async with self.gate.entrance(req) as entry:
            if entry.passed is not None:
                await method(self, entry.passed, *args, **kwargs)

    return entrance
