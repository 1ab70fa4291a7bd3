"""The live connections by name, closing them together, and closing everything at exit.

A name belongs to the newest connection that claimed it: re-running ``connect(..., name="feed")``
closes the older one, and the older object can never take the name back or close the newer.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from . import loop as nbws_loop
from .validate import validate_close

__all__ = ["Registry", "registry", "connections", "close_all", "EXIT_CLOSE_SECONDS"]

# At exit, how long every connection together gets to finish its closing handshake before the
# rest are dropped (a peer that never answers the close must not hold the interpreter).
EXIT_CLOSE_SECONDS = 1.5
# How long close_all() waits for them all together, outside exit.
CLOSE_ALL_SECONDS = 11.0
# How long it then waits for the dropped ones to report their close.
DROP_SECONDS = 1.0


class Registry:
    """Connections by name; one instance, ``registry``. Entries are WebSocket objects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, Any] = {}
        self._counter = itertools.count(1)
        self.exiting = False

    def claim(self, ws: Any, name: str | None) -> tuple[str, Any]:
        """Register ``ws`` under ``name`` (or a fresh ``wsN``); returns the name and the older
        connection it took the name from (the caller closes that one), or None."""
        with self._lock:
            if name is None:
                name = next(f"ws{i}" for i in self._counter if f"ws{i}" not in self._by_name)
            older = self._by_name.get(name)
            self._by_name[name] = ws
        return name, (older if older is not ws else None)

    def replaced(self, ws: Any) -> bool:
        """Whether a newer connection took ``ws``'s name."""
        with self._lock:
            holder = self._by_name.get(ws.name)
            return holder is not None and holder is not ws

    def reclaim(self, ws: Any) -> bool:
        """Register ``ws`` again under its own name (it is reopening), unless a newer connection
        took that name: then False, and nothing changes."""
        with self._lock:
            holder = self._by_name.setdefault(ws.name, ws)
            return holder is ws

    def release(self, ws: Any) -> None:
        """``ws`` closed: forget it, unless a newer connection has its name."""
        with self._lock:
            if self._by_name.get(ws.name) is ws:
                del self._by_name[ws.name]

    def live(self) -> dict[str, Any]:
        with self._lock:
            return {n: ws for n, ws in self._by_name.items() if not ws.closed}

    def close_all(self, code: int = 1000, reason: str = "", timeout: float = CLOSE_ALL_SECONDS) -> None:
        """Ask every live connection to close, then wait for them together (bounded by
        ``timeout`` in all); those still not closed are dropped."""
        live = list(self.live().values())
        for ws in live:
            ws.request_close(code, reason)
        if nbws_loop.in_loop_thread():
            return  # a listener cannot wait for the loop it runs on
        deadline = time.monotonic() + timeout
        late = [ws for ws in live if not ws.wait_closed_until(deadline)]
        for ws in late:
            ws.drop("nbws dropped the connection: its closing handshake did not finish in time")
        deadline = time.monotonic() + DROP_SECONDS
        for ws in late:
            ws.wait_closed_until(deadline)


registry = Registry()


def connections() -> dict[str, Any]:
    """Name -> WebSocket for every connection that is not closed."""
    return registry.live()


def close_all(code: int = 1000, reason: str = "") -> None:
    """Close every live connection, all at once, and wait (bounded) until they are closed."""
    validate_close(code, reason)
    registry.close_all(code, reason)


def _close_all_at_exit() -> None:
    """The interpreter or kernel is ending: close everything together, quickly, silently."""
    registry.exiting = True
    registry.close_all(timeout=EXIT_CLOSE_SECONDS)


def _loop_died(exc: BaseException) -> None:
    """The loop thread died: every connection says so (error, then close 1006)."""
    for ws in list(registry.live().values()):
        ws.die(f"nbws's loop thread died ({exc!r}); open the connection again")


nbws_loop.on_shutdown(_close_all_at_exit)
nbws_loop.on_death(_loop_died)
