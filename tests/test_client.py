"""nbws.client: the WebSocket state machine, events, send/close/recv, against real servers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import threading
import time

import pytest

import nbws
import nbws.dispatch
from nbws import CLOSED, CLOSING, CONNECTING, OPEN

from recording import Recorder, wait_for

pytestmark = pytest.mark.usefixtures("transport")  # every test, once per transport

# -- construction and URL validation ----------------------------------------------------------


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.1/echo", "did you mean ws://127.0.0.1/echo"),
        ("ftp://127.0.0.1/", "ws:// or wss://"),
        ("127.0.0.1:8765", "ws:// or wss://"),
        ("ws:///echo", "no host"),
        ("ws://127.0.0.1:99999/", "port"),
        ("ws://127.0.0.1/#frag", "fragment"),
    ],
)
def test_invalid_url_raises_value_error_before_any_io(url, words):
    """A bad URL raises ValueError at once, saying what is wrong."""
    with pytest.raises(ValueError, match=re.escape(words)):
        nbws.WebSocket(url)
    assert nbws.connections() == {}


def test_ssl_context_needs_wss(demo):
    """ssl= with a ws:// URL is refused."""
    import ssl

    with pytest.raises(ValueError, match="wss://"):
        nbws.WebSocket(demo.url + "/echo", ssl=ssl.create_default_context())


def test_wait_open_on_a_stream_that_already_ended(demo):
    """wait_open returns (not raises) for a connection that opened and closed since; data kept."""
    ws = nbws.WebSocket(demo.url + "/close?code=1000&after=2")
    ws.wait_closed(5)
    assert ws.wait_open(1) is ws
    assert len(ws.frame) == 2


def test_starts_connecting_then_opens(demo):
    """The constructor returns in CONNECTING; wait_open returns the socket once OPEN."""
    ws = nbws.connect(demo.url + "/echo")
    assert ws.ready_state in (CONNECTING, OPEN)
    assert ws.wait_open(5) is ws
    assert ws.ready_state == OPEN == 1
    assert ws.url == demo.url + "/echo"
    assert ws.protocol == ""


# -- event order (WHATWG, as undici implements it) ---------------------------------------------


def test_event_order_for_a_clean_client_close(demo):
    """open, messages, then close 1000 clean; ready_state CLOSED inside the close listener."""
    ws = nbws.WebSocket(demo.url + "/echo")
    rec = Recorder(ws)
    ws.send("one")
    ws.recv(timeout=5)
    ws.close()
    assert ws.ready_state == CLOSED
    rec.wait_closed()
    assert rec.types == ["open", "message", "close"]
    close = rec.last("close")
    assert (close.code, close.reason, close.was_clean) == (1000, "", True)
    assert rec.events[-1][1] == CLOSED


def test_server_close_with_code_and_reason(demo):
    """A server close frame gives its code and reason, was_clean True, no error event."""
    ws = nbws.WebSocket(demo.url + "/close?code=4001&reason=going%20away&after=2")
    rec = Recorder(ws)
    rec.wait_closed()
    assert rec.types == ["open", "message", "message", "close"]
    close = rec.last("close")
    assert (close.code, close.reason, close.was_clean) == (4001, "going away", True)
    assert rec.events[-1][1] == CLOSED


def test_close_frame_without_status_gives_1005(servers):
    """A close frame with no status code is reported as 1005, clean."""

    async def handler(connection):
        # An empty close frame (websockets' public close() always sends a code).
        async with connection.send_context():
            connection.protocol.send_close()
        await connection.wait_closed()

    ws = nbws.WebSocket(servers.websocket(handler))
    rec = Recorder(ws)
    rec.wait_closed()
    close = rec.last("close")
    assert (close.code, close.reason, close.was_clean) == (1005, "", True)
    assert "error" not in rec.types


def test_abrupt_drop_fires_error_then_close_1006(servers):
    """Server transport aborted: error then close 1006 not clean, both seeing CLOSED."""
    got = threading.Event()

    async def handler(connection):
        await connection.send("before the drop")
        await connection.recv()
        connection.transport.abort()
        got.set()

    ws = nbws.WebSocket(servers.websocket(handler))
    rec = Recorder(ws)
    assert ws.recv(timeout=5).data == "before the drop"
    ws.send("now drop")
    rec.wait_closed()
    assert rec.types == ["open", "message", "error", "close"]
    assert [state for t, state, _ in rec.events if t in ("error", "close")] == [CLOSED, CLOSED]
    close = rec.last("close")
    assert (close.code, close.was_clean) == (1006, False)
    assert "without a close frame" in rec.last("error").message
    assert [m.data for m in ws.messages] == ["before the drop"]  # nothing received is lost


def test_refused_connection_fires_error_then_close(servers):
    """A refused handshake: error then close 1006; wait_open raises ConnectError saying so."""
    port = _free_port()
    ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/")
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError, match=r"refused.*is the server running"):
        ws.wait_open(5)
    rec.wait_closed()
    assert rec.types == ["error", "close"]
    assert rec.last("close").code == 1006
    assert ws.ready_state == CLOSED


def test_a_failure_the_caller_is_told_about_is_not_printed_again(capfd):
    """wait_open raises the ConnectError; nothing more on stderr. Unheard failures are printed."""
    ws = nbws.connect(f"ws://127.0.0.1:{_free_port()}/")
    with pytest.raises(nbws.ConnectError):
        ws.wait_open(5)
    ws.wait_closed(5)  # the error and close events are delivered: a print would be out by now
    assert capfd.readouterr().err == ""
    _connect_and_forget(f"ws://127.0.0.1:{_free_port()}/")
    wait_for(lambda: "refused" in capfd.readouterr().err)


def _connect_and_forget(url):
    nbws.connect(url)  # the frame returns at once: nobody listens, so nbws prints the failure


def test_http_403_on_upgrade(servers):
    """An HTTP 403 answer: ConnectError with the status, error then close 1006."""

    def forbid(connection, request):
        return connection.respond(403, "no\n")

    url = servers.websocket(lambda c: None, process_request=forbid)
    ws = nbws.WebSocket(url)
    with pytest.raises(nbws.ConnectError, match="HTTP 403") as info:
        ws.wait_open(5)
    assert info.value.status == 403
    assert info.value.url == url
    assert ws.ready_state == CLOSED


def test_server_that_is_not_a_websocket_server(servers):
    """A plain HTTP server: ConnectError says it did not answer with a WebSocket handshake."""

    async def http(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    port = servers.tcp(http)
    ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/")
    with pytest.raises(nbws.ConnectError, match="HTTP 200"):
        ws.wait_open(5)


def test_slow_handshake_times_out(servers):
    """No handshake answer within open_timeout: ConnectError names the timeout."""

    port = servers.silent()
    ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/", open_timeout=0.3)
    with pytest.raises(nbws.ConnectError, match=r"within open_timeout=0\.3s"):
        ws.wait_open(5)
    assert ws.ready_state == CLOSED


def test_unresolvable_host(monkeypatch):
    """A DNS failure (simulated: tests may not query a resolver) says the host can't be resolved."""
    import nbws.loop

    loop = nbws.loop.get_loop()

    async def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(loop, "getaddrinfo", fail)
    ws = nbws.WebSocket("ws://no-such-host.invalid/")
    with pytest.raises(nbws.ConnectError, match=r"cannot resolve host 'no-such-host\.invalid'"):
        ws.wait_open(5)


def test_close_while_connecting_fires_error_then_close(servers):
    """close() during the handshake abandons it: error then close 1006, as in browsers."""

    port = servers.silent()
    ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/")
    rec = Recorder(ws)
    ws.close()
    rec.wait_closed()
    assert rec.types == ["error", "close"]
    assert "before the connection was established" in rec.last("error").message
    assert rec.last("close").code == 1006
    with pytest.raises(nbws.ConnectError):
        ws.wait_open(1)


# -- close -----------------------------------------------------------------------------------


def test_wait_closed_returns_the_close_event(demo):
    """wait_closed blocks until the server closed and returns the CloseEvent."""
    ws = nbws.WebSocket(demo.url + "/close?code=4003&reason=later&after=1")
    seen = []
    ws.on("close")(seen.append)
    close = ws.wait_closed(5)
    assert (close.code, close.reason, close.was_clean) == (4003, "later", True)
    assert seen == [close]  # the close listeners have run
    open_ws = nbws.connect(demo.url + "/echo").wait_open(5)
    with pytest.raises(TimeoutError, match="still OPEN"):
        open_ws.wait_closed(0.1)


@pytest.mark.parametrize("code", [999, 1001, 1005, 1006, 2999, 5000, "1000"])
def test_close_code_must_be_1000_or_3000_to_4999(demo, code):
    """Codes browsers refuse raise ValueError and leave the connection open."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    with pytest.raises(ValueError, match="1000 or in 3000-4999"):
        ws.close(code)
    assert ws.ready_state == OPEN


def test_close_reason_at_most_123_bytes(demo):
    """A reason longer than 123 UTF-8 bytes raises ValueError; 123 is fine."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    with pytest.raises(ValueError, match="123 bytes"):
        ws.close(1000, "é" * 62)
    rec = Recorder(ws)
    ws.close(4000, "x" * 123)
    rec.wait_closed()
    assert rec.last("close").code == 4000
    assert rec.last("close").reason == "x" * 123


def test_close_at_any_moment_of_the_handshake_ends_closed(demo):
    """close() racing the handshake always ends in CLOSED with one close event, never hangs."""
    for i in range(40):
        ws = nbws.WebSocket(demo.url + "/echo")
        rec = Recorder(ws)
        time.sleep(i * 0.0001)  # sweep the moment of close() across the handshake
        start = time.monotonic()
        ws.close()
        assert time.monotonic() - start < 2
        rec.wait_closed(2)
        assert ws.ready_state == CLOSED
        assert rec.types.count("close") == 1
        assert rec.last("close").code in (1000, 1006)


def test_close_is_idempotent(demo):
    """A second close() does nothing and raises nothing."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    rec = Recorder(ws)
    ws.close()
    ws.close()
    ws.close(4000)
    rec.wait_closed()
    # A close listener added now is called on the loop thread after the two extra close()
    # requests were handled there: a second close event would have come before it.
    late = threading.Event()
    ws.on("close")(lambda event: late.set())
    assert late.wait(5)
    assert rec.types.count("close") == 1
    assert rec.last("close").code == 1000


def test_close_returns_after_the_listeners_saw_every_event(demo):
    """recv() may return while a listener still runs; close() waits for the listeners.

    The message listener finishes its (slow) work only after close() has been called: if
    close() returned before the listeners were done, ``seen`` would still be empty. The sleep
    stands for the listener's work, not for synchronisation: close() must wait for it however
    long it takes.
    """
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    closing = threading.Event()
    seen = []

    @ws.on("message")
    def slow(event):
        closing.wait(5)
        time.sleep(0.3)
        seen.append(event.data)

    ws.send("hello")
    assert ws.recv(timeout=5).data == "hello"
    closing.set()
    ws.close()
    assert seen == ["hello"]


def test_close_from_a_listener_does_not_block(demo):
    """close() inside a listener returns at once; the close follows."""
    ws = nbws.WebSocket(demo.url + "/echo")
    states = []

    @ws.on("message")
    def stop(event):
        ws.close(4002, "enough")
        states.append(ws.ready_state)

    rec = Recorder(ws)
    ws.send("x")
    rec.wait_closed()
    assert states == [CLOSING]
    assert rec.last("close").code == 4002


# -- send ------------------------------------------------------------------------------------


def test_send_while_connecting_waits_for_open(servers):
    """send() during a slow handshake waits and then sends, instead of raising."""
    received = []

    async def handler(connection):
        async for message in connection:
            received.append(message)

    async def slow(connection, request):
        await asyncio.sleep(0.5)

    url = servers.websocket(handler, process_request=slow)
    ws = nbws.WebSocket(url)
    assert ws.ready_state == CONNECTING
    ws.send("first")
    ws.send_json({"second": 2})
    wait_for(lambda: len(received) == 2)
    assert received == ["first", '{"second":2}']
    assert ws.stats["sent"] == 2


def test_send_while_connecting_to_a_refused_port_raises_connect_error():
    """send() while CONNECTING raises ConnectError if the connection then fails."""
    ws = nbws.WebSocket(f"ws://127.0.0.1:{_free_port()}/")
    with pytest.raises(nbws.ConnectError, match="refused"):
        ws.send("lost?")


def test_send_after_close_raises(demo):
    """nbws does not drop data silently: send after close raises ConnectionClosedError."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.close()
    with pytest.raises(nbws.ConnectionClosedError, match=r"closed \(code 1000\).*nbws\.connect") as info:
        ws.send("too late")
    assert info.value.code == 1000
    with pytest.raises(nbws.ConnectionClosedError):
        ws.send_json({"a": 1})
    assert ws.stats["sent"] == 0


def test_send_types(demo):
    """str goes as text, bytes/bytearray as binary; other types raise TypeError."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send("text")
    ws.send(b"\x00\xff")
    ws.send(bytearray(b"ab"))
    assert [ws.recv(timeout=5).data for _ in range(3)] == ["text", b"\x00\xff", b"ab"]
    with pytest.raises(TypeError, match="send_json"):
        ws.send({"a": 1})
    with pytest.raises(TypeError, match="as JSON"):
        ws.send_json({"a": object()})
    stats = ws.stats
    assert stats["sent"] == 3
    assert stats["bytes_sent"] == 4 + 2 + 2


def test_send_json_roundtrip_and_unicode_bytes(demo):
    """send_json sends compact JSON; byte counters count UTF-8 bytes, not characters."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send_json({"café": [1, 2.5, None, True]})
    event = ws.recv(timeout=5)
    assert event.json() == {"café": [1, 2.5, None, True]}
    expected = len('{"café":[1,2.5,null,true]}'.encode())
    assert ws.stats["bytes_sent"] == expected
    assert ws.stats["bytes_received"] == expected


def test_send_from_an_open_listener(demo):
    """The Node guide's pattern: send inside the open listener."""
    ws = nbws.WebSocket(demo.url + "/echo")
    ws.add_event_listener("open", lambda event: ws.send("Hello Server!"))
    assert ws.recv(timeout=5).data == "Hello Server!"


# -- listeners -------------------------------------------------------------------------------


def test_listener_that_raises_does_not_stop_the_stream(demo, capsys):
    """A failing listener is counted, reported as an error event and printed; messages go on."""
    ws = nbws.WebSocket(demo.url + "/echo")
    errors = []
    good = []

    @ws.on("message")
    def broken(event):
        raise RuntimeError(f"bug on {event.data}")

    ws.on("message")(lambda event: good.append(event.data))
    ws.on("error")(errors.append)
    for i in range(5):
        ws.send(str(i))
    wait_for(lambda: len(good) == 5)
    assert good == ["0", "1", "2", "3", "4"]
    assert ws.stats["listener_errors"] == 5
    assert len(errors) == 5
    assert isinstance(errors[0].error, RuntimeError)
    assert "broken" in errors[0].message
    err = capsys.readouterr().err
    assert "RuntimeError: bug on 0" in err
    assert err.count("Traceback") == nbws.dispatch.PRINTED_LISTENER_FAILURES
    assert "further failures of this listener are counted" in err
    assert ws.ready_state == OPEN


def test_a_broken_listener_cannot_flood_the_output(demo, capsys):
    """With no error listener, a listener failing 20 times prints three tracebacks in all."""
    ws = nbws.WebSocket(demo.url + "/echo")
    ws.on("message")(lambda event: 1 / 0)
    for i in range(20):
        ws.send(str(i))
    wait_for(lambda: ws.stats["listener_errors"] == 20)
    err = capsys.readouterr().err
    assert err.count("Traceback") == 3
    assert err.count("ZeroDivisionError('division by zero')") == 3
    assert ws.stats["received"] == 20


def test_error_listener_that_raises_is_not_dispatched_again(demo, capsys):
    """An error listener's own failure is printed and counted, without a loop of errors."""
    ws = nbws.WebSocket(demo.url + "/echo")
    ws.on("message")(lambda e: 1 / 0)
    ws.on("error")(lambda e: [][1])
    seen = []
    ws.on("message")(seen.append)  # runs after the failing one and the error listener it starts
    ws.send("x")
    ws.send("marker")  # its delivery comes after anything "x" set off
    wait_for(lambda: len(seen) == 2)
    assert ws.stats["listener_errors"] == 4  # two per message: no error of errors
    assert "IndexError" in capsys.readouterr().err


def test_same_listener_added_twice_runs_once_and_can_be_removed(demo):
    """Like addEventListener: duplicates are ignored; remove_event_listener stops it."""
    ws = nbws.WebSocket(demo.url + "/echo")
    seen, after = [], []
    listener = seen.append
    ws.add_event_listener("message", listener)
    ws.add_event_listener("message", listener)
    ws.add_event_listener("message", after.append)  # called after it, for the same message
    ws.send("a")
    wait_for(lambda: len(after) == 1)
    assert [e.data for e in seen] == ["a"]  # once, not twice
    ws.remove_event_listener("message", listener)
    ws.send("b")
    wait_for(lambda: len(after) == 2)
    assert [e.data for e in after] == ["a", "b"]
    assert [e.data for e in seen] == ["a"]


def test_unknown_event_type_and_non_callable(demo):
    """Typos in the event type and non-callables fail loudly."""
    ws = nbws.WebSocket(demo.url + "/echo")
    with pytest.raises(ValueError, match="open, message, close, error"):
        ws.add_event_listener("messages", print)
    with pytest.raises(TypeError, match="callable"):
        ws.add_event_listener("message", "print")


def test_open_listener_added_after_open_is_called_once(demo):
    """A later cell's open listener still hears about the open that already happened."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    opened = []
    ws.on("open")(opened.append)
    # A second late listener is called after the first one's call(s), on the loop thread.
    marker = threading.Event()
    ws.on("open")(lambda event: marker.set())
    assert marker.wait(5)
    assert len(opened) == 1
    assert opened[0].reconnect is False


def test_close_listener_added_after_close_is_called(demo):
    """A close listener added once CLOSED gets the close event."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.close(4005, "bye")
    closes = []
    ws.on("close")(closes.append)
    wait_for(lambda: closes)
    assert (closes[0].code, closes[0].reason) == (4005, "bye")


def test_listeners_added_after_the_constructor_miss_nothing():
    """As in browsers: listeners added right after connecting get the first events, every time."""
    for _ in range(20):
        ws = nbws.WebSocket(f"ws://127.0.0.1:{_free_port()}/")  # fails within microseconds
        _wait_closed_keeping_the_hold(ws)  # everything has happened before any listener
        rec = Recorder(ws)
        ws.wait_closed(5)  # a blocking call: ends the hold, so the held events are delivered
        rec.wait_closed()
        assert rec.types == ["error", "close"]


def _wait_closed_keeping_the_hold(ws, timeout: float = 5) -> None:
    """Wait until ``ws`` is CLOSED without calling a blocking nbws method (which ends the hold)."""
    closed = threading.Event()
    remove = ws.add_state_hook(lambda: ws.closed and closed.set())
    try:
        assert ws.closed or closed.wait(timeout), f"not closed within {timeout}s"
    finally:
        remove()


def test_held_messages_arrive_in_order_after_open(demo):
    """Messages that came while listeners were being added are delivered after open, in order."""
    ws = nbws.WebSocket(demo.url + "/close?code=4000&after=5")
    wait_for(lambda: ws.ready_state == CLOSED)  # everything happened before any listener
    rec = Recorder(ws)
    rec.wait_closed()
    assert rec.types == ["open"] + ["message"] * 5 + ["close"]
    assert [e.json()["seq"] for t, _, e in rec.events if t == "message"] == [1, 2, 3, 4, 5]


def test_a_blocking_call_ends_the_hold_at_once(demo):
    """recv() from the creating code means its listeners are in place: events flow now."""
    ws = nbws.WebSocket(demo.url + "/echo")
    opened = threading.Event()
    ws.on("open")(lambda event: opened.set())
    ws.wait_open(5)
    assert opened.wait(0.2)  # well before HOLD_SECONDS


def test_message_event_fields(demo):
    """MessageEvent carries data, seq counting from 0 and a UTC received_at."""
    ws = nbws.WebSocket(demo.url + "/echo")
    events = []
    ws.on("message")(events.append)
    ws.send("a")
    ws.send("b")
    wait_for(lambda: len(events) == 2)
    assert [(e.data, e.seq) for e in events] == [("a", 0), ("b", 1)]
    assert events[0].received_at.tzinfo is not None
    assert events[0].received_at.utcoffset().total_seconds() == 0


# -- recv ------------------------------------------------------------------------------------


def test_recv_returns_messages_in_order_without_skipping(demo):
    """recv gives each message once, oldest first, even those that arrived before the call."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    for i in range(3):
        ws.send(f"m{i}")
    wait_for(lambda: ws.stats["received"] == 3)
    assert [ws.recv(timeout=1).data for _ in range(3)] == ["m0", "m1", "m2"]


def test_recv_timeout(demo):
    """recv raises TimeoutError after the timeout when nothing comes."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"within 0\.2s"):
        ws.recv(timeout=0.2)
    assert time.monotonic() - start >= 0.19
    ws.send("late")
    assert ws.recv(timeout=5).data == "late"


def test_recv_after_close_raises_once_drained(demo):
    """Messages received before close can still be read; then ConnectionClosedError."""
    ws = nbws.WebSocket(demo.url + "/close?code=4000&after=2")
    assert ws.recv(timeout=5).json() == {"seq": 1}
    assert ws.recv(timeout=5).json() == {"seq": 2}
    with pytest.raises(nbws.ConnectionClosedError, match="code 4000"):
        ws.recv(timeout=5)


def test_recv_interrupt_leaves_connection_healthy(demo):
    """A KeyboardInterrupt (kernel interrupt) stops recv; the connection keeps working."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    # A real SIGINT, as the kernel's interrupt sends (_thread.interrupt_main wakes no wait).
    timer = threading.Timer(0.2, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        ws.recv()
    timer.join()
    assert ws.ready_state == OPEN
    ws.send("still here")
    assert ws.recv(timeout=5).data == "still here"


def test_wait_for_messages_counts_replies_that_came_before_the_wait(demo):
    """send then wait_for_messages: the echo counts even if it arrived before the wait began."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send("a")
    ws.send("b")
    wait_for(lambda: ws.stats["received"] == 2)  # both replies are in before the wait
    assert ws.wait_for_messages(2, timeout=5) == 2
    ws.send("c")
    assert ws.wait_for_messages(1, timeout=5) == 3
    with pytest.raises(TimeoutError, match=r"0 of 1 new messages .* within 0\.1s"):
        ws.wait_for_messages(timeout=0.1)


def test_wait_for_messages_from_a_ticker_and_on_close(demo):
    """Without sends, new messages count from the start; a close ends the wait with an error."""
    ws = nbws.connect(demo.url + "/ticker?rate=200&count=30")
    assert ws.wait_for_messages(10, timeout=5) >= 10
    assert ws.wait_for_messages(10, timeout=5) >= 20
    with pytest.raises(nbws.ConnectionClosedError, match="closed after 10 of 20 new messages"):
        ws.wait_for_messages(20, timeout=5)
    with pytest.raises(ValueError, match="positive integer"):
        ws.wait_for_messages(0)


def test_rows_since_reads_a_feed_in_pieces_that_add_up_to_the_frame(demo):
    """ws.rows_since: every row once, in order, with the columns asked for (as a chart reads)."""
    ws = nbws.connect(demo.url + "/ticker?rate=20000&count=5000&symbols=BTC,ETH")
    position, times, prices = 0, [], []

    def read() -> None:
        nonlocal position
        new = ws.rows_since(position, ["price", "not_a_column"])
        assert "not_a_column" not in new.columns and len(new.times) == new.position - position
        if len(new.times):
            times.extend(new.times.tolist())
            prices.extend(new.columns["price"].tolist())
        position = new.position

    with pytest.raises(nbws.ConnectionClosedError):  # the ticker ends the stream after its count
        for _ in range(20):
            ws.wait_for_messages(500, timeout=10)
            read()
    read()
    frame = ws.frame
    assert len(times) == 5000 and times == frame.index.as_unit("ns").asi8.tolist()
    assert prices == frame["price"].tolist()


def test_arecv(demo):
    """arecv works in async code running on another event loop."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)

    async def main():
        ws.send("async hello")
        first = await ws.arecv(timeout=5)
        with pytest.raises(TimeoutError):
            await ws.arecv(timeout=0.1)
        return first

    assert asyncio.run(main()).data == "async hello"


def test_arecv_waits_for_a_message_that_arrives_later(demo):
    """arecv parks on the caller's loop and is woken by the loop thread."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    threading.Timer(0.2, ws.send, args=("later",)).start()

    async def main():
        return await ws.arecv(timeout=5)

    assert asyncio.run(main()).data == "later"


# -- registry and stats ----------------------------------------------------------------------


def test_connections_and_close_all(demo):
    """connections() lists live connections by name; close_all closes them all."""
    a = nbws.connect(demo.url + "/echo", name="a").wait_open(5)
    b = nbws.connect(demo.url + "/echo").wait_open(5)
    live = nbws.connections()
    assert live["a"] is a
    assert live[b.name] is b
    assert b.name.startswith("ws")
    nbws.close_all()
    assert a.ready_state == b.ready_state == CLOSED
    assert nbws.connections() == {}


def test_reusing_a_live_name_closes_the_old_connection(demo):
    """Re-running connect(..., name='x') replaces the old connection instead of leaking it."""
    old = nbws.connect(demo.url + "/echo", name="x").wait_open(5)
    new = nbws.connect(demo.url + "/echo", name="x").wait_open(5)
    assert old.ready_state == CLOSED
    assert nbws.connections() == {"x": new}


def test_stats_counts(demo):
    """stats has the documented keys and counts what happened."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send('{"a": 1}')
    ws.send("nope")
    ws.recv(timeout=5)
    ws.recv(timeout=5)
    stats = ws.stats
    for key in ("received", "sent", "bytes_received", "bytes_sent", "parse_errors"):
        assert key in stats
    assert stats["received"] == 2
    assert stats["sent"] == 2
    assert stats["parse_errors"] == 1
    assert stats["listener_errors"] == 0
    assert stats["reconnects"] == 0
    assert stats["rate"] > 0


def test_rate_measures_a_ticker(demo):
    """stats['rate'] is close to the ticker's rate."""
    ws = nbws.connect(demo.url + "/ticker?rate=200&count=400")
    ws.wait_for_messages(200, timeout=10)  # a second's worth
    rate = ws.stats["rate"]
    assert 100 < rate < 400, rate


def test_subprotocol_and_headers_reach_the_server(servers):
    """subprotocols are negotiated (ws.protocol) and headers are sent."""
    seen = {}

    async def handler(connection):
        seen["auth"] = connection.request.headers.get("Authorization")
        await connection.send("hi")
        await connection.wait_closed()

    url = servers.websocket(handler, subprotocols=["chat.v2"])
    ws = nbws.connect(url, subprotocols=["chat.v1", "chat.v2"], headers={"Authorization": "Bearer t"})
    ws.wait_open(5)
    assert ws.protocol == "chat.v2"
    ws.recv(timeout=5)
    assert seen["auth"] == "Bearer t"


def test_repr_is_cheap_and_informative(demo):
    """repr shows name, URL, state and count."""
    ws = nbws.connect(demo.url + "/echo", name="feed").wait_open(5)
    text = repr(ws)
    assert "'feed'" in text and "OPEN" in text and "received=0" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- reconnect (the basics; issue-level detail lives with reliability) -------------------------


def test_reconnect_after_a_drop_keeps_earlier_messages(demo):
    """reconnect=True: a dropped connection reopens; earlier messages stay; open says reconnect."""
    ws = nbws.connect(demo.url + "/drop?after=2", reconnect=True)
    opens, errors = [], []
    ws.on("open")(opens.append)
    ws.on("error")(errors.append)
    wait_for(lambda: ws.stats["reconnects"] >= 2 and ws.stats["received"] >= 6, timeout=10)
    ws.close()
    assert ws.ready_state == CLOSED
    assert [m.json()["seq"] for m in ws.messages][:6] == [1, 2, 1, 2, 1, 2]
    assert opens[0].reconnect is False
    assert any(event.reconnect for event in opens[1:])
    assert errors, "each drop is reported as an error event"
    assert "without a close frame" in errors[0].message


def test_secrets_are_masked_in_repr_and_error_messages(servers):
    """Tokens in the URL and header values never show in repr, errors or error events; the
    connection itself uses them as given."""
    seen = []

    def refuse(connection, request):
        seen.append((request.path, request.headers.get_all("Authorization")[-1]))  # [0]: Basic, from me:...@
        return connection.respond(401, "no\n")

    url = servers.websocket(lambda c: None, process_request=refuse).replace("ws://", "ws://me:hunter22@")
    url += "/feed?token=s3cr3t-42&rate=1"
    ws = nbws.connect(url, headers={"Authorization": "Bearer t0p-s3cr3t"})
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    assert seen == [("/feed?token=s3cr3t-42&rate=1", "Bearer t0p-s3cr3t")]
    shown = [repr(ws), str(info.value), *(e.message for e in rec.of("error"))]
    for text in shown:
        assert "s3cr3t-42" not in text and "hunter22" not in text and "t0p-s3cr3t" not in text, text
    assert "me:***@" in str(info.value) and "token=***&rate=1" in str(info.value)
    with pytest.raises(ValueError) as bad:
        nbws.connect("http://127.0.0.1/feed?token=s3cr3t-42")
    assert "s3cr3t-42" not in str(bad.value) and "token=***" in str(bad.value)


# -- with, for and async for -------------------------------------------------------------------


def test_with_closes_on_leaving_the_block(demo):
    """``with nbws.connect(url) as ws:`` closes normally on exit, also when the block raises."""
    with nbws.connect(demo.url + "/echo") as ws:
        ws.send("in the block")
        assert ws.recv(timeout=5).data == "in the block"
    assert ws.ready_state == CLOSED and ws.close_event.code == 1000
    with pytest.raises(RuntimeError, match="boom"), nbws.connect(demo.url + "/echo") as failing:
        failing.wait_open(5)
        raise RuntimeError("boom")
    assert failing.ready_state == CLOSED


def test_for_yields_every_message_until_the_connection_closes(demo):
    """``for event in ws`` yields each message once, in order, and ends when the server closes."""
    ws = nbws.connect(demo.url + "/ticker?rate=0&count=300")
    seqs = [event.json()["seq"] for event in ws]
    assert seqs == list(range(1, 301))
    assert ws.ready_state == CLOSED


def test_for_shares_the_cursor_with_recv(demo):
    """A message read with recv() is not yielded again by iteration."""
    ws = nbws.connect(demo.url + "/ticker?rate=0&count=10")
    assert ws.recv(timeout=5).json()["seq"] == 1
    assert [event.json()["seq"] for event in ws] == list(range(2, 11))


def test_async_for_yields_every_message_until_the_connection_closes(demo):
    """``async for event in ws`` in a coroutine (on the caller's own loop) sees every message."""

    async def read_all():
        ws = nbws.connect(demo.url + "/ticker?rate=0&count=200")
        return [event.json()["seq"] async for event in ws], ws

    seqs, ws = asyncio.run(read_all())
    assert seqs == list(range(1, 201))
    assert ws.ready_state == CLOSED


def test_interrupting_a_for_loop_leaves_the_connection_healthy(demo):
    """Ctrl-C inside ``for event in ws`` stops the loop; the connection keeps receiving."""
    import _thread

    ws = nbws.connect(demo.url + "/ticker?rate=100")
    with pytest.raises(KeyboardInterrupt):
        for count, _ in enumerate(ws, 1):
            if count == 3:
                _thread.interrupt_main()  # seen at the next bytecode or wait slice
    assert ws.ready_state == OPEN
    ws.wait_for_messages(3, timeout=5)
    assert ws.ready_state == OPEN


def test_wait_open_after_a_failed_reopen_raises(servers):
    """reconnect() to a server that now refuses: wait_open raises the refusal, not returns."""
    refusing = []

    def maybe_refuse(connection, request):
        return connection.respond(403, "no\n") if refusing else None

    async def hello(connection):
        await connection.send("hello")
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(hello, process_request=maybe_refuse) + "/").wait_open(5)
    ws.close()
    refusing.append(True)
    ws.reconnect()
    with pytest.raises(nbws.ConnectError, match="HTTP 403"):
        ws.wait_open(5)
    assert ws.ready_state == CLOSED


def test_the_transport_is_the_one_asked_for(demo, transport):
    """Without transport=, NBWS_TRANSPORT names it (the fixture sets it)."""
    assert nbws.connect(f"{demo.url}/echo").transport == transport
    assert nbws.connect(f"{demo.url}/echo", transport="websockets").transport == "websockets"


def test_fragmented_messages_arrive_whole_and_max_size_counts_the_whole_message(servers):
    async def fragmented(connection):
        await connection.send(['{"a": ', '"\u00e9"}'])  # text in two frames
        await connection.send([b"\x00", b"\x01"])  # binary in two
        await connection.send(["y" * 600, "y" * 600])  # each fragment under max_size, the message not
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(fragmented), max_size=1_000)
    rec = Recorder(ws)
    rec.wait_closed(20)
    assert [m.data for m in ws.messages] == ['{"a": "\u00e9"}', b"\x00\x01"]
    assert rec.last("close").code == 1009
    assert "max_size=1,000 bytes" in rec.last("error").message


def test_a_redirect_to_a_websocket_server_is_followed(servers, demo):
    async def redirect(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: {demo.url}/echo\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()

    ws = nbws.connect(f"ws://127.0.0.1:{servers.tcp(redirect)}/").wait_open(5)
    ws.send("followed")
    assert ws.recv(timeout=5).data == "followed"
