"""The frame's rows in growable per-column buffers, so that a new frame costs only the new rows.

Numpy buffers for numbers, booleans and objects; Arrow chunks for pandas' Arrow-backed strings.
Frames handed out are views of the buffers (see ``Column``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .columns import EXACT_INT

__all__ = ["FrameBuffer", "INDEX_NAME", "index_of"]

INDEX_NAME = "received_at"
# Arrow string chunks a column keeps before merging them (each frame costs one step per chunk).
MAX_STRING_CHUNKS = 256


def index_of(times: list[int]) -> pd.DatetimeIndex:
    """The ``received_at`` index of rows that arrived at ``times`` (ns since the epoch)."""
    return pd.DatetimeIndex(np.asarray(times, dtype="M8[ns]"), name=INDEX_NAME).tz_localize("UTC")


def _exact_as_float(values: np.ndarray) -> bool:
    """Whether integers survive as float64 (up to 2**53; beyond, feeds' ids would be rounded)."""
    return not len(values) or int(np.abs(values).max()) <= EXACT_INT


def _is_arrow_string(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _is_number(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


class Column:
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


class FrameBuffer:
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
        self.columns: dict[str, Column] = {}
        self.scratch: dict[str, Any] = {}  # Arrow string chunks of the open chunk's rows
        self.scratch_columns: dict[str, Column] = {}  # columns the open chunk converted or added
        self._committing = True
        self.index = self._new_index(0)

    @staticmethod
    def _new_index(capacity: int) -> pd.DatetimeIndex:
        # Written in place through asi8 (a view of its data) where no frame handed out looks.
        return index_of([0] * capacity)

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
                column, column.last = Column(buffer), column.last
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

    def _keep(self, name: str, column: Column) -> Column:
        """Make ``column`` the one named ``name``: for good, or for the open chunk's rows only."""
        (self.columns if self._committing else self.scratch_columns)[name] = column
        return column

    def _put(self, name: str, values: pd.Series, at: int) -> None:
        count = len(values)
        column = self.columns.get(name)
        if values.isna().all():  # all null: no type to take from these rows
            if column is None:
                column = self._keep(name, Column(_missing_buffer(len(self.index))))
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

    def _new_column(self, values: pd.Series, at: int) -> Column:
        """A column first seen at row ``at``: earlier rows are missing."""
        dtype = values.dtype
        if _is_arrow_string(dtype):
            import pyarrow as pa

            return Column(chunks=[pa.nulls(at, pa.large_string())], dtype=dtype)
        if at == self.start and isinstance(dtype, np.dtype):
            return Column(np.empty(len(self.index), dtype))
        exact = _is_number(dtype) and (dtype.kind == "f" or _exact_as_float(values.to_numpy()))
        return Column(_missing_buffer(len(self.index), float if exact else object))

    def _fit(self, name: str, column: Column, dtype: Any, at: int, values: pd.Series | None = None) -> Column:
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
        column, column.last = Column(buffer), column.last
        return self._keep(name, column)

    def _fill_missing(self, name: str, column: Column, at: int, count: int) -> Column:
        """Missing values in rows ``at`` to ``at + count``; returns the (maybe converted) column."""
        if column.chunks is not None:
            import pyarrow as pa

            self._add_chunk(name, column, pa.nulls(count, pa.large_string()))
            return column
        if column.dtype.kind not in "fO":  # integers and booleans cannot hold NaN
            column = self._fit(name, column, np.dtype(float if column.dtype.kind in "iu" else object), at)
        column.buffer[at : at + count] = np.nan
        return column

    def _add_chunk(self, name: str, column: Column, values: Any) -> None:
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

    def _strings(self, column: Column, lo: int, hi: int, scratch: Any = None) -> pd.Series:
        import pyarrow as pa

        chunks = column.chunks if scratch is None else [*column.chunks, *scratch]
        values = pa.chunked_array(chunks, type=pa.large_string()).slice(lo, hi - lo)
        try:
            array = pd.arrays.ArrowStringArray(values, dtype=column.dtype)
        except TypeError:  # pandas < 3 has no dtype argument (and only one Arrow string dtype)
            array = pd.arrays.ArrowStringArray(values)
        return pd.Series(array, index=pd.RangeIndex(lo, hi), copy=False)

    def values(self, name: str, lo: int, hi: int) -> np.ndarray | None:
        """Column ``name`` of the committed rows ``lo`` to ``hi`` as a numpy array (a view where
        it can be; strings as objects, missing values NaN or None), None if there is no such
        column."""
        column = self.columns.get(name)
        if column is None:
            return None
        if column.buffer is not None:
            return column.buffer[lo:hi]
        import pyarrow as pa

        strings = pa.chunked_array(column.chunks, type=pa.large_string()).slice(lo, hi - lo)
        return strings.to_numpy(zero_copy_only=False)

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
