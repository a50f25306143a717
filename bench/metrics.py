"""Small measuring helpers: percentiles and a /proc sampler for the bot process.

No extra dependencies: RSS and CPU come from ``/proc/<pid>/status`` and ``/proc/<pid>/stat``
(Linux). ``VmHWM`` is the kernel's own high-water mark of resident memory, so a short spike
between two samples is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024.0


def hwm_mb(pid: int) -> float:
    """Peak resident set size so far (VmHWM)."""
    return _status_kb(pid, "VmHWM") / 1024.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (its threads included)."""
    with open(f"/proc/{pid}/stat") as fh:
        data = fh.read()
    # the command name may contain spaces: fields start after the closing parenthesis
    rest = data[data.rindex(")") + 2 :].split()
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / CLK_TCK


@dataclass
class ProcSampler:
    """Samples RSS and CPU of one process every ``interval`` seconds while running."""

    pid: int
    interval: float = 0.25
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (t, rss, cpu)
    peak_rss_mb: float = 0.0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.sample()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def sample(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, ValueError):
            rss, cpu = rss_mb(self.pid), cpu_seconds(self.pid)
            self.samples.append((loop.time(), rss, cpu))
            self.peak_rss_mb = max(self.peak_rss_mb, hwm_mb(self.pid), rss)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def busiest_second(self) -> float:
        """Highest CPU use over any ~1 s window, as a fraction of one core."""
        best = 0.0
        for i, (t0, _, c0) in enumerate(self.samples):
            for t1, _, c1 in self.samples[i + 1 :]:
                if t1 - t0 >= 1.0:
                    best = max(best, (c1 - c0) / (t1 - t0))
                    break
        return best


def self_cpu_seconds() -> float:
    """CPU time of this (the harness) process: the simulator, the fake and the driver."""
    times = os.times()
    return times.user + times.system
