"""The archive's tables: the frame's rows as Arrow tables for Parquet, and back.

A table holds ``received_at`` (timestamp, ns, UTC) first, then the frame's columns under their
own (dotted) names: numbers, booleans and strings as such. A column holding anything else
(arrays such as an order book's levels, values of several types) is not stored on its own:
the table gets a ``_message`` column, each row's message as it was received (JSON text, typed
JSON where pyarrow has the type, so DuckDB reads ``_message->'$.b'``), and reading it back
takes such columns' values from there. Measured per order-book diff (two arrays of 20 pairs):
encoding each array again as JSON costs ~3 us, Arrow lists of lists ~5 us, taking the text
that arrived ~0.1 us; a book feed's whole per-message budget for archiving is ~3 us.

Tables of one file may disagree (a field that appears later, a type that widens): ``unify``
gives one schema, by the rules the frame follows (``nbws.framebuffer``): integers and floats
become floats unless an integer is beyond 2**53; any other mix is stored as JSON text, one
value per row (marked in the field's metadata), which costs more but happens only then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrowchunk import tables_frame
from .columns import EXACT_INT, unique_names
from .jsontext import dumps, loads
from .messagelog import VALUE_COLUMN, flat_row

__all__ = ["TIME_COLUMN", "rows_table", "not_json_table", "unify", "fit", "table_rows", "table_messages"]

TIME_COLUMN = "received_at"
TIME_TYPE = pa.timestamp("ns", tz="UTC")
MESSAGE_COLUMN = "_message"
NOT_JSON_COLUMNS = ("text", "binary")  # a message that is not JSON: in one, the other null
# Field metadata: the column holds JSON text; the frame's name of a column stored under another;
# the message column, with the names of the columns whose values are taken from it.
JSON_MARK = b"nbws.json"
NAME_KEY = b"nbws.name"
MESSAGE_KEY = b"nbws.columns"
ORDER_KEY = b"nbws.order"  # (on the message column: every column's frame name, in the frame's order)
HAS_JSON_TYPE = hasattr(pa, "json_")  # pyarrow >= 19
JSON_TYPE = pa.json_(pa.string()) if HAS_JSON_TYPE else pa.string()
_JSON = "json"  # the kind of a JSON column, for unify


def _time_array(times: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(times, dtype="int64")).cast(TIME_TYPE)


def _encode(value: Any) -> bytes:
    try:
        return dumps(value).encode()
    except TypeError:  # integers beyond 64 bits, which orjson refuses
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _json_array(values: list | np.ndarray, missing: np.ndarray) -> pa.Array:
    """JSON text of each value; a missing value (None, NaN) is null."""
    try:
        from orjson import dumps as orjson_dumps

        encoded = list(map(orjson_dumps, values))  # the usual case: one C loop
    except (ImportError, TypeError):
        encoded = list(map(_encode, values))
    return _json_storage(pa.array(encoded, type=pa.binary(), mask=missing).view(pa.string()))


def _is_json(field: pa.Field) -> bool:
    return bool(field.metadata) and JSON_MARK in field.metadata


def _plain_object_column(values: np.ndarray) -> pa.Array | None:
    """An object column of strings, booleans or 64-bit integers (and missing values) as such;
    None for any other.

    The first value present says which it may be, and Arrow checks the rest as it converts:
    it refuses other values (integers: it makes them floats), so a column of arrays costs one
    look, not a pass over every value (measured on mixed feeds: ~70 ns a row per column before).
    """
    first = next((v for v in values if v is not None and (v.__class__ is not float or v == v)), None)
    kind = first.__class__
    try:
        if kind is str:
            return pa.array(values, type=pa.large_string(), from_pandas=True)
        if kind is bool:
            return pa.array(values, type=pa.bool_(), from_pandas=True)
        if kind is int:
            array = pa.array(values, from_pandas=True)
            return array if array.type == pa.int64() else None
    except (OverflowError, pa.ArrowException):
        pass  # mixed kinds, or integers beyond int64
    return None


def _column_array(series: pd.Series) -> pa.Array:
    """A column that does not hold objects as Arrow, NaN as null (``pa.Array.from_pandas`` does
    the same at several times the cost per column: ~30 us against ~2 for Arrow strings)."""
    values = series.to_numpy() if isinstance(series.dtype, np.dtype) else series.array
    return pa.array(values, from_pandas=True)


def _json_storage(text: pa.Array) -> pa.Array:
    return pa.ExtensionArray.from_storage(JSON_TYPE, text) if HAS_JSON_TYPE else text


def rows_table(
    rows: pd.DataFrame | Mapping[str, pd.Series] | pa.Table, times: np.ndarray, texts: list[str] | None = None
) -> pa.Table:
    """The rows of a sealed batch (a DataFrame of the frame's rows or its columns by name, or an
    Arrow table from ``nbws.arrowchunk``), their arrival times (int64 ns) and, for a DataFrame,
    the text of each row's message, as an archive table: the message of each row that has a
    value in a column of other values (arrays, mixed types), null for the others. Without
    ``texts``, columns of other values are stored as JSON one value at a time."""
    is_table = isinstance(rows, pa.Table)
    if isinstance(rows, pd.DataFrame):
        rows = dict(rows.items())
    names = [*(rows.column_names if is_table else map(str, rows))]
    # A feed's own "received_at" or "_message" is stored as "received_at.1"... (renamed back on
    # reading), whatever else the batch holds, so that the same name means the same in every file.
    stored = unique_names([TIME_COLUMN, MESSAGE_COLUMN, *names])[2:]
    fields = [pa.field(TIME_COLUMN, TIME_TYPE)]
    arrays = [_time_array(times)]
    in_message = []
    has_other_values = None  # (per row: a value in one of in_message's columns)
    columns = rows.columns if is_table else rows.values()
    for name, as_name, column in zip(names, stored, columns):
        metadata = {} if name == as_name else {NAME_KEY: name.encode()}
        if is_table:
            array = column
        else:
            series = column
            array = _column_array(series) if series.dtype != object else None
            if array is None:
                values = series.to_numpy()
                array = _plain_object_column(values)
                if array is None and texts is not None:
                    in_message.append(name)
                    present = ~pd.isna(values)
                    has_other_values = present if has_other_values is None else has_other_values | present
                    continue
                if array is None:
                    array = _json_array(values, pd.isna(values))
                    metadata[JSON_MARK] = b"1"
        fields.append(pa.field(as_name, array.type, metadata=metadata or None))
        arrays.append(array)
    if in_message:
        # Only rows with such a value keep their message: on a feed of several shapes a
        # ticker's row is whole in the columns (writer, mixed feeds: 1.69 -> 1.51 us a row).
        text = _json_storage(pa.array(texts, type=pa.string(), mask=~has_other_values))
        metadata = {MESSAGE_KEY: json.dumps(in_message).encode(), ORDER_KEY: json.dumps(names).encode()}
        fields.append(pa.field(MESSAGE_COLUMN, text.type, metadata=metadata))
        arrays.append(text)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def not_json_table(times: list[int] | np.ndarray, data: list[str | bytes]) -> pa.Table:
    """Messages that are not JSON (binary, or text that does not parse): ``received_at``, then
    ``text`` or ``binary`` (the other null)."""
    kinds = set(map(type, data))
    if kinds == {bytes}:  # a binary feed: the usual case, without a loop in Python
        text, binary = pa.nulls(len(data), pa.large_string()), pa.array(data, type=pa.large_binary())
    elif kinds == {str}:
        text, binary = pa.array(data, type=pa.large_string()), pa.nulls(len(data), pa.large_binary())
    else:
        is_text = [d.__class__ is str for d in data]
        text = pa.array([d if t else None for d, t in zip(data, is_text)], type=pa.large_string())
        binary = pa.array([None if t else bytes(d) for d, t in zip(data, is_text)], type=pa.large_binary())
    arrays = [_time_array(times), text, binary]
    return pa.table(dict(zip([TIME_COLUMN, *NOT_JSON_COLUMNS], arrays)))


# -- one schema for the tables of a file ------------------------------------------------------


def _kind(field: pa.Field) -> Any:
    """What decides how columns of the same name combine: JSON, or the Arrow type."""
    if _is_json(field):
        return _JSON
    if field.metadata and MESSAGE_KEY in field.metadata:
        return MESSAGE_COLUMN
    if pa.types.is_string(field.type):
        return pa.large_string()
    return field.type


def _beyond_float(column: Any) -> bool:
    """Whether an integer column holds values float64 would round."""
    if not pa.types.is_integer(column.type) or not len(column):
        return False
    largest = pc.max(pc.abs(column)).as_py()
    return largest is not None and largest > EXACT_INT


def _target(name: str, fields: list[pa.Field], columns: list[Any]) -> pa.Field:
    kinds = {_kind(f) for f in fields} - {pa.null()}
    metadata = {}
    for field in fields:  # a renamed column's name; the message's columns, all of them
        if field.metadata and NAME_KEY in field.metadata:
            metadata[NAME_KEY] = field.metadata[NAME_KEY]
        for key in (MESSAGE_KEY, ORDER_KEY):
            if field.metadata and key in field.metadata:
                names = json.loads(metadata.get(key, b"[]")) + json.loads(field.metadata[key])
                metadata[key] = json.dumps(list(dict.fromkeys(names))).encode()
    if not kinds:
        return pa.field(name, pa.null(), metadata=metadata or None)
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is _JSON:
            return pa.field(name, JSON_TYPE, metadata={**metadata, JSON_MARK: b"1"})
        if MESSAGE_KEY in metadata:
            return pa.field(name, fields[0].type, metadata=metadata)
        types = {f.type for f in fields} - {pa.null()}
        kind = types.pop() if len(types) == 1 else kind  # (strings stay as they are unless mixed)
        return pa.field(name, kind, metadata=metadata or None)
    numbers = all(k is not _JSON and (pa.types.is_integer(k) or pa.types.is_floating(k)) for k in kinds)
    if numbers and not any(map(_beyond_float, columns)):
        return pa.field(name, pa.float64(), metadata=metadata or None)
    return pa.field(name, JSON_TYPE, metadata={**metadata, JSON_MARK: b"1"})


def _plain(column: Any) -> pa.Array:
    """One array of a column, JSON columns as their strings."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.storage if isinstance(column, pa.ExtensionArray) else column


def _as_json(column: Any) -> pa.Array:
    column = _plain(column)
    return _json_array(column.to_pylist(), column.is_null().to_numpy(zero_copy_only=False))


def _conform(column: Any, was: pa.Field, to: pa.Field, rows: int) -> Any:
    if column is None:
        return pa.nulls(rows, to.type)
    if _is_json(to):
        return column if _is_json(was) else _as_json(column)
    return column if column.type == to.type else column.cast(to.type)


def _same_columns(schema: pa.Schema, other: pa.Schema) -> bool:
    """Whether two schemas have the same columns (names and types), whatever their order."""
    types = dict(zip(other.names, other.types))
    return len(schema) == len(types) and all(types.get(f.name) == f.type for f in schema)


def unify(tables: list[pa.Table]) -> pa.Table:
    """The archive tables of one file as one table: every column of any, in the order they
    first appear, each with one type (see the module's docstring); missing values null."""
    first = tables[0].schema
    if all(t.schema.equals(first, check_metadata=True) for t in tables[1:]):
        return pa.concat_tables(tables)  # the usual case: one shape
    if all(_same_columns(t.schema, first) for t in tables[1:]):
        # Columns in another order (a feed of several shapes: chunks that began with another
        # shape): only the metadata is combined.
        schema = pa.schema(
            [
                _target(f.name, [t.schema.field(f.name) for t in tables], [t.column(f.name) for t in tables])
                if f.metadata
                else f
                for f in first
            ]
        )
        names = first.names
        return pa.concat_tables(
            [pa.Table.from_arrays([t.column(n) for n in names], schema=schema) for t in tables]
        )
    fields: dict[str, list[pa.Field]] = {}
    columns: dict[str, list[Any]] = {}
    for table in tables:
        for field, column in zip(table.schema, table.columns):
            fields.setdefault(field.name, []).append(field)
            columns.setdefault(field.name, []).append(column)
    schema = pa.schema([_target(name, fields[name], columns[name]) for name in fields])
    conformed = []
    for table in tables:
        arrays = []
        for field in schema:
            at = table.schema.get_field_index(field.name)
            was = table.schema.field(at) if at >= 0 else None
            arrays.append(_conform(table.column(at) if at >= 0 else None, was, field, table.num_rows))
        conformed.append(pa.Table.from_arrays(arrays, schema=schema))
    return pa.concat_tables(conformed)


def _kept_in_message(schema: pa.Schema) -> set[str]:
    """The frame's columns whose values a schema's rows keep only in their message."""
    at = schema.get_field_index(MESSAGE_COLUMN)
    metadata = schema.field(at).metadata if at >= 0 else None
    return set(json.loads(metadata[MESSAGE_KEY])) if metadata and MESSAGE_KEY in metadata else set()


def fit(table: pa.Table, schema: pa.Schema) -> pa.Table | None:
    """``table`` as rows of a file of ``schema`` (its columns in that order, types widened to
    it), or None if it does not fit: a new column, a wider type, or a field kept only in the
    message that the file does not list (a file's schema, metadata included, is fixed when the
    file is opened: read back, its rows would lack that field)."""
    if not _kept_in_message(table.schema) <= _kept_in_message(schema):
        return None
    fitted = unify([schema.empty_table(), table])
    if not fitted.schema.equals(schema):
        return None
    return pa.Table.from_arrays(fitted.columns, schema=schema)


# -- back to the frame's rows ---------------------------------------------------------------


def _decoded(column: Any) -> np.ndarray:
    """A JSON column's values (None where null) as an object array: arrays stay lists."""
    text = _plain(column).to_pylist()
    values = [None if t is None else loads(t) for t in text]
    return np.fromiter(values, object, len(values))


def _from_messages(column: Any, names: list[str], frame: pd.DataFrame) -> None:
    """Fill ``frame``'s columns ``names`` from the rows' messages (where a row has one)."""
    texts = _plain(column).to_pylist()
    filled = {}
    for name in names:
        values = np.full(len(texts), None, object)
        if name in frame:  # (rows of this file that had it as a plain value)
            values[:] = frame[name].to_numpy(dtype=object, na_value=None)
        filled[name] = values
    for i, text in enumerate(texts):
        if text is not None:
            value = loads(text)
            row = flat_row(value) if value.__class__ is dict else {VALUE_COLUMN: value}
            for name in names:
                filled[name][i] = row.get(name)
    for name in names:
        frame[name] = filled[name]


def table_rows(table: pa.Table) -> tuple[pd.DataFrame, np.ndarray]:
    """An archive table as the frame's rows (RangeIndex, the frame's names and values) and their
    arrival times (int64 ns)."""
    times = table.column(TIME_COLUMN).cast(pa.int64()).to_numpy()
    rest = table.drop_columns([TIME_COLUMN])
    message = next((f for f in rest.schema if f.metadata and MESSAGE_KEY in f.metadata), None)
    if message is not None:
        rest = rest.drop_columns([message.name])
    json_names = [f.name for f in rest.schema if _is_json(f)]
    plain = rest.drop_columns(json_names) if json_names else rest
    if plain.num_columns:
        frame = tables_frame([plain])
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(rest.num_rows))
    for name in json_names:
        frame[name] = _decoded(rest.column(name))
    frame = frame[[f.name for f in rest.schema]]
    renamed = {
        f.name: f.metadata[NAME_KEY].decode() for f in rest.schema if f.metadata and NAME_KEY in f.metadata
    }
    if renamed:
        frame.columns = [renamed.get(name, name) for name in frame.columns]
    if message is not None:
        _from_messages(table.column(message.name), json.loads(message.metadata[MESSAGE_KEY]), frame)
        order = [name for name in json.loads(message.metadata[ORDER_KEY]) if name in frame]
        frame = frame[order + [name for name in frame.columns if name not in set(order)]]
    return frame, times


def table_messages(table: pa.Table) -> pd.DataFrame:
    """A table of messages that are not JSON as a DataFrame indexed by ``received_at`` with one
    ``data`` column (str or bytes)."""
    text, binary = (table.column(name).to_pylist() for name in NOT_JSON_COLUMNS)
    data = list(map(lambda t, b: b if t is None else t, text, binary))
    index = pd.DatetimeIndex(table.column(TIME_COLUMN).cast(pa.int64()).to_numpy().view("M8[ns]"))
    index = index.tz_localize("UTC").rename(TIME_COLUMN)
    return pd.DataFrame({"data": np.fromiter(data, object, len(data))}, index=index)
