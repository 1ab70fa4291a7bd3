"""nbws.series: a live chart's points in the kernel (pure: rows in, float64 points out)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from nbws.series import DEFAULT_WINDOW, SeriesSet, Window, parse_window, thin

T0 = 1_764_581_400_000_000_000  # ns since the epoch


def rows(values, column="px", start_ns=T0, step_ns=1_000_000, **fields):
    """``(time_ns, row)`` pairs, one per value, a millisecond apart."""
    return [(start_ns + i * step_ns, {column: v, **fields}) for i, v in enumerate(values)]


def add_rows(chart, pairs):
    """Give ``chart`` rows as ``ws.rows_since`` does: times and the columns some row has."""
    names = dict.fromkeys(name for _, row in pairs for name in row)
    columns = {name: np.fromiter((row.get(name) for _, row in pairs), object, len(pairs)) for name in names}
    chart.add(np.array([t for t, _ in pairs], dtype=np.int64), columns)


def as_lists(points):
    return {p.key: (p.label, list(p.x), list(p.y)) for p in points}


@pytest.mark.parametrize(
    ("given", "window"),
    [
        (500, Window(points=500)),
        ("30s", Window(span_ms=30_000)),
        ("5min", Window(span_ms=300_000)),
        (" 1.5 h ", Window(span_ms=5_400_000)),
        ("250ms", Window(span_ms=250)),
        ("1d", Window(span_ms=86_400_000)),
        (timedelta(minutes=2), Window(span_ms=120_000)),
    ],
)
def test_a_window_is_a_point_count_or_a_time_span(given, window):
    assert parse_window(given) == window


@pytest.mark.parametrize("bad", [0, -5, True, 1.5, "", "5", "5 parsecs", "0s", timedelta(0), None])
def test_a_bad_window_says_what_is_accepted(bad):
    with pytest.raises(ValueError, match=r"window must be .*'5min'.*not "):
        parse_window(bad)


def test_numbers_and_numeric_strings_are_plotted_anything_else_skipped():
    chart = SeriesSet(["px"])
    values = [1, 2.5, "67000.10", True, None, "abc", float("nan"), "inf", {"a": 1}, [1], -3]
    add_rows(chart, rows(values))
    (points,) = chart.take_new()
    assert list(points.y) == [1.0, 2.5, 67000.1, -3.0]
    assert list(points.x) == [(T0 + i * 1_000_000) / 1e6 for i in (0, 1, 2, 10)]
    assert points.x.dtype == points.y.dtype == np.float64  # sent as binary buffers


def test_a_column_of_numbers_numeric_strings_and_gaps_is_plotted_booleans_still_skipped():
    """The values an open batch gives (Python objects): converted in one pass when they are all
    numbers, numeric strings or missing; booleans (0 and 1 to numpy) are still not plotted."""
    chart = SeriesSet(["px"])
    values = [1, 2.5, "67000.10", True, None, False, 0, float("nan"), 1.0, "-1"]
    add_rows(chart, rows(values))
    (points,) = chart.take_new()
    assert list(points.y) == [1.0, 2.5, 67000.1, 0.0, 1.0, -1.0]
    assert list(points.x) == [(T0 + i * 1_000_000) / 1e6 for i in (0, 1, 2, 6, 8, 9)]


def test_by_values_of_any_kind_make_one_series_each_in_order_of_appearance():
    chart = SeriesSet(["px"], by="s")
    by_values = ["A", ["x"], "A", None, 7.0, 7, ["x"], float("nan"), {"k": 1}, "A"]
    add_rows(chart, [(T0 + i, {"s": s, "px": i}) for i, s in enumerate(by_values)])
    new = as_lists(chart.take_new())
    assert list(new) == [("px", "A"), ("px", "['x']"), ("px", None), ("px", 7), ("px", "{'k': 1}")]
    assert [y for _, _, y in new.values()] == [[0, 2, 9], [1, 6], [3, 7], [4, 5], [8]]
    hashable = SeriesSet(["px"], by="s")  # (numpy groups these without a loop per row)
    add_rows(hashable, [(T0 + i, {"s": s, "px": i}) for i, s in enumerate(["B", None, 7.0, "B", 7, True, 1])])
    new = as_lists(hashable.take_new())
    assert list(new) == [("px", "B"), ("px", None), ("px", 7), ("px", True)]
    assert [y for _, _, y in new.values()] == [[0, 3], [1], [2, 4], [5, 6]]


def test_one_series_per_column_and_per_value_of_by_as_values_appear():
    chart = SeriesSet(["bid", "ask"], by="symbol")
    add_rows(chart, [(T0, {"symbol": "AAPL", "bid": 1, "ask": 2})])
    assert [p.label for p in chart.take_new()] == ["bid · AAPL", "ask · AAPL"]
    add_rows(chart, [(T0 + 1, {"symbol": "MSFT", "bid": 3, "ask": 4}), (T0 + 2, {"bid": 5})])
    new = as_lists(chart.take_new())
    assert [label for label, _, _ in new.values()] == ["bid · MSFT", "bid · (no symbol)", "ask · MSFT"]
    assert new[("bid", "MSFT")][2] == [3.0] and new[("bid", None)][2] == [5.0]
    one = SeriesSet(["px"], by="symbol")
    add_rows(one, [(T0, {"symbol": 7, "px": 1})])
    assert [p.label for p in one.take_new()] == ["7"]  # one column: the value alone


def test_take_new_gives_each_point_once_and_the_window_gives_all_kept():
    chart = SeriesSet(["px"])
    add_rows(chart, rows([1, 2, 3]))
    assert list(chart.take_new()[0].y) == [1, 2, 3]
    assert chart.take_new() == []  # nothing changed: nothing to send
    add_rows(chart, rows([4], start_ns=T0 + 3_000_000))
    assert list(chart.take_new()[0].y) == [4]
    add_rows(chart, rows([5], start_ns=T0 + 4_000_000))
    assert as_lists(chart.window_points())[("px", None)][2] == [1, 2, 3, 4, 5]
    assert chart.take_new() == []  # the window gave the 5 to every view already


def test_a_count_window_keeps_the_last_points_of_each_series():
    chart = SeriesSet(["px"], by="s", window=Window(points=3))
    add_rows(chart, rows(range(5), s="a") + rows(range(10, 12), s="b", start_ns=T0 + 10**9))
    assert {key: y for key, (_, _, y) in as_lists(chart.take_new()).items()} == {
        ("px", "a"): [2, 3, 4],  # more than the window arrived since the last take: its end
        ("px", "b"): [10, 11],
    }
    add_rows(chart, rows([5, 6], s="a", start_ns=T0 + 5_000_000))
    assert list(chart.take_new()[0].y) == [5, 6]
    assert as_lists(chart.window_points())[("px", "a")][2] == [4, 5, 6]


def test_a_span_window_keeps_what_is_that_recent():
    chart = SeriesSet(["px"], window=parse_window("10ms"))
    add_rows(chart, rows(range(30)))  # one a millisecond: 0..29 ms
    (points,) = chart.window_points()
    assert list(points.y) == list(range(19, 30))  # within 10 ms of the newest, both ends included


def test_the_kernel_holds_the_window_however_many_points_come():
    chart = SeriesSet(["px"], window=Window(points=1_000))
    for start in range(0, 100_000, 5_000):
        add_rows(chart, rows(range(start, start + 5_000), start_ns=T0 + start * 1_000_000))
        assert len(chart._series[("px", None)]) <= 1_000 + 1_000 // 4
    assert list(chart.window_points()[0].y) == list(range(99_000, 100_000))
    assert chart.points_held() == {"px": 1_000}


def test_the_default_window_is_ten_thousand_points():
    assert SeriesSet(["px"]).window == Window(points=DEFAULT_WINDOW) == Window(points=10_000)


def test_columns_not_seen_yet_are_missing_until_a_row_has_them():
    chart = SeriesSet(["px", "book.bid", "note"])
    assert chart.missing() == ["px", "book.bid", "note"]
    add_rows(chart, [(T0, {"px": 1, "note": "halted"})])  # seen, though not a number
    assert chart.missing() == ["book.bid"]
    with pytest.raises(ValueError, match="at least one column"):
        SeriesSet([])


def test_numeric_columns_from_the_frames_buffers_are_plotted_without_a_loop_per_value():
    chart = SeriesSet(["f", "i", "b"], by="s")
    times = np.arange(4, dtype=np.int64) + T0
    chart.add(
        times,
        {
            "f": np.array([1.5, np.nan, np.inf, 2.5]),  # NaN: missing in that row
            "i": np.array([1, 2, 3, 4], dtype=np.int64),
            "b": np.array([True, False, True, True]),  # booleans are not plotted
            "s": np.array([1.0, 1.0, np.nan, 2.0]),  # a by column of numbers, missing in one row
        },
    )
    new = {key: y for key, (_, _, y) in as_lists(chart.take_new()).items()}
    assert new == {("f", 1): [1.5], ("f", 2): [2.5], ("i", 1): [1, 2], ("i", None): [3], ("i", 2): [4]}
    assert chart.missing() == []  # b was seen: it is just not plotted


def test_thin_keeps_the_lowest_and_highest_of_each_run_in_order():
    x = np.arange(1_000, dtype=np.float64)
    y = np.sin(x / 50) * 10
    y[500] = 99.0  # a spike survives
    tx, ty = thin(x, y, 100)
    assert 50 <= len(tx) <= 102 and np.all(np.diff(tx) > 0)
    assert ty.max() == 99.0 and ty.min() == y.min()
    assert set(tx) <= set(x)  # real points only
    same_x, _ = thin(x[:80], y[:80], 100)
    assert len(same_x) == 80  # few enough: all of them


def test_thin_keeps_the_first_and_the_newest_point():
    """A thinned line still ends at the newest point (the chart's test at 20k msgs/s caught a
    run whose newest point was neither its lowest nor its highest)."""
    x = np.arange(1_001, dtype=np.float64)
    y = np.cos(x)  # the first and the last are neither their run's lowest nor its highest
    y[0], y[-1] = 0.5, 0.1
    tx, ty = thin(x, y, 100)
    assert (tx[0], ty[0]) == (0.0, 0.5) and (tx[-1], ty[-1]) == (1000.0, 0.1)


def test_take_new_and_the_window_may_be_thinned_and_say_what_is_kept():
    chart = SeriesSet(["px"], by="s", window=Window(points=5_000))
    add_rows(chart, rows(range(10_000), s="a") + rows(range(100), s="b", start_ns=T0 + 10**10))
    new = {p.key: p for p in chart.take_new(limit=1_000)}
    assert len(new[("px", "a")].x) <= 502 and len(new[("px", "b")].x) == 100  # 500 each at most
    assert new[("px", "a")].y.max() == 9_999 and new[("px", "a")].since == (T0 + 5_000 * 10**6) / 1e6
    window = {p.key: p for p in chart.window_points(limit=200)}
    assert len(window[("px", "a")].x) <= 102 and window[("px", "b")].since == (T0 + 10**10) / 1e6
    assert len(chart.window_points()[0].x) == 5_000  # the kernel keeps them all
