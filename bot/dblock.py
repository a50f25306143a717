"""One process per database: an OS lock on a file beside it (``mjbot.db.lock``).

Exactly-once rests on the store's claims being taken by one process: a second ``mjbot run`` on
the same database would take over the first one's delivery claims and refund its in-flight
submits as interrupted. Until several instances are supported, the second one is refused.

``flock`` rather than a pid file: the kernel drops the lock when its holder dies, kill -9
included, so a crash never leaves a stale lock behind to be cleaned up by hand. The file's
text (pid, host, start time) only serves the refusal message; it is never trusted for the
decision. The file itself is left in place: unlinking a flock'ed file lets a third process
lock a fresh inode while a second still holds the old one.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path


class DatabaseInUse(Exception):
    """Another process holds the database; the message names it in one line."""


class DatabaseLock:
    """The held lock; ``release()`` gives it up (process exit does the same)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # the text describes a holder; there is none now
        finally:
            os.close(fd)  # closing the last descriptor drops the flock


def lock_path(db_path: str | Path) -> Path:
    """Beside the database file itself: through a symlink, another name for the same file
    would otherwise get a lock of its own and let a second process in. (A hard link still
    would; nothing names its other paths.)"""
    return Path(f"{Path(db_path).resolve()}.lock")


def acquire(db_path: str | Path) -> DatabaseLock:
    """Lock ``db_path`` for this process, or raise ``DatabaseInUse`` naming the holder."""
    path = lock_path(db_path)
    # O_CLOEXEC (Python's default) keeps child processes from inheriting, and so holding, it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe(fd)
        os.close(fd)
        raise DatabaseInUse(
            f"{db_path} is in use by {holder}; one mjbot process per database"
            f" (stop that one, or give this one another storage.path)"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    return DatabaseLock(path, fd)


def _describe(fd: int) -> str:
    """Who holds the lock, from the file's text; best effort (it may be mid-write)."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(holder["since"])))
        return f"another mjbot (pid {int(holder['pid'])} on {holder['host']}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another mjbot process"
