"""nbws.chart: the live chart widget, without a browser (its comm traffic recorded in-process).

Every message the chart hands its comm is recorded at ``Widget._send`` (the same in ipywidgets 7
and 8), so the tests see what would go on IOPub: trait updates and the binary point updates.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import orjson
import pytest

import nbws
import nbws.loop
from nbws import chart as chart_module

from kernel import Kernel
from recording import wait_for


class Traffic:
    """What a chart sent through its comm: (monotonic time, message, buffers) each."""

    def __init__(self, chart) -> None:
        self.sent: list[tuple[float, dict, list]] = []
        self._lock = threading.Lock()
        send = chart._send

        def recording(msg, buffers=None):
            with self._lock:
                self.sent.append((time.monotonic(), msg, [bytes(b) for b in buffers or []]))
            return send(msg, buffers)

        chart._send = recording

    def updates(self, kind: str = "points") -> list[tuple[float, dict, list]]:
        with self._lock:
            return [
                (t, msg["content"], buffers)
                for t, msg, buffers in self.sent
                if msg.get("method") == "custom" and msg["content"]["type"] == kind
            ]

    def points(self, kind: str = "points") -> dict[str, list[tuple[float, float]]]:
        """Every (x, y) sent, by series label."""
        found: dict[str, list[tuple[float, float]]] = {}
        for _, content, (x, y) in self.updates(kind):
            xs, ys = np.frombuffer(x, "<f8"), np.frombuffer(y, "<f8")
            at = 0
            for _, label, count, _ in content["series"]:
                found.setdefault(label, []).extend(zip(xs[at : at + count], ys[at : at + count]))
                at += count
        return found

    def weights(self, kind: str = "points") -> list[int]:
        """The bytes of each update of that kind: its message as JSON and its buffers."""
        with self._lock:
            return [
                len(orjson.dumps(msg)) + sum(map(len, buffers))
                for _, msg, buffers in self.sent
                if msg.get("method") == "custom" and msg["content"]["type"] == kind
            ]


def between_ticks() -> None:
    """Return once the chart's tick running now, if any, has finished (ticks run on the loop)."""
    reached = threading.Event()
    nbws.loop.call_soon(reached.set)
    assert reached.wait(10)


def on_request(count_to_messages):
    """A server that answers each text "N" with N messages, as fast as it can send them."""

    async def handler(connection):
        async for request in connection:
            for message in count_to_messages(int(request)):
                await connection.send(message)

    return handler


def ticks(symbols=("BTC",)):
    """Tickers with a numeric string price, as exchanges send them, numbered from 0."""
    sent = 0

    def make(n: int):
        nonlocal sent
        for i in range(sent, sent + n):
            yield f'{{"symbol": "{symbols[i % len(symbols)]}", "price": "{67000 + i % 997}.25", "n": {i}}}'
        sent += n

    return make


COLUMNS = [f"p{i}" for i in range(10)]


def ten_prices(n_sent=[0]):  # noqa: B006 - the count so far, shared by the calls of one server
    def make(n: int):
        first = n_sent[0]
        n_sent[0] += n
        for i in range(first, first + n):
            yield "{" + ", ".join(f'"{c}": "{i % 997}.25"' for c in COLUMNS) + "}"

    return make


def test_an_update_weighs_the_same_with_ten_points_held_as_with_a_million(servers):
    """Bytes per update depend on the new points, not on the points held (within 1.5x): ten
    columns of 1 row, then of 100,000 rows, and 60 rows more."""
    weights = {held: held_then_600_more(servers, held) for held in (10, 1_000_000)}
    assert weights[1_000_000] <= 1.5 * weights[10] and weights[10] <= 1.5 * weights[1_000_000], weights
    assert weights[10] < 600 * 16 + 2_000  # the points' float64 pairs and little else


def held_then_600_more(servers, held: int) -> int:
    """The bytes of the updates that carry 600 new points (60 rows of 10 columns) to a chart
    holding ``held`` points."""
    rows = held // len(COLUMNS)
    ws = nbws.connect(servers.websocket(on_request(ten_prices([0])), compression=None))
    chart = ws.plot(COLUMNS, window=rows + 60)
    ws.send(str(rows))
    wait_for(lambda: sum(chart.series.points_held().values()) == held, 60, f"{held} points held")
    between_ticks()  # (the tick that read them has sent them)
    traffic = Traffic(chart)
    ws.send("60")
    wait_for(lambda: sum(map(len, traffic.points().values())) >= 600, 10, "600 new points sent")
    for column, sent in traffic.points().items():  # each new point once, in order
        assert [y for _, y in sent] == [(rows + i) % 997 + 0.25 for i in range(60)], column
    ws.close()
    return sum(traffic.weights())


def test_at_most_twenty_updates_a_second_at_twenty_thousand_messages_a_second(demo):
    ws = nbws.connect(demo.url + "/ticker?rate=20000&count=60000&symbols=BTC,ETH,SOL")
    chart = ws.plot("price", by="symbol")
    traffic = Traffic(chart)
    ws.wait_closed(timeout=30)
    wait_for(lambda: not chart.timer_running, 10, "the chart showed the last points and stopped")
    times = [t for t, _, _ in traffic.updates()]
    assert len(times) >= 10
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= chart_module.MAX_UPDATES_PER_SECOND
    assert max(traffic.weights()) <= chart_module.POINTS_PER_UPDATE * 16 + 2_000
    assert set(traffic.points()) == {"BTC", "ETH", "SOL"}
    # The newest point the kernel keeps reached the views (thinned where more arrived than shown).
    sent = traffic.points()
    for kept in chart.series.window_points():
        assert sent[kept.label][-1] == (kept.x[-1], kept.y[-1])


def test_series_appear_as_new_values_of_by_appear(servers):
    def make(n: int):
        symbols = ["AAPL"] * 5 + ["AAPL", "MSFT"] * 5 + ["TSLA"]
        return (f'{{"s": "{s}", "bid": {i}}}' for i, s in enumerate(symbols[:n]))

    ws = nbws.connect(servers.websocket(on_request(make)))
    chart = ws.plot("bid", by="s")
    traffic = Traffic(chart)
    ws.send("5")
    wait_for(lambda: "AAPL" in traffic.points(), 5, "AAPL plotted")
    assert set(traffic.points()) == {"AAPL"}
    ws.send("16")
    wait_for(lambda: len(traffic.points()) == 3, 5, "three series")
    labels = [label for _, content, _ in traffic.updates() for _, label, _, _ in content["series"]]
    assert list(dict.fromkeys(labels)) == ["AAPL", "MSFT", "TSLA"]


def test_the_kernel_keeps_the_window_and_tells_views_what_it_dropped(servers):
    ws = nbws.connect(servers.websocket(on_request(ticks(("A", "B")))))
    chart = ws.plot("price", by="symbol", window=100)
    traffic = Traffic(chart)
    ws.send("5000")
    newest = {"A": 67000 + 4998 % 997 + 0.25, "B": 67000 + 4999 % 997 + 0.25}  # messages 4998, 4999
    wait_for(lambda: {k: v[-1][1] for k, v in traffic.points().items()} == newest, 10, "the last sent")
    assert chart.series.points_held() == {"A": 100, "B": 100}
    last = traffic.updates()[-1][1]["series"]
    newest = {label: max(x for x, _ in points) for label, points in traffic.points().items()}
    window = {p.label: p for p in chart.series.window_points()}
    for _, label, _, since in last:
        assert since == window[label].x[0] and window[label].x[-1] == newest[label]


def test_a_view_that_attaches_later_gets_the_window_then_only_newer_points(servers):
    ws = nbws.connect(servers.websocket(on_request(ticks())))
    chart = ws.plot("price")
    traffic = Traffic(chart)
    ws.send("300")
    wait_for(lambda: len(traffic.points().get("price", [])) == 300, 10)
    chart._handle_custom_msg({"type": "sync"}, [])  # what chart.js sends when a model is created
    (window,) = traffic.points("window").values()
    assert [y for _, y in window] == [y for _, y in traffic.points()["price"]]
    before = len(traffic.updates())
    ws.send("50")
    wait_for(lambda: len(traffic.points()["price"]) == 350, 10)
    later = [p for _, content, buffers in traffic.updates()[before:] for p in _pairs(content, buffers)]
    assert len(later) == 50 and min(x for x, _ in later) > max(x for x, _ in window)


def _pairs(content, buffers):
    return list(zip(np.frombuffer(buffers[0], "<f8"), np.frombuffer(buffers[1], "<f8")))


def test_a_column_not_seen_yet_is_waited_for(servers):
    def make(n: int):
        yield from ['{"symbol": "BTC"}'] * (n - 1)
        yield '{"symbol": "BTC", "book": {"bid": 5}}'

    ws = nbws.connect(servers.websocket(on_request(make)))
    chart = ws.plot(["book.bid", "symbol"])
    assert chart.waiting == ["book.bid", "symbol"]
    ws.send("3")
    wait_for(lambda: chart.waiting == [], 5, "every column seen")
    ws.send("1")
    wait_for(lambda: chart.series.points_held() == {"book.bid": 1}, 5)  # text is not plotted


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda ws: ws.plot(42),
            "y must be a column name or a list of column names, such as 'price', not 42",
        ),
        (lambda ws: ws.plot([]), "y must be a column name"),
        (lambda ws: ws.plot("price", window="5 parsecs"), "window must be a positive number of points"),
        (lambda ws: ws.plot("price", by=3), "by must be a column name, such as 'symbol', not 3"),
    ],
)
def test_mistakes_are_one_line_errors(demo, call, message):
    ws = nbws.connect(demo.url + "/echo")
    with pytest.raises(ValueError, match=message) as raised:
        call(ws)
    assert "\n" not in str(raised.value)


def test_close_stops_the_chart_and_a_reopened_connection_restarts_it(servers):
    ws = nbws.connect(servers.websocket(on_request(ticks())))
    chart = ws.plot("price")
    ws.send("10")
    wait_for(lambda: chart.series.points_held().get("price") == 10, 5)
    ws.close()
    wait_for(lambda: not chart.timer_running, 5, "the timer stopped once closed")
    ws.reconnect().wait_open(5)
    wait_for(lambda: chart.timer_running, 5, "the reopened connection restarted it")
    chart.close()
    wait_for(lambda: not chart.timer_running, 5, "closing the chart stops it")
    assert chart.comm is None


# -- in a real kernel ------------------------------------------------------------------------------


def chart_models(kernel) -> list[str]:
    """The comm ids of the LiveCharts the kernel opened."""
    return [
        m["content"]["comm_id"]
        for m in kernel.iopub
        if m["msg_type"] == "comm_open"
        and m["content"]["data"]["state"].get("_anywidget_id") == "nbws.chart.LiveChart"
    ]


def chart_updates(kernel, comm_id: str, kind: str = "points") -> list[dict]:
    return [
        m
        for m in kernel.iopub
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("method") == "custom"
        and m["content"]["data"]["content"]["type"] == kind
    ]


def series_labels(kernel, comm_id: str) -> set[str]:
    return {s[1] for m in chart_updates(kernel, comm_id) for s in m["content"]["data"]["content"]["series"]}


def shown_widgets(kernel, msg_id: str) -> list[str]:
    """The model ids of the widgets a cell displayed or returned."""
    return [
        m["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for m in kernel.iopub
        if m["msg_type"] in ("display_data", "execute_result")
        and m["parent_header"].get("msg_id") == msg_id
        and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
    ]


def test_ws_plot_and_the_magic_show_charts_whose_points_flow_and_a_new_view_gets_the_window(tmp_path, demo):
    kernel = Kernel(tmp_path)
    try:
        kernel.run(
            f"%load_ext nbws\n%ws_connect {demo.url}/ticker?rate=200&symbols=BTC,ETH --name feed --no-panel"
        )
        magic = kernel.submit("%ws_plot feed price --by symbol --window 30s")
        method = kernel.submit("feed.plot(['book.bid', 'book.ask'])")
        kernel.wait([magic, method])
        (by_symbol,) = shown_widgets(kernel, magic)
        (two_columns,) = shown_widgets(kernel, method)
        assert chart_models(kernel) == [by_symbol, two_columns]
        assert "%ws_plot: window must be" in kernel.fail("%ws_plot feed price --window soon")
        deadline = time.monotonic() + 10
        while series_labels(kernel, by_symbol) != {"BTC", "ETH"} or not chart_updates(kernel, two_columns):
            assert time.monotonic() < deadline, series_labels(kernel, by_symbol)
            kernel.drain(0.1)
        points = chart_updates(kernel, two_columns)
        assert points and all(len(m["buffers"]) == 2 for m in points)
        # A view that attaches (a reloaded page): chart.js asks for the window, the kernel sends it.
        request = kernel.client.session.msg(
            "comm_msg",
            {"comm_id": two_columns, "data": {"method": "custom", "content": {"type": "sync"}}},
        )
        kernel.client.shell_channel.send(request)
        deadline = time.monotonic() + 10
        while not chart_updates(kernel, two_columns, "window"):
            assert time.monotonic() < deadline, "no window sent to the new view"
            kernel.drain(0.1)
        (window,) = chart_updates(kernel, two_columns, "window")
        series = window["content"]["data"]["content"]["series"]
        assert {s[1] for s in series} == {"book.bid", "book.ask"}
        x = np.frombuffer(window["buffers"][0], "<f8")
        before = [
            m for m in chart_updates(kernel, two_columns) if m["header"]["date"] < window["header"]["date"]
        ]
        sent_before = sum(s[2] for m in before for s in m["content"]["data"]["content"]["series"])
        assert len(x) == sum(s[2] for s in series) >= sent_before > 0  # every point kept so far
    finally:
        kernel.shutdown()


def test_a_chart_and_a_panel_on_a_full_speed_stream_stay_within_iopubs_limits(tmp_path, demo):
    """At full speed: the chart sends at most 20 updates a second, IOPub stays under
    jupyter_server's limits, and trivial cells keep running while the stream lasts."""
    kernel = Kernel(tmp_path)
    try:
        kernel.run(f"import nbws\nfast = nbws.connect({demo.url + '/ticker?rate=0&count=100000'!r})")
        shown = kernel.submit("chart = fast.plot('price')\ndisplay(fast, chart)")
        kernel.wait([shown])
        trivial = 0
        while kernel.run("print(int(fast.ready_state))").strip() != "3" and trivial < 2_000:
            trivial += 1
        kernel.run(
            "fast.wait_closed(60)\n"
            "import time\n"
            "deadline = time.monotonic() + 10\n"
            "while chart.timer_running or fast.panel().timer_running:\n"
            "    assert time.monotonic() < deadline, 'still drawing'\n"
            "    time.sleep(0.01)\n",
            timeout=70,
        )
    finally:
        kernel.shutdown()
    (chart_id,) = chart_models(kernel)
    times = sorted(m["header"]["date"].timestamp() for m in chart_updates(kernel, chart_id))
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    assert 0 < busiest <= chart_module.MAX_UPDATES_PER_SECOND
    assert trivial > 0  # cells ran while the stream lasted
    comm = sorted(
        (
            m["header"]["date"].timestamp(),
            len(orjson.dumps(m["content"])) + sum(map(len, m.get("buffers", []))),
        )
        for m in kernel.iopub
        if m["msg_type"] == "comm_msg"
    )
    heaviest = max(sum(size for t, size in comm[i:] if t - start < 1.0) for i, (start, _) in enumerate(comm))
    assert heaviest < 1_000_000  # jupyter_server's IOPub data rate limit (1 MB/s)
