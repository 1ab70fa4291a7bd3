"""LiveChart: a live chart of a connection's columns (an anywidget; ``ws.plot`` makes one).

The kernel keeps the points (``nbws.series``); the browser keeps a copy and draws it (``chart.js``,
Canvas 2D, shipped in the package: no CDN, nothing fetched at run time). The panel's coalescing
timer (``nbws.redraw``) reads the rows that arrived since its last tick (``ws.rows_since``) and
sends only the points they add, as float64 binary buffers: an update costs the same whether the
chart holds ten points or a million. At most ``MAX_UPDATES_PER_SECOND`` updates a second and
about ``MAX_BYTES_PER_SECOND`` bytes (an update carries ``POINTS_PER_UPDATE`` points at most: the
lowest and highest of each run when more arrived, which is all a chart a few hundred pixels wide
can show); nothing is sent when nothing changed. A view that attaches later (a second view, a
reloaded page) asks for the current window and gets it, thinned to ``POINTS_PER_WINDOW``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from .budget import UpdateBudget
from .jsontext import dumps
from .redraw import RedrawTimer
from .series import DEFAULT_WINDOW, Points, SeriesSet, parse_window
from .state import CLOSED

__all__ = ["LiveChart", "MAX_UPDATES_PER_SECOND", "POINTS_PER_UPDATE", "POINTS_PER_WINDOW"]

MAX_UPDATES_PER_SECOND = 20
# Of chart data on IOPub: what a browser on a slow link (Binder, a remote kernel) must keep up with.
# (jupyter_server's own limits count every IOPub message, 1,000 a second, but the bytes of stream
# output only.)
MAX_BYTES_PER_SECOND = 400_000
UPDATE_OVERHEAD = 200  # bytes of a comm message besides its content and buffers
POINTS_PER_UPDATE = 1_500  # 24 KB of float64 pairs
POINTS_PER_WINDOW = 40_000  # sent once to a view that attaches: 640 KB
BACKFILL_ROWS = 200_000  # rows received before the chart was made that it reads at most

_CODE = (Path(__file__).parent / "chart.js").read_text(encoding="utf-8")


def _columns(y: str | Iterable[str]) -> list[str]:
    columns = [y] if isinstance(y, str) else list(y) if isinstance(y, Iterable) else [y]
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"y must be a column name or a list of column names, such as 'price', not {y!r}")
    return columns


class LiveChart(anywidget.AnyWidget):
    """A live chart of ``columns`` of a connection's frame against ``received_at``.

    Make it with ``ws.plot(y, by=None, window=10_000)``; display it (the last expression of a
    cell, or ``display(chart)``) as often as you like: every view shows the same data. It stops
    updating once the connection is closed and its last points are shown, and starts again if
    the connection reopens. ``close()`` removes it.
    """

    _esm = _CODE
    title = traitlets.Unicode("").tag(sync=True)
    waiting = traitlets.List(traitlets.Unicode()).tag(sync=True)
    window_ms = traitlets.Float(0.0).tag(sync=True)
    height = traitlets.Int(300).tag(sync=True)

    def __init__(
        self,
        ws: Any,
        y: str | Iterable[str],
        *,
        by: str | None = None,
        window: int | str | timedelta = DEFAULT_WINDOW,
        height: int = 300,
    ) -> None:
        columns = _columns(y)
        if by is not None and (not isinstance(by, str) or not by):
            raise ValueError(f"by must be a column name, such as 'symbol', not {by!r}")
        self.series = SeriesSet(columns, by=by, window=parse_window(window))
        self.ws = ws
        self._position = 0  # of ws.rows_since
        self._ids: dict[tuple[str, Any], int] = {}  # series key -> the browser's series id
        self._lock = threading.Lock()  # one of the timer and a view's request touches the series
        self._budget = UpdateBudget(MAX_UPDATES_PER_SECOND, MAX_BYTES_PER_SECOND)
        title = ", ".join(columns) + (f" by {by}" if by else "")
        super().__init__(
            title=title, window_ms=self.series.window.span_ms or 0.0, height=height, waiting=columns
        )
        self.on_msg(self._on_view_message)
        self._timer = RedrawTimer(self._draw)
        self._remove_hook = ws.add_state_hook(self._timer.refresh)  # a reopened connection restarts it
        self._timer.refresh()

    def __repr__(self) -> str:
        return f"<nbws.LiveChart {self.title!r} of {self.ws!r}>"

    @property
    def timer_running(self) -> bool:
        """True while the chart keeps updating; False once a closed connection is fully shown."""
        return self._timer.running

    def close(self) -> None:
        """Stop updating and remove the chart from every view."""
        if hasattr(self, "_timer"):  # (ipywidgets closes a widget whose __init__ raised, too)
            self._remove_hook()
            self._timer.stop()
        super().close()

    # -- the timer (loop thread) --------------------------------------------------------------

    def _draw(self) -> bool:
        """Send the points that arrived, within the budget; True once the final state is shown."""
        if self.comm is None:  # closed
            return True
        closed = self.ws.ready_state == CLOSED
        wanted = [*self.series.columns, *([self.series.by] if self.series.by else [])]
        sent = False
        with self._lock:
            new = self.ws.rows_since(self._position, wanted, limit=BACKFILL_ROWS)
            self._position = new.position
            self.series.add(new.times, new.columns)
            now = time.monotonic()
            if self._budget.allows(now, [UPDATE_OVERHEAD]):
                points = self.series.take_new(limit=POINTS_PER_UPDATE)
                if points:
                    size = self._send_points("points", points)
                    self._budget.spend(time.monotonic(), [size])  # (when sent: see Panel._draw)
                    sent = True
            else:
                return False  # over budget: the points wait for the next tick
        waiting = self.series.missing()
        if waiting != self.waiting:
            self.waiting = waiting
        return closed and not sent

    def _send_points(self, kind: str, points: list[Points]) -> int:
        """Send points as one message: their series as JSON, x and y as two float64 buffers;
        returns the bytes it weighs."""
        series = []
        for p in points:
            ident = self._ids.setdefault(p.key, len(self._ids))
            series.append([ident, p.label, len(p.x), p.since])
        content = {"type": kind, "series": series}
        buffers = [  # (empty ones for a view that asks before there is any point)
            np.concatenate([np.empty(0), *(p.x for p in points)]).astype("<f8"),
            np.concatenate([np.empty(0), *(p.y for p in points)]).astype("<f8"),
        ]
        self.send(content, [memoryview(b) for b in buffers])
        return len(dumps(content)) + sum(b.nbytes for b in buffers) + UPDATE_OVERHEAD

    # -- a view asking for the current window (kernel's shell thread) ------------------------------

    def _on_view_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "sync":
            with self._lock:  # so that no update is sent between what this sends and the next
                self._send_points("window", self.series.window_points(limit=POINTS_PER_WINDOW))
