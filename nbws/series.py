"""The points of a live chart, kept in the kernel: no widgets here (``nbws.chart`` draws them).

A chart plots numeric columns (dotted names such as ``book.bid``, as in ``ws.frame``) against the
arrival time. ``SeriesSet.add`` takes new rows as columns (``ws.rows_since`` gives them), makes
one series per column, or per column and value of a ``by`` column, and keeps each within the
window: a number of points per series, or a time span back from the newest point. Values that
are not numbers are skipped (booleans too); numeric strings (``"67000.10"``, as exchanges send
prices) are plotted as the numbers they spell. ``take_new()`` gives the points added since it
was last called, for an update that sends only those; ``window_points()`` gives every point
kept, for a view that attaches later. Both may thin what they give to a number of points (the
lowest and highest of each run of points, so spikes stay), since a chart cannot show more than
a few points per pixel. x is in milliseconds since the epoch (JavaScript's ``Date``); both axes
are float64.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_WINDOW", "Points", "SeriesSet", "Window", "parse_window", "thin"]

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
    the legend's text, ``x`` milliseconds since the epoch and ``y`` the values (float64 arrays),
    ``since`` the x of the oldest point the series keeps (a view drops what is older)."""

    key: tuple[str, Any]
    label: str
    x: np.ndarray
    y: np.ndarray
    since: float


def _number(value: Any) -> float:
    """``value`` as a float if it is a JSON number or a numeric string, else NaN."""
    if value.__class__ not in (str, int, float):  # (bool is a subclass of int: not a number here)
        return math.nan
    try:
        return float(value)
    except ValueError:  # a string that spells no number
        return math.nan


def _floats(values: Any) -> np.ndarray:
    """The values as float64, NaN where a value is not a number (not finite ones are dropped later)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64)
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return np.full(len(values), math.nan)
    objects = _objects(values)
    try:  # numbers, numeric strings and None (as NaN), converted by numpy in one pass
        floats = objects.astype(np.float64)
    except (TypeError, ValueError):  # text that spells no number, a list: one value at a time
        return np.fromiter(map(_number, objects), np.float64, len(objects))
    for i in np.flatnonzero((floats == 0) | (floats == 1)):  # (booleans became 0 and 1)
        if objects[i].__class__ is bool:
            floats[i] = math.nan
    return floats


def _objects(values: Any) -> np.ndarray:
    """The values as a numpy array (lists, such as an order book's levels, stay one value each)."""
    if isinstance(values, np.ndarray):
        return values
    return np.fromiter(values, object, len(values))


def _group_key(value: Any) -> Any:
    """A ``by`` value as a series key: missing (None, NaN) as None, 7.0 as 7, lists as text."""
    if value is None or (value.__class__ is float and value != value):
        return None
    if value.__class__ is float and value.is_integer():
        return int(value)
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value


def _groups(values: Any) -> dict[Any, np.ndarray]:
    """The rows of each ``by`` value, in order of first appearance."""
    objects = _objects(values)
    try:
        codes, uniques = pd.factorize(objects)  # missing values (None, NaN) get -1
    except TypeError:  # unhashable values (lists): one at a time
        groups: dict[Any, list[int]] = {}
        for i, value in enumerate(objects.tolist()):
            groups.setdefault(_group_key(value), []).append(i)
        return {key: np.asarray(rows, dtype=np.intp) for key, rows in groups.items()}
    keys = [*map(_group_key, uniques.tolist()), None]  # (codes -1 index the last one: missing)
    ids: dict[Any, int] = {}
    group_of_code = np.array([ids.setdefault(key, len(ids)) for key in keys], dtype=np.intp)
    group = group_of_code[codes]
    rows = np.split(np.argsort(group, kind="stable"), np.cumsum(np.bincount(group, minlength=len(ids)))[:-1])
    found = [(int(rows[i][0]), key, rows[i]) for key, i in ids.items() if len(rows[i])]
    return {key: index for _, key, index in sorted(found, key=lambda item: item[0])}


def thin(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``limit`` of the points: all if they are that few, else the lowest and the
    highest of each of ``limit // 2`` runs of consecutive points, and the first and the last
    (a line must end at the newest point), in order."""
    n = len(x)
    if n <= limit:
        return x, y
    size = -(-n // max(1, limit // 2))  # points per run
    runs = n // size
    starts = np.arange(runs) * size
    whole = y[: runs * size].reshape(runs, size)
    kept = [starts + whole.argmin(axis=1), starts + whole.argmax(axis=1), np.array([0, n - 1])]
    if n > runs * size:  # the last, shorter run
        rest = y[runs * size :]
        kept.append(np.array([runs * size + rest.argmin(), runs * size + rest.argmax()]))
    index = np.unique(np.concatenate(kept))
    return x[index], y[index]


class _Series:
    """One series' points in growable float64 buffers; ``start``/``stop`` bound the live ones."""

    __slots__ = ("label", "start", "stop", "taken", "x", "y")

    def __init__(self, label: str) -> None:
        self.label = label
        self.x = np.empty(64)
        self.y = np.empty(64)
        self.start = self.stop = 0
        self.taken = 0  # points before this index were given by take_new()

    def __len__(self) -> int:
        return self.stop - self.start

    def extend(self, x: np.ndarray, y: np.ndarray) -> None:
        n = len(x)
        if self.stop + n > len(self.x):  # move the live points to the front of a big enough buffer
            live = len(self)
            capacity = max(64, 2 * (live + n))
            for name in ("x", "y"):
                buffer = np.empty(capacity)
                buffer[:live] = getattr(self, name)[self.start : self.stop]
                setattr(self, name, buffer)
            self.taken = max(0, self.taken - self.start)
            self.start, self.stop = 0, live
        self.x[self.stop : self.stop + n] = x
        self.y[self.stop : self.stop + n] = y
        self.stop += n

    def drop_first(self, count: int) -> None:
        self.start += max(0, count)
        self.taken = max(self.taken, self.start)

    def points(self, key: tuple[str, Any], start: int, limit: int | None) -> Points:
        x, y = self.x[start : self.stop], self.y[start : self.stop]
        if limit is not None:
            x, y = thin(x, y, limit)
        return Points(key, self.label, x.copy(), y.copy(), float(self.x[self.start]))


class SeriesSet:
    """The series of one chart: ``columns`` against arrival time, split by the ``by`` column."""

    def __init__(self, columns: Sequence[str], by: str | None = None, window: Window | None = None) -> None:
        self.columns = list(dict.fromkeys(columns))
        if not self.columns:
            raise ValueError("a chart needs at least one column to plot")
        self.by = by
        self.window = window or Window(points=DEFAULT_WINDOW)
        self._series: dict[tuple[str, Any], _Series] = {}
        self._seen: set[str] = set()  # columns the feed has had, plottable or not
        self._newest_ms = -math.inf

    def add(self, times_ns: np.ndarray, columns: Mapping[str, Any]) -> None:
        """Take new rows, oldest first: their arrival times (ns since the epoch) and the values of
        the columns they have (one per row; missing values None or NaN; the ``by`` column too)."""
        if not len(times_ns):
            self._seen.update(name for name in self.columns if name in columns)
            return
        x = np.asarray(times_ns, dtype=np.int64) / 1e6
        groups = {None: None} if self.by is None else _groups(columns.get(self.by, [None] * len(x)))
        for column in self.columns:
            if column not in columns:
                continue
            self._seen.add(column)
            y = _floats(columns[column])
            for group, rows in groups.items():
                gx, gy = (x, y) if rows is None else (x[rows], y[rows])
                plotted = np.isfinite(gy)
                if not plotted.any():
                    continue
                key = (column, group)
                line = self._series.get(key)
                if line is None:
                    line = self._series[key] = _Series(self._label(column, group))
                line.extend(gx[plotted], gy[plotted])
        self._newest_ms = max(self._newest_ms, float(x[-1]))
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
                excess = len(line) - points
                if not slack or excess > max(64, points // 4):
                    line.drop_first(excess)
            elif span is not None:
                cut = int(np.searchsorted(line.x[line.start : line.stop], self._newest_ms - span))
                if not slack or cut > 64:
                    line.drop_first(cut)

    def take_new(self, limit: int | None = None) -> list[Points]:
        """The points added since the last call, per series that has any (new series included);
        with ``limit``, thinned to about that many in all."""
        self._trim(slack=False)
        fresh = [(key, line) for key, line in self._series.items() if line.taken < line.stop]
        share = None if limit is None else max(2, limit // max(1, len(fresh)))
        new = [line.points(key, line.taken, share) for key, line in fresh]
        for _, line in fresh:
            line.taken = line.stop
        return new

    def window_points(self, limit: int | None = None) -> list[Points]:
        """Every point kept, per series (what a view that attaches now is sent; it is sent to
        every view, so ``take_new()`` then gives only points added after); with ``limit``,
        thinned to about that many in all."""
        self._trim(slack=False)
        share = None if limit is None else max(2, limit // max(1, len(self._series)))
        kept = [line.points(key, line.start, share) for key, line in self._series.items()]
        for line in self._series.values():
            line.taken = line.stop
        return kept

    def points_held(self) -> dict[str, int]:
        """How many points each series keeps now, by label."""
        return {line.label: len(line) for line in self._series.values()}

    def missing(self) -> list[str]:
        """The columns the feed has not had yet (the chart says it waits for them)."""
        return [column for column in self.columns if column not in self._seen]
