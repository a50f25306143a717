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
from bot.service.administration import Admin
from bot.service.base import MAX_PROMPT, Notice
from bot.service.following import Following
from bot.service.preferences import Preferences
from bot.service.presses import Presses
from bot.service.questions import Questions
from bot.service.submitting import Submitting
from bot.store import Store
from bot.views import View

__all__ = ["MAX_PROMPT", "Notice", "Service"]


class Service(Submitting, Preferences, Presses, Questions, Following):
    """Everything a user can do; built once by the composition root (``bot.app``).

    On the way from mixins to composed use cases: the Submitter (submitter.py) and Admin
    (administration.py) are plain objects built here and reached through typed methods."""

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

    async def quota_view(self, req: Requester, user_id: str = "") -> View:
        """/quota and /info: what a user has used and what is left."""
        return await self.administration.quota_view(req, user_id)

    async def admin(self, req: Requester, name: str, args: str) -> None:
        """/allow /deny /ban /unban /stats /usage /buttons: admins only."""
        await self.administration.admin(req, name, args)
