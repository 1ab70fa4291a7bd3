"""The points of a live chart, kept in the kernel: no widgets here (``nbws.chart`` draws them).

A chart plots numeric columns (dotted names such as ``book.bid``, as in ``ws.frame``) against the
arrival time. ``SeriesSet`` takes rows as they come (``(time_ns, row)`` pairs, as
``ws.recent_rows`` gives them), makes one series per column, or per column and value of a ``by``
column, and keeps each within the window: a number of points per series, or a time span back from
the newest point. Values that are not numbers are skipped; numeric strings (``"67000.10"``, as
exchanges send prices) are plotted as the numbers they spell. ``take_new()`` gives the points added
since it was last called, for an update that sends only those; ``window_points()`` gives every
point kept, for a view that attaches later. x is in milliseconds since the epoch (JavaScript's
``Date``); both axes are float64.
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

__all__ = ["DEFAULT_WINDOW", "Points", "SeriesSet", "Window", "parse_window"]

DEFAULT_WINDOW = 10_000

_SPAN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|min|h|d)\s*", re.IGNORECASE)
_UNIT_MS = {"ms": 1.0, "s": 1e3, "sec": 1e3, "min": 60e3, "h": 3_600e3, "d": 86_400e3}


@dataclass(frozen=True)
class Window:
    """What a chart keeps of each series: the last ``points``, or the last ``span_ms``."""

    points: int | None = None
    span_ms: float | None = None


def parse_window(window: int | str | timedelta) -> Window:
    """A window from a point count (``10_000``), a span (``"5min"``, ``"30s"``, ``"500ms"``,
    ``"2h"``, ``"1d"``) or a ``timedelta``; ``ValueError`` saying what is accepted otherwise."""
    if isinstance(window, bool):
        pass  # (an int to Python, but never a window)
    elif isinstance(window, int) and window > 0:
        return Window(points=window)
    elif isinstance(window, timedelta) and window > timedelta(0):
        return Window(span_ms=window / timedelta(milliseconds=1))
    elif isinstance(window, str) and (match := _SPAN.fullmatch(window)):
        span = float(match[1]) * _UNIT_MS[match[2].lower()]
        if span > 0:
            return Window(span_ms=span)
    raise ValueError(
        f"window must be a positive number of points or a time span such as '30s', '5min' or "
        f"'2h' (units ms, s, min, h, d), not {window!r}"
    )


@dataclass(frozen=True)
class Points:
    """Points of one series: ``key`` is ``(column, by value)`` (None without ``by``), ``label``
    the legend's text, ``x`` milliseconds since the epoch and ``y`` the values (float64 each)."""

    key: tuple[str, Any]
    label: str
    x: array
    y: array


def _number(value: Any) -> float | None:
    """``value`` as a finite float if it is a JSON number or a numeric string, else None."""
    if value.__class__ not in (str, int, float):  # (bool is a subclass of int: not a number here)
        return None
    try:
        number = float(value)
    except ValueError:  # a string that spells no number
        return None
    return number if math.isfinite(number) else None


class _Series:
    __slots__ = ("label", "taken", "x", "y")

    def __init__(self, label: str) -> None:
        self.label = label
        self.x = array("d")
        self.y = array("d")
        self.taken = 0  # points before this index were given by take_new()

    def drop_first(self, count: int) -> None:
        if count > 0:
            del self.x[:count], self.y[:count]
            self.taken = max(0, self.taken - count)


class SeriesSet:
    """The series of one chart: ``columns`` against arrival time, split by the ``by`` column."""

    def __init__(self, columns: Iterable[str], by: str | None = None, window: Window | None = None) -> None:
        self.columns = list(dict.fromkeys(columns))
        if not self.columns:
            raise ValueError("a chart needs at least one column to plot")
        self.by = by
        self.window = window or Window(points=DEFAULT_WINDOW)
        self._series: dict[tuple[str, Any], _Series] = {}
        self._seen: set[str] = set()  # columns that have had a value, plottable or not
        self._newest_ms = -math.inf

    def add(self, rows: Iterable[tuple[int, dict]]) -> None:
        """Take rows ``(time_ns, row)`` (flat rows, dotted names), oldest first."""
        columns, by, series = self.columns, self.by, self._series
        seen = self._seen
        for time_ns, row in rows:
            x = time_ns / 1e6
            group = row.get(by) if by is not None else None
            for column in columns:
                if column not in row:
                    continue
                seen.add(column)
                y = _number(row[column])
                if y is None:
                    continue
                key = (column, group)
                line = series.get(key)
                if line is None:
                    line = series[key] = _Series(self._label(column, group))
                line.x.append(x)
                line.y.append(y)
            if x > self._newest_ms:
                self._newest_ms = x
        self._trim(slack=True)

    def _label(self, column: str, group: Any) -> str:
        if self.by is None:
            return column
        name = f"(no {self.by})" if group is None else str(group)
        return name if len(self.columns) == 1 else f"{column} · {name}"

    def _trim(self, slack: bool) -> None:
        """Drop what the window no longer holds (with ``slack``, only once a series holds a
        quarter more than its window, so that points are dropped in batches)."""
        points, span = self.window.points, self.window.span_ms
        for line in self._series.values():
            if points is not None:
                excess = len(line.x) - points
                if not slack or excess > max(64, points // 4):
                    line.drop_first(excess)
            elif span is not None:
                cut = bisect_left(line.x, self._newest_ms - span)
                if not slack or cut > 64:
                    line.drop_first(cut)

    def take_new(self) -> list[Points]:
        """The points added since the last call, per series that has any (new series included)."""
        self._trim(slack=False)
        new = []
        for key, line in self._series.items():
            if line.taken < len(line.x):
                new.append(Points(key, line.label, line.x[line.taken :], line.y[line.taken :]))
                line.taken = len(line.x)
        return new

    def window_points(self) -> list[Points]:
        """Every point kept, per series (what a view that attaches now must be sent first)."""
        self._trim(slack=False)
        return [Points(key, line.label, line.x[:], line.y[:]) for key, line in self._series.items()]

    def missing(self) -> list[str]:
        """The columns no row has had yet (the chart says it waits for them)."""
        return [column for column in self.columns if column not in self._seen]
