"""Blocking and async reads of a connection's messages: ``recv``, ``arecv``, iteration, waits.

Readers share one cursor (the next message not yet read) and sleep on a condition that the loop
thread notifies only when someone waits (``waiting``), so a stream nobody reads costs nothing
here. Blocking waits wake every ``WAIT_SLICE`` seconds so that an interrupt (Ctrl-C,
``_thread.interrupt_main``) raises ``KeyboardInterrupt`` promptly and leaves the connection as it
was.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from .events import MessageEvent

__all__ = ["WAIT_SLICE", "Readers", "wait_until"]

# Longest a blocking wait sleeps before checking for an interrupt (_thread.interrupt_main and
# ipykernel on Windows set a flag that only running Python code sees).
WAIT_SLICE = 0.2


def wait_until(condition: threading.Condition, ready: Callable[[], bool], timeout: float | None) -> bool:
    """Wait on ``condition`` (not held) until ``ready()``, in interruptible slices; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with condition:
        while not ready():
            remaining = WAIT_SLICE if deadline is None else min(deadline - time.monotonic(), WAIT_SLICE)
            if remaining <= 0:
                return False
            condition.wait(remaining)
    return True


class Readers:
    """The reading side of one connection.

    ``closed()`` says whether no further message can come; ``closed_error(what)`` builds the
    ConnectionClosedError to raise; ``name`` and ``shown`` name the connection in messages.
    """

    def __init__(
        self,
        store: Any,
        closed: Callable[[], bool],
        closed_error: Callable[[str], Exception],
        shown: str,
    ) -> None:
        self._store = store
        self._closed = closed
        self._closed_error = closed_error
        self._shown = shown
        self._new_data = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._cursor = 0
        # wait_for_messages() counts from here; the first send after a wait moves it forward.
        self._mark = 0
        self._move_mark_on_send = True
        self.waiting = 0  # read per message on the hot path

    def wake(self) -> None:
        """New data or a state change (any thread): wake every reader."""
        with self._new_data:
            self._new_data.notify_all()
            for loop, future in self._async_waiters:
                loop.call_soon_threadsafe(_resolve, future)

    def sending(self) -> None:
        """A message is about to be sent: replies to this exchange count from here."""
        if self._move_mark_on_send:
            self._mark, self._move_mark_on_send = self._store.received, False

    def recv(self, timeout: float | None = None) -> MessageEvent:
        """The next unread message; see ``WebSocket.recv``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._new_data:
            self.waiting += 1
            try:
                while True:
                    event = self._take_next()
                    if event is not None:
                        return event
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"no message from {self._shown} within {timeout}s")
                    self._new_data.wait(WAIT_SLICE if remaining is None else min(remaining, WAIT_SLICE))
            finally:
                self.waiting -= 1

    async def arecv(self, timeout: float | None = None) -> MessageEvent:
        """``recv`` for async code, on the caller's event loop."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future = loop.create_future()
            with self._new_data:
                event = self._take_next()
                if event is not None:
                    return event
                self._async_waiters.append((loop, future))
                self.waiting += 1
            try:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no message from {self._shown} within {timeout}s")
                try:
                    await asyncio.wait_for(future, remaining)
                except TimeoutError:
                    raise TimeoutError(f"no message from {self._shown} within {timeout}s") from None
            finally:
                with self._new_data:
                    self._async_waiters.remove((loop, future))
                    self.waiting -= 1

    def wait_for_messages(self, count: int, timeout: float | None, name: str) -> int:
        """Block until ``count`` new messages arrived; see ``WebSocket.wait_for_messages``."""
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        store = self._store
        target = self._mark + count
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._new_data:
            self.waiting += 1
            try:
                while store.received < target:
                    arrived = store.received - self._mark
                    if self._closed():
                        raise self._closed_error(f"closed after {arrived} of {count} new messages")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(
                            f"{arrived} of {count} new messages from {name!r} arrived within {timeout}s"
                        )
                    self._new_data.wait(WAIT_SLICE if remaining is None else min(remaining, WAIT_SLICE))
            finally:
                self.waiting -= 1
        self._mark, self._move_mark_on_send = target, True
        return store.received

    def _take_next(self) -> MessageEvent | None:
        """The message at the cursor, advancing it; raise if none can come. Hold _new_data."""
        seq = max(self._cursor, self._store.oldest_seq())
        event = self._store.event(seq)
        if event is not None:
            self._cursor = seq + 1
            return event
        if self._closed():
            raise self._closed_error("is closed")
        return None


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
