"""nbws.arrowchunk: Arrow's JSON reader for chunks of scalars, and when it steps aside."""

from __future__ import annotations

import pandas as pd

from nbws.arrowchunk import ArrowChunkReader, tables_frame


def read(data: list[str]) -> pd.DataFrame | None:
    table = ArrowChunkReader().read(data)
    return None if table is None else tables_frame([table])


def test_chunks_with_arrays_or_non_objects_go_the_other_way():
    """Arrays would come back from Arrow one Python list at a time: those chunks use columns; so
    do chunks with a message that is not a JSON object, binary or too deep."""
    texts = ['{"a": 1}', '{"b": {"c": "x"}}']
    assert list(read(texts).columns) == ["a", "b.c"]
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000  # nesting JSON refuses; Arrow's reader crashes
    for odd in ('{"b": [["1.0", "2"]]}', "1", ' {"a": 1}', b'{"a": 1}', "{}\n{}", "", deep):
        for chunk in ([*texts, odd], [odd, *texts], [odd]):
            assert ArrowChunkReader().read(chunk) is None, odd


def test_iso_times_stay_strings_and_nested_objects_are_dotted_columns():
    frame = read(
        ['{"t": "2024-01-01T00:00:00Z", "d": "2024-01-02", "n": {"at": "2024-01-01T00:00:00.5+01:00"}}']
    )
    assert frame.to_dict("records") == [
        {"t": "2024-01-01T00:00:00Z", "d": "2024-01-02", "n.at": "2024-01-01T00:00:00.5+01:00"}
    ]


def test_a_field_read_as_a_time_once_is_a_string_in_later_chunks_too():
    reader = ArrowChunkReader()
    reader.read(['{"t": "2024-01-01"}'])
    assert tables_frame([reader.read(['{"t": "2024-01-02"}'])])["t"].iloc[0] == "2024-01-02"


def test_it_steps_aside_where_its_result_could_differ():
    assert read(['{"wide": 18446744073709551615}']) is None  # beyond int64
    assert read(['{"x": 1} {"x": 2}']) is None  # two objects in one message
    assert read(['{\n"pretty": 1\n}']) is None  # not one object per line
    assert read([""]) is None  # Arrow skips blank lines
    assert pd.isna(read(['{"nan": NaN}'])["nan"].iloc[0])  # as Python's json reads it


def test_ids_beyond_2_53_stay_exact_where_missing_values_would_make_floats():
    frame = read(['{"id": 1152921504606846977}', "{}"])
    assert frame["id"].dtype == object and frame["id"].iloc[0] == 2**60 + 1 and pd.isna(frame["id"].iloc[1])


def test_consecutive_tables_convert_together_in_the_first_ones_column_order():
    reader = ArrowChunkReader()
    first, second = reader.read(['{"a": 1, "b": "x"}']), reader.read(['{"b": "y", "a": 2}'])
    frame = tables_frame([first, second])
    assert list(frame.columns) == ["a", "b"] and frame.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
