"""nbws.store: the DataFrame and messages built from what a connection received."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

import nbws
from nbws.store import MessageStore, copy_on_write, flatten


def echo_all(demo, payloads, **kwargs) -> nbws.WebSocket:
    """Send payloads through the demo echo server and wait until all came back."""
    ws = nbws.connect(demo.url + "/echo", **kwargs).wait_open(5)
    for payload in payloads:
        ws.send(payload)
    deadline = time.monotonic() + 10
    while ws.stats["received"] < len(payloads):
        assert time.monotonic() < deadline, ws.stats
        time.sleep(0.01)
    return ws


def fill(store: MessageStore, payloads, start_ns: int = 1_700_000_000_000_000_000) -> None:
    for i, payload in enumerate(payloads):
        store.append(payload, start_ns + i * 1_000_000)


def test_frame_index_is_utc_received_at(demo):
    """The index is a tz-aware UTC DatetimeIndex named received_at, so resample just works."""
    ws = echo_all(demo, ['{"x": 1}', '{"x": 2}'])
    frame = ws.frame
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "received_at"
    assert str(frame.index.tz) == "UTC"
    assert frame.index.is_monotonic_increasing
    assert list(frame["x"]) == [1, 2]
    assert frame.resample("1s").x.sum().sum() == 3


def test_nested_objects_flatten_to_dotted_columns_and_own_fields_stay(demo):
    """Nested objects become book.bid/book.ask; a feed's own seq and ts stay its own columns."""
    messages = [
        json.dumps({"seq": 7, "ts": 1.5, "book": {"bid": 1.0, "ask": 2.0, "depth": {"levels": 3}}}),
        json.dumps({"seq": 8, "ts": 2.5, "book": {"bid": 1.1, "ask": 2.1, "depth": {"levels": 4}}}),
    ]
    frame = echo_all(demo, messages).frame
    assert list(frame.columns) == ["seq", "ts", "book.bid", "book.ask", "book.depth.levels"]
    assert list(frame["seq"]) == [7, 8]
    assert list(frame["book.depth.levels"]) == [3, 4]


def test_non_object_json_goes_in_value_column(demo):
    """JSON numbers, strings, arrays and null are rows with a value column."""
    frame = echo_all(demo, ["42", '"hello"', "[1, 2]", "null", '{"a": 1}']).frame
    assert len(frame) == 5
    assert frame["value"].iloc[0] == 42
    assert frame["value"].iloc[1] == "hello"
    assert frame["value"].iloc[2] == [1, 2]
    assert pd.isna(frame["value"].iloc[3])
    assert frame["a"].iloc[4] == 1


def test_non_json_and_binary_are_kept_and_counted(demo):
    """Non-JSON text and binary are not rows, but are in messages and counted."""
    ws = echo_all(demo, ['{"a": 1}', "not json", b"\x00\x01\x02", '{"a": 2}'])
    assert list(ws.frame["a"]) == [1, 2]
    assert [m.data for m in ws.messages] == ['{"a": 1}', "not json", b"\x00\x01\x02", '{"a": 2}']
    assert [m.seq for m in ws.messages] == [0, 1, 2, 3]
    assert ws.stats["parse_errors"] == 2
    assert ws.stats["received"] == 4


def test_schema_drift_keeps_earlier_rows(demo):
    """Columns that appear later are added; earlier rows get NaN, nothing is lost."""
    payloads = [json.dumps({"a": i}) for i in range(5)]
    payloads += [json.dumps({"a": i, "b": {"c": "new"}}) for i in range(5, 8)]
    payloads += [json.dumps({"a": "now a string"})]
    frame = echo_all(demo, payloads).frame
    assert len(frame) == 9
    assert list(frame.columns) == ["a", "b.c"]
    assert frame["b.c"].isna().sum() == 6
    assert list(frame["a"])[:8] == list(range(8))
    assert frame["a"].iloc[8] == "now a string"


def test_drift_across_chunks():
    """Chunks with different columns and types concatenate into one frame."""
    store = MessageStore(chunk_size=3)
    fill(store, ['{"a": 1}', '{"a": 2}', '{"a": 3}', '{"b": "x"}', '{"a": "s"}', '{"a": 4, "c": [1]}', "7"])
    frame = store.frame()
    assert len(frame) == 7
    assert list(frame.columns) == ["a", "b", "c", "value"]
    assert list(frame["a"].iloc[:3]) == [1, 2, 3]
    assert frame["b"].iloc[3] == "x"
    assert frame["a"].iloc[4] == "s"
    assert frame["c"].iloc[5] == [1]
    assert frame["value"].iloc[6] == 7


def test_frame_grows_across_seals_and_rollover():
    """Asked for between seals, the frame is always every retained row in order."""
    for max_rows in (None, 30):
        store = MessageStore(chunk_size=8, max_rows=max_rows)
        for i in range(100):
            store.append(json.dumps({"i": i}), i)
            if i % 7 == 0:
                expected = list(range(i + 1))[-(max_rows or 1000) :]
                assert store.frame()["i"].tolist() == expected


def test_chunk_boundaries_lose_nothing():
    """Every message lands in the frame once, whichever chunk it fell in."""
    store = MessageStore(chunk_size=4)
    fill(store, [json.dumps({"i": i}) for i in range(23)])
    assert list(store.frame()["i"]) == list(range(23))
    assert [m.seq for m in store.messages()] == list(range(23))
    assert store.event(10).json() == {"i": 10}
    assert store.event(23) is None


def test_frame_is_cached_until_the_next_message():
    """Asking twice without new messages gives equal frames without rebuilding."""
    store = MessageStore(chunk_size=4)
    fill(store, [json.dumps({"i": i}) for i in range(6)])
    first = store.frame()
    assert store._cache is not None
    cached = store._cache[1]
    second = store.frame()
    assert store._cache[1] is cached
    pd.testing.assert_frame_equal(first, second)
    fill(store, ['{"i": 6}'], start_ns=1_800_000_000_000_000_000)
    assert list(store.frame()["i"]) == list(range(7))


def test_caller_mutating_the_frame_does_not_change_the_store():
    """The frame is a snapshot: changing it leaves the next frame intact."""
    store = MessageStore()
    fill(store, ['{"a": 1}', '{"a": 2}'])
    frame = store.frame()
    frame["a"] = 0
    frame["extra"] = 1
    again = store.frame()
    again.loc[again.index[0], "a"] = 99  # in place, where copy-on-write is off (pandas 2)
    again.iloc[1, 0] = 98
    again = store.frame()
    assert list(again["a"]) == [1, 2]
    assert "extra" not in again.columns


def test_max_rows_keeps_the_newest_rows_and_messages(demo):
    """max_rows=N: the frame and messages hold the newest N."""
    ws = echo_all(demo, [json.dumps({"i": i}) for i in range(30)], max_rows=10)
    assert list(ws.frame["i"]) == list(range(20, 30))
    assert [m.seq for m in ws.messages] == list(range(20, 30))
    assert ws.stats["received"] == 30


def test_max_rows_bounds_memory_over_many_chunks():
    """With max_rows the store never retains more than about max_rows + 2 chunks."""
    store = MessageStore(max_rows=100, chunk_size=16)
    for i in range(5_000):
        store.append(json.dumps({"i": i}), i)
        assert store._sealed_messages <= 100 + 16
        assert store._pending_rows <= 100 + 16
    assert list(store.frame()["i"]) == list(range(4_900, 5_000))
    assert store.oldest_seq() == 4_900
    assert store.event(4_899) is None


def test_max_rows_with_only_non_json_messages_is_bounded():
    """Messages that are no rows still roll over."""
    store = MessageStore(max_rows=10, chunk_size=4)
    fill(store, ["x"] * 100)
    assert len(store.messages()) == 10
    assert store._sealed_messages <= 14
    assert len(store.frame()) == 0
    assert store.parse_errors == 100


def test_max_rows_must_be_positive():
    """max_rows=0 or a negative number is refused."""
    with pytest.raises(ValueError, match="positive integer"):
        MessageStore(max_rows=0)


def test_empty_frame_has_the_index_already():
    """Before any message the frame is empty but already has its UTC index."""
    frame = MessageStore().frame()
    assert len(frame) == 0
    assert frame.index.name == "received_at"
    assert str(frame.index.tz) == "UTC"


def test_json_that_orjson_refuses_still_parses():
    """NaN and integers wider than 64 bits (which Python servers send) are JSON rows too."""
    store = MessageStore()
    fill(store, ['{"x": NaN}', '{"big": 123456789012345678901234567890}'])
    frame = store.frame()
    assert store.parse_errors == 0
    assert len(frame) == 2
    assert frame["big"].iloc[1] == 123456789012345678901234567890


def test_flatten_matches_json_normalize():
    """The fast pyarrow path flattens like pandas.json_normalize."""
    rows = [{"a": 1, "b": {"c": 2.5, "d": {"e": "x"}}}, {"a": 2, "b": {"c": 3.5, "d": {"e": "y"}}}]
    fast = flatten(rows)
    slow = pd.json_normalize(rows)
    pd.testing.assert_frame_equal(fast, slow[fast.columns], check_dtype=False)


def test_empty_objects_are_rows():
    """{} is a row with no fields."""
    store = MessageStore()
    fill(store, ["{}", '{"a": 1}'])
    assert len(store.frame()) == 2


def test_rate_counts_recent_messages():
    """rate is messages per second over the recent window."""
    store = MessageStore()
    now = 1_700_000_010_000_000_000
    for i in range(100):  # 100 messages in the last second
        store.append("{}", now - 1_000_000_000 + i * 10_000_000)
    assert store.rate(now, window_s=5.0, since_ns=now - 1_000_000_000) == pytest.approx(100, rel=0.01)
    assert store.rate(now, window_s=5.0) == pytest.approx(20, rel=0.01)


def test_bytes_received_counts_utf8_bytes():
    """bytes_received counts encoded bytes, as on the wire."""
    store = MessageStore()
    fill(store, ['"é"', b"\x00\x01"])
    assert store.bytes_received == len('"é"'.encode()) + 2


def test_tail_is_the_end_of_the_frame():
    """tail(n) equals frame().tail(n), across chunk boundaries and drifting columns."""
    store = MessageStore(chunk_size=4)
    fill(store, [json.dumps({"i": i, **({"late": 1} if i > 8 else {})}) for i in range(11)])
    for n in (1, 3, 5, 11, 20):
        pd.testing.assert_frame_equal(store.tail(n), store.frame().tail(n), check_dtype=False)
    assert len(MessageStore().tail(5)) == 0


def test_arrow_reader_keeps_what_parsing_each_message_gives():
    """The fast Arrow reader of sealed chunks gives the values that parsing each message gives."""
    payloads = [
        '{"t": "2024-01-01T00:00:00Z", "d": "2024-01-02", "n": {"at": "2024-01-01T00:00:00.5+01:00"}}',
        '{"wide": 18446744073709551615, "neg": -9223372036854775808}',
        '{\n  "pretty": 1\n}',
        '{"x": 1} {"x": 2}',  # two objects in one message: not JSON
        " ",  # blank: not JSON
        '{"nan": NaN, "s": "a\\nb"}',
        '{"l": [1, 2.5], "e": {}}',
    ]
    for chunk_size in (1, len(payloads)):  # each message alone, and all in one chunk
        store = MessageStore(chunk_size=chunk_size)
        fill(store, payloads)
        frame = store.frame()
        assert store.parse_errors == 2
        assert len(frame) == 5
        assert frame["t"].iloc[0] == "2024-01-01T00:00:00Z"
        assert frame["d"].iloc[0] == "2024-01-02"
        assert frame["n.at"].iloc[0] == "2024-01-01T00:00:00.5+01:00"
        assert frame["wide"].iloc[1] == 18446744073709551615
        assert frame["neg"].iloc[1] == -9223372036854775808
        assert frame["pretty"].iloc[2] == 1
        assert pd.isna(frame["nan"].iloc[3]) and frame["s"].iloc[3] == "a\nb"
        assert frame["l"].iloc[4] == [1, 2.5]


def test_lone_surrogates_become_replacement_characters_in_the_frame():
    """JSON may escape a lone surrogate, which pandas 3's strings cannot hold: U+FFFD in the
    frame there, the message itself kept as received."""
    store = MessageStore(chunk_size=2)
    payload = '{"k\\ud800": "x\\udc00y"}'
    fill(store, [payload, payload, payload])
    frame = store.frame()
    pandas3 = int(pd.__version__.split(".")[0]) >= 3
    kept = "\ufffd" if pandas3 else chr(0xD800)  # pandas 2 keeps objects as they are
    assert list(frame.columns) == [f"k{kept}"]
    assert len(frame) == 3 and frame.iloc[0, 0] in ("x\ufffdy", f"x{chr(0xDC00)}y")
    assert [m.data for m in store.messages()] == [payload] * 3


def test_new_rows_do_not_copy_the_old_ones():
    """Asking again after new messages reuses the buffers of the rows already built (where
    pandas copies on write): the old rows are shared, not copied."""
    store = MessageStore(chunk_size=64)
    fill(store, [json.dumps({"x": i, "s": f"s{i}"}) for i in range(1_000)])
    first = store.frame()
    fill(
        store,
        [json.dumps({"x": i, "s": f"s{i}"}) for i in range(1_000, 1_100)],
        start_ns=1_800_000_000_000_000_000,
    )
    second = store.frame()
    assert list(second["x"]) == list(range(1_100))
    if copy_on_write():
        assert np.shares_memory(first["x"].to_numpy(), second["x"].to_numpy())
        assert np.shares_memory(first.index.asi8, second.index.asi8)


def test_writing_to_a_frame_or_its_columns_never_changes_the_store():
    """Frames share buffers with the store, yet a caller writing into one (or into a column
    kept after the frame is gone) changes only their copy."""
    store = MessageStore(chunk_size=4)
    fill(store, [json.dumps({"x": i, "s": "a"}) for i in range(10)])
    column = store.frame()["x"]  # the frame itself is gone at once
    column.iloc[0] = 99
    frame = store.frame()
    frame.iloc[1, 0] = 98
    frame.loc[frame.index[2], "s"] = "changed"
    fill(store, ['{"x": 10, "s": "a"}'], start_ns=1_800_000_000_000_000_000)
    again = store.frame()
    assert list(again["x"]) == list(range(11))
    assert set(again["s"]) == {"a"}


def test_frame_dtypes_follow_pandas_concat_rules():
    """Missing values turn integers into floats and booleans into objects; a column whose type
    changes becomes float (numbers) or object (anything else), as pd.concat does."""
    store = MessageStore(chunk_size=2)
    fill(store, ['{"i": 1, "b": true, "f": 1}', '{"i": 2, "b": false, "f": 2}', '{"f": 2.5}', '{"z": 1}'])
    frame = store.frame()
    assert frame["i"].dtype == "float64" and list(frame["i"].iloc[:2]) == [1.0, 2.0]
    assert frame["b"].dtype == object and list(frame["b"].iloc[:2]) == [True, False]
    assert frame["f"].dtype == "float64" and list(frame["f"].iloc[:3]) == [1.0, 2.0, 2.5]
    assert frame["z"].isna().sum() == 3


def test_deeply_nested_json_is_counted_not_fatal():
    """JSON nested deeper than Python parses is kept and counted as not JSON; nothing breaks."""
    store = MessageStore(chunk_size=2)
    deep = "[" * 5_000 + "]" * 5_000
    fill(store, ['{"a": 1}', deep, '{"a": 2}'])
    assert store.parse_errors == 1
    assert list(store.frame()["a"]) == [1, 2]
    assert store.messages()[1].data == deep
