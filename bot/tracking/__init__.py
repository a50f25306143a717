"""Following tasks: the batched poller (tracker), the notifyHook receiver (hooks) and what
`mjbot status` shows (status). The composition root builds them; nothing else imports them."""

from bot.tracking.hooks import HOOK_PATH, HookServer, hook_secret
from bot.tracking.tracker import Tracker

__all__ = ["HOOK_PATH", "HookServer", "Tracker", "hook_secret"]
