"""``python -m bench.naive_bot --config X``: ``mjbot run`` with the naive per-task poller.

The only difference from ``mjbot run --config X`` is the tracker class: ``bot.app`` looks up
the name ``Tracker`` when ``App.start`` builds the tracker, so rebinding that module attribute
to :class:`bench.naive.NaiveTracker` before the CLI runs makes the real App construct the naive
poller with the real store, client and service. Nothing under ``bot/`` is edited.
"""

from __future__ import annotations

import argparse
import sys

import bot.app
from bench.naive import NaiveTracker
from bot import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_bot", description=__doc__)
    parser.add_argument("--config", "-c", required=True)
    args = parser.parse_args(argv)
    bot.app.Tracker = NaiveTracker  # type: ignore[misc]
    return cli.main(["run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
