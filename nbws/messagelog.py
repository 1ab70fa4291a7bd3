"""MessageLog: every message a connection received, in order, kept compactly (no pandas here).

The loop thread appends each message: its payload and its arrival time (two list appends; no
parsing on the way in). Every ``chunk_size`` messages the open chunk is sealed into a compact
record; a subclass (``nbws.store.MessageStore``) turns the sealed chunk into rows of a frame,
parsing it as a whole or handing its text to Arrow's reader. A message is parsed at most once:
when its chunk is sealed, or earlier when a reader needs its value (the open chunk's rows, the
parse error count). ``max_rows`` bounds what is retained. Readers on any thread get messages by
seq, counters, the rate and the newest rows without copying the open chunk.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import deque
from itertools import islice
from typing import Any

from . import collector
from .events import MessageEvent
from .jsontext import fast_loads, loads
from .messagelist import MessageList

__all__ = [
    "MessageLog",
    "DEFAULT_CHUNK_SIZE",
    "NOT_JSON",
    "VALUE_COLUMN",
    "json_rows",
    "flat_row",
    "parse_messages",
]

DEFAULT_CHUNK_SIZE = 2048
VALUE_COLUMN = "value"
# Marks a message whose data is not JSON (binary, or text that does not parse).
NOT_JSON = object()
# The newest messages of the sealed chunks, kept for recent_rows right after a seal.
KEPT_AFTER_SEAL = 64


def parse_messages(data: list) -> tuple[list, int]:
    """The JSON value of each message (``NOT_JSON`` for binary messages and text that is not
    JSON), and how many are not JSON. Each is parsed once."""
    if not all(d.__class__ is str for d in data):
        values = [_parse_text(d) if d.__class__ is str else NOT_JSON for d in data]
        return values, sum(value is NOT_JSON for value in values)
    values: list = []
    errors = 0
    while len(values) < len(data):
        try:  # the usual case: one C loop (extend keeps what it parsed before a refusal)
            values.extend(map(fast_loads, islice(data, len(values), None)))
        except ValueError:
            value = _parse_refused(data[len(values)])
            values.append(value)
            errors += value is NOT_JSON
    return values, errors


def _parse_text(text: str) -> Any:
    try:
        return fast_loads(text)
    except ValueError:
        return _parse_refused(text)


def _parse_refused(text: str) -> Any:
    """What orjson refused: Python servers send NaN, which the standard library reads."""
    try:
        return loads(text)
    except ValueError:
        return NOT_JSON


def json_rows(times: list[int], values: list[Any]) -> tuple[list[dict], list[int]]:
    """The rows of JSON messages (non-objects as ``{"value": v}``) and their times."""
    if set(map(type, values)) == {dict}:  # the usual case, in C loops
        return values, times
    rows: list[dict] = []
    row_times: list[int] = []
    for t, v in zip(times, values):
        if v.__class__ is dict:
            rows.append(v)
            row_times.append(t)
        elif v is not NOT_JSON:
            rows.append({VALUE_COLUMN: v})
            row_times.append(t)
    return rows, row_times


def flat_row(obj: dict) -> dict:
    """``obj`` with nested objects as dotted names (``{"book": {"bid": 1}}`` -> ``book.bid``),
    as the frame's columns are; a repeated name gets ``.1``. No recursion (1,024 levels)."""
    row: dict = {}
    stack = [("", iter(obj.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            name = prefix + key
            if value.__class__ is dict:
                if value:  # ({} has no leaves: no column, as in the frame)
                    stack.append((name + ".", iter(value.items())))
                    break
                continue
            n = 0
            while name in row:
                n += 1
                name = f"{prefix}{key}.{n}"
            row[name] = value
        else:
            stack.pop()
    return row


class _Sealed:
    """The payloads of one sealed chunk: a compact record for ``messages`` and ``recv``."""

    __slots__ = ("data", "first_seq", "times")

    def __init__(self, first_seq: int, data: list, times: list[int]) -> None:
        self.first_seq = first_seq
        self.data = data
        self.times = array("q", times)


class MessageLog:
    """Everything a connection received, oldest first, with counters.

    ``max_rows`` bounds the retained messages (the newest are kept). Only the loop thread calls
    ``append``; everything else may be called from any thread.
    """

    def __init__(self, max_rows: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
            raise ValueError(f"max_rows must be a positive integer or None, not {max_rows!r}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.max_rows = max_rows
        self.chunk_size = chunk_size
        self.received = 0
        self._sealed_errors = 0  # parse errors of the sealed chunks
        self._lock = threading.Lock()
        self._sealed_bytes = 0  # bytes_received of the sealed chunks
        self._open_bytes = self._open_counted = 0  # of the open chunk's first _open_counted messages
        # The open chunk, appended to by the loop thread only (times last: their count is the
        # chunk's); the values of its first messages, parsed once someone needed them (under
        # _lock), and how many of those are not JSON.
        self._first_seq = 0
        self._data: list = []
        self._times: list[int] = []
        self._values: list = []
        self._open_errors = 0
        # Sealed chunks' payloads; popped from the left when max_rows is exceeded.
        self._sealed: deque[_Sealed] = deque()
        self._sealed_messages = 0
        self._kept: tuple[list[int], list] = ([], [])  # the sealed chunks' newest times, payloads

    # -- writer (loop thread) --------------------------------------------------------------

    def append(self, data: str | bytes, time_ns: int) -> None:
        """Record one message received at ``time_ns`` (ns since the epoch)."""
        # The per-message path: less work than a bare recv loop's parse.
        self._data.append(data)
        times = self._times
        times.append(time_ns)
        self.received += 1
        if len(times) >= self.chunk_size:
            self._seal()

    def _seal(self, force: bool = False) -> None:
        data, times = self._data, self._times
        with collector.paused():
            rows = self._sealing(data, times, force)
        sealed = _Sealed(self._first_seq, data, times)
        with self._lock:
            # Messages of the chunk nobody parsed were all JSON objects (Arrow's reader took them).
            self._sealed_errors += self._open_errors
            self._open_errors = 0
            self._data, self._times, self._values = [], [], []
            self._sealed_bytes += self._open_bytes + _size(data[self._open_counted :])
            self._open_bytes = self._open_counted = 0
            self._first_seq += len(data)
            self._sealed.append(sealed)
            self._sealed_messages += len(data)
            kept_times, kept_data = self._kept
            self._kept = (
                (kept_times + times[-KEPT_AFTER_SEAL:])[-KEPT_AFTER_SEAL:],
                (kept_data + data[-KEPT_AFTER_SEAL:])[-KEPT_AFTER_SEAL:],
            )
            self._sealed_rows(rows)
            self._trim()
        self._after_seal()

    # Hooks for the frame side (MessageStore): what becomes of a sealed chunk's messages.

    def _sealing(self, data: list, times: list[int], force: bool) -> Any:
        """Turn a chunk's payloads into rows (loop thread, no lock held); ``force``: no rows may
        wait for later chunks. Whatever it does not parse (``_chunk_values``) must be JSON
        objects: those are not counted as parse errors."""
        self._chunk_values()

    def _chunk_values(self) -> list:
        """The value of every message of the open chunk, parsing those nobody parsed yet."""
        with self._lock:
            return self._open_values(len(self._times))

    def _sealed_rows(self, rows: Any) -> None:
        """Keep the rows ``_sealing`` made (``_lock`` held)."""

    def _trim_rows(self, limit: int) -> None:
        """Drop rows beyond the newest ``limit`` (``_lock`` held)."""

    def _after_seal(self) -> None:
        """Anything else to do after a seal (loop thread, no lock held)."""

    def _trim(self) -> None:
        limit = self.max_rows
        if limit is None:
            return
        while self._sealed and self._sealed_messages - len(self._sealed[0].data) >= limit:
            self._sealed_messages -= len(self._sealed.popleft().data)
        self._trim_rows(limit)

    # -- readers (any thread) --------------------------------------------------------------

    def _open_values(self, n: int) -> list:
        """The open chunk's values, its first ``n`` at least parsed (hold _lock). Each message is
        parsed once, by whoever needs its value first."""
        values = self._values
        if len(values) < n:
            parsed, errors = parse_messages(self._data[len(values) : n])
            values += parsed
            self._open_errors += errors
        return values

    @property
    def parse_errors(self) -> int:
        """Messages that are not JSON: binary ones, and text that does not parse."""
        with self._lock:  # parses only what arrived since the last reader or seal
            self._open_values(len(self._times))
            return self._sealed_errors + self._open_errors

    @property
    def bytes_received(self) -> int:
        """Bytes of every message received: UTF-8 for text, as on the wire."""
        with self._lock:  # counts only what arrived since the last call
            count = len(self._times)
            self._open_bytes += _size(self._data[self._open_counted : count])
            self._open_counted = count
            return self._sealed_bytes + self._open_bytes

    def _open_chunk(self) -> tuple[list[int], list]:
        """A consistent copy of the open chunk's times and values; call with the lock held."""
        n = len(self._times)  # appended last, so data hold at least n items
        return self._times[:n], self._open_values(n)[:n]

    def recent_rows(self, n: int) -> list[tuple[int, dict]]:
        """The newest ``n`` rows as ``(time_ns, row)``, each row with dotted names as in the frame.
        Costs about ``n`` messages whatever is retained (so it may give fewer when more than
        ``KEPT_AFTER_SEAL`` were sealed since the rows it would need, or few are JSON)."""
        if self.max_rows is not None:
            n = min(n, self.max_rows)
        with self._lock:
            count = len(self._times)
            lo = max(0, count - 4 * n)  # a few more, for messages that are not JSON
            times, data = self._times[lo:count], self._data[lo:count]
            if lo == 0:
                kept_times, kept_data = self._kept
                times, data = kept_times + times, kept_data + data
        rows, row_times = json_rows(times, parse_messages(data)[0])
        start = max(0, len(rows) - n)
        return [(t, flat_row(row)) for t, row in zip(row_times[start:], rows[start:])]

    def messages(self) -> MessageList:
        """The retained messages, oldest first (events made when read: ``MessageList``)."""
        return self.events(self.oldest_seq(), self.received)

    def events(self, start: int, stop: int) -> MessageList:
        """The retained messages numbered ``start`` to ``stop - 1``, oldest first; nothing is
        copied (sealed chunks never change, the open one is only appended to)."""
        if self.max_rows is not None:
            start = max(start, self.received - self.max_rows)
        with self._lock:
            # (first seq, payloads, times, how many): the open chunk's count is its times'.
            chunks = [(s.first_seq, s.data, s.times, len(s.data)) for s in self._sealed]
            chunks.append((self._first_seq, self._data, self._times, len(self._times)))
        parts = [
            (first, data, times, max(start - first, 0), max(min(stop - first, count), 0))
            for first, data, times, count in chunks
            if first + count > start
        ]
        return MessageList(parts)

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
            chunks.append((self._times, len(self._times)))
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


def _size(data: list) -> int:
    """The bytes of messages on the wire (counted per chunk, off the per-message path)."""
    try:
        if all(map(str.isascii, data)):  # the usual case, in C loops
            return sum(map(len, data))
    except TypeError:  # a binary message
        pass
    return sum(
        len(d) if d.__class__ is bytes or d.isascii() else len(d.encode(errors="surrogatepass")) for d in data
    )
