"""Test helpers shared by the client and reliability tests: an event recorder and a bounded poll."""

from __future__ import annotations

import threading
import time

import nbws


class Recorder:
    """Listens to all four event types; records (type, ready_state when called, event) in order."""

    def __init__(self, ws: nbws.WebSocket) -> None:
        self.ws = ws
        self.events: list[tuple[str, int, object]] = []
        self.closed = threading.Event()
        for type in nbws.client.EVENT_TYPES:
            ws.add_event_listener(type, self._listener(type))

    def _listener(self, type):
        def record(event):
            self.events.append((type, self.ws.ready_state, event))
            if type == "close":
                self.closed.set()

        return record

    def wait_closed(self, timeout: float = 5) -> None:
        assert self.closed.wait(timeout), f"no close event within {timeout}s: {self.events}"

    @property
    def types(self) -> list[str]:
        return [t for t, _, _ in self.events]

    def of(self, type) -> list:
        return [e for t, _, e in self.events if t == type]

    def last(self, type):
        return self.of(type)[-1]


def wait_for(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.01)
