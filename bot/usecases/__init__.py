"""Use cases: what a user can ask of mjbot, independent of any chat platform.

Adapters call the command methods (``imagine``, ``describe``, ``blend``...), ``press`` and
``answer`` with a ``Requester``; the tracker calls ``on_tasks`` with every forward step of a
task. The service decides, stores, submits, and answers through the ``Outbox`` (which talks to
the adapters' ChatPorts). Each concept is a module of this package; ``Service`` is all of them.
"""

from bot import media
from bot.chat import Requester
from bot.mj.client import MjClient
from bot.outbox import Outbox
from bot.policy import Policy
from bot.store import Store, TaskRow
from bot.usecases.administration import Admin
from bot.usecases.base import MAX_PROMPT, Notice, gated
from bot.usecases.following import Following
from bot.usecases.preferences import Preferences
from bot.usecases.presses import Presses
from bot.usecases.questions import Questions
from bot.usecases.submitting import Submitting
from bot.views import View

__all__ = ["MAX_PROMPT", "Notice", "Service"]


class Service(Submitting, Presses, Questions, Following):
    """Everything a user can do; built once by the composition root (``bot.app``).

    On the way from mixins to composed use cases: the Submitter (submitter.py), Preferences
    and Admin (administration.py) are plain objects built here and reached through typed
    methods; the commands' access gate is the facade's (``@gated``)."""

    def __init__(
        self,
        store: Store,
        client: MjClient,
        outbox: Outbox,
        downloader: media.Downloader,
        *,
        cache: media.MediaCache | None = None,
        notify_hook: str = "",
        default_mode: str = "",
        webapp_url: str = "",
        policy: Policy | None = None,
    ) -> None:
        super().__init__(
            store,
            client,
            outbox,
            downloader,
            cache=cache,
            notify_hook=notify_hook,
            default_mode=default_mode,
            webapp_url=webapp_url,
            policy=policy,
        )
        self.administration = Admin(
            store,
            policy,
            outbox,
            default_mode=default_mode,
            who=self.who,
            user_settings=self.user_settings,
        )

        self.preferences = Preferences(
            store,
            client,
            outbox,
            policy,
            sources=self,
            spawn=self.spawn,
            default_mode=default_mode,
            who=self.who,
            user_settings=self.user_settings,
        )

    # -- preferences.py: settings, history, seeds --

    async def settings_view(self, req: Requester) -> View:
        return await self.preferences.settings_view(req)

    async def open_settings(self, req: Requester) -> None:
        """/settings: the menu, recorded as the requester's (only they may press it)."""
        await self.preferences.open_settings(req)

    async def press_setting(self, req: Requester, name: str, value: str) -> Notice:
        """A settings-menu button (the press has passed its gate already)."""
        return await self.preferences.press_setting(req, name, value)

    @gated
    async def set_mode(self, req: Requester, mode: str) -> None:
        """/fast and /relax."""
        await self.preferences.set_mode(req, mode)

    @gated
    async def set_suffix(self, req: Requester, suffix: str) -> None:
        await self.preferences.set_suffix(req, suffix)

    async def tasks_view(self, req: Requester) -> View:
        """/tasks: the user's recent tasks, newest first."""
        return await self.preferences.tasks_view(req)

    @gated
    async def show(self, req: Requester, ref: str) -> None:
        """/task <id>: post a finished task again, with working buttons."""
        await self.preferences.show(req, ref)

    @gated
    async def seed(self, req: Requester, args: str = "") -> None:
        """/seed: the seed of a result."""
        await self.preferences.seed(req, args)

    async def _seed(self, req: Requester, row: TaskRow) -> None:
        """The 🌱 button (presses.py)."""
        await self.preferences.seed_of(req, row)

    # -- administration.py --

    async def quota_view(self, req: Requester, user_id: str = "") -> View:
        """/quota and /info: what a user has used and what is left."""
        return await self.administration.quota_view(req, user_id)

    async def admin(self, req: Requester, name: str, args: str) -> None:
        """/allow /deny /ban /unban /stats /usage /buttons: admins only."""
        await self.administration.admin(req, name, args)
