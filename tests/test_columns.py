"""nbws.columns: a chunk of parsed JSON objects as a DataFrame, values as the JSON has them."""

from __future__ import annotations

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st
from test_store import SETTINGS, json_objects

from nbws.columns import chunk_columns, chunk_frame, columns_frame, unique_names


def test_nested_objects_flatten_like_json_normalize():
    rows = [{"a": 1, "b": {"c": 2.5, "d": {"e": "x"}}}, {"a": 2, "b": {"c": 3.5, "d": {"e": "y"}}}]
    frame = chunk_frame(rows)
    assert list(frame.columns) == ["a", "b.c", "b.d.e"]
    pd.testing.assert_frame_equal(frame, pd.json_normalize(rows)[frame.columns], check_dtype=False)


def test_order_book_arrays_stay_python_lists_and_decimals_stay_strings():
    """[price, size] pairs as the JSON has them: lists of strings, not numbers or numpy arrays."""
    rows = [{"s": "BTC", "b": [["67000.10", "0.5"], ["66999.90", "1.25"]]}, {"s": "BTC", "b": []}]
    frame = chunk_frame(rows)
    assert frame["b"].iloc[0] == [["67000.10", "0.5"], ["66999.90", "1.25"]]
    assert type(frame["b"].iloc[0]) is list and frame["b"].iloc[1] == []
    assert frame["s"].tolist() == ["BTC", "BTC"]


def test_integers_beyond_2_53_stay_exact_where_a_missing_value_would_make_floats():
    big = 2**60 + 1
    frame = chunk_frame([{"id": big}, {}, {"id": 3}])
    assert frame["id"].dtype == object
    assert frame["id"].iloc[0] == big and pd.isna(frame["id"].iloc[1])
    assert chunk_frame([{"id": 1}, {}])["id"].dtype == "float64"  # small ones: floats, as pandas


def test_fields_that_come_and_go_are_missing_where_absent():
    frame = chunk_frame([{"a": 1}, {"b": "x"}, {"a": 2, "c": {"d": True}}])
    assert list(frame.columns) == ["a", "b", "c.d"]
    assert frame["a"].tolist()[::2] == [1, 2] and pd.isna(frame["a"].iloc[1])
    assert frame["c.d"].iloc[2] is True


def test_a_scalar_beside_objects_under_one_key_keeps_both():
    frame = chunk_frame([{"a": 5}, {"a": {"b": 1}}])
    assert list(frame.columns) == ["a", "a.b"]
    assert frame["a"].iloc[0] == 5 and frame["a.b"].iloc[1] == 1


def test_names_that_collide_get_suffixes():
    assert list(chunk_frame([{"a": {"b": 1}, "a.b": 2}]).columns) == ["a.b", "a.b.1"]
    assert unique_names(["x", "x", "x"]) == ["x", "x.1", "x.2"]


def test_nesting_deeper_than_the_recursion_limit_does_not_raise():
    row: dict = {"leaf": 1}
    for _ in range(1_500):
        row = {"k": row}
    frame = chunk_frame([row])
    assert frame.shape == (1, 1) and frame.iloc[0, 0] == 1


def test_rows_without_fields_are_rows():
    assert chunk_frame([{}, {}]).shape == (2, 0)


@SETTINGS
@given(rows=st.lists(json_objects(), max_size=8))
@example(rows=[{"a": "\ud800"}])
@example(rows=[{"\udc00": 1}])
@example(rows=[{"a": {}}])
def test_any_json_objects_give_one_row_each(rows):
    """chunk_frame never raises for a list of JSON objects, and gives one row per object."""
    frame = chunk_frame(rows)
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(rows)


@SETTINGS
@given(rows=st.lists(json_objects(), max_size=8))
@example(rows=[{"a": "\ud800", "b": {"c": [1]}}])
def test_the_columns_are_the_frames(rows):
    """chunk_columns gives the columns chunk_frame is made of, by name, in its order."""
    columns = chunk_columns(rows)
    frame = chunk_frame(rows)
    assert list(columns) == list(frame.columns)
    for name, series in columns.items():
        pd.testing.assert_series_equal(series, frame[name], check_names=False)
    pd.testing.assert_frame_equal(columns_frame(columns, len(rows)), frame)


def test_objects_in_a_few_rows_land_in_those_rows():
    """A nested level is built from the rows that have an object there, then spread."""
    rows = [{"x": 1}, {"x": 2, "m": {"v": "a", "f": [1]}}, {"x": 3}, {"m": {"v": "b"}}]
    frame = chunk_frame(rows)
    assert list(frame.columns) == ["x", "m.v", "m.f"]
    assert frame["m.v"].tolist()[1::2] == ["a", "b"] and frame["m.v"].isna().tolist()[::2] == [True, True]
    assert frame["m.f"].iloc[1] == [1] and frame["m.f"].isna().tolist() == [True, False, True, True]


def test_a_null_beside_objects_keeps_its_column_as_in_a_chunk_of_its_own():
    """Rows give the same columns whether they are converted together or apart."""
    assert list(chunk_frame([{"a": None}]).columns) == ["a"]
    together = chunk_frame([{"a": {"b": 1}}, {"a": None}])
    assert list(together.columns) == ["a", "a.b"] and together["a"].isna().all()
    assert list(chunk_frame([{"a": {"b": 1}}, {}]).columns) == ["a.b"]  # absent: no column
