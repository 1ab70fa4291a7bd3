"""MessageStore: what a connection received, kept in chunks and turned into a DataFrame on demand.

The loop thread appends each message (parse + three list appends, nothing else). Every
``chunk_size`` messages the open chunk is sealed: its JSON objects become one small DataFrame
(pyarrow flattens nested objects into dotted columns) and its payloads move to a compact
record. ``frame()`` concatenates the sealed frames and the open tail, and caches the result
until the next message. Only the loop thread writes; readers on other threads take the lock
that sealing holds, so they never see a chunk twice or not at all.
"""

from __future__ import annotations

import bisect
import json
import threading
from array import array
from collections import deque
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from .events import MessageEvent, fast_loads

__all__ = ["MessageStore", "flatten", "to_datetime", "DEFAULT_CHUNK_SIZE"]

DEFAULT_CHUNK_SIZE = 2048
INDEX_NAME = "received_at"
VALUE_COLUMN = "value"

# Marks a message whose data is not JSON (binary, or text that does not parse).
_NOT_JSON = object()


def _utc_index(times_ns: Any) -> pd.DatetimeIndex:
    index = pd.to_datetime(pd.Series(times_ns, dtype="int64"), unit="ns", utc=True)
    return pd.DatetimeIndex(index, name=INDEX_NAME)


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(index=_utc_index([]))


def flatten(rows: list[dict]) -> pd.DataFrame:
    """One row per dict, nested objects flattened into dotted column names (``book.bid``).

    pyarrow does it fast when each field keeps one type; otherwise ``pd.json_normalize`` does
    it slowly but for anything JSON can hold (mixed types, integers wider than 64 bits).
    """
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return pd.json_normalize(rows)
    try:
        table = pa.Table.from_struct_array(pa.array(rows))
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return pd.json_normalize(rows)
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    frame = table.to_pandas()
    for field in table.schema:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            # Keep JSON arrays as Python lists, as json_normalize does (not numpy arrays).
            frame[field.name] = pd.Series(table.column(field.name).to_pylist(), dtype=object)
    return frame


def _build_frame(times: list[int], values: list[Any]) -> pd.DataFrame:
    """The DataFrame of one chunk's JSON messages (non-objects in the ``value`` column)."""
    rows: list[dict] = []
    row_times: list[int] = []
    for t, v in zip(times, values):
        if v.__class__ is dict:
            rows.append(v)
            row_times.append(t)
        elif v is not _NOT_JSON:
            rows.append({VALUE_COLUMN: v})
            row_times.append(t)
    if not rows:
        return _empty_frame()
    frame = flatten(rows)
    frame.index = _utc_index(row_times)
    return frame


class _Sealed:
    """The payloads of one sealed chunk: a compact record for ``messages`` and ``recv``."""

    __slots__ = ("data", "first_seq", "times")

    def __init__(self, first_seq: int, data: list, times: list[int]) -> None:
        self.first_seq = first_seq
        self.data = data
        self.times = array("q", times)


class MessageStore:
    """Everything a connection received, with counters; ``frame()`` gives the DataFrame.

    ``max_rows`` bounds both the rows of the frame and the retained messages (the newest are
    kept); memory stays bounded by about ``max_rows + 2 * chunk_size`` messages.
    """

    def __init__(self, max_rows: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
            raise ValueError(f"max_rows must be a positive integer or None, not {max_rows!r}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.max_rows = max_rows
        self.chunk_size = chunk_size
        self.received = 0
        self.bytes_received = 0
        self.parse_errors = 0
        self._lock = threading.Lock()
        # The open chunk, appended to by the loop thread only.
        self._first_seq = 0
        self._data: list = []
        self._times: list[int] = []
        self._values: list = []
        # Sealed chunks; popped from the left when max_rows is exceeded.
        self._sealed: deque[_Sealed] = deque()
        self._sealed_messages = 0
        self._frames: deque[pd.DataFrame] = deque()
        self._frame_rows = 0
        self._frames_added = self._frames_dropped = 0
        # The sealed chunks' frames concatenated: (frames added, frames dropped, frame) when built.
        self._sealed_frame: tuple[int, int, pd.DataFrame] | None = None
        self._cache: tuple[int, pd.DataFrame] | None = None

    # -- writer (loop thread) --------------------------------------------------------------

    def append(self, data: str | bytes, time_ns: int) -> None:
        """Record one message received at ``time_ns`` (ns since the epoch)."""
        # The per-message path: no more work than a bare recv loop needs.
        if data.__class__ is str:
            try:
                value = fast_loads(data)
            except ValueError:
                try:  # what orjson refuses but Python servers send: NaN, wide integers
                    value = json.loads(data)
                except ValueError:
                    value = _NOT_JSON
                    self.parse_errors += 1
            self.bytes_received += len(data) if data.isascii() else len(data.encode())
        else:
            value = _NOT_JSON
            self.parse_errors += 1
            self.bytes_received += len(data)
        self._data.append(data)
        self._times.append(time_ns)
        values = self._values
        values.append(value)
        self.received += 1
        if len(values) >= self.chunk_size:
            self._seal()

    def _seal(self) -> None:
        data, times, values = self._data, self._times, self._values
        frame = _build_frame(times, values)
        sealed = _Sealed(self._first_seq, data, times)
        with self._lock:
            self._data, self._times, self._values = [], [], []
            self._first_seq += len(data)
            self._sealed.append(sealed)
            self._sealed_messages += len(data)
            if len(frame):
                self._frames.append(frame)
                self._frame_rows += len(frame)
                self._frames_added += 1
            self._trim()

    def _trim(self) -> None:
        limit = self.max_rows
        if limit is None:
            return
        while self._sealed and self._sealed_messages - len(self._sealed[0].data) >= limit:
            self._sealed_messages -= len(self._sealed.popleft().data)
        while self._frames and self._frame_rows - len(self._frames[0]) >= limit:
            self._frame_rows -= len(self._frames.popleft())
            self._frames_dropped += 1

    # -- readers (any thread) --------------------------------------------------------------

    def _open_chunk(self) -> tuple[int, list, list[int], list]:
        """A consistent copy of the open chunk; call with the lock held."""
        n = len(self._values)  # appended last, so data and times hold at least n items
        return self._first_seq, self._data[:n], self._times[:n], self._values[:n]

    def frame(self) -> pd.DataFrame:
        """A DataFrame of every JSON message retained, indexed by UTC ``received_at``.

        Built from cached chunks; the result is cached until the next message arrives. The
        caller gets its own copy: shallow where pandas copies on write (pandas 3), else deep.
        """
        with self._lock:
            received = self.received
            if self._cache is not None and self._cache[0] == received:
                return _snapshot(self._cache[1])
            _, _, times, values = self._open_chunk()
            added, dropped = self._frames_added, self._frames_dropped
            frames = list(self._frames)
            cached = self._sealed_frame
        if cached is not None and cached[:2] == (added, dropped):
            sealed = cached[2]
        elif cached is not None and cached[1] == dropped:  # only new chunks: add just those
            sealed = pd.concat([cached[2], *frames[len(frames) - (added - cached[0]) :]], sort=False)
        else:  # first time, or rolled over: from the retained chunks
            sealed = pd.concat(frames, sort=False) if frames else _empty_frame()
        with self._lock:
            self._sealed_frame = (added, dropped, sealed)
        tail = _build_frame(times, values)
        if len(tail) == 0:
            result = sealed
        elif len(sealed) == 0:
            result = tail
        else:
            result = pd.concat([sealed, tail], sort=False)
        if self.max_rows is not None and len(result) > self.max_rows:
            result = result.iloc[-self.max_rows :]
        with self._lock:
            self._cache = (received, result)
        return _snapshot(result)

    def tail(self, n: int = 5) -> pd.DataFrame:
        """The last ``n`` rows of the frame, built from the newest chunks only (cheap at any size)."""
        with self._lock:
            m = len(self._values)
            times, values = self._times[max(0, m - n) : m], self._values[max(0, m - n) : m]
            frames = list(self._frames)
        parts = [_build_frame(times, values)]
        rows = len(parts[0])
        for frame in reversed(frames):
            if rows >= n:
                break
            parts.insert(0, frame.tail(n - rows))
            rows += len(parts[0])
        parts = [part for part in parts if len(part)]
        return pd.concat(parts, sort=False).tail(n) if parts else _empty_frame()

    def messages(self) -> list[MessageEvent]:
        """The retained messages as MessageEvents, oldest first."""
        return self.events(self.oldest_seq(), self.received)

    def events(self, start: int, stop: int) -> list[MessageEvent]:
        """The retained messages numbered ``start`` to ``stop - 1``, oldest first."""
        if self.max_rows is not None:
            start = max(start, self.received - self.max_rows)
        with self._lock:
            parts = [
                (s.first_seq, s.data, s.times) for s in self._sealed if s.first_seq + len(s.data) > start
            ]
            first, data, times, _ = self._open_chunk()
        parts.append((first, data, times))
        events = []
        for first_seq, chunk_data, chunk_times in parts:
            lo, hi = max(start - first_seq, 0), min(stop - first_seq, len(chunk_data))
            events.extend(
                MessageEvent(chunk_data[i], first_seq + i, to_datetime(chunk_times[i])) for i in range(lo, hi)
            )
        return events

    def oldest_seq(self) -> int:
        """The seq of the oldest retained message (== ``received`` when none is retained)."""
        with self._lock:
            first = self._sealed[0].first_seq if self._sealed else self._first_seq
        if self.max_rows is not None:
            first = max(first, self.received - self.max_rows)
        return first

    def event(self, seq: int) -> MessageEvent | None:
        """The message numbered ``seq``, or None if it has not arrived (or was rolled over)."""
        found = self.events(seq, seq + 1)
        return found[0] if found and found[0].seq == seq else None

    def rate(self, now_ns: int, window_s: float = 5.0, since_ns: int | None = None) -> float:
        """Messages per second over the last ``window_s`` seconds (or since ``since_ns``, at least 1 s)."""
        start = now_ns - int(window_s * 1e9)
        if since_ns is not None:
            start = max(start, since_ns)
        with self._lock:
            chunks = [s.times for s in self._sealed]
            chunks.append(self._times[: len(self._values)])
            rolled_over = bool(self._sealed) and self._sealed[0].first_seq > 0
        count = 0
        oldest = None
        for times in reversed(chunks):
            if not times:
                continue
            i = bisect.bisect_left(times, start)
            count += len(times) - i
            oldest = times[0]
            if i > 0:
                oldest = None  # the window starts inside this chunk: all of it is covered
                break
        if rolled_over and oldest is not None and oldest > start:
            start = oldest  # only what is retained can be counted
        # At least a second: one message just after opening is not "170 msgs/s".
        return count / max((now_ns - start) / 1e9, 1.0)


def _snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """The caller's own copy of a cached frame: shallow under copy-on-write, else deep."""
    cow = int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True
    return frame.copy(deep=not cow)


def to_datetime(time_ns: int) -> datetime:
    """A UTC datetime from nanoseconds since the epoch."""
    return datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc)
