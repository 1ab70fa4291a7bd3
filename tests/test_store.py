"""nbws.store: the DataFrame and messages built from what a connection received.

The second half states properties with hypothesis: whatever arrives, nothing raises, nothing
is lost, and the frame is what parsing each message gives.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nbws
import nbws.messagelog
from nbws.events import loads
from nbws.messagelog import parse_messages
from nbws.store import MessageStore, copy_on_write

pytestmark = pytest.mark.usefixtures("transport")  # every test, once per transport


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
    """NaN and integers wider than 64 bits (which Python servers send) are JSON rows too; the
    wide integers become floats, as JSON.parse makes them (and orjson)."""
    store = MessageStore()
    fill(store, ['{"x": NaN}', '{"big": 123456789012345678901234567890}'])
    frame = store.frame()
    assert store.parse_errors == 0
    assert len(frame) == 2
    assert frame["big"].iloc[1] == float(123456789012345678901234567890)


def test_an_archive_gets_the_columns_the_frame_was_made_of():
    """pandas makes a new Series each time a frame's column is asked for (~16 us each): the
    archive gets the columns themselves, by name in the frame's order, with the frame's values."""
    handed: list = []

    class Recorder:
        def add_rows(self, rows, times, texts=None):
            handed.append((rows, list(times), texts))

        def add_not_json(self, times, data):
            raise AssertionError(f"every message here is JSON: {data}")

    store = MessageStore(chunk_size=3)
    store.archive = Recorder()
    payloads = [json.dumps({"i": 1, "b": [1]}), json.dumps({"i": 2, "x": {"y": "z"}}), "[3]"]
    fill(store, payloads)
    store.seal_now()
    frame = store.frame()
    [(columns, times, texts)] = handed
    assert type(columns) is dict and list(columns) == list(frame.columns) == ["i", "b", "x.y", "value"]
    for name, series in columns.items():
        pd.testing.assert_series_equal(series, frame[name].reset_index(drop=True), check_names=False)
    assert times == frame.index.asi8.tolist() and texts == payloads


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


def test_bytes_received_is_right_when_asked_at_any_moment():
    """bytes_received counts each message once, however its calls interleave with chunk seals."""
    store = MessageStore(chunk_size=3)
    payloads = ['"é"', b"\x00\x01", "{}", '"ü"', "1", b"\xff"] * 3
    total = 0
    for i, payload in enumerate(payloads):
        store.append(payload, i)
        total += len(payload if isinstance(payload, bytes) else payload.encode())
        if i % 2:
            assert store.bytes_received == total
    assert store.bytes_received == total


def test_tail_is_the_end_of_the_frame():
    """tail(n) equals frame().tail(n), across chunk boundaries and drifting columns."""
    store = MessageStore(chunk_size=4)
    fill(store, [json.dumps({"i": i, **({"late": 1} if i > 8 else {})}) for i in range(11)])
    for n in (1, 3, 5, 11, 20):
        pd.testing.assert_frame_equal(store.tail(n), store.frame().tail(n), check_dtype=False)
    assert len(MessageStore().tail(5)) == 0


def test_sealed_chunks_keep_what_parsing_each_message_gives():
    """Sealed chunks give the values that parsing each message gives: ISO times stay strings,
    integers at the 64-bit edges stay exact, whatever the chunk holds besides."""
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


# Text that starts like a JSON object, with no array: what a chunk's text path (Arrow's reader)
# may be handed, JSON or not. Each must give the rows and counts parsing it on its own gives.
OBJECT_LIKE = [
    '{"a": 1,}',
    '{"a": 1} x',
    '{"a": 1}{"b": 2}',
    "{'a': 1}",
    '{"a": 01}',
    '{"a": 1.}',
    '{"a": .5}',
    '{"a": +1}',
    '{"a": "x\ty"}',
    '{"a": "x\x01"}',
    '{"a": "\\x41"}',
    '{"a": "\\ud800"}',
    '{"a": NaN}',
    '{"a": -Infinity}',
    '{"a": 1e999}',
    '{"a": tru}',
    "{a: 1}",
    '{"a": 1 /* c */}',
    '{"a": 1}\x00',
    '{"a": 1',
    '{"a" 1}',
    '{"a": 1}   ',
    '{"a": null, "a": 2}',
    '{"a": 1}\u2028',
    '{"a": 0x10}',
    '{"a": 18446744073709551616}',
    '{"a": -9223372036854775809}',
    '{"a": ' * 1_100 + "1" + "}" * 1_100,  # deeper than JSON may nest (not JSON here)
]


@pytest.mark.parametrize("counted_before_the_seal", [False, True])
@pytest.mark.parametrize("odd", OBJECT_LIKE)
def test_a_chunk_read_as_text_gives_what_parsing_each_message_gives(odd, counted_before_the_seal):
    """A sealed chunk of objects of scalars is read from its text, not parsed in Python; where
    one message is not JSON, or JSON that reader would read otherwise, the rows and the count of
    parse errors are those parsing each message gives (here: the open chunk's), also when the
    parse errors were counted before the chunk was sealed."""
    payloads = ['{"a": 1}', odd, '{"a": 2}']
    is_json = parse_messages([odd])[1] == 0
    opened = MessageStore(chunk_size=100)
    fill(opened, payloads)
    expected = opened.frame()
    sealed = MessageStore(chunk_size=3)
    fill(sealed, payloads[:2])
    if counted_before_the_seal:
        assert sealed.parse_errors == (0 if is_json else 1)
    fill(sealed, payloads[2:], start_ns=1_700_000_000_000_000_000 + 2_000_000)
    pd.testing.assert_frame_equal(sealed.frame(), expected)
    assert sealed.parse_errors == opened.parse_errors == (0 if is_json else 1)
    assert len(expected) == (3 if is_json else 2)


def test_a_chunk_of_objects_of_scalars_is_not_parsed_in_python(monkeypatch):
    """Arrow's reader takes its text: nothing parsed before, and the frame as parsing gives."""
    parsed: list = []
    loads = nbws.messagelog.fast_loads
    monkeypatch.setattr(nbws.messagelog, "fast_loads", lambda data: parsed.append(data) or loads(data))
    store = MessageStore(chunk_size=4)
    fill(store, [json.dumps({"i": i, "s": str(i), "n": {"t": "2024-01-01"}}) for i in range(8)])
    assert parsed == []
    frame = store.frame()
    assert parsed == [] and store.parse_errors == 0
    assert frame.to_dict("list") == {
        "i": list(range(8)),
        "s": [str(i) for i in range(8)],
        "n.t": ["2024-01-01"] * 8,
    }


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


# == properties (hypothesis) =====================================================================

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -----------------------------------------------------------------------------------
#
# Two kinds of input are known to break the store, so the strategies can leave them out, for
# variants of a test that check everything else still holds:
#   dots: keys containing dots, which can collide with flattened nested keys ({"a": {"b": 1}, "a.b": 2})
#   surrogates: JSON strings with lone surrogate escapes ("\ud800"), which json.loads accepts

# Integers JSON can hold: anything, with the 64-bit edges (int64, uint64) drawn often.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EDGE_INTS = [2**53, 2**53 + 1, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, INT64_MIN, INT64_MIN - 1, 10**30]
WIDE_INTS = st.integers() | st.integers(-(2**65), 2**65) | st.sampled_from(EDGE_INTS)
INT64S = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from([2**53 + 1, INT64_MAX, INT64_MIN])
SAFE_INTS = st.integers(-(2**53), 2**53)  # exact in a float64 too

# Keys: plain names that recur across messages (so one key's type varies), "value" and "seq" (the
# store's own column names), "" and, with dots, keys that flatten to the same name as nested ones.
PLAIN_KEYS = st.sampled_from(["a", "b", "c", "value", "seq", ""]) | st.text(
    alphabet=st.characters(exclude_characters="."), max_size=3
)
DOTTED_KEYS = st.sampled_from(["a.b", "b.c", ".", "a.", ".a", "a..b"]) | st.text(max_size=4)
LONE_SURROGATES = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=2)


def keys(dots: bool, surrogates: bool) -> st.SearchStrategy[str]:
    strategy = PLAIN_KEYS | DOTTED_KEYS if dots else PLAIN_KEYS
    return strategy | LONE_SURROGATES if surrogates else strategy


def scalars(surrogates: bool) -> st.SearchStrategy[object]:
    text = st.text(max_size=5) | LONE_SURROGATES if surrogates else st.text(max_size=5)
    return st.none() | st.booleans() | WIDE_INTS | st.floats() | text


def _nest(depth: int, leaf: object, key: str, as_list: bool) -> object:
    for _ in range(depth):
        leaf = [leaf] if as_list else {key: leaf}
    return leaf


def json_values(dots: bool = True, surrogates: bool = True) -> st.SearchStrategy[object]:
    """Any JSON value: scalars (NaN, infinities, wide integers), lists, objects (empty too), deep ones."""
    names = keys(dots, surrogates)
    tree = st.recursive(
        scalars(surrogates),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=3),
        max_leaves=12,
    )
    deep = st.builds(_nest, st.integers(1, 40), tree, names, st.booleans())
    return tree | deep


def json_objects(dots: bool = True, surrogates: bool = True) -> st.SearchStrategy[dict]:
    objects = st.dictionaries(keys(dots, surrogates), json_values(dots, surrogates), max_size=4)
    if not dots:
        return objects
    # Dotted keys next to nested objects that flatten to the same names, often enough to meet.
    small = st.integers() | st.text(max_size=2)
    colliding = st.fixed_dictionaries(
        {},
        optional={
            "a": st.dictionaries(st.sampled_from(["b", "c"]), small, max_size=2) | small,
            "a.b": small,
            "a.c": small,
            "b": small,
        },
    )
    return objects | colliding


def _dumps(value: object, ascii_only: bool) -> str:
    text = json.dumps(value, ensure_ascii=ascii_only)  # NaN and Infinity too, as Python servers send
    try:
        text.encode()
    except UnicodeEncodeError:  # a text frame is UTF-8: lone surrogates can only arrive escaped
        text = json.dumps(value)
    return text


def dumped(values: st.SearchStrategy[object]) -> st.SearchStrategy[str]:
    return st.builds(_dumps, values, st.booleans())


# Text that is JSON only to Python's json module, JSON with odd whitespace, and near-JSON.
EDGE_TEXTS = [
    "NaN",
    "-Infinity",
    "1e400",
    "-0",
    " 1 ",
    "\n{}\t",
    "{}",
    "[]",
    '{"a": 1, "a": "x"}',
    "12345678901234567890123456789",
    '"\\u0000"',
    "true",
    "null",
    "",
    " ",
    "nul",
    "{",
    '{"a": 1}x',
    "NaNa",
]
# Small messages in a few shapes, so that one field's type changes between chunks often.
SHAPES = st.sampled_from(
    ["true", "false", "0", "1", "1.5", '"x"', "null", "{}", "[]", "[1]"]
    + ['{"a": ' + v + "}" for v in ["true", "1", "1.5", '"x"', "null", "{}", "[]", '{"b": 1}']]
)
DOTTED_EDGE_TEXTS = ['{"a": {"b": 1}, "a.b": 2}', '{"a.b": 1}']
SURROGATE_EDGE_TEXTS = ['"\\ud800"', '{"\\udc00": 1}', '["\\udfff\\ud800"]']


def has_lone_surrogates(data: str | bytes) -> bool:
    """Whether the message is JSON holding a string that is not valid Unicode (a lone surrogate)."""
    if not is_json(data):
        return False
    try:
        json.dumps(json.loads(data), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def messages(dots: bool = True, surrogates: bool = True) -> st.SearchStrategy[str | bytes]:
    """A message as a WebSocket delivers it: JSON text (mostly objects), other text, or bytes."""
    edge = EDGE_TEXTS + (DOTTED_EDGE_TEXTS if dots else []) + (SURROGATE_EDGE_TEXTS if surrogates else [])
    strategy = st.one_of(
        dumped(json_objects(dots, surrogates)),
        dumped(json_values(dots, surrogates)),
        SHAPES,
        st.text(max_size=8),
        st.sampled_from(edge),
        st.binary(max_size=8),
        st.sampled_from([b"{}", b"1", b""]),
    )
    return strategy if surrogates else strategy.filter(lambda data: not has_lone_surrogates(data))


@st.composite
def feeds(draw, message: st.SearchStrategy[str | bytes], max_size: int = 25):
    """Messages with non-decreasing receive times (ties included) across the whole int64 ns range."""
    data = draw(st.lists(message, max_size=max_size))
    times = draw(
        st.lists(
            st.integers(0, INT64_MAX) | st.sampled_from([0, 1, INT64_MAX]),
            min_size=len(data),
            max_size=len(data),
        )
    )
    return data, sorted(times)


CHUNK_SIZES = st.integers(1, 7)
MAX_ROWS = st.none() | st.integers(1, 12)
CALLS = st.lists(st.booleans(), min_size=40, max_size=40)  # frame() after message i, or not

# -- helpers --------------------------------------------------------------------------------------


def is_json(data: str | bytes) -> bool:
    """The oracle: text that Python's json module parses (NaN, Infinity allowed); never bytes."""
    if isinstance(data, bytes):
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def is_object(data: str | bytes) -> bool:
    return is_json(data) and isinstance(json.loads(data), dict)


def feed_store(store: MessageStore, data: list, times: list[int], calls: list[bool] | None = None) -> None:
    for i, (payload, time_ns) in enumerate(zip(data, times)):
        store.append(payload, time_ns)
        if calls is not None and calls[i]:
            store.frame()


def index_ns(frame: pd.DataFrame) -> list[int]:
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "received_at"
    assert str(frame.index.tz) == "UTC"
    return frame.index.as_unit("ns").asi8.tolist()


def canonical(value: object) -> object:
    """A value with its type, comparable with == also where NaN sits inside lists and dicts."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return (type(value).__name__, [canonical(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(k, canonical(v)) for k, v in value.items()])
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return (type(value).__name__, "nan")
    return (type(value).__name__, value)


def assert_same_frame(left: pd.DataFrame, right: pd.DataFrame, check_dtype: bool = True) -> None:
    """assert_frame_equal (column order included), then every cell exactly, NaN in lists too.

    The dtype of ``frame.columns`` (object or pandas 3's str) is not compared: it depends on
    how pandas built the frame and users do not see it.
    """
    pd.testing.assert_frame_equal(left, right, check_column_type=False, check_dtype=check_dtype)
    cell = canonical if check_dtype else _number_as_float
    for i in range(left.shape[1]):  # by position: column names need not be unique
        assert [cell(v) for v in left.iloc[:, i]] == [cell(v) for v in right.iloc[:, i]]


def _number_as_float(value: object) -> object:
    """canonical(), but an int and the float of it are the same (a column's type may be wider)."""
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return canonical(float(value)) if is_number and math.isfinite(value) else canonical(value)


def dotted_leaves(obj: dict, prefix: str = "") -> dict[str, object]:
    leaves: dict[str, object] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            leaves.update(dotted_leaves(value, prefix + key + "."))
        else:
            leaves[prefix + key] = value
    return leaves


def assert_cell_is(cell: object, expected: object) -> None:
    """The cell holds the value sent: NA for null/NaN/absent, true stays a bool, integers exact."""
    if isinstance(cell, np.generic):
        cell = cell.item()  # compare as Python does: an int with a float exactly, not via float64
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        assert pd.isna(cell), (cell, expected)
    elif isinstance(expected, bool):
        assert isinstance(cell, bool) and cell == expected, (cell, expected)
    elif isinstance(expected, int):
        assert not isinstance(cell, bool) and cell == expected, (cell, expected)
    else:
        assert cell == expected, (cell, expected)


def is_na(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def same_cell(left: object, right: object) -> bool:
    """Equal as JSON values: NA (None, NaN) equals NA, 1 equals 1.0, but true is not 1."""
    left, right = (v.item() if isinstance(v, np.generic) else v for v in (left, right))
    if is_na(left) or is_na(right):
        return is_na(left) and is_na(right)
    numbers = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)]
    return left == right if all(numbers) else canonical(left) == canonical(right)


ONLY_AFTER_FIRST = [True] + [False] * 39  # frame() after the first message only
ONLY_AFTER_SECOND = [False, True] + [False] * 38  # frame() after the second message only

# -- 1. whatever arrives: counts, messages, rows, index ------------------------------------------
#
# Three variants: any input; without lone surrogates; without those or dotted keys.
#
# Throughout, each @example is a minimal counterexample hypothesis found (against this store or an
# earlier one: those that pass now stay as regression checks). They run first, so a known failure
# fails at once instead of being searched for and shrunk again.


def check_counted_kept_and_rowed(payloads: list, times: list[int], chunk_size: int) -> None:
    store = MessageStore(chunk_size=chunk_size)
    feed_store(store, payloads, times)
    frame = store.frame()

    kept = store.messages()
    assert len(kept) == store.received == len(payloads)
    assert [m.data for m in kept] == payloads
    assert [type(m.data) for m in kept] == [type(d) for d in payloads]
    assert [m.seq for m in kept] == list(range(len(payloads)))

    json_times = [t for d, t in zip(payloads, times) if is_json(d)]
    assert len(frame) == len(json_times)
    assert store.parse_errors == len(payloads) - len(json_times)
    assert frame.index.is_monotonic_increasing
    assert index_ns(frame) == json_times


@SETTINGS
@given(feed=feeds(messages()), chunk_size=CHUNK_SIZES)
@example(feed=(['"\\ud800"'], [0]), chunk_size=1)
@example(feed=(["{}", "{}"], [0, 0]), chunk_size=1)
@example(feed=(['{"a": {"b": 1}, "a.b": 2}', "true"], [0, 0]), chunk_size=1)
@example(feed=(['{"a": [null, null]}'], [0]), chunk_size=7)
@example(feed=(['{"a": [null, "0"]}'], [0]), chunk_size=1)
def test_any_messages_are_counted_kept_and_rowed(feed, chunk_size):
    """Arbitrary JSON, text and bytes: all kept in order and counted; each JSON message is one row."""
    check_counted_kept_and_rowed(*feed, chunk_size)


# -- 2. frame() in between changes nothing --------------------------------------------------------
#
# Strict: assert_frame_equal without check_like. The frame is a function of the messages received,
# so the same messages must give the same frame, columns in the same (first-seen) order, however
# often it was asked for. Inputs that make frame() raise are left to test 1.

CLEAN = {"dots": False, "surrogates": False}


def check_frame_between_appends(feed, chunk_size, max_rows, calls) -> None:
    data, times = feed
    asked = MessageStore(max_rows=max_rows, chunk_size=chunk_size)
    feed_store(asked, data, times, calls)
    at_end = MessageStore(max_rows=max_rows, chunk_size=chunk_size)
    feed_store(at_end, data, times)
    left, right = asked.frame(), at_end.frame()
    if max_rows is not None:
        # Rows rolled over keep their mark: a column keeps its place (first seen since the store
        # started) and the widest type it needed (an int column that once needed NaN stays float).
        assert sorted(left.columns) == sorted(right.columns)
        right = right[list(left.columns)]
    assert_same_frame(left, right, check_dtype=max_rows is None)


@SETTINGS
@given(feed=feeds(messages(**CLEAN)), chunk_size=CHUNK_SIZES, max_rows=MAX_ROWS, calls=CALLS)
@example(feed=(["{}", "null", "{}"], [0, 0, 0]), chunk_size=1, max_rows=None, calls=ONLY_AFTER_SECOND)
@example(feed=(['{"a": 1}', '{"b": 1}'], [0, 0]), chunk_size=1, max_rows=1, calls=ONLY_AFTER_FIRST)
@example(feed=(["true", "1", '"x"'], [0, 0, 0]), chunk_size=1, max_rows=None, calls=ONLY_AFTER_SECOND)
def test_frame_between_appends_gives_the_same_final_frame(feed, chunk_size, max_rows, calls):
    """The final frame is identical whether frame() was also called between appends or not."""
    check_frame_between_appends(feed, chunk_size, max_rows, calls)


# -- 3. max_rows keeps the newest -----------------------------------------------------------------

KINDS = st.sampled_from(["object", "object", "object", "json", "text", "bytes"])


@st.composite
def numbered_feeds(draw, dots: bool, surrogates: bool) -> list[str | bytes]:
    """Object messages carry their own position as "seq"; the others are anything but objects."""
    data: list[str | bytes] = []
    for i, kind in enumerate(draw(st.lists(KINDS, max_size=40))):
        if kind == "object":
            extra = draw(json_objects(dots, surrogates))
            data.append(json.dumps({**extra, "seq": i}))
        elif kind == "json":
            data.append(draw(dumped(json_values(dots, surrogates)).filter(lambda d: not is_object(d))))
        elif kind == "text":  # JSON or not
            text = st.text(max_size=6) | st.sampled_from(EDGE_TEXTS) | SHAPES
            data.append(draw(text.filter(lambda d: not is_object(d))))
        else:
            data.append(draw(st.binary(max_size=6)))
    return data


@SETTINGS
@given(data=numbered_feeds(**CLEAN), chunk_size=CHUNK_SIZES, max_rows=st.integers(1, 12), calls=CALLS)
@example(
    data=['{"": {"seq": 5}, "a": 1, "seq": 0}', '{"a": "x", "seq": 1}'],
    chunk_size=2,
    max_rows=2,
    calls=[False] * 40,
)
def test_any_max_rows_keeps_the_newest_rows_and_messages(data, chunk_size, max_rows, calls):
    """max_rows=m: frame() is the newest m JSON messages, messages() the newest m messages."""
    times = [1_700_000_000_000_000_000 + i * 1_000 for i in range(len(data))]  # tell messages apart
    store = MessageStore(max_rows=max_rows, chunk_size=chunk_size)
    for i, (payload, time_ns) in enumerate(zip(data, times)):
        store.append(payload, time_ns)
        if not (calls[i] or i == len(data) - 1):
            continue
        seen = data[: i + 1]
        frame = store.frame()
        rows = [j for j, d in enumerate(seen) if is_json(d)][-max_rows:]
        assert len(frame) <= max_rows
        assert index_ns(frame) == [times[j] for j in rows]
        objects = [j for j in rows if is_object(seen[j])]
        if objects:
            assert frame["seq"].dropna().astype(int).tolist() == objects
        kept = store.messages()
        newest = range(max(0, len(seen) - max_rows), len(seen))
        assert [m.seq for m in kept] == list(newest)
        assert [m.data for m in kept] == [seen[j] for j in newest]
        assert store.received == len(seen)


# -- 4. values round-trip -------------------------------------------------------------------------

LEAF_TYPES = st.sampled_from(["int", "float", "str", "bool", "none"])
LEAF_KEYS = st.text(alphabet="abcxyz", min_size=1, max_size=2)
FLAT_SCHEMAS = st.dictionaries(LEAF_KEYS, LEAF_TYPES, min_size=1, max_size=5)
NESTED_SCHEMAS = st.recursive(
    FLAT_SCHEMAS,
    lambda children: st.dictionaries(LEAF_KEYS, LEAF_TYPES | children, min_size=1, max_size=3),
    max_leaves=8,
)
MIXED_SCHEMAS = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.just("any"), min_size=1, max_size=3)


def leaf_values(kind: str, ints: st.SearchStrategy[int]) -> st.SearchStrategy[object]:
    if kind == "any":  # the type is drawn per message: one key's type varies
        return st.one_of([leaf_values(k, ints) for k in ["int", "float", "str", "bool", "none"]])
    return {
        "int": ints,
        "float": st.floats(),  # NaN and infinities too
        "str": st.text(max_size=5),
        "bool": st.booleans(),
        "none": st.none(),
    }[kind]


@st.composite
def typed_objects(draw, schema: dict, ints: st.SearchStrategy[int], absent_keys: bool) -> dict:
    """An object following ``schema`` (one type per key); with ``absent_keys`` leaves may be left out."""
    obj = {}
    for key, kind in schema.items():
        if isinstance(kind, dict):
            value = draw(typed_objects(kind, ints, absent_keys))
            if value:
                obj[key] = value
        elif not absent_keys or draw(st.booleans()):
            obj[key] = draw(leaf_values(kind, ints))
    return obj


@st.composite
def typed_feeds(draw, schemas: st.SearchStrategy[dict], ints: st.SearchStrategy[int], absent_keys: bool):
    schema = draw(schemas)
    return draw(st.lists(typed_objects(schema, ints, absent_keys), min_size=1, max_size=20))


def check_round_trip(objects: list[dict], chunk_size: int, as_parsed: bool = False) -> None:
    """Each column is a dotted path to a scalar; each cell the value sent there (NA if absent),
    or with ``as_parsed`` the value JSON parsing gives (JSON.parse's: wide integers as floats)."""
    store = MessageStore(chunk_size=chunk_size)
    payloads = [json.dumps(obj) for obj in objects]
    feed_store(store, payloads, list(range(len(objects))))
    frame = store.frame()
    assert len(frame) == len(objects)
    rows = [dotted_leaves(loads(p) if as_parsed else obj) for p, obj in zip(payloads, objects)]
    assert frame.columns.is_unique
    assert set(frame.columns) == {path for row in rows for path in row}
    for r, row in enumerate(rows):
        for path in frame.columns:
            assert_cell_is(frame[path].iloc[r], row.get(path))


@SETTINGS
@given(objects=typed_feeds(FLAT_SCHEMAS, SAFE_INTS, absent_keys=True), chunk_size=CHUNK_SIZES)
@example(objects=[{}, {}], chunk_size=1)
def test_flat_objects_round_trip(objects, chunk_size):
    """Flat objects, one type per key, keys sometimes absent: each cell is the value sent (or NA).

    Integers here are those a float64 holds exactly (|i| <= 2**53); the tests below take the rest.
    """
    check_round_trip(objects, chunk_size)


@SETTINGS
@given(objects=typed_feeds(FLAT_SCHEMAS, INT64S, absent_keys=False), chunk_size=CHUNK_SIZES)
def test_flat_objects_round_trip_int64_when_every_key_is_present(objects, chunk_size):
    """Any int64, every key in every message: each cell is the value sent."""
    check_round_trip(objects, chunk_size)


@SETTINGS
@given(objects=typed_feeds(FLAT_SCHEMAS, INT64S, absent_keys=True), chunk_size=CHUNK_SIZES)
@example(objects=[{"a": 2**53 + 1}, {}], chunk_size=7)
def test_flat_objects_round_trip_int64_when_keys_are_absent(objects, chunk_size):
    """Any int64, keys sometimes absent: each cell is the value sent (or NA)."""
    check_round_trip(objects, chunk_size)


@SETTINGS
@given(objects=typed_feeds(FLAT_SCHEMAS, WIDE_INTS, absent_keys=False), chunk_size=CHUNK_SIZES)
@example(objects=[{"a": -(2**63) - 1}], chunk_size=1)
def test_flat_objects_round_trip_integers_wider_than_64_bits(objects, chunk_size):
    """Any integer: exact up to 64 bits (signed or not); wider ones are floats, as JSON.parse
    (and orjson) makes them; every key present."""
    check_round_trip(objects, chunk_size, as_parsed=True)


@SETTINGS
@given(objects=typed_feeds(MIXED_SCHEMAS, SAFE_INTS, absent_keys=True), chunk_size=CHUNK_SIZES)
@example(objects=[{"a": 0}, {"a": False}], chunk_size=1)
@example(objects=[{"a": 0.0}, {"a": False}], chunk_size=2)
def test_flat_objects_round_trip_when_a_keys_type_varies(objects, chunk_size):
    """One key's type varies across messages: each cell is still the value sent (false stays false)."""
    check_round_trip(objects, chunk_size)


@SETTINGS
@given(objects=typed_feeds(NESTED_SCHEMAS, SAFE_INTS, absent_keys=True), chunk_size=CHUNK_SIZES)
@example(objects=[{}, {}], chunk_size=1)
def test_nested_objects_round_trip_in_dotted_columns(objects, chunk_size):
    """Nested objects: column "a.b" holds obj["a"]["b"], for every path to a scalar."""
    check_round_trip(objects, chunk_size)


# -- extra: tail(n) -------------------------------------------------------------------------------

JSON_MESSAGES = messages(**CLEAN).filter(is_json)
TAIL_SIZES = st.integers(1, 8) | st.integers(1, 30)


def check_tail(feed, chunk_size: int, max_rows: int | None, n: int) -> None:
    """tail(n) has the rows of frame().tail(n); columns only older rows have may be left out."""
    payloads, times = feed
    store = MessageStore(max_rows=max_rows, chunk_size=chunk_size)
    feed_store(store, payloads, times)
    tail, end = store.tail(n), store.frame().tail(n)
    assert index_ns(tail) == index_ns(end)
    assert tail.columns.is_unique and set(tail.columns) <= set(end.columns)
    for name in end.columns:  # dtypes may differ (int64 / float64, None / NaN), values not
        values = tail[name].tolist() if name in tail.columns else [None] * len(tail)
        assert all(map(same_cell, values, end[name].tolist())), (name, values, end[name].tolist())


@SETTINGS
@given(feed=feeds(messages(**CLEAN)), chunk_size=CHUNK_SIZES, n=TAIL_SIZES)
@example(feed=(["{}", "x"], [0, 0]), chunk_size=7, n=1)
@example(feed=(['{"a": [null, null]}'], [0]), chunk_size=7, n=1)
def test_tail_is_the_end_of_any_frame(feed, chunk_size, n):
    """tail(n) is frame().tail(n), whatever messages arrived (JSON or not)."""
    check_tail(feed, chunk_size, None, n)


@SETTINGS
@given(feed=feeds(JSON_MESSAGES), chunk_size=CHUNK_SIZES, max_rows=st.integers(1, 12), n=TAIL_SIZES)
@example(feed=(["1", "2"], [0, 0]), chunk_size=2, max_rows=1, n=2)
def test_tail_is_the_end_of_the_frame_with_max_rows(feed, chunk_size, max_rows, n):
    """With max_rows, tail(n) is still frame().tail(n) (so never more than max_rows rows)."""
    check_tail(feed, chunk_size, max_rows, n)


@SETTINGS
@given(feed=feeds(JSON_MESSAGES), chunk_size=CHUNK_SIZES, n=TAIL_SIZES)
def test_tail_is_the_end_of_the_frame_of_json_messages(feed, chunk_size, n):
    """Only JSON messages, no max_rows: tail(n) is frame().tail(n)."""
    check_tail(feed, chunk_size, None, n)


def test_objects_become_columns_a_few_chunks_at_a_time_with_the_same_frame(monkeypatch):
    """Chunks that Arrow's reader does not take (arrays, non-JSON between) are converted
    OBJECT_BATCH_CHUNKS at a time: the frame holds what chunk-by-chunk conversion gives (nested
    fields first seen in a later chunk may take another place, as with another chunk_size), and
    is exactly the same when frames are asked for in between."""
    import nbws.store

    data = []
    for i in range(60):
        kind = i % 4
        if kind == 0:
            data.append(json.dumps({"type": "book", "b": [["1.0", str(i)]], "seq": 2**60 + i}))
        elif kind == 1:
            data.append(json.dumps({"type": "trade", "px": str(i), "meta": {"v": i, "f": [i]}}))
        elif kind == 2:
            data.append("not json" if i % 8 == 2 else json.dumps({"type": "hb", "note": None}))
        else:
            data.append(json.dumps({"type": "ticker", "px": i * 0.5, "meta": None}))
    times = list(range(len(data)))
    frames = []
    for batch_chunks, calls in ((1, None), (4, None), (4, [i % 7 == 0 for i in range(len(data))])):
        monkeypatch.setattr(nbws.store, "OBJECT_BATCH_CHUNKS", batch_chunks)
        store = MessageStore(chunk_size=3)
        feed_store(store, data, times, calls)
        frames.append(store.frame())
    assert len(frames[0]) == 60 - 8  # every message but the 8 that are not JSON
    assert frames[0]["seq"].dropna().iloc[-1] == 2**60 + 56  # exact, not rounded
    assert_same_frame(frames[0][frames[1].columns], frames[1])
    assert_same_frame(frames[1], frames[2])


@pytest.mark.parametrize("depth", [1_000, 1_024, 1_025, 100_000])
def test_deep_objects_never_crash_the_store(depth):
    """Objects nested up to 1,024 levels are rows, deeper ones are not JSON; beside a NaN (which
    sends them through Python's json) too. Run in a subprocess: Arrow's JSON reader crashes the
    process on 100,000 levels, so nbws must never hand it such a message."""
    import subprocess
    import sys

    code = f"""
import json
from nbws.store import MessageStore
deep = '{{"a":' * {depth} + '1' + '}}' * {depth}
with_nan = '{{"x": NaN, "d":' + deep + '}}'
for payloads in ([deep, '{{"b": 1}}'], [with_nan, '{{"b": 1}}'], [deep, '"not an object"']):
    for chunk_size in (1, 2, 3):
        store = MessageStore(chunk_size=chunk_size)
        for i, p in enumerate(payloads):
            store.append(p, i)
        print(len(store.frame()), store.parse_errors)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    results = [tuple(map(int, line.split())) for line in run.stdout.split("\n")[:-1]]
    assert len(results) == 9 and all(rows + errors == 2 for rows, errors in results)
    fits = depth <= 1_024
    assert [rows for rows, _ in results[:3]] == [2 if fits else 1] * 3
    assert [rows for rows, _ in results[6:]] == [2 if fits else 1] * 3
    # With NaN, Python's json parses it: it may stop earlier (its stack), never later.
    assert all(rows == 1 for rows, _ in results[3:6]) or depth + 1 <= 1_024


def test_order_books_become_columns_and_frames_without_garbage_collections(collections):
    """The parse and the columns of a batch of order books, at the seal and in ``frame()``, run
    with the collector paused (see ``nbws.collector``): at most the one collection after each."""
    store = MessageStore(chunk_size=1_000)
    book = json.dumps({"s": "BTCUSDT", "b": [["67000.00", "0.5"]] * 20, "a": [["67000.01", "0.2"]] * 20})
    fill(store, [book] * 1_999)
    collections.clear()
    fill(store, [book])  # the second seal: 2,000 books become columns
    assert len(collections) <= 1
    fill(store, [book] * 999)
    collections.clear()
    frame = store.frame()  # the open chunk's 999 books parsed and made columns
    assert len(collections) <= 1
    assert frame["b"].map(len).tolist() == [20] * 2_999


# -- rows_since: what a live chart reads ----------------------------------------------------------


def _plain(value):
    """A value as rows_since gives it, with its missing forms (None, NaN) as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


@SETTINGS
@given(
    data=numbered_feeds(**CLEAN),
    chunk_size=CHUNK_SIZES,
    max_rows=MAX_ROWS,
    reads=CALLS,
    frames=CALLS,
    limit=st.none() | st.integers(1, 6),
)
@example(
    data=['{"seq": 0}', "1", '{"seq": 2}'],
    chunk_size=1,
    max_rows=1,
    reads=[True] * 40,
    frames=[False] * 40,
    limit=None,
)
def test_rows_since_gives_each_new_row_once_in_order(data, chunk_size, max_rows, reads, frames, limit):
    """Reading after every few messages (frames asked for or not, rows rolled over or not) gives
    exactly the rows received since the last read that are still retained, with their values."""
    times = [1_700_000_000_000_000_000 + i * 1_000 for i in range(len(data))]
    store = MessageStore(max_rows=max_rows, chunk_size=chunk_size)
    position = read_up_to = 0  # JSON rows received when last read
    json_rows_seen: list[int] = []  # message index of each JSON row so far
    for i, (payload, time_ns) in enumerate(zip(data, times)):
        store.append(payload, time_ns)
        if is_json(payload):
            json_rows_seen.append(i)
        if frames[i]:
            store.frame()
        if not (reads[i] or i == len(data) - 1):
            continue
        new = store.rows_since(position, ["seq", "absent"], limit=limit)
        first = max(read_up_to, len(json_rows_seen) - (max_rows or len(json_rows_seen)))
        if limit is not None:
            first = max(first, len(json_rows_seen) - limit)
        expected = json_rows_seen[first:]
        assert new.times.tolist() == [times[j] for j in expected]
        assert "absent" not in new.columns
        seqs = [_plain(v) for v in new.columns.get("seq", [None] * len(expected))]
        assert seqs == [j if is_object(data[j]) else None for j in expected]
        position, read_up_to = new.position, len(json_rows_seen)


def test_rows_since_reads_dotted_columns_and_numeric_strings_without_parsing_again(monkeypatch):
    """Nested fields by their dotted names, sealed (Arrow's reader, objects' path) or not; each
    message is parsed at most once however often the rows are read."""
    parsed: list = []
    loads = nbws.messagelog.fast_loads
    monkeypatch.setattr(nbws.messagelog, "fast_loads", lambda data: parsed.append(data) or loads(data))
    store = MessageStore(chunk_size=4)
    ticks = [json.dumps({"s": "BTC", "p": f"{67000 + i}.5", "book": {"bid": i}}) for i in range(10)]
    books = [json.dumps({"s": "ETH", "book": {"bid": 100 + i, "levels": [[1, 2]]}}) for i in range(5)]
    fill(store, ticks + books)  # 2 chunks read by Arrow, 1 of objects (lists), 3 open messages
    first = store.rows_since(0, ["book.bid", "p", "book.levels", "s"])
    assert first.position == 15
    assert [_plain(v) for v in first.columns["book.bid"]] == [*range(10), *range(100, 105)]
    assert list(first.columns["p"][:2]) == ["67000.5", "67001.5"]
    assert [_plain(v) for v in first.columns["p"][10:]] == [None] * 5
    assert [_plain(v) for v in first.columns["book.levels"][10:]] == [[[1, 2]]] * 5
    assert first.columns["s"].tolist() == ["BTC"] * 10 + ["ETH"] * 5
    count = len(parsed)
    again = store.rows_since(first.position, ["book.bid"])
    assert again.position == 15 and len(again.times) == 0 and len(again.columns["book.bid"]) == 0
    store.append(books[0], 1_800_000_000_000_000_000)  # seals the chunk of books
    last = store.rows_since(again.position, ["book.bid"])
    assert last.times.tolist() == [1_800_000_000_000_000_000]
    assert last.columns["book.bid"].tolist() == [100]
    assert len(parsed) <= count + 1  # the new message, at most: nothing parsed twice
