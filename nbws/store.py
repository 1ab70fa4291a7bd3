"""MessageStore: the message log, and the DataFrame of its JSON messages on demand.

Every ``chunk_size`` messages the log seals a chunk: a chunk of objects of scalars goes as text
through Arrow's JSON reader (``nbws.arrowchunk``; nothing parsed in Python), any other is parsed
(once; see ``nbws.messagelog``) and goes through pandas (``nbws.columns``),
``OBJECT_BATCH_CHUNKS`` chunks at a time; either way one row per message,
nested objects as dotted columns. Sealed rows move into growable per-column buffers
(``nbws.framebuffer``; every ``BATCH_ROWS`` rows, and whenever a frame is asked for),
consecutive Arrow Tables converted together. ``frame()``
returns a DataFrame of views of them plus the open chunk's rows, so asking again after new
messages costs the new rows, not all of them. Only the loop thread appends; whoever moves rows
into the buffers or reads them holds ``_read_lock``.

pandas is imported when the first chunk is sealed or the first frame asked for, not with
``nbws`` (``import nbws`` stays fast for ``nbws serve`` and scripts that never build a frame).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import collector
from .messagelog import DEFAULT_CHUNK_SIZE, NOT_JSON, MessageLog, json_rows

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .framebuffer import FrameBuffer

__all__ = ["MessageStore", "NewRows", "DEFAULT_CHUNK_SIZE", "copy_on_write"]

# Sealed rows that wait at most before the loop thread moves them into the frame's buffers.
BATCH_ROWS = 32_768
# Chunks whose parsed objects become columns together (chunks Arrow's reader does not take).
# pandas and the buffers cost less per row in bigger batches, but a frame asked for meanwhile
# converts the open batch again. Measured on 40,000 mixed messages (store alone, collector off):
# 0.415 s one chunk at a time, 0.367 s two, 0.351 s four; ws.frame after 1,000 new rows: median
# 14.5, 18.7, 30.7 ms. Two keeps most of the gain for little of the cost.
OBJECT_BATCH_CHUNKS = 2


@dataclass(frozen=True)
class NewRows:
    """Some columns of the frame's rows after a position (see ``MessageStore.rows_since``).

    ``times`` are the rows' arrival times (int64 ns since the epoch); ``columns`` maps each
    requested name the frame has (or the new rows have) to its values, one per row (missing
    values NaN or None); ``position`` is what to pass next time to get only newer rows.
    """

    position: int
    times: np.ndarray
    columns: dict[str, np.ndarray]


_MISSING = object()


def _pick(row: dict, name: str) -> Any:
    """The value a parsed row has under the frame's dotted column ``name`` (``book.bid`` is
    ``row["book"]["bid"]``), or ``_MISSING``."""
    value = row.get(name, _MISSING)
    while value is _MISSING and "." in name:
        head, _, name = name.partition(".")
        row = row.get(head)
        if row.__class__ is not dict:
            return _MISSING
        value = row.get(name, _MISSING)
    return value


def _picked(rows: list[dict], name: str) -> list | None:
    """The values of column ``name`` in ``rows`` (None where a row has none), or None if no row
    has it."""
    values = [_pick(row, name) for row in rows]
    if all(value is _MISSING for value in values):
        return None
    return [None if value is _MISSING else value for value in values]


class _Rows:
    """Sealed rows not yet moved into the frame's buffers: a DataFrame or a pyarrow Table, and
    their arrival times; a DataFrame's columns too until the archive took them."""

    __slots__ = ("columns", "frame", "table", "times")

    def __init__(
        self,
        times: list[int],
        frame: pd.DataFrame | None = None,
        table: Any = None,
        columns: dict[str, pd.Series] | None = None,
    ) -> None:
        self.frame = frame
        self.table = table
        self.times = times
        self.columns = columns

    def __len__(self) -> int:
        return len(self.times)


def _objects_columns(
    chunks: list[tuple[list[int], list[Any]]],
) -> tuple[dict[str, pd.Series] | None, list[int]]:
    """The JSON messages of chunks of (times, values) as the columns of one DataFrame (see
    ``nbws.columns.chunk_columns``; None if there are none) and their times."""
    from .columns import chunk_columns

    rows: list[dict] = []
    row_times: list[int] = []
    for times, values in chunks:
        chunk_rows, chunk_times = json_rows(times, values)
        rows += chunk_rows
        row_times += chunk_times
    return (chunk_columns(rows) if rows else None), row_times


def _objects_frame(chunks: list[tuple[list[int], list[Any]]]) -> tuple[pd.DataFrame | None, list[int]]:
    """The JSON messages of chunks of (times, values) as one DataFrame (None if there are none)
    and their times."""
    from .columns import columns_frame

    columns, times = _objects_columns(chunks)
    return (None if columns is None else columns_frame(columns, len(times))), times


def _frames(pending: list[_Rows]) -> Iterator[tuple[pd.DataFrame, Any]]:
    """Each DataFrame of ``pending`` (emptied as it goes), and consecutive Tables with the same
    fields (names and types) as one DataFrame of up to ``BATCH_ROWS`` rows: fewer, bigger
    conversions."""
    import numpy as np

    from .arrowchunk import tables_frame

    pending.reverse()
    while pending:
        rows = pending.pop()
        if rows.table is None:
            yield rows.frame, np.asarray(rows.times, dtype="int64")
            continue
        batch, fields = [rows], set(rows.table.schema)  # names and types
        size = len(rows)
        while pending and pending[-1].table is not None and size < BATCH_ROWS:
            if set(pending[-1].table.schema) != fields:
                break
            batch.append(pending.pop())
            size += len(batch[-1])
        times = np.concatenate([np.asarray(rows.times, dtype="int64") for rows in batch])
        yield tables_frame([rows.table for rows in batch]), times


class MessageStore(MessageLog):
    """Everything a connection received, with counters; ``frame()`` gives the DataFrame.

    ``max_rows`` bounds both the rows of the frame and the retained messages (the newest are
    kept); memory stays bounded by about ``max_rows + 2 * chunk_size`` messages.
    """

    def __init__(self, max_rows: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(max_rows, chunk_size)
        # Sealed rows waiting to move into the frame's buffers (readers move them); under _lock.
        self._pending: deque[_Rows] = deque()
        self._pending_rows = 0
        self._pending_dropped = False  # max_rows dropped pending rows: the buffers are stale
        self._rows_ready = 0  # rows ever made ready for the buffers (pending or in them); under _lock
        # Sealed chunks (times, values) whose objects become columns with the next ones; under _lock.
        self._open_objects: list[tuple[list[int], list[Any]]] = []
        # With max_rows, a column goes once the last batch that had it rolls out: one chunk each.
        self._object_batch = OBJECT_BATCH_CHUNKS if max_rows is None else 1
        # The frame's buffers and the last frame built; readers hold _read_lock to use them.
        self._read_lock = threading.Lock()
        self._buffer: FrameBuffer | None = None
        self._cache: tuple[int, pd.DataFrame] | None = None
        self._arrow: Any = None  # the ArrowChunkReader, once a chunk needs it
        self.archive: Any = None  # an nbws.archive.Archive that gets every sealed row (archive=)
        self._open_texts: list[list] = []  # with an archive: the payloads of _open_objects' chunks

    # -- sealed chunks (loop thread) -------------------------------------------------------

    def _sealing(self, data: list, times: list[int], force: bool) -> tuple[list[_Rows], list]:
        """The rows ready to move into the buffers, and the chunks of objects still open. Where
        batches of objects end depends only on the messages (and on ``seal_now``), never on
        when frames are asked for."""
        from .arrowchunk import ArrowChunkReader

        objects = self._open_objects
        # (a reader that found a message that is not JSON already: Arrow must not take the chunk)
        if not self._open_errors:
            if self._arrow is None:
                self._arrow = ArrowChunkReader()
            table = self._arrow.read(data)
            if table is not None:
                ready = self._archived(self._objects_rows(objects), objects, self._open_texts)
                self._open_texts = []
                return [*ready, *self._archived([_Rows(times, table=table)])], []
        values = self._chunk_values()
        texts = self._open_texts
        if self.archive is not None:
            texts = [*texts, data]
            if self._open_errors == len(data):  # (a binary feed: all of them)
                self.archive.add_not_json(times, data)
            elif self._open_errors:
                others = [(t, d) for t, d, v in zip(times, data, values) if v is NOT_JSON]
                self.archive.add_not_json([t for t, _ in others], [d for _, d in others])
        objects = [*objects, (times, values)]
        if force or len(objects) >= self._object_batch:
            self._open_texts = []
            return self._archived(self._objects_rows(objects), objects, texts), []
        self._open_texts = texts
        return [], objects

    @staticmethod
    def _objects_rows(objects: list[tuple[list[int], list[Any]]]) -> list[_Rows]:
        from .columns import columns_frame

        columns, times = _objects_columns(objects)
        if columns is None:
            return []
        return [_Rows(times, frame=columns_frame(columns, len(times)), columns=columns)]

    def _archived(
        self, ready: list[_Rows], objects: list | None = None, texts: list | None = None
    ) -> list[_Rows]:
        """``ready``, also handed to the archive if there is one; a batch of objects with the
        text of its messages (``texts``: the payloads of each chunk of ``objects``)."""
        archive = self.archive
        for rows in ready:
            # (pandas makes a Series each time a frame's column is asked for, so the archive
            # takes the columns the frame was made of; the frame holds their values, they go)
            columns, rows.columns = rows.columns, None
            if archive is None:
                continue
            if rows.table is not None:
                archive.add_rows(rows.table, rows.times)
            else:  # (the text of the JSON messages: those the frame has a row for)
                row_texts = [
                    d
                    for (_, values), data in zip(objects, texts)
                    for d, v in zip(data, values)
                    if v is not NOT_JSON
                ]
                archive.add_rows(columns, rows.times, row_texts)
        return ready

    def seal_now(self) -> None:
        """Seal the open chunk however short, and the chunks of objects waiting for the next,
        so that the archive gets every row received so far (loop thread)."""
        if self._times:
            self._seal(force=True)
        elif self._open_objects:
            objects, texts, self._open_texts = self._open_objects, self._open_texts, []
            with collector.paused():
                ready = self._archived(self._objects_rows(objects), objects, texts)
            with self._lock:
                self._sealed_rows((ready, []))
                self._trim()

    def _sealed_rows(self, rows: tuple[list[_Rows], list]) -> None:
        ready, self._open_objects = rows
        for batch in ready:
            self._pending.append(batch)
            self._pending_rows += len(batch)
            self._rows_ready += len(batch)

    def _trim_rows(self, limit: int) -> None:
        while self._pending and self._pending_rows - len(self._pending[0]) >= limit:
            self._pending_rows -= len(self._pending.popleft())
            self._pending_dropped = True

    def _after_seal(self) -> None:
        # Keep the sealed DataFrames few: move them into the buffers now and then, unless a reader
        # is doing it right now (it moves them all).
        if self._pending_rows >= BATCH_ROWS and self._read_lock.acquire(blocking=False):
            try:
                with self._lock:
                    pending = self._take_pending()
                self._absorb(*pending)
            finally:
                self._read_lock.release()

    # -- readers (any thread) --------------------------------------------------------------

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
        """The last ``n`` rows of the frame, with the columns that have a value in them, in the
        frame's order. Costs ``n`` rows whatever the size of the frame or of the open chunk."""
        from .columns import chunk_frame
        from .framebuffer import index_of

        n = n if self.max_rows is None else min(n, self.max_rows)
        rows = self.recent_rows(n)
        if len(rows) >= n:
            result = chunk_frame([row for _, row in rows])  # (its exact wide integers too)
            result.index = index_of([t for t, _ in rows])
        else:  # right after a seal with messages that are not JSON: the frame's last rows
            with self._read_lock:
                _, result = self._view(n)
        known = self._buffer.columns if self._buffer is not None else {}
        order = {name: i for i, name in enumerate(known)}
        names = sorted(result.columns, key=lambda name: order.get(name, len(order)))
        return _snapshot(result[names].dropna(axis=1, how="all"))

    def rows_since(self, position: int, names: Iterable[str], limit: int | None = None) -> NewRows:
        """The columns ``names`` of the frame's rows after its first ``position`` rows (one row per
        JSON message received; rows ``max_rows`` dropped are skipped), the newest ``limit`` at
        most. Costs the new rows of those columns: sealed rows are read from the frame's
        buffers, newer ones from the messages already parsed. Pass the result's ``position``
        next time (start with 0)."""
        import numpy as np

        names = list(dict.fromkeys(names))
        with self._read_lock, collector.paused():
            with self._lock:
                pending = self._take_pending()
                ready = self._rows_ready  # the buffers' last row, once pending rows are in them
                unsealed = [*self._open_objects, self._open_chunk()]
            self._absorb(*pending)
            buffer = self._buffer
            open_rows: list[dict] = []
            open_times: list[int] = []
            for times, values in unsealed:
                rows, row_times = json_rows(times, values)
                open_rows += rows
                open_times += row_times
            end = ready + len(open_rows)
            start = max(position, ready - (buffer.stop - buffer.start))
            for newest in (limit, self.max_rows):
                if newest is not None:
                    start = max(start, end - newest)
            start = min(start, end)
            lo = buffer.stop - max(ready - start, 0)  # the first new row in the buffers
            open_rows = open_rows[max(start - ready, 0) :]
            open_times = open_times[len(open_times) - len(open_rows) :]
            times = np.concatenate([buffer.index.asi8[lo : buffer.stop], np.asarray(open_times, "int64")])
            columns = {}
            for name in names:
                sealed = buffer.values(name, lo, buffer.stop)
                recent = _picked(open_rows, name)
                if sealed is None and recent is None:
                    continue
                if sealed is None:
                    sealed = np.full(buffer.stop - lo, None, object)
                if recent is None:
                    recent = [None] * len(open_rows)
                if recent:  # (fromiter: lists, such as an order book's levels, stay one value each)
                    sealed = np.concatenate([sealed, np.fromiter(recent, object, len(recent))])
                columns[name] = sealed
        return NewRows(end, times, columns)

    def _take_pending(self) -> tuple[list[_Rows], bool]:
        """The sealed rows not in the buffers yet, and whether rows were dropped before them
        (hold _lock)."""
        pending, self._pending, self._pending_rows = list(self._pending), deque(), 0
        stale, self._pending_dropped = self._pending_dropped, False
        return pending, stale

    def _absorb(self, pending: list[_Rows], stale: bool) -> None:
        """Move sealed rows into the frame's buffers (hold _read_lock)."""
        from .framebuffer import FrameBuffer

        if stale or self._buffer is None:  # max_rows dropped rows before these: start afresh
            self._buffer = FrameBuffer(self.max_rows)
        buffer = self._buffer
        for frame, times in _frames(pending):  # each freed once in the buffers (a lower peak)
            buffer.append(frame, times)
        if self.max_rows is not None:
            buffer.start = max(buffer.start, buffer.stop - self.max_rows)

    def _view(self, limit: int | None, use_cache: bool = False) -> tuple[int, pd.DataFrame]:
        """Move sealed rows into the buffers; a DataFrame of views of the last ``limit`` rows."""
        import numpy as np
        import pandas as pd

        with collector.paused():  # (see nbws.collector: the open chunk is parsed here)
            with self._lock:
                received = self.received
                if use_cache and self._cache is not None and self._cache[0] == received:
                    return self._cache
                pending = self._take_pending()
                unsealed = [*self._open_objects, self._open_chunk()]
            self._absorb(*pending)
            buffer = self._buffer
            # Rows not in a batch yet: written after the buffers' stop, sealed again later.
            frame, times = _objects_frame(unsealed)
            buffer.append(
                pd.DataFrame() if frame is None else frame, np.asarray(times, dtype="int64"), commit=False
            )
            stop = buffer.stop + len(times)
            start = buffer.start if limit is None else max(buffer.start, stop - limit)
            return received, buffer.frame(start, stop)


def copy_on_write() -> bool:
    """Whether pandas copies on write here (always from pandas 3; an option before)."""
    import pandas as pd

    return int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True


def _snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """The caller's own copy of a cached frame: shallow under copy-on-write, else deep."""
    return frame.copy(deep=not copy_on_write())
