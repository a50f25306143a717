"""The kinds of submission a user starts with a command, as typed values.

A kind's value is the word stored in ``tasks.kind`` and ``asks.command`` (a question asking for
photos remembers which command asked), so a name read back from the database is turned into a
``Kind`` with ``Kind.of`` and never looked up as an attribute.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    IMAGINE = "imagine"
    DESCRIBE = "describe"
    BLEND = "blend"
    SWAP = "swap"
    SHORTEN = "shorten"
    VIDEO = "video"
    EDIT = "edit"

    @classmethod
    def of(cls, name: str) -> Kind | None:
        """The kind named ``name``; None for a name no command has (an old or forged row)."""
        try:
            return cls(name)
        except ValueError:
            return None
