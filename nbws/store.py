"""MessageStore: what a connection received, kept compactly and turned into a DataFrame on demand.

The loop thread appends each message (parse + three list appends, nothing else). Every
``chunk_size`` messages the open chunk is sealed: its JSON objects become a pyarrow Table (Arrow's
JSON reader parses the raw text straight into columns, nested objects flattened into dotted
columns) and its payloads move to a compact record. Sealed Tables move into growable per-column
buffers (every ``BATCH_ROWS`` rows, and whenever a frame is asked for); ``frame()`` returns a
DataFrame of views of them plus the open tail, so asking again after new messages costs the new
rows, not all of them. Only the loop thread writes messages; whoever moves Tables into the
buffers or reads them holds ``_read_lock``.
"""

from __future__ import annotations

import bisect
import io
import json
import threading
from array import array
from collections import deque
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from .events import MessageEvent, fast_loads, loads

__all__ = ["MessageStore", "flatten", "to_datetime", "DEFAULT_CHUNK_SIZE"]

DEFAULT_CHUNK_SIZE = 2048
INDEX_NAME = "received_at"
VALUE_COLUMN = "value"

# Marks a message whose data is not JSON (binary, or text that does not parse).
_NOT_JSON = object()
# Rows converted to pandas at a time (and sealed rows that wait for it at most): fewer
# conversions, but each needs its rows twice in memory for a moment.
BATCH_ROWS = 32_768
# Arrow string chunks a column keeps before merging them (each frame costs one step per chunk).
MAX_STRING_CHUNKS = 256
# Arrow's reader makes integers too wide for int64 floats: a float this big may have been one.
_WIDE = float(2**63)
# The largest integer float64 holds exactly: beyond it, integer columns that need NaN stay objects.
_EXACT = 2**53


def _unique(names: list[str]) -> list[str]:
    """Column names made unique: a repeat gets ``.1``, ``.2``... (``{"a": {"b": 1}, "a.b": 2}``)."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 0
        while candidate in seen:
            n += 1
            candidate = f"{name}.{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def _flatten_structs(table: Any) -> Any:
    import pyarrow as pa

    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    if len(set(table.column_names)) < table.num_columns:
        table = table.rename_columns(_unique(table.column_names))
    return table


def _exact_as_float(values: np.ndarray) -> bool:
    """Whether integers survive as float64 (up to 2**53; beyond, feeds' ids would be rounded)."""
    return not len(values) or int(np.abs(values).max()) <= _EXACT


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not table.num_columns:
        return pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    frame = table.to_pandas(split_blocks=True)
    for field in table.schema:
        column = table.column(field.name)
        keep_objects = pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
        if pa.types.is_integer(field.type) and column.null_count:  # pandas makes these floats
            largest = pc.max(pc.abs(column)).as_py()
            keep_objects = largest is not None and largest > _EXACT
        if keep_objects:  # JSON arrays as Python lists (not numpy arrays); wide integers exact
            values = np.empty(len(column), dtype=object)
            for i, value in enumerate(column.to_pylist()):  # (numpy makes equal lists 2-D)
                values[i] = value
            frame[field.name] = values
    return frame


def _flatten_into(obj: dict, record: dict, inexact: set[str]) -> None:
    """Add ``obj``'s leaves to ``record`` under dotted names, in order (no recursion: JSON may
    nest 1,024 levels, more than Python's recursion limit)."""
    stack = [("", iter(obj.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            name = prefix + key
            if value.__class__ is dict:
                stack.append((name + ".", iter(value.items())))
                break
            if name in record:
                name = _unique([*record, name])[-1]
            if value.__class__ is int and not -_EXACT <= value <= _EXACT:
                inexact.add(name)
            record[name] = value
        else:
            stack.pop()


def flatten(rows: list[dict]) -> pd.DataFrame:
    """One row per dict, nested objects flattened into dotted column names (``book.bid``).

    As ``pd.json_normalize`` does, with these differences: a name that repeats gets ``.1``
    (``{"a": {"b": 1}, "a.b": 2}``), integers too big for float64 to hold exactly stay Python
    ints in an object column, and lone surrogates (valid in JSON, not in UTF-8) become U+FFFD
    where pandas refuses them. (The store reads most chunks with Arrow's JSON reader instead;
    this is the path for anything else.)
    """
    records: list[dict] = []
    inexact: set[str] = set()
    for row in rows:
        record: dict = {}
        _flatten_into(row, record, inexact)
        records.append(record)
    try:
        frame = pd.DataFrame(records) if any(records) else pd.DataFrame(index=pd.RangeIndex(len(records)))
    except UnicodeEncodeError:
        text = json.dumps(records, ensure_ascii=False)
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return flatten(json.loads(text))
    for name in inexact:
        if frame[name].dtype.kind not in "iu":
            frame[name] = pd.Series([r.get(name, np.nan) for r in records], dtype=object)
    return frame


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


def _with_strings_for_timestamps(type_: Any) -> Any:
    """``type_`` with every timestamp (Arrow's reader makes them of ISO date strings) a string."""
    import pyarrow as pa

    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(_with_strings_for_timestamps(f.type)) for f in type_])
    if pa.types.is_list(type_):
        return pa.list_(_with_strings_for_timestamps(type_.value_type))
    return type_


def _may_hold_wide_integers(table: Any) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    for column in table.columns:
        values = column
        while pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        if pa.types.is_floating(values.type) and len(values):
            largest = pc.max(pc.abs(values)).as_py()
            if largest is not None and largest >= _WIDE:
                return True
    return False


class _JSONReader:
    """Arrow's JSON reader over a chunk's raw text: several times faster than building Arrow
    arrays from parsed dicts. It answers None whenever its result could differ from parsing
    each message on its own (the caller then does that): not one object per line, numbers too
    wide for int64, a type Arrow refuses. Date-like strings stay strings: the fields Arrow
    took for timestamps are read again as strings and remembered for the next chunks."""

    def __init__(self) -> None:
        # Read by the loop thread (sealing chunks) and by readers (the open chunk): guarded.
        self._string_fields: dict[str, Any] = {}
        self._fields_lock = threading.Lock()

    def read(self, data: list[str]) -> Any:
        try:
            import pyarrow as pa
            import pyarrow.json as pa_json
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            return None
        try:
            blob = "\n".join(data).encode()
        except UnicodeEncodeError:  # lone surrogates: the slow path replaces them
            return None
        if blob.count(b"\n") != len(data) - 1 or b"\r" in blob:
            return None
        if not all(map(str.strip, data)):  # Arrow skips blank lines
            return None
        options = pa_json.ReadOptions(use_threads=False, block_size=len(blob) + 1)
        try:
            table = self._read(pa, pa_json, blob, options)
            table = _flatten_structs(table)
            table.validate(full=True)  # some lists starting with nulls come out malformed
            if table.num_rows != len(data) or _may_hold_wide_integers(table):
                return None
            return table
        except (pa.ArrowException, ValueError, RecursionError):  # RecursionError: types 1,000 deep
            return None

    def _read(self, pa: Any, pa_json: Any, blob: bytes, options: Any) -> Any:
        for _ in range(2):
            with self._fields_lock:
                fields = list(self._string_fields.items())
            schema = pa.schema(fields) if fields else None
            parse = pa_json.ParseOptions(explicit_schema=schema)
            table = pa_json.read_json(io.BytesIO(blob), read_options=options, parse_options=parse)
            fixed = {
                f.name: _with_strings_for_timestamps(f.type)
                for f in table.schema
                if not f.type.equals(_with_strings_for_timestamps(f.type))
            }
            if not fixed:
                return table
            with self._fields_lock:
                self._string_fields.update(fixed)
        raise ValueError("timestamps kept coming back")  # pragma: no cover


class _Rows:
    """Sealed rows not yet moved into the frame's buffers: a pyarrow Table or a DataFrame."""

    __slots__ = ("table", "times")

    def __init__(self, table: Any, times: Any) -> None:
        self.table = table
        self.times = times

    def __len__(self) -> int:
        return len(self.times)


def _to_pandas(batch: list[_Rows]) -> tuple[pd.DataFrame, np.ndarray]:
    """One DataFrame of consecutive sealed rows (Tables with one schema become one Table first)."""
    import pyarrow as pa

    times = np.concatenate([np.asarray(rows.times, dtype="int64") for rows in batch])
    tables = [rows.table for rows in batch]
    if isinstance(tables[0], pd.DataFrame):
        return tables[0], times
    if not tables[0].num_columns:  # only {}: rows without fields (concat_tables loses their count)
        return pd.DataFrame(index=pd.RangeIndex(len(times))), times
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return _arrow_to_pandas(table), times


def _batches(pending: list[_Rows]) -> list[list[_Rows]]:
    """Consecutive pending rows grouped so that each group converts to pandas in one go:
    Tables with the same fields (in any order; the first Table's order is kept)."""
    batches: list[list[_Rows]] = []
    fields: set | None = None
    size = 0
    for rows in pending:
        table = rows.table
        if isinstance(table, pd.DataFrame):
            batches.append([rows])
            fields = None
            continue
        if fields is not None and set(table.schema) == fields and size < BATCH_ROWS:
            names = batches[-1][0].table.schema.names
            batches[-1].append(_Rows(table.select(names), rows.times))
            size += len(rows)
        else:
            batches.append([rows])
            fields, size = set(table.schema), len(rows)
    return batches


def _is_arrow_string(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _is_number(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


class _Column:
    """One column of the frame: a growable numpy buffer, or Arrow chunks for pandas' Arrow strings.

    ``anchor`` is a Series over the whole buffer, kept as long as the buffer is in use: the
    frames handed out are slices of it, so pandas' copy-on-write copies before a caller writes
    into one, instead of writing into the buffer that later frames share.
    """

    __slots__ = ("anchor", "buffer", "chunks", "dtype", "last")

    def __init__(self, buffer: np.ndarray | None = None, chunks: list | None = None, dtype: Any = None):
        self.last = -1  # the last row of a batch that had it: once max_rows drops it, the column goes
        self.buffer = buffer
        self.anchor = None if buffer is None else pd.Series(buffer, dtype=buffer.dtype, copy=False)
        self.chunks = chunks  # Arrow string arrays covering rows 0..stop
        self.dtype = buffer.dtype if buffer is not None else dtype


def _missing_buffer(capacity: int, dtype: Any = np.float64) -> np.ndarray:
    return np.full(capacity, np.nan, dtype=dtype)


class _FrameBuffer:
    """The frame's rows in per-column buffers: a new frame costs the new rows, not all the rows.

    Rows ``start`` to ``stop`` are the frame; more are appended at ``stop``. Rows from the open
    chunk are written after ``stop`` without moving it (the same rows, with the same values,
    are written there again once sealed), so frames handed out never see a value change; a
    column they need converted or added is a scratch copy, so what is sealed later decides the
    columns' types as if the frame had never been asked for in between.
    Columns keep the order in which they first appeared; a column missing from some rows has
    NaN there (integers become floats, booleans objects, as ``pd.concat`` does); a column whose
    values change type becomes float (int and float) or object (anything else).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # max_rows: rows before the newest ``limit`` are dropped
        self.start = self.stop = 0
        self.columns: dict[str, _Column] = {}
        self.scratch: dict[str, Any] = {}  # Arrow string chunks of the open chunk's rows
        self.scratch_columns: dict[str, _Column] = {}  # columns the open chunk converted or added
        self._committing = True
        self.index = self._new_index(0)

    @staticmethod
    def _new_index(capacity: int) -> pd.DatetimeIndex:
        # Written in place through asi8 (a view of its data) where no frame handed out looks.
        return pd.DatetimeIndex(np.zeros(capacity, "M8[ns]"), name=INDEX_NAME).tz_localize("UTC")

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows after ``stop``: a bigger buffer, live rows moved to its front."""
        if self.stop + rows <= len(self.index):
            return
        live = self.stop - self.start
        capacity = max((live + rows) * 5 // 4, 4096)
        index = self._new_index(capacity)
        index.asi8[:live] = self.index.asi8[self.start : self.stop]
        self.index = index
        for name, column in list(self.columns.items()):
            if column.last < self.start:  # max_rows dropped every row that had it
                del self.columns[name]
                continue
            if column.buffer is not None:
                buffer = np.empty(capacity, column.buffer.dtype)
                buffer[:live] = column.buffer[self.start : self.stop]
                column, column.last = _Column(buffer), column.last
                self.columns[name] = column
            elif self.start:
                import pyarrow as pa

                chunks = pa.chunked_array(column.chunks, type=pa.large_string()).slice(self.start)
                column.chunks = chunks.chunks
            column.last -= self.start
        self.start, self.stop = 0, live

    def append(self, frame: pd.DataFrame, times: np.ndarray, commit: bool = True) -> None:
        """Write the rows of ``frame`` after ``stop`` (and move ``stop`` past them if ``commit``)."""
        count = len(frame)
        self.scratch, self.scratch_columns, self._committing = {}, {}, commit
        if not count:
            return
        self.reserve(count)
        at = self.stop
        if self.limit is not None:  # rows these push out count as gone already (no NaN for them)
            self.start = max(self.start, min(at + count - self.limit, at))
        self.index.asi8[at : at + count] = times
        seen = set()
        for name in frame.columns:
            if name in seen:  # pragma: no cover - flatten never repeats a name
                continue
            seen.add(name)
            self._put(name, frame[name], at)
        for name in list(self.columns):
            if name not in seen:
                self._fill_missing(name, self.columns[name], at, count)
        if commit:
            self.stop += count

    def _keep(self, name: str, column: _Column) -> _Column:
        """Make ``column`` the one named ``name``: for good, or for the open chunk's rows only."""
        (self.columns if self._committing else self.scratch_columns)[name] = column
        return column

    def _put(self, name: str, values: pd.Series, at: int) -> None:
        count = len(values)
        column = self.columns.get(name)
        if values.isna().all():  # all null: no type to take from these rows
            if column is None:
                column = self._keep(name, _Column(_missing_buffer(len(self.index))))
            column = self._fill_missing(name, column, at, count)
        else:
            if column is None:
                column = self._keep(name, self._new_column(values, at))
            if _is_arrow_string(values.dtype) and column.chunks is not None:
                self._add_chunk(name, column, values)
            else:
                column = self._fit(name, column, values.dtype, at, values)
                dtype = column.buffer.dtype
                na = {"na_value": np.nan} if dtype.kind in "fO" else {}  # Arrow strings' NA: NaN
                column.buffer[at : at + count] = values.to_numpy(dtype=dtype, **na)
        column.last = at + count - 1

    def _new_column(self, values: pd.Series, at: int) -> _Column:
        """A column first seen at row ``at``: earlier rows are missing."""
        dtype = values.dtype
        if _is_arrow_string(dtype):
            import pyarrow as pa

            return _Column(chunks=[pa.nulls(at, pa.large_string())], dtype=dtype)
        if at == self.start and isinstance(dtype, np.dtype):
            return _Column(np.empty(len(self.index), dtype))
        exact = _is_number(dtype) and (dtype.kind == "f" or _exact_as_float(values.to_numpy()))
        return _Column(_missing_buffer(len(self.index), float if exact else object))

    def _fit(
        self, name: str, column: _Column, dtype: Any, at: int, values: pd.Series | None = None
    ) -> _Column:
        """The column, its buffer converted where ``dtype`` (of ``values``) does not fit in it."""
        current = column.dtype
        if column.buffer is not None and current == dtype:
            return column
        if _is_number(current) and _is_number(dtype):
            target = np.result_type(current, dtype)
            integers = [column.buffer[self.start : at]] if current.kind in "iu" else []
            if values is not None and dtype.kind in "iu":
                integers.append(values.to_numpy())
            if target.kind == "f" and not all(_exact_as_float(v) for v in integers):
                target = np.dtype(object)  # ids beyond 2**53 would be rounded as floats
        else:
            target = np.dtype(object)
        if target == current:
            return column
        if column.buffer is not None:
            buffer = column.buffer.astype(target)
        else:  # Arrow strings -> objects
            buffer = np.empty(len(self.index), object)
            buffer[self.start : at] = self._strings(column, self.start, at).to_numpy(dtype=object)
        column, column.last = _Column(buffer), column.last
        return self._keep(name, column)

    def _fill_missing(self, name: str, column: _Column, at: int, count: int) -> _Column:
        """Missing values in rows ``at`` to ``at + count``; returns the (maybe converted) column."""
        if column.chunks is not None:
            import pyarrow as pa

            self._add_chunk(name, column, pa.nulls(count, pa.large_string()))
            return column
        if column.dtype.kind not in "fO":  # integers and booleans cannot hold NaN
            column = self._fit(name, column, np.dtype(float if column.dtype.kind in "iu" else object), at)
        column.buffer[at : at + count] = np.nan
        return column

    def _add_chunk(self, name: str, column: _Column, values: Any) -> None:
        import pyarrow as pa

        if isinstance(values, pd.Series):
            values = pa.array(values, type=pa.large_string())
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if not self._committing:
            self.scratch[name] = chunks
            return
        column.chunks.extend(chunks)
        if len(column.chunks) > MAX_STRING_CHUNKS:  # a long list costs every frame: merge it
            column.chunks = [pa.chunked_array(column.chunks, type=pa.large_string()).combine_chunks()]

    def _strings(self, column: _Column, lo: int, hi: int, scratch: Any = None) -> pd.Series:
        import pyarrow as pa

        chunks = column.chunks if scratch is None else [*column.chunks, *scratch]
        values = pa.chunked_array(chunks, type=pa.large_string()).slice(lo, hi - lo)
        try:
            array = pd.arrays.ArrowStringArray(values, dtype=column.dtype)
        except TypeError:  # pandas < 3 has no dtype argument (and only one Arrow string dtype)
            array = pd.arrays.ArrowStringArray(values)
        return pd.Series(array, index=pd.RangeIndex(lo, hi), copy=False)

    def frame(self, lo: int, hi: int) -> pd.DataFrame:
        """A DataFrame of views of rows ``lo`` to ``hi`` (``hi`` may reach into unsealed rows)."""
        columns = {}
        scratch_columns = self.scratch_columns if hi > self.stop else {}
        for name in [*self.columns, *(n for n in scratch_columns if n not in self.columns)]:
            column = scratch_columns.get(name) or self.columns[name]
            if column.last < lo:
                continue
            if column.anchor is not None:
                columns[name] = column.anchor.iloc[lo:hi]
            else:
                scratch = self.scratch.get(name) if hi > self.stop else None
                columns[name] = self._strings(column, lo, hi, scratch)
        frame = pd.DataFrame(columns, index=pd.RangeIndex(lo, hi), copy=False)
        frame.index = self.index[lo:hi]
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
        self._sealed_bytes = 0  # bytes_received of the sealed chunks (the open one is counted when asked)
        self.parse_errors = 0
        self._lock = threading.Lock()
        # The open chunk, appended to by the loop thread only.
        self._first_seq = 0
        self._data: list = []
        self._times: list[int] = []
        self._values: list = []
        self._python_parsed = 0  # messages of the open chunk that orjson refused and json read
        # Sealed chunks' payloads; popped from the left when max_rows is exceeded.
        self._sealed: deque[_Sealed] = deque()
        self._sealed_messages = 0
        # Sealed rows waiting to move into the frame's buffers (readers move them).
        self._pending: deque[_Rows] = deque()
        self._pending_rows = 0
        self._pending_dropped = False  # max_rows dropped pending rows: the buffers are stale
        self._reader = _JSONReader()
        # The frame's buffers and the last frame built; readers hold _read_lock to use them.
        self._read_lock = threading.Lock()
        self._buffer = _FrameBuffer(max_rows)
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
                    self._python_parsed += 1
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
        size = _size(data)
        rows = self._rows(data, times, values, arrow=not self._python_parsed)
        sealed = _Sealed(self._first_seq, data, times)
        with self._lock:
            self._data, self._times, self._values = [], [], []
            self._python_parsed = 0
            self._sealed_bytes += size
            self._first_seq += len(data)
            self._sealed.append(sealed)
            self._sealed_messages += len(data)
            if rows is not None:
                self._pending.append(rows)
                self._pending_rows += len(rows)
            self._trim()
        # Keep the sealed Tables few: move them into the buffers now and then, unless a reader
        # is doing it right now (it moves them all).
        if self._pending_rows >= BATCH_ROWS and self._read_lock.acquire(blocking=False):
            try:
                with self._lock:
                    pending = self._take_pending()
                self._absorb(*pending)
            finally:
                self._read_lock.release()

    def _rows(self, data: list, times: list[int], values: list, arrow: bool) -> _Rows | None:
        """A chunk's rows: Arrow's reader on the raw text where every message is an object
        (and ``arrow``), else the parsed values through ``flatten``.

        ``arrow`` is False when a message needed Python's json: orjson bounds nesting at 1,024
        levels, Python's json at its stack, and Arrow's reader crashes on 100,000.
        """
        if arrow and all(v.__class__ is dict for v in values):
            table = self._reader.read(data)
            if table is not None:
                return _Rows(table, times)
        rows, row_times = _split_rows(times, values)
        return _Rows(flatten(rows), row_times) if rows else None

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
        with self._lock:
            sealed, data = self._sealed_bytes, self._data[: len(self._values)]
        return sealed + _size(data)

    def _open_chunk(self) -> tuple[int, list, list[int], list]:
        """A consistent copy of the open chunk; call with the lock held."""
        n = len(self._values)  # appended last, so data and times hold at least n items
        return self._first_seq, self._data[:n], self._times[:n], self._values[:n]

    def _open_rows(self) -> tuple[list, list[int], list, bool]:
        """The open chunk's data, times and values, and whether Arrow may read it (hold _lock)."""
        _, data, times, values = self._open_chunk()
        return data, times, values, not self._python_parsed

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
        """The last ``n`` rows of the frame (cheap at any size)."""
        with self._read_lock:
            _, result = self._view(n if self.max_rows is None else min(n, self.max_rows))
        return _snapshot(result)

    def _take_pending(self) -> tuple[list[_Rows], bool]:
        """The sealed rows not in the buffers yet, and whether rows were dropped before them
        (hold _lock)."""
        pending, self._pending, self._pending_rows = list(self._pending), deque(), 0
        stale, self._pending_dropped = self._pending_dropped, False
        return pending, stale

    def _absorb(self, pending: list[_Rows], stale: bool) -> None:
        """Move sealed rows into the frame's buffers (hold _read_lock)."""
        if stale:  # max_rows dropped rows between the buffers' rows and these: start afresh
            self._buffer = _FrameBuffer(self.max_rows)
        buffer = self._buffer
        batches = _batches(pending)
        del pending
        while batches:  # each batch's Tables are freed once in the buffers (a lower peak)
            buffer.append(*_to_pandas(batches.pop(0)))
        if self.max_rows is not None:
            buffer.start = max(buffer.start, buffer.stop - self.max_rows)

    def _view(self, limit: int | None, use_cache: bool = False) -> tuple[int, pd.DataFrame]:
        """Move sealed rows into the buffers; a DataFrame of views of the last ``limit`` rows."""
        with self._lock:
            received = self.received
            if use_cache and self._cache is not None and self._cache[0] == received:
                return self._cache
            pending = self._take_pending()
            open_chunk = self._open_rows()
        self._absorb(*pending)
        buffer = self._buffer
        open_rows = self._rows(*open_chunk)
        if open_rows is None:
            buffer.append(pd.DataFrame(), np.empty(0, "int64"), commit=False)
            stop = buffer.stop
        else:
            buffer.append(*_to_pandas([open_rows]), commit=False)
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


def copy_on_write() -> bool:
    """Whether pandas copies on write here (always from pandas 3; an option before)."""
    return int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True


def _size(data: list) -> int:
    """The bytes of messages on the wire (counted per chunk, off the per-message path)."""
    return sum(
        len(d) if d.__class__ is bytes or d.isascii() else len(d.encode(errors="surrogatepass")) for d in data
    )


def _snapshot(frame: pd.DataFrame) -> pd.DataFrame:
    """The caller's own copy of a cached frame: shallow under copy-on-write, else deep."""
    return frame.copy(deep=not copy_on_write())


def to_datetime(time_ns: int) -> datetime:
    """A UTC datetime from nanoseconds since the epoch."""
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC)
