"""What this adapter writes into Discord and reads back: its platform name and the custom_id
formats of its buttons and question modals. Shared by the rendering (``port.py``) and the
interactions (``handlers.py``), which therefore need not import each other both ways.
"""

from __future__ import annotations

PLATFORM = "discord"

# A button carrying one of the core's short tokens (a press), and the Answer button under a
# question (its ref is the task key the question is about; empty for a photo question).
TOKEN_TEMPLATE = r"(?P<data>(?:m1|s1|c1):[A-Za-z0-9:_.-]{1,90})"  # c1: a held prompt's
# A settings row shown as a select menu: its options' values are the row's own s1: tokens.
SELECT_PREFIX = "o1:"
SELECT_TEMPLATE = SELECT_PREFIX + r"(?P<name>[a-z]{1,12})"
ASK_PREFIX = "a1:"
ASK_TEMPLATE = ASK_PREFIX + r"(?P<ref>[a-z0-9]{0,32})"
# A question modal: q1:<question message id>:<task key> (see handlers.open_answer).
MODAL_PREFIX = "q1:"
