"""The entrance every request passes once: who is asking (their language applied), whether
they may use the bot, whether this update was handled before, and the log context.

It wraps a request the way aiogram's middlewares wrap a handler: the facade's entrances
(``@gated`` commands, ``press``, ``answer``, ``answer_mask``, ``bot.commands.run``) and an
adapter that must decide before downloading an upload (``Service.entrance``) open it; the
use cases behind it never check access, redeliveries or logging themselves. An entrance
opened inside another one for the same request (an adapter's, then the command's) reuses its
decision: the gate's bookkeeping (``policy.remember``, the ``seen`` event) runs once.

A request is marked seen only once its effect is durable, so that nothing is lost on kill -9:
the gate claims the update for this instance (``Store.claim_request``), and the claim is done
in the same transaction as the request's first paid write (the Submitter's task insert,
button claim or answer claim, each with its charge), or when its handling ends, well or not.
A redelivery of a done update, or of one a live instance is handling, is ignored. An update
replayed after its instance died before it was done (Telegram's inbox hands it to another
instance, or to the next start) is claimed again and runs once: nothing of it was charged or
submitted, since the first paid write would have marked it done. One whose paid write was made
is a redelivery, and what it submitted is recovered where every half-done submit is
(``Delivery.take_over``): never submitted twice. Why not mark it seen in the paid write alone:
a redelivery arriving while the first is still downloading its photos would run it twice, and
requests that pay nothing (settings, presets, asks) would never be marked at all.

Claims a request makes on its way to the paid write (an ask's answer, an album's parts) are
recorded as that request's, and its replay makes them again (``Store.claim_ask``'s
``request``, ``Store.retake_album``): the gate's claim is what keeps it to one run. Work that
outlives its entrance (a held prompt's send, submitted after the press is answered) is a
request of its own, claimed by the entrance that spawns it and run in ``Gate.carried_on``.
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
from bot.store import RequestTaken, Store, UserSettings
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
    """Access (bot.policy), redelivery de-duplication (the store's ``seen`` events, claimed
    and done: see the module) and the log context, once per request."""

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
            except RequestTaken:
                # This instance stalled past its claim and another one took the update over:
                # it is that one's to run; nothing was written or charged here.
                log.warning("update %s was taken over by another instance", req.event)
                return
            except Exception:
                await self._done(entry)  # handled, badly: the error handler tells the user
                raise
            finally:
                _CURRENT.reset(token)
            # Ended well. One cancelled (a BaseException: a stop cut it short) is left not
            # done, as a kill leaves it: the update replayed after this instance runs it.
            await self._done(entry)

    @asynccontextmanager
    async def carried_on(self, event: str) -> AsyncIterator[None]:
        """Work a request hands on past its entrance, as a request of its own: ``event``,
        claimed (``Store.claim_request``) inside the entrance that spawns the work (a held
        prompt's send, submitted after its press is answered: bot.prompt_check.held_event).
        As in an entrance, the work's paid write confirms the claim, and its end marks it
        done, well or not; work cut short (a stop) leaves it undone, as a kill does, for
        the next claim once this instance is dead; taken over meanwhile, it ends quietly."""
        try:
            yield
        except RequestTaken:
            log.warning("%s was taken over by another instance", event)
            return
        except Exception:
            await self._request_done(event)
            raise
        await self._request_done(event)

    async def _done(self, entry: Entry) -> None:
        """The request was handled: its update is seen for good."""
        if entry.passed is None or not entry.incoming.event:
            return
        await self._request_done(entry.incoming.event)

    async def _request_done(self, event: str) -> None:
        try:
            await self.store.request_done(event)
        except Exception:
            # The claim stays this live instance's: redeliveries are still ignored.
            log.warning("could not mark update %s done", event, exc_info=True)

    async def _check(self, incoming: Requester) -> Entry:
        req = await self.who(incoming)
        if self.policy is not None:
            await self.policy.remember(req)
            if not await self.policy.admitted(req):
                return Entry(incoming, req, admitted=False)
        if not await self.store.claim_request(incoming.event):
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
