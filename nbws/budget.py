"""UpdateBudget: how much a front-end may send in any one second (pure: the caller gives the time)."""

from __future__ import annotations

from collections import deque

__all__ = ["UpdateBudget"]


class UpdateBudget:
    """At most ``max_updates`` updates and ``max_bytes`` bytes in any window of ``window`` seconds.

    Ask ``allows(now, sizes)`` before sending a group of updates (one size each); if it says
    yes, send them and call ``spend(now, sizes)``. A group bigger than ``max_bytes`` on its own is
    allowed once the window is empty, so no update waits for ever.
    """

    def __init__(self, max_updates: int, max_bytes: int, window: float = 1.0) -> None:
        self.max_updates = max_updates
        self.max_bytes = max_bytes
        self.window = window
        self._spent: deque[tuple[float, int]] = deque()  # (when, bytes) of each update sent
        self._bytes = 0

    def _forget_before(self, now: float) -> None:
        while self._spent and now - self._spent[0][0] >= self.window:
            self._bytes -= self._spent.popleft()[1]

    def allows(self, now: float, sizes: list[int]) -> bool:
        """Whether updates of these sizes may go now."""
        self._forget_before(now)
        if len(self._spent) + len(sizes) > self.max_updates:
            return False
        return not self._spent or self._bytes + sum(sizes) <= self.max_bytes

    def spend(self, now: float, sizes: list[int]) -> None:
        """Record updates of these sizes sent at ``now``."""
        for size in sizes:
            self._spent.append((now, size))
            self._bytes += size
