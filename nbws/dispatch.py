"""Listeners: who hears a connection's events, in which context, and the hold at creation.

Listeners run on nbws's loop thread inside a copy of the context they were added in, so what
they print lands under the cell that added them (ipykernel keeps each stream's parent in a
ContextVar). Whatever a listener raises, ``SystemExit`` and ``KeyboardInterrupt`` included, is
reported and counted, and the stream goes on.

The hold: a browser delivers a WebSocket's events only after the script that created it has
run, so listeners added right after ``new WebSocket(url)`` never miss the first ones. Here the
handshake runs on another thread and can finish within microseconds, so a new connection's
events (messages included, kept as they arrived) wait until the frame that created it returns,
or the creating thread calls a blocking method, or ``HOLD_SECONDS`` pass; then they are
delivered in order, each with the ``ready_state`` it happened in.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from .events import ErrorEvent, message_event

__all__ = ["EVENT_TYPES", "HOLD_SECONDS", "PRINTED_LISTENER_FAILURES", "Dispatcher", "Hold"]

EVENT_TYPES = ("open", "message", "close", "error")
# Longest time events wait for the code that created a connection to add its listeners.
HOLD_SECONDS = 0.5
# Full tracebacks printed per listener before further failures are only counted.
PRINTED_LISTENER_FAILURES = 3

Listener = Callable[[Any], Any]
Entry = tuple[Listener, contextvars.Context]


class Hold:
    """The creating frame and thread, and what happened while they may still add listeners."""

    __slots__ = ("deadline", "events", "frame", "thread_id")

    def __init__(self) -> None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith("nbws."):
            frame = frame.f_back
        self.thread_id = threading.get_ident()
        self.frame = frame
        self.deadline = time.monotonic() + HOLD_SECONDS
        # (type, event or (data, seq, time_ns) for messages, state it happened in, quiet)
        self.events: list[tuple[str, Any, Any, bool]] = []

    def over(self) -> bool:
        """Whether the creator is done: its frame returned, or the hold timed out."""
        if time.monotonic() >= self.deadline:
            return True
        frame = sys._current_frames().get(self.thread_id)
        while frame is not None:
            if frame is self.frame:
                return False
            frame = frame.f_back
        return True


class Dispatcher:
    """The listeners of one connection and their delivery (on the loop thread).

    ``name`` gives the connection's name for messages; ``state`` its current ready state;
    ``origin`` is the context errors nobody listens to are printed in (the creating cell).
    """

    def __init__(
        self,
        name: Callable[[], str],
        state: Callable[[], Any],
        origin: contextvars.Context,
        hold: Hold | None,
    ) -> None:
        self._name = name
        self._state = state
        self._origin = origin
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Entry]] = {t: [] for t in EVENT_TYPES}
        self._delivered: dict[str, Any] = {}  # the open/close event listeners last got
        self._failures: dict[int, int] = {}
        self._hold = hold
        self.listener_errors = 0
        self.close_delivered = False  # the close listeners have run (reset when reopened)
        self.on_close_delivered: Callable[[], Any] = lambda: None
        # Whether an error event reaches someone without listeners (a caller raised its error).
        self.someone_told: Callable[[Any], bool] = lambda event: False
        # Read per message on the hot path: message listeners exist, or the hold keeps messages.
        self.wants_messages = hold is not None
        # While an event is delivered: the state it happened in (listeners see that ready_state).
        self.presenting: Any = None

    # -- listeners (any thread) ----------------------------------------------------------------

    def add(self, type: str, listener: Listener, late_types: tuple[tuple[str, Any], ...]) -> Entry | None:
        """Add ``listener``; returns its entry when it must be called at once with the event it
        missed (``late_types``: the (type, state) pairs for which that applies now)."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; use one of {', '.join(EVENT_TYPES)}")
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {listener!r}")
        with self._lock:
            if any(fn is listener for fn, _ in self._listeners[type]):
                return None
            entry = (listener, contextvars.copy_context())
            # Copy-on-write: the loop thread iterates the old list without a lock.
            self._listeners[type] = [*self._listeners[type], entry]
            self._update_wants_messages()
            missed = (type, self._state()) in late_types and type in self._delivered
        return entry if missed else None

    def remove(self, type: str, listener: Listener) -> None:
        with self._lock:
            if type in self._listeners:
                self._listeners[type] = [e for e in self._listeners[type] if e[0] is not listener]
                self._update_wants_messages()

    def _update_wants_messages(self) -> None:
        self.wants_messages = self._hold is not None or bool(self._listeners["message"])

    def call_late(self, type: str, entry: Entry) -> None:
        """Call a listener added after its event happened (loop thread), if still added."""
        event = self._delivered.get(type)
        if event is not None and entry in self._listeners[type]:
            self._call(type, entry, event)

    # -- delivery (loop thread) ----------------------------------------------------------------

    def emit(self, type: str, event: Any, quiet: bool = False) -> None:
        """Deliver an open/error/close event now, or keep it while the creator may add listeners.

        ``quiet``: the error needs no print when nobody listens (the user caused it or is told).
        """
        with self._lock:
            if self._hold is not None:
                self._hold.events.append((type, event, self._state(), quiet))
                return
            entries = self._listeners[type]
            if type != "error":
                self._delivered[type] = event
        self._deliver(type, event, entries, quiet)

    def message(self, data: str | bytes, seq: int, time_ns: int) -> None:
        """A message arrived: call the message listeners (or keep it while held)."""
        if self._hold is not None:
            with self._lock:
                if self._hold is not None:
                    self._hold.events.append(("message", (data, seq, time_ns), self._state(), False))
                    return
        entries = self._listeners["message"]
        if entries:
            event = message_event(data, seq, time_ns)
            for listener, context in entries:  # _call, inlined: this runs once per message
                try:
                    context.run(listener, event)
                except BaseException as exc:  # noqa: BLE001 - even SystemExit must not stop the stream
                    self._report("message", listener, context, exc)

    def poll_hold(self) -> bool:
        """Release the hold if the creator is done; True while it still holds."""
        hold = self._hold
        if hold is not None and hold.over():
            self.release()
        return self._hold is not None

    def held_by_this_thread(self) -> bool:
        hold = self._hold
        return hold is not None and hold.thread_id == threading.get_ident()

    def release(self) -> None:
        """End the hold: deliver what was held, in order."""
        with self._lock:
            hold, self._hold = self._hold, None
            if hold is None:
                return
            listeners = dict(self._listeners)
            self._update_wants_messages()
            for type, event, _, _ in hold.events:
                if type not in ("error", "message"):
                    self._delivered[type] = event
        try:
            for type, event, state, quiet in hold.events:
                self.presenting = state
                if type == "message":
                    if listeners["message"]:
                        data, seq, time_ns = event
                        message = message_event(data, seq, time_ns)
                        for entry in listeners["message"]:
                            self._call("message", entry, message)
                else:
                    self._deliver(type, event, listeners[type], quiet)
        finally:
            self.presenting = None

    def _deliver(self, type: str, event: Any, entries: list[Entry], quiet: bool) -> None:
        if type == "error" and not entries and not quiet and not self.someone_told(event):
            # never silent: tell the creating cell
            self._origin.run(print, event.message, file=sys.stderr)
        for entry in entries:
            self._call(type, entry, event)
        if type == "close":
            self.close_delivered = True
            self.on_close_delivered()

    def _call(self, type: str, entry: Entry, event: Any) -> None:
        listener, ctx = entry
        try:
            ctx.run(listener, event)
        except BaseException as exc:  # noqa: BLE001 - even SystemExit must not stop the stream
            self._report(type, listener, ctx, exc)

    def _report(self, type: str, listener: Listener, ctx: contextvars.Context, exc: BaseException) -> None:
        self.listener_errors += 1
        count = self._failures[id(listener)] = self._failures.get(id(listener), 0) + 1
        name = getattr(listener, "__qualname__", repr(listener))
        message = f"nbws: {type} listener {name} of {self._name()!r} raised {exc!r}; the stream goes on"
        if count == PRINTED_LISTENER_FAILURES:
            message += " (further failures of this listener are counted, not printed)"
        if count <= PRINTED_LISTENER_FAILURES:
            ctx.run(_print_failure, message, exc)
        if type != "error":
            self.emit("error", ErrorEvent(exc, message), quiet=True)


def _print_failure(message: str, exc: BaseException) -> None:
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(message, file=sys.stderr)
