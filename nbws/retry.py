"""When to open a connection again: the retry policy the connection's state machine consults.

``reconnect=False`` is a policy that never retries; ``reconnect=True`` retries failed handshakes
that may succeed later and connections that dropped, with jittered exponential backoff. Pure
logic: no clocks, no sleeps, the random source injectable, so it is tested by feeding it inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

__all__ = ["RECONNECT_DELAY", "RETRY_CLOSE_CODES", "STABLE_SECONDS", "RetryPolicy"]

# The delay before the first retry and the longest between retries (seconds).
RECONNECT_DELAY = (1.0, 30.0)
# A connection that stayed open this long is reopened at once when it drops; one that dropped
# sooner (a flapping server) waits the next backoff delay first.
STABLE_SECONDS = 10.0
# Close codes after which a connection is reopened: a drop, going away, server error, service
# restart, try again later, bad gateway. Others (1000 normal, protocol and policy errors, the
# application's 3000-4999) mean the server ended the conversation.
RETRY_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})


class RetryPolicy:
    """Whether and after how long to try again. ``enabled=False`` never retries.

    nbws keeps its own backoff rather than websockets' reconnect loop, which resets the backoff
    after every successful handshake (a server that accepts and drops at once would be hammered)
    and cannot take other delays before websockets 16.
    """

    def __init__(
        self,
        enabled: bool,
        delay: tuple[float, float] = RECONNECT_DELAY,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        first, longest = delay
        if not 0 < first <= longest:
            raise ValueError(
                f"reconnect_delay must be (first, longest) with 0 < first <= longest, not {delay!r}"
            )
        self.enabled = enabled
        self.delay = (float(first), float(longest))
        self._uniform = uniform
        self._after_failure = self._backoff()
        self._after_drop = self._backoff()

    def _backoff(self) -> Iterator[float]:
        """Each delay between half and all of a bound that starts at ``first`` and doubles up to
        ``longest``, so that clients that dropped together spread out."""
        bound, longest = self.delay
        while True:
            yield self._uniform(bound / 2, bound)
            bound = min(bound * 2, longest)

    def after_failure(self, retryable: bool) -> float | None:
        """Seconds to wait before the next handshake, or None to give up."""
        if not (self.enabled and retryable):
            return None
        return next(self._after_failure)

    def after_drop(self, code: int, lived: float) -> float | None:
        """Seconds to wait before reopening a connection that ended with ``code`` after
        ``lived`` seconds open, or None when it should stay closed."""
        if not self.enabled or code not in RETRY_CLOSE_CODES:
            return None
        if lived >= STABLE_SECONDS:
            self._after_drop = self._backoff()
            return 0.0
        return next(self._after_drop)

    def opened(self) -> None:
        """A handshake succeeded: failed handshakes count from the start again."""
        self._after_failure = self._backoff()
