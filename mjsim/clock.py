"""Simulated time: real time scaled by ``time_scale``, plus whatever ``advance()`` added."""

from __future__ import annotations

import time


class Clock:
    """Seconds since the simulator was created, in simulated time.

    ``time_scale`` is real seconds per simulated second (0.02 makes a 20 s job take 0.4 s);
    ``time_scale <= 0`` freezes the clock so only :meth:`advance` moves it.
    """

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._real0 = time.monotonic()
        self._epoch0 = time.time()
        self._offset = 0.0

    @property
    def frozen(self) -> bool:
        return self.time_scale <= 0

    def now(self) -> float:
        if self.frozen:
            return self._offset
        return (time.monotonic() - self._real0) / self.time_scale + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += max(0.0, seconds)

    def epoch_ms(self, at: float | None = None) -> int:
        """Epoch milliseconds of a simulated instant (task timestamps look like real ones)."""
        return int((self._epoch0 + (self.now() if at is None else at)) * 1000)

    def real_seconds(self, simulated: float) -> float:
        """How long a simulated span lasts in real time (0 when the clock is frozen)."""
        return max(0.0, simulated * self.time_scale)
