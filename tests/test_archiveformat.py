"""nbws.archiveformat: the frame's rows as archive tables and back, without sockets or threads.

The reference for "back" is always the frame nbws itself builds from the same messages (a
MessageStore fed them), so these tests say: what the archive holds reads back as ws.frame.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbws.archiveformat import (
    MESSAGE_COLUMN,
    TIME_COLUMN,
    not_json_table,
    rows_table,
    table_messages,
    table_rows,
    unify,
)
from nbws.columns import chunk_frame
from nbws.framebuffer import FrameBuffer
from nbws.messagelog import json_rows, parse_messages
from nbws.store import MessageStore

T0 = 1_764_000_000_000_000_000


def frame_of(messages: list) -> pd.DataFrame:
    """ws.frame for these messages, as nbws builds it (one chunk at a time)."""
    store = MessageStore(chunk_size=len(messages))
    for i, message in enumerate(messages):
        store.append(json.dumps(message), T0 + i)
    return store.frame()


def through_parquet(table: pa.Table, tmp_path) -> pa.Table:
    pq.write_table(table, tmp_path / "t.parquet", compression="zstd")
    return pq.read_table(tmp_path / "t.parquet")


def read_back(tables: list[pa.Table], tmp_path) -> pd.DataFrame:
    """What nbws.read does with one file holding these tables."""
    frame, times = table_rows(through_parquet(unify(tables), tmp_path))
    buffer = FrameBuffer()
    buffer.append(frame, times)
    return buffer.frame(0, buffer.stop)


def tables_of(batches: list[list], with_texts: bool = True) -> list[pa.Table]:
    """Archive tables of batches of messages, as the store hands them over (parsed as nbws
    parses them; a value that is not an object is a row with a ``value`` column)."""
    tables, start = [], 0
    for batch in batches:
        texts = [json.dumps(m) for m in batch]
        rows, _ = json_rows(list(range(len(batch))), parse_messages(texts)[0])
        times = np.arange(start, start + len(batch), dtype="int64") + T0
        tables.append(rows_table(chunk_frame(rows), times, texts if with_texts else None))
        start += len(batch)
    return tables


BOOK = [
    {"e": "depthUpdate", "E": 1 + i, "b": [["100.1", "2"], ["100.0", "1"]], "a": [["100.2", "3"]], "s": "X"}
    for i in range(5)
]


@pytest.mark.parametrize("with_texts", [True, False], ids=["message column", "json per value"])
def test_order_books_read_back_as_the_frame_with_lists_and_column_order(tmp_path, with_texts):
    """Arrays stay Python lists, and a column of them keeps its place between plain columns."""
    back = read_back(tables_of([BOOK], with_texts), tmp_path)
    pd.testing.assert_frame_equal(back, frame_of(BOOK))
    assert list(back.columns) == ["e", "E", "b", "a", "s"]
    assert back["b"].iloc[0] == [["100.1", "2"], ["100.0", "1"]]


def test_arrays_are_kept_as_the_message_that_arrived_not_encoded_again(tmp_path):
    table = tables_of([BOOK])[0]
    assert MESSAGE_COLUMN in table.column_names and "b" not in table.column_names
    message = through_parquet(table, tmp_path).column(MESSAGE_COLUMN).to_pylist()
    assert [json.loads(str(text)) for text in message] == BOOK
    assert table.schema.field(TIME_COLUMN).type == pa.timestamp("ns", tz="UTC")


def test_on_a_feed_of_several_shapes_only_rows_with_arrays_keep_their_message(tmp_path):
    """A ticker's row is whole in the columns: its message is not written again."""
    ticker = {"type": "ticker", "price": "1.5", "seq": 7}
    mixed = [ticker, BOOK[0], {**ticker, "seq": 8}, {"type": "trade", "flags": [1], "note": None}]
    table = tables_of([mixed])[0]
    message = through_parquet(table, tmp_path).column(MESSAGE_COLUMN).to_pylist()
    assert [text is not None for text in message] == [False, True, False, True]
    pd.testing.assert_frame_equal(read_back([table], tmp_path), frame_of(mixed))


def test_a_frame_and_its_columns_by_name_give_the_same_table():
    """The store hands over the columns a frame was made of (pandas would make each again)."""
    mixed = [{"type": "ticker", "price": "1.5", "seq": 7}, BOOK[0], {"type": "trade", "flags": [1]}]
    texts = [json.dumps(m) for m in mixed]
    rows, _ = json_rows(list(range(len(mixed))), parse_messages(texts)[0])
    times = np.arange(len(mixed), dtype="int64") + T0
    frame = chunk_frame(rows)
    by_name = rows_table(dict(frame.items()), times, texts)
    assert by_name.equals(rows_table(frame, times, texts), check_metadata=True)
    assert by_name.column_names == [TIME_COLUMN, "type", "price", "seq", "e", "E", "s", MESSAGE_COLUMN]


def test_plain_values_are_stored_as_parquet_types_a_query_engine_reads():
    messages = [{"n": 1, "x": 1.5, "s": "a", "ok": True, "big": 2**60, "nested": {"v": 2}}] * 3
    schema = tables_of([messages])[0].schema
    types = {name: schema.field(name).type for name in schema.names}
    assert pa.types.is_integer(types["n"]) and pa.types.is_integer(types["big"])
    assert pa.types.is_floating(types["x"]) and pa.types.is_boolean(types["ok"])
    assert pa.types.is_large_string(types["s"]) and pa.types.is_integer(types["nested.v"])
    assert MESSAGE_COLUMN not in types


@pytest.mark.parametrize(
    "batches",
    [
        [[{"x": 1}, {"x": 2}], [{"x": 2.5}]],  # an integer column widens to float
        [[{"x": 1}], [{"x": "one"}]],  # a type that changes: objects, as in the frame
        [[{"x": 1}], [{"x": 2, "y": "late"}]],  # a field that appears later
        [[{"x": 1, "y": None}], [{"x": 2, "y": True}]],  # a column all null at first
        [[{"id": 2**60, "v": 1}], [{"v": 2}]],  # ids beyond 2**53 stay exact beside missing ones
        [[{"x": [1, 2]}], [{"x": 3}]],  # an array column, then a plain one
        [[{"x": 1}], [{"x": [1, "a", None, {"k": 1}]}]],  # a plain column, then arrays
        [[{"x": 1, "b": [1]}], [{"b": [2], "x": 2, "y": [3]}]],  # another order, a new array
        [[{"x": 1, "b": [1]}, {"s": "t"}], [{"s": "u"}, {"b": [2], "x": 2}]],  # another order
    ],
    ids=[
        "widens",
        "changes type",
        "appears later",
        "null first",
        "wide ids",
        "array then plain",
        "plain then array",
        "reordered with a new array",
        "reordered",
    ],
)
def test_tables_that_disagree_read_back_as_the_frame_of_all_their_rows(tmp_path, batches):
    expected = frame_of([m for batch in batches for m in batch])
    pd.testing.assert_frame_equal(read_back(tables_of(batches), tmp_path), expected)


@pytest.mark.parametrize(
    ("messages", "stored"),
    [
        ([{"x": True}, {}, {"x": False}], pa.bool_()),  # booleans with gaps
        ([{"x": 2**60}, {}, {"x": 1}], pa.int64()),  # exact ids with gaps
        ([{"x": "a"}, {"x": None}], pa.large_string()),
        # an exact id beside a float: neither alone (the array keeps the chunk from Arrow's
        # reader, which the store would give it to, and which makes the column float)
        ([{"x": 2**60, "b": [1]}, {"x": 2.0}], "json"),
        ([{"x": True}, {"x": 1}], "json"),
        ([{"x": 1}, {"x": True}, {"x": 2**60}], "json"),
        ([{"x": "a"}, {"x": True}], "json"),
        ([{"x": None}, {"x": [1]}, {"x": 2}], "json"),
    ],
    ids=["bools", "ids", "text", "id and float", "bool and int", "int and bool", "text and bool", "array"],
)
def test_a_column_of_one_kind_is_stored_as_its_type_and_a_mix_reads_back_exactly(tmp_path, messages, stored):
    """Object columns: one kind (and gaps) gets its Parquet type; a mix is kept value by value."""
    table = tables_of([messages], with_texts=False)[0]
    field = table.schema.field("x")
    if stored == "json":
        assert field.metadata and b"nbws.json" in field.metadata
    else:
        assert field.type == stored
    pd.testing.assert_frame_equal(read_back([table], tmp_path), frame_of(messages))


def test_values_that_are_not_objects_and_numbers_beyond_64_bits(tmp_path):
    """``1`` is a row with a ``value`` column; 2**70 is what parsing gives (a float, as in JS)."""
    messages = [1, {"n": 2**70, "b": [1]}, {"n": 1}, "text"]
    pd.testing.assert_frame_equal(read_back(tables_of([messages]), tmp_path), frame_of(messages))


def test_a_feeds_own_received_at_and_message_fields_keep_their_names(tmp_path):
    messages = [{"received_at": "yesterday", "_message": "hi", "b": [1]}]
    table = tables_of([messages])[0]
    assert table.column_names[0] == TIME_COLUMN
    pd.testing.assert_frame_equal(read_back([table], tmp_path), frame_of(messages))


def test_messages_that_are_not_json_read_back_as_text_or_bytes(tmp_path):
    table = through_parquet(not_json_table([T0, T0 + 1], ["not json", b"\x00\xff"]), tmp_path)
    back = table_messages(table)
    assert back["data"].tolist() == ["not json", b"\x00\xff"]
    assert back.index.name == TIME_COLUMN and str(back.index.tz) == "UTC"
    assert back.index[1].value == T0 + 1


def test_duckdb_reads_the_columns_the_times_and_the_messages_as_json(tmp_path):
    import duckdb

    pq.write_table(unify(tables_of([BOOK])), tmp_path / "book.parquet")
    con = duckdb.connect()
    kinds = dict(
        (row[0], row[1])
        for row in con.execute(f"DESCRIBE SELECT * FROM '{tmp_path}/book.parquet'").fetchall()
    )
    # (names are case-insensitive in DuckDB: Binance's "e" and "E" are read as e and E_1)
    assert kinds["E_1"] == "BIGINT" and kinds[MESSAGE_COLUMN] == "JSON"
    rows = con.execute(
        "SELECT epoch_ns(received_at), E_1, _message->'$.b'->0->>0 "
        f"FROM '{tmp_path}/book.parquet' ORDER BY E_1"
    ).fetchall()
    assert rows == [(T0 + i, i + 1, "100.1") for i in range(5)]  # (times to the nanosecond, UTC)
