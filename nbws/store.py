"""MessageStore: what a connection received, kept compactly and turned into a DataFrame on demand.

The loop thread appends each message (parse + three list appends, nothing else). Every
``chunk_size`` messages the open chunk is sealed: its parsed JSON objects become a DataFrame
(``nbws.columns``: one row each, nested objects as dotted columns) and its payloads move to a
compact record. Sealed DataFrames move into growable per-column buffers (``nbws.framebuffer``;
every ``BATCH_ROWS`` rows, and whenever a frame is asked for); ``frame()`` returns a DataFrame of
views of them plus the open tail, so asking again after new messages costs the new rows, not all
of them. Only the loop thread writes messages; whoever moves DataFrames into the buffers or
reads them holds ``_read_lock``.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from .columns import chunk_frame
from .events import MessageEvent, to_datetime
from .framebuffer import INDEX_NAME, FrameBuffer
from .jsontext import fast_loads, loads

__all__ = ["MessageStore", "DEFAULT_CHUNK_SIZE"]

DEFAULT_CHUNK_SIZE = 2048
VALUE_COLUMN = "value"

# Marks a message whose data is not JSON (binary, or text that does not parse).
_NOT_JSON = object()
# Sealed rows that wait at most before the loop thread moves them into the frame's buffers.
BATCH_ROWS = 32_768
# tail(n) reads the open chunk's last TAIL_LOOKBACK * n messages for its n JSON rows.
TAIL_LOOKBACK = 4


def _split_rows(times: list[int], values: list[Any]) -> tuple[list[dict], list[int]]:
    """The rows of a chunk's JSON messages (non-objects as ``{"value": v}``) and their times."""
    rows: list[dict] = []
    row_times: list[int] = []
    for t, v in zip(times, values):
        if v.__class__ is dict:
            rows.append(v)
            row_times.append(t)
        elif v is not _NOT_JSON:
            rows.append({VALUE_COLUMN: v})
            row_times.append(t)
    return rows, row_times


def _rows(times: list[int], values: list[Any]) -> _Rows | None:
    """A chunk's rows as a DataFrame (None when none of its messages is JSON)."""
    rows, row_times = _split_rows(times, values)
    return _Rows(chunk_frame(rows), row_times) if rows else None


class _Rows:
    """Sealed rows not yet moved into the frame's buffers, and their arrival times."""

    __slots__ = ("frame", "times")

    def __init__(self, frame: pd.DataFrame, times: list[int]) -> None:
        self.frame = frame
        self.times = times

    def __len__(self) -> int:
        return len(self.times)


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
        self._sealed_bytes = 0  # bytes_received of the sealed chunks
        self._open_bytes = self._open_counted = 0  # of the open chunk's first _open_counted messages
        self.parse_errors = 0
        self._lock = threading.Lock()
        # The open chunk, appended to by the loop thread only.
        self._first_seq = 0
        self._data: list = []
        self._times: list[int] = []
        self._values: list = []
        # Sealed chunks' payloads; popped from the left when max_rows is exceeded.
        self._sealed: deque[_Sealed] = deque()
        self._sealed_messages = 0
        # Sealed rows waiting to move into the frame's buffers (readers move them).
        self._pending: deque[_Rows] = deque()
        self._pending_rows = 0
        self._pending_dropped = False  # max_rows dropped pending rows: the buffers are stale
        # The frame's buffers and the last frame built; readers hold _read_lock to use them.
        self._read_lock = threading.Lock()
        self._buffer = FrameBuffer(max_rows)
        self._cache: tuple[int, pd.DataFrame] | None = None

    # -- writer (loop thread) --------------------------------------------------------------

    def append(self, data: str | bytes, time_ns: int) -> None:
        """Record one message received at ``time_ns`` (ns since the epoch)."""
        # The per-message path: no more work than a bare recv loop needs.
        if data.__class__ is str:
            try:
                value = fast_loads(data)
            except ValueError:
                try:  # what orjson refuses but Python servers send: NaN
                    value = loads(data)
                except ValueError:
                    value = _NOT_JSON
                    self.parse_errors += 1
        else:
            value = _NOT_JSON
            self.parse_errors += 1
        self._data.append(data)
        self._times.append(time_ns)
        values = self._values
        values.append(value)
        self.received += 1
        if len(values) >= self.chunk_size:
            self._seal()

    def _seal(self) -> None:
        data, times, values = self._data, self._times, self._values
        rows = _rows(times, values)
        sealed = _Sealed(self._first_seq, data, times)
        with self._lock:
            self._data, self._times, self._values = [], [], []
            self._sealed_bytes += self._open_bytes + _size(data[self._open_counted :])
            self._open_bytes = self._open_counted = 0
            self._first_seq += len(data)
            self._sealed.append(sealed)
            self._sealed_messages += len(data)
            if rows is not None:
                self._pending.append(rows)
                self._pending_rows += len(rows)
            self._trim()
        # Keep the sealed DataFrames few: move them into the buffers now and then, unless a reader
        # is doing it right now (it moves them all).
        if self._pending_rows >= BATCH_ROWS and self._read_lock.acquire(blocking=False):
            try:
                with self._lock:
                    pending = self._take_pending()
                self._absorb(*pending)
            finally:
                self._read_lock.release()

    def _trim(self) -> None:
        limit = self.max_rows
        if limit is None:
            return
        while self._sealed and self._sealed_messages - len(self._sealed[0].data) >= limit:
            self._sealed_messages -= len(self._sealed.popleft().data)
        while self._pending and self._pending_rows - len(self._pending[0]) >= limit:
            self._pending_rows -= len(self._pending.popleft())
            self._pending_dropped = True

    # -- readers (any thread) --------------------------------------------------------------

    @property
    def bytes_received(self) -> int:
        """Bytes of every message received: UTF-8 for text, as on the wire."""
        with self._lock:  # counts only what arrived since the last call
            count = len(self._values)
            self._open_bytes += _size(self._data[self._open_counted : count])
            self._open_counted = count
            return self._sealed_bytes + self._open_bytes

    def _open_chunk(self) -> tuple[int, list, list[int], list]:
        """A consistent copy of the open chunk; call with the lock held."""
        n = len(self._values)  # appended last, so data and times hold at least n items
        return self._first_seq, self._data[:n], self._times[:n], self._values[:n]

    def frame(self) -> pd.DataFrame:
        """A DataFrame of every JSON message retained, indexed by UTC ``received_at``.

        Costs the rows that arrived since the last call; the result is cached until the next
        message. The caller gets its own copy: shallow where pandas copies on write (pandas 3:
        writing to it copies first), else deep.
        """
        with self._read_lock:
            received, result = self._view(self.max_rows, use_cache=True)
            self._cache = (received, result)
        return _snapshot(result)

    def tail(self, n: int = 5) -> pd.DataFrame:
        """The last ``n`` rows of the frame, with the columns that have a value in them.

        Costs ``n`` rows whatever the size of the frame or of the open chunk: when the open chunk
        holds ``n`` JSON rows they are all it reads. Columns come in the frame's order.
        """
        n = n if self.max_rows is None else min(n, self.max_rows)
        with self._lock:
            count = len(self._values)
            lo = max(0, count - TAIL_LOOKBACK * n)
            times, values = self._times[lo:count], self._values[lo:count]
        rows, row_times = _split_rows(times, values)
        if len(rows) >= n:
            result = chunk_frame(rows[len(rows) - n :]) if n else pd.DataFrame()
            result.index = _index(row_times[len(row_times) - n :])
        else:  # the open chunk has fewer: the frame's last rows (the open chunk is small here)
            with self._read_lock:
                _, result = self._view(n)
        known = list(self._buffer.columns)
        order = {name: i for i, name in enumerate(known)}
        names = sorted(result.columns, key=lambda name: order.get(name, len(order)))
        return _snapshot(result[names].dropna(axis=1, how="all"))

    def _take_pending(self) -> tuple[list[_Rows], bool]:
        """The sealed rows not in the buffers yet, and whether rows were dropped before them
        (hold _lock)."""
        pending, self._pending, self._pending_rows = list(self._pending), deque(), 0
        stale, self._pending_dropped = self._pending_dropped, False
        return pending, stale

    def _absorb(self, pending: list[_Rows], stale: bool) -> None:
        """Move sealed rows into the frame's buffers (hold _read_lock)."""
        if stale:  # max_rows dropped rows between the buffers' rows and these: start afresh
            self._buffer = FrameBuffer(self.max_rows)
        buffer = self._buffer
        pending.reverse()
        while pending:  # each DataFrame is freed once in the buffers (a lower peak)
            rows = pending.pop()
            buffer.append(rows.frame, np.asarray(rows.times, dtype="int64"))
        if self.max_rows is not None:
            buffer.start = max(buffer.start, buffer.stop - self.max_rows)

    def _view(self, limit: int | None, use_cache: bool = False) -> tuple[int, pd.DataFrame]:
        """Move sealed rows into the buffers; a DataFrame of views of the last ``limit`` rows."""
        with self._lock:
            received = self.received
            if use_cache and self._cache is not None and self._cache[0] == received:
                return self._cache
            pending = self._take_pending()
            _, _, times, values = self._open_chunk()
        self._absorb(*pending)
        buffer = self._buffer
        open_rows = _rows(times, values)
        if open_rows is None:
            buffer.append(pd.DataFrame(), np.empty(0, "int64"), commit=False)
            stop = buffer.stop
        else:
            buffer.append(open_rows.frame, np.asarray(open_rows.times, dtype="int64"), commit=False)
            stop = buffer.stop + len(open_rows)
        start = buffer.start if limit is None else max(buffer.start, stop - limit)
        return received, buffer.frame(start, stop)

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
            first, count = self._first_seq, len(self._values)
            lo, hi = max(start - first, 0), max(min(stop - first, count), 0)
            parts.append((first + lo, self._data[lo:hi], self._times[lo:hi]))
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
        with self._lock:  # no copies: the open chunk's list is only appended to, up to ``size``
            chunks = [(s.times, len(s.times)) for s in self._sealed]
            chunks.append((self._times, len(self._values)))
            rolled_over = bool(self._sealed) and self._sealed[0].first_seq > 0
        count = 0
        oldest = None
        for times, size in reversed(chunks):
            if not size:
                continue
            i = bisect.bisect_left(times, start, 0, size)
            count += size - i
            oldest = times[0]
            if i > 0:
                oldest = None  # the window starts inside this chunk: all of it is covered
                break
        if rolled_over and oldest is not None and oldest > start:
            start = oldest  # only what is retained can be counted
        # At least a second: one message just after opening is not "170 msgs/s".
        return count / max((now_ns - start) / 1e9, 1.0)


def copy_on_write() -> bool:
    """Whether pandas copies on write here (always from pandas 3; an option before)."""
    return int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True


def _size(data: list) -> int:
    """The bytes of messages on the wire (counted per chunk, off the per-message path)."""
    return sum(
        len(d) if d.__class__ is bytes or d.isascii() else len(d.encode(errors="surrogatepass")) for d in data
    )


def _index(times: list[int]) -> pd.DatetimeIndex:
    """The ``received_at`` index of rows that arrived at ``times`` (ns since the epoch)."""
    return pd.DatetimeIndex(np.asarray(times, dtype="M8[ns]"), name=INDEX_NAME).tz_localize("UTC")


def _snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """The caller's own copy of a cached frame: shallow under copy-on-write, else deep."""
    return frame.copy(deep=not copy_on_write())
