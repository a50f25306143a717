"""The test settings turn every warning into an error (pyproject.toml, filterwarnings): an
unclosed file, socket or session, or a deprecation in our own code, fails the test that caused
it. Only the listed third-party notices are let through."""

from __future__ import annotations

import warnings

import pytest


@pytest.mark.parametrize("category", [ResourceWarning, DeprecationWarning, RuntimeWarning])
def test_a_warning_from_our_code_is_an_error(category):
    with pytest.raises(category):
        warnings.warn("leaked", category, stacklevel=1)


def test_the_exceptions_are_narrow():
    """discord.py's audioop import is let through, and only from discord.player."""
    with warnings.catch_warnings(record=True):
        warnings.warn_explicit(
            "'audioop' is deprecated", DeprecationWarning, "player.py", 1, module="discord.player"
        )
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit(
            "'audioop' is deprecated", DeprecationWarning, "media.py", 1, module="bot.media"
        )
