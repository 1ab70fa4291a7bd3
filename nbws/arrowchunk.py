"""A sealed chunk through Arrow's JSON reader: the fast path for chunks of scalars.

Arrow's C++ reader parses the chunk's raw text straight into columns (nested objects flattened
into dotted columns), several times faster than parsing each message in Python and building
strings from the objects in pandas. It is used only where its result cannot differ from parsing
each message on its own, and only for chunks without arrays: Arrow would build list columns that
must come back into Python lists one by one, where ``nbws.columns`` (from the parsed values) is
many times faster.
Measured per 2,048-message chunk in ``benchmarks/run.py``'s shapes: tickers 1.4 ms here
against ~8 ms through pandas' string inference; order books 115 ms here against ~3 ms.
"""

from __future__ import annotations

import io
import threading
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .columns import EXACT_INT, unique_names
from .jsontext import MAX_DEPTH

__all__ = ["ArrowChunkReader", "tables_frame"]

# Arrow's reader makes integers too wide for int64 floats: a float this big may have been one.
_WIDE = float(2**63)


def _one_object_per_line(data: list) -> bytes | None:
    """The chunk's text for Arrow's reader, a message a line, or None where it does not suit: a
    binary message, one that does not start like a JSON object, an array in any (a ``[`` inside a
    string too: that chunk only takes the slower path), a line break or lone surrogate inside
    one, nesting deeper than JSON may (Arrow's reader would crash)."""
    try:
        text = "\n".join(data)
    except TypeError:  # a binary message
        return None
    if "[" in text or "\r" in text:  # (first: the cheapest way out for order books)
        return None
    if any(map(str.__contains__, data, repeat("\n"))) or not all(map(str.startswith, data, repeat("{"))):
        return None
    # A message nests at most as deep as it has braces, and has at most as many as characters.
    if max(map(len, data)) > MAX_DEPTH and max(map(str.count, data, repeat("{"))) > MAX_DEPTH:
        return None
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return None


def _flatten_structs(table: Any) -> Any:
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    if len(set(table.column_names)) < table.num_columns:
        table = table.rename_columns(unique_names(table.column_names))
    return table


def _with_strings_for_timestamps(type_: Any) -> Any:
    """``type_`` with every timestamp (Arrow's reader makes them of ISO date strings) a string."""
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(_with_strings_for_timestamps(f.type)) for f in type_])
    return type_


def _may_hold_wide_integers(table: Any) -> bool:
    for column in table.columns:
        if pa.types.is_floating(column.type) and len(column):
            largest = pc.max(pc.abs(column)).as_py()
            if largest is not None and largest >= _WIDE:
                return True
    return False


class ArrowChunkReader:
    """Arrow's JSON reader over a chunk's raw text. ``read`` answers None whenever its result
    could differ from parsing each message on its own (the caller then uses ``nbws.columns``):
    not one object per line, numbers too wide for int64, a type Arrow refuses. Date-like strings
    stay strings: the fields Arrow took for timestamps are read again as strings and remembered
    for the next chunks."""

    def __init__(self) -> None:
        # Read by the loop thread (sealing chunks); guarded all the same.
        self._string_fields: dict[str, Any] = {}
        self._fields_lock = threading.Lock()

    def read(self, data: list) -> Any:
        """The chunk (its messages' payloads) as a pyarrow Table, or None."""
        blob = _one_object_per_line(data)
        if blob is None:
            return None
        options = pa_json.ReadOptions(use_threads=False, block_size=len(blob) + 1)
        try:
            table = _flatten_structs(self._read(blob, options))
            table.validate(full=True)
            if table.num_rows != len(data) or _may_hold_wide_integers(table):
                return None
            return table
        except (pa.ArrowException, ValueError, RecursionError):  # RecursionError: types 1,000 deep
            return None

    def _read(self, blob: bytes, options: Any) -> Any:
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


def tables_frame(tables: list) -> pd.DataFrame:
    """One DataFrame of consecutive Tables with the same fields, names and types (in any order;
    the first's kept).

    Integer columns with missing values become floats, as in pandas, unless a value is beyond
    2**53: then they stay exact Python ints in an object column.
    """
    names = tables[0].column_names
    if not names:  # only {}: rows without fields (concat_tables would lose their count)
        return pd.DataFrame(index=pd.RangeIndex(sum(t.num_rows for t in tables)))
    table = tables[0] if len(tables) == 1 else pa.concat_tables([t.select(names) for t in tables])
    frame = table.to_pandas(split_blocks=True)
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_integer(field.type) and column.null_count:  # pandas makes these floats
            largest = pc.max(pc.abs(column)).as_py()
            if largest is not None and largest > EXACT_INT:
                values = np.empty(len(column), dtype=object)
                values[:] = column.to_pylist()
                frame[field.name] = values
    return frame
