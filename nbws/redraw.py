"""RedrawTimer: the coalescing timer behind the panel and the live chart (no widgets here).

A front-end never redraws per message. Its timer calls ``draw()`` on nbws's loop thread every
``TICK_SECONDS`` while there is anything to show; ``draw`` assigns or sends what changed (within
the front-end's ``UpdateBudget``) and returns True once the final state is shown, which stops the
timer until the next ``refresh()``. One chain of ticks per front-end: a refresh replaces the
pending tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import collector
from . import loop as nbws_loop

__all__ = ["RedrawTimer", "TICK_SECONDS"]

TICK_SECONDS = 0.1


class RedrawTimer:
    """Calls ``draw`` on the loop thread every ``TICK_SECONDS`` until it returns True."""

    def __init__(self, draw: Callable[[], bool]) -> None:
        self._draw = draw
        self._next: Any = None  # the next tick (an asyncio TimerHandle), on the loop thread

    @property
    def running(self) -> bool:
        """True while ticks are due; False once ``draw`` said the final state is shown."""
        return self._next is not None

    def refresh(self) -> None:
        """Draw now-ish (thread-safe) and keep ticking while there is anything to show."""
        nbws_loop.call_soon(self._tick)

    def stop(self) -> None:
        """No more ticks until the next ``refresh()`` (thread-safe; never starts the loop)."""
        if not nbws_loop.call_soon_if_running(self._cancel):
            self._next = None  # (the loop is gone, and its ticks with it)

    def _cancel(self) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next = None

    def _tick(self) -> None:
        # Loop thread only, so there is one chain of ticks: a refresh replaces the pending one.
        # The handle stays set while drawing, so that ``running`` never reads False mid-tick.
        if self._next is not None:
            self._next.cancel()
        with collector.paused():  # (see nbws.collector: a redraw parses or converts the newest rows)
            done = self._draw()
        self._next = None if done else nbws_loop.get_loop().call_later(TICK_SECONDS, self._tick)
