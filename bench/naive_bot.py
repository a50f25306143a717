"""``python -m bench.naive_bot --config X``: ``mjbot run`` with the naive per-task poller.

The only difference from ``mjbot run --config X`` is the tracker class: the App takes it as a
parameter (``App(config, tracker=...)``, passed through ``bot.cli.main``), so the real App
builds :class:`bench.naive.NaiveTracker` with the real store, client and service.
"""

from __future__ import annotations

import argparse
import sys

from bench.naive import NaiveTracker
from bot import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_bot", description=__doc__)
    parser.add_argument("--config", "-c", required=True)
    args = parser.parse_args(argv)
    return cli.main(["run", "--config", args.config], tracker=NaiveTracker)


if __name__ == "__main__":
    sys.exit(main())
