"""Use cases: what a user can ask of mjbot, independent of any chat platform.

Adapters call the command methods (``imagine``, ``describe``, ``blend``...), ``press`` and
``answer`` with a ``Requester``; the tracker calls ``on_tasks`` with every forward step of a
task. The service decides, stores, submits, and answers through the ``Outbox`` (which talks to
the adapters' ChatPorts). Each concept is a module of this package; ``Service`` is all of them.
"""

from bot.service.administration import Administration
from bot.service.base import MAX_PROMPT, Notice
from bot.service.following import Following
from bot.service.preferences import Preferences
from bot.service.presses import Presses
from bot.service.questions import Questions
from bot.service.submitting import Submitting

__all__ = ["MAX_PROMPT", "Notice", "Service"]


class Service(Submitting, Preferences, Administration, Presses, Questions, Following):
    """Everything a user can do; built once by the composition root (``bot.app``)."""
